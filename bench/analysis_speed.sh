#!/usr/bin/env bash
# Issue 4's speed comparison: the full metric suite of `sslsweep analyze`
# (one layer; fine, coarse and random targets; 60,000 x 512 training and
# 10,000 x 512 test features) against scikit-learn doing the same, in one run.
#
#   bench/analysis_speed.sh [BUILD_DIR] [FLAG...]
#
# BUILD_DIR (default: build) must hold bin/sslsweep and bin/sslsweep-analyze;
# flags (--rows, --test-rows, --dim) go to bench/analysis_speed.py, which
# says how each side is timed. PYTHON (default /usr/bin/python3) needs numpy
# and scikit-learn (deploy/install-deps.sh --bench).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
shift $(( $# < 1 ? $# : 1 ))
for binary in sslsweep sslsweep-analyze; do
  if [[ ! -x "$build_dir/bin/$binary" ]]; then
    echo "analysis_speed.sh: $build_dir/bin/$binary not found; run deploy/build.sh" >&2
    exit 2
  fi
done
exec "${PYTHON:-/usr/bin/python3}" bench/analysis_speed.py --bin "$build_dir/bin" "$@"
