#!/usr/bin/env bash
# From a fresh clone: installs everything, builds with ccache, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
deploy/build.sh -DSSLSWEEP_BUILD_TESTS=ON
cd build
ctest --output-on-failure --timeout 600 -j "$(nproc)"
