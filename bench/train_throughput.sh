#!/usr/bin/env bash
# Issue 3's training-throughput comparison: sslsweep-bench-train (our C++
# trainer step) against bench/train_throughput_torch.py (the same step in
# PyTorch eager, on the same LibTorch), side by side in one run.
#
#   bench/train_throughput.sh [BUILD_DIR] [THREADS] [FLAG...]
#
# BUILD_DIR (default: build) must hold bin/sslsweep-bench-train, built with
# -DSSLSWEEP_BUILD_BENCH=ON; this script builds nothing. THREADS (default:
# nproc) goes to both as --threads and as OPENBLAS_NUM_THREADS and
# OMP_NUM_THREADS. Further flags (e.g. --steps 3 --warmup-steps 1 --batch 256)
# go to both. The two run alternately (ours first in odd rounds, PyTorch first
# in even ones), ROUNDS (default 2) rounds each, since these machines are
# noisy; the best images/s of each and the ratio ours/pytorch are printed
# last. PYTHON (default /usr/bin/python3, Debian's,
# which has python3-torch) runs the peer.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${1:-build}"
threads="${2:-$(nproc)}"
shift $(( $# < 2 ? $# : 2 ))
rounds="${ROUNDS:-2}"
python="${PYTHON:-/usr/bin/python3}"
ours="$build_dir/bin/sslsweep-bench-train"
if [[ ! -x "$ours" ]]; then
  echo "train_throughput.sh: $ours not found; build it with" \
       "-DSSLSWEEP_BUILD_BENCH=ON (target sslsweep-bench-train)" >&2
  exit 2
fi

export OPENBLAS_NUM_THREADS="$threads"
export OMP_NUM_THREADS="$threads"

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
run_ours() { "$ours" --threads "$threads" "$@" | tee -a "$results"; }
run_torch() {
  "$python" bench/train_throughput_torch.py --threads "$threads" "$@" \
      | tee -a "$results"
}
# ABBA order: the machine's speed drifts over minutes, and a fixed order would
# hand the later runs' conditions to one side.
for round in $(seq 1 "$rounds"); do
  if (( round % 2 == 1 )); then
    run_ours "$@"; run_torch "$@"
  else
    run_torch "$@"; run_ours "$@"
  fi
done

"$python" - "$results" <<'EOF'
import json
import sys

best = {}
for line in open(sys.argv[1]):
    record = json.loads(line)
    impl = record["impl"]
    best[impl] = max(best.get(impl, 0.0), record["images_per_second"])
ours, torch = best["sslsweep"], best["pytorch"]
print("best images/s: sslsweep %.2f, pytorch %.2f; ratio ours/pytorch %.3f"
      % (ours, torch, ours / torch))
EOF
