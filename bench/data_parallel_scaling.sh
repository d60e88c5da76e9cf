#!/usr/bin/env bash
# Issue 6's CPU data-parallel figures, in one run:
#  1. scaling: the same trial (VICReg, ConvNet depth 4 width 32, Fashion-MNIST
#     4,096 images, global batch 256, 1 LibTorch thread per rank) as 1, 2 and
#     4 Gloo ranks (processes); images per second of the second epoch and the
#     efficiency ips(N) / (N x ips(1));
#  2. the gradient all-reduce time per step of ResNet-18 (+ projector) over
#     Gloo on loopback, with 2 and 4 ranks (sslsweep-bench-allreduce).
#
#   bench/data_parallel_scaling.sh [BUILD_DIR]
#
# BUILD_DIR (default build) holds bin/sslsweep-train and, with
# -DSSLSWEEP_BUILD_BENCH=ON, bin/sslsweep-bench-allreduce; this script builds
# nothing. RANKS="1 2 4" sets the rank counts; OVERLAP=1 passes
# --overlap-gradient-sync to every rank (the all-reduces overlapped with the
# backward). On this project's 2-core
# machines ranks share the cores: 2 ranks can at best double one rank's
# speed and 4 ranks cannot do better than 2, so the efficiency of 4 is at
# most 0.5; what the figures measure is the cost of the synchronisation
# (all-gathers, synchronised BatchNorm, gradient all-reduce) and of the work
# every rank repeats (the loss on the gathered global batch; each rank
# augments only its own rows), not a speed-up this machine can show.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${1:-build}"
train="$build_dir/bin/sslsweep-train"
allreduce="$build_dir/bin/sslsweep-bench-allreduce"
ranks_list="${RANKS:-1 2 4}"
overlap=()
[[ "${OVERLAP:-0}" == 1 ]] && overlap=(--overlap-gradient-sync)
for binary in "$train" "$allreduce"; do
  if [[ ! -x "$binary" ]]; then
    echo "data_parallel_scaling.sh: $binary not found (build with -DSSLSWEEP_BUILD_BENCH=ON)" >&2
    exit 2
  fi
done
tmp="$(mktemp -d -t sslsweep-dp-XXXXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

cat > "$tmp/trial.yaml" <<YAML
epochs: 2
threads: 1
data: {dataset: fashion_mnist, train_samples: 4096, test_samples: 512}
backbone: {name: convnet, depth: 4, width: 32}
optim: {batch_size: 256}
analysis: {layers: embedding, targets: fine, metrics: ncc, max_samples: 256}
YAML

# Runs the trial as $1 ranks; prints rank 0's second-epoch seconds.
run_ranks() {
  local n="$1" dir="$tmp/ranks-$1"
  mkdir -p "$dir"
  if (( n == 1 )); then
    "$train" --config "$tmp/trial.yaml" --out "$dir/rank0" > "$dir/rank0.out" 2> "$dir/rank0.err"
  else
    "$train" --config "$tmp/trial.yaml" --out "$dir/rank0" --world-size "$n" --rank 0 \
        --master 127.0.0.1:0 "${overlap[@]}" > "$dir/rank0.out" 2> "$dir/rank0.err" &
    local leader=$! port=""
    for _ in $(seq 1 600); do
      port="$(grep -o '"rendezvous","port":[0-9]*' "$dir/rank0.out" 2>/dev/null | grep -o '[0-9]*$' || true)"
      [[ -n "$port" ]] && break
      sleep 0.1
    done
    local others=()
    for (( r = 1; r < n; r++ )); do
      "$train" --config "$tmp/trial.yaml" --out "$dir/rank$r" --world-size "$n" --rank "$r" \
          --master "127.0.0.1:$port" "${overlap[@]}" > "$dir/rank$r.out" 2> "$dir/rank$r.err" &
      others+=($!)
    done
    wait "$leader"
    for pid in "${others[@]}"; do wait "$pid"; done
  fi
  grep '"epoch":2,"name":"time/epoch_seconds"' "$dir/rank0/metrics.jsonl" | grep -o '[0-9.]*}$' | tr -d '}'
}

echo "1. scaling: 4096 images per epoch, global batch 256, 1 thread per rank, $(nproc) cores"
printf '%6s %10s %12s %12s\n' ranks seconds images/s efficiency
base=""
for n in $ranks_list; do
  seconds="$(run_ranks "$n")"
  ips="$(awk -v s="$seconds" 'BEGIN { printf "%.1f", 4096 / s }')"
  [[ -z "$base" ]] && base="$ips"
  printf '%6s %10.2f %12s %12s\n' "$n" "$seconds" "$ips" \
      "$(awk -v i="$ips" -v b="$base" -v n="$n" 'BEGIN { printf "%.2f", i / (n * b) }')"
done

echo
echo "2. gradient all-reduce per step, ResNet-18 (CIFAR variant) + 3x512 projector"
for n in $ranks_list; do
  (( n > 1 )) || continue
  "$allreduce" --ranks "$n" --steps 20
done
