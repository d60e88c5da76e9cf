#!/usr/bin/env bash
# Configures and builds sslsweep into build/ (ccache on), using every core.
# Extra arguments go to the CMake configure step, e.g. -DSSLSWEEP_BUILD_BENCH=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Hash paths relative to the checkout, so a fresh clone elsewhere (CI) hits
# the cache, and let ccache cache the compiles that use the LibTorch
# precompiled header (the expensive ones).
export CCACHE_BASEDIR="$PWD"
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
ccache --max-size=5G >/dev/null 2>&1 || true
# Release by default: debug info on the LibTorch headers makes the
# precompiled header ~700 MB and every torch compile slower. Pass
# -DCMAKE_BUILD_TYPE=RelWithDebInfo to debug.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$(nproc)"
