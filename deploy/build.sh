#!/usr/bin/env bash
# Configures and builds sslsweep into build/ (ccache on), using every core.
# Extra arguments go to the CMake configure step, e.g. -DSSLSWEEP_BUILD_BENCH=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
ccache --max-size=5G >/dev/null 2>&1 || true
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build build -j "$(nproc)"
