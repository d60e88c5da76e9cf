#!/usr/bin/env bash
# Issue 5's coordinator load benchmark: simulated workers (no training)
# against one sslsweep-coordinator on loopback, all in one run:
#  1. sustained: at each of WORKERS worker counts, DURATION seconds at
#     capacity (workers report as fast as it answers: throughput) and at
#     RATE rows per second offered (the latencies at that load);
#  2. matched: at each worker count, sslsweep and Optuna's RDB storage on
#     SQLite each run the same workload to the end (MATCH_TRIALS_PER_WORKER
#     trials per worker of MATCH_EPOCHS epochs x MATCH_METRICS values), and
#     the ratio of their rates.
#
#   bench/coordinator_load.sh
#   BIN_DIR=/tmp/sslsweep-head/build/bin BENCH=build/bin/sslsweep-bench-coordinator \
#       bench/coordinator_load.sh
#
# Builds nothing. BIN_DIR (default build/bin) holds the sslsweep-coordinator
# and sslsweep under test; BENCH (default $BIN_DIR/sslsweep-bench-coordinator,
# from -DSSLSWEEP_BUILD_BENCH=ON) the load generator, so that one build's
# bench can drive another build's coordinator (the wire API is the same).
# Settings, from the environment:
#   WORKERS="50 500"  simulated worker counts, one fresh coordinator each
#   EPOCHS=10         epochs per trial; METRICS=200 metric rows per epoch
#                     (about one epoch of the default measurements: 7 metrics
#                     x 4 targets x 7 layer taps)
#   DURATION=30       seconds per run
#   RATE=5000         rows per second offered in the paced runs (0: none)
#   SWEEP_TRIALS=20000  trials in each submitted sweep (enough not to run out)
#   MATCH_TRIALS_PER_WORKER=1 MATCH_EPOCHS=5 MATCH_METRICS=20  the matched
#                     workload (sized so that Optuna finishes it in minutes)
#   OPTUNA_MAX_PROCS=50  Optuna runs one worker process per simulated worker
#                     up to this many (each is a Python interpreter of ~60 MB):
#                     at 500 workers, 50 processes do the 500 workers'
#                     trials. More only queue on SQLite's one write lock (500
#                     threads in one process made next to no progress in 15
#                     minutes), so this is the kinder comparison for Optuna
#   OPTUNA_MAX_S=900  seconds; past them Optuna's rate is over what it did
#   PYTHON=/usr/bin/python3  (Debian's, with python3-optuna)
# The coordinator's databases live in a fresh temp directory, removed at the
# end. Each side prints one JSON line per run; the last lines compare them.
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir="${BIN_DIR:-build/bin}"
bench="${BENCH:-$bin_dir/sslsweep-bench-coordinator}"
workers_list="${WORKERS:-50 500}"
epochs="${EPOCHS:-10}"
metrics="${METRICS:-200}"
duration="${DURATION:-30}"
rate="${RATE:-5000}"
sweep_trials="${SWEEP_TRIALS:-20000}"
match_trials_per_worker="${MATCH_TRIALS_PER_WORKER:-1}"
match_epochs="${MATCH_EPOCHS:-5}"
match_metrics="${MATCH_METRICS:-20}"
optuna_max_procs="${OPTUNA_MAX_PROCS:-50}"
optuna_max_s="${OPTUNA_MAX_S:-900}"
python="${PYTHON:-/usr/bin/python3}"

for binary in "$bin_dir/sslsweep-coordinator" "$bin_dir/sslsweep" "$bench"; do
  if [[ ! -x "$binary" ]]; then
    echo "coordinator_load.sh: $binary not found; build sslsweep-coordinator, sslsweep" \
         "and (with -DSSLSWEEP_BUILD_BENCH=ON) sslsweep-bench-coordinator" >&2
    exit 2
  fi
done
if ! "$python" -c 'import optuna' 2>/dev/null; then
  echo "coordinator_load.sh: $python has no optuna; deploy/install-deps.sh --bench" >&2
  exit 2
fi

tmp="$(mktemp -d -t sslsweep-load-XXXXXX)"
coordinator_pid=""
stop_coordinator() {
  if [[ -n "$coordinator_pid" ]]; then
    kill "$coordinator_pid" 2>/dev/null || true
    wait "$coordinator_pid" 2>/dev/null || true
    coordinator_pid=""
  fi
}
trap 'stop_coordinator; rm -rf "$tmp"' EXIT

# A grid of SWEEP_TRIALS trials of EPOCHS epochs; the bench reports its own
# metric names, which the coordinator stores like any others.
cat > "$tmp/sweep.yaml" <<EOF
name: load-bench
method: grid
metric: {name: bench_metric_0/fine/embedding, goal: minimize}
trial:
  epochs: $epochs
parameters:
  seed: {min: 1, max: $sweep_trials}
EOF

# Starts a coordinator on a fresh database, on a free port; sets $address.
start_coordinator() {
  local run_dir="$1"
  mkdir -p "$run_dir"
  "$bin_dir/sslsweep-coordinator" --listen 127.0.0.1:0 --db "$run_dir/sweeps.db" \
      --port-file "$run_dir/port" > "$run_dir/coordinator.log" 2>&1 &
  coordinator_pid=$!
  for _ in $(seq 1 300); do
    [[ -s "$run_dir/port" ]] && break
    if ! kill -0 "$coordinator_pid" 2>/dev/null; then
      echo "coordinator_load.sh: the coordinator exited:" >&2
      cat "$run_dir/coordinator.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  address="127.0.0.1:$(cat "$run_dir/port")"
  "$bin_dir/sslsweep" --coordinator "$address" submit "$tmp/sweep.yaml" > "$run_dir/submit.log"
}

