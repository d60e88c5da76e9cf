#!/usr/bin/env bash
# Issue 7: Store::QueryResults over a store of 1,000,000 metric rows (500
# trials of optim.lr x backbone.depth x seed, 20 epochs, 100 metric names):
# a query grouped by two parameters over 'ncc_test_acc/*/*' at the final
# epoch, the same at every epoch, and one metric's curve at every epoch;
# medians of --runs runs, as JSON.
#
#   bench/results_query.sh [BUILD_DIR] [FLAG...]
#
# BUILD_DIR (default: build, configured with -DSSLSWEEP_BUILD_BENCH=ON) must
# hold bin/sslsweep-bench-results; flags (--db, --runs, --seeds, --epochs,
# ...) go to it. The store file (default /tmp/sslsweep-bench-results.db) is
# replaced and removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
shift $(( $# < 1 ? $# : 1 ))
binary="$build_dir/bin/sslsweep-bench-results"
if [[ ! -x "$binary" ]]; then
  echo "results_query.sh: $binary not found; build the target sslsweep-bench-results" >&2
  exit 2
fi
db="$(mktemp -d)/results.db"
trap 'rm -rf "$(dirname "$db")"' EXIT
"$binary" --db "$db" "$@"