results="$tmp/results.jsonl"
# One run on a fresh coordinator and database. Arguments: workers, offered
# rows/s (0: capacity), then the bench's workload flags.
run_ours() {
  local workers="$1" offered="$2"
  shift 2
  start_coordinator "$tmp/run-$workers-$offered-$#"
  "$bench" --coordinator "$address" --workers "$workers" --rate "$offered" --table "$@"
  stop_coordinator
}

echo "== 1. sustained: $epochs epochs x $metrics metrics per trial, ${duration} s per run" >&2
for workers in $workers_list; do
  echo "== sslsweep: $workers workers at capacity" >&2
  run_ours "$workers" 0 --epochs "$epochs" --metrics-per-epoch "$metrics" \
      --duration "$duration" | tee -a "$results"
  if (( rate > 0 )); then
    echo "== sslsweep: $workers workers, $rate rows/s offered" >&2
    run_ours "$workers" "$rate" --epochs "$epochs" --metrics-per-epoch "$metrics" \
        --duration "$duration" | tee -a "$results"
  fi
done

echo "== 2. matched: $match_trials_per_worker trial(s) per worker of $match_epochs epochs" \
     "x $match_metrics values, on both" >&2
matched="$tmp/matched.jsonl"
for workers in $workers_list; do
  trials=$(( workers * match_trials_per_worker ))
  echo "== sslsweep: $workers workers, $trials trials" >&2
  run_ours "$workers" 0 --epochs "$match_epochs" --metrics-per-epoch "$match_metrics" \
      --trials "$trials" --duration 0 | tee -a "$matched"
  optuna_workers=$(( workers < optuna_max_procs ? workers : optuna_max_procs ))
  echo "== optuna: $optuna_workers worker processes, $trials trials" \
       "(at most ${optuna_max_s} s)" >&2
  "$python" bench/coordinator_load_optuna.py --workers "$optuna_workers" \
      --trials "$trials" --epochs "$match_epochs" --metrics-per-epoch "$match_metrics" \
      --db "$tmp/optuna-$workers.db" --max-seconds "$optuna_max_s" --table \
      > "$tmp/optuna.out" || true
  head -n 1 "$tmp/optuna.out" | tee -a "$matched"
  tail -n +2 "$tmp/optuna.out" >&2
done

"$python" - "$results" "$matched" <<'EOF'
import json
import sys

runs = [json.loads(line) for line in open(sys.argv[1])]
matched = [json.loads(line) for line in open(sys.argv[2])]
print()
print("1. sustained (sslsweep)")
print(f"{'workers':>8}{'offered':>10}{'rows/s':>10}{'slowest 1s':>11}"
      f"{'lease p50/p99 ms':>20}{'report p50/p99 ms':>20}{'errors':>8}")
for r in runs:
    offered = f"{r['rate']:.0f}" if r["rate"] > 0 else "capacity"
    print(f"{r['workers']:>8}{offered:>10}{r['rows_per_s']:>10.0f}"
          f"{r['rows_per_s_min_1s']:>11}"
          f"{r['lease_ms']['p50']:>10.2f}/{r['lease_ms']['p99']:<9.2f}"
          f"{r['report_ms']['p50']:>10.2f}/{r['report_ms']['p99']:<9.2f}{r['errors']:>8}")
print()
print("2. matched workload (each system runs it to the end)")
print(f"{'system':<20}{'workers':>8}{'trials':>8}{'values':>9}{'seconds':>9}{'rows/s':>10}"
      f"{'lease p50/p99 ms':>20}{'report p50/p99 ms':>20}{'errors':>8}")
for ours, optuna in zip(matched[0::2], matched[1::2]):
    print(f"{'sslsweep':<20}{ours['workers']:>8}{ours['trials']:>8}{ours['rows']:>9}"
          f"{ours['seconds']:>9.2f}{ours['rows_per_s']:>10.0f}"
          f"{ours['lease_ms']['p50']:>10.2f}/{ours['lease_ms']['p99']:<9.2f}"
          f"{ours['report_ms']['p50']:>10.2f}/{ours['report_ms']['p99']:<9.2f}"
          f"{ours['errors']:>8}")
    print(f"{'optuna rdb sqlite':<20}{optuna['workers']:>8}{optuna['trials']:>8}"
          f"{optuna['values_stored']:>9}{optuna['seconds']:>9.2f}{optuna['values_per_s']:>10.0f}"
          f"{optuna['ask_ms']['p50']:>10.2f}/{optuna['ask_ms']['p99']:<9.2f}"
          f"{optuna['report_ms']['p50']:>10.2f}/{optuna['report_ms']['p99']:<9.2f}"
          f"{optuna['errors']:>8}")
    ratio = (ours["rows_per_s"] / optuna["values_per_s"]) if optuna["values_per_s"] else float("inf")
    note = "" if optuna["complete"] else " (optuna hit its time cap)"
    print(f"  sslsweep / optuna at {ours['workers']} workers: {ratio:.1f}x{note}")
print("(optuna: lease = study.ask, report = one trial.report of one value; "
      "ours: one ReportMetrics of an epoch's rows)")
EOF
