#!/usr/bin/python3
"""The Optuna side of bench/coordinator_load.sh: the load of the coordinator
benchmark (bench/coordinator_load.cc) against Optuna's RDB storage on SQLite.

K workers share one study in a fresh SQLite file through
optuna.storages.RDBStorage("sqlite:///..."), as Optuna's distributed
optimisation does, and together run `--trials` trials: each worker loops
study.ask(), then for every epoch reports `--metrics-per-epoch` values, then
study.tell(). Workers are processes by default, each with its own storage and
connection like separate machines (threads would share one GIL), or threads
with --threads.

What counts as a reported value. Our worker sends an epoch's M metric rows in
one ReportMetrics call; Optuna has no batch call and records exactly one
intermediate value per trial.report(value, step), one row and one commit
each. The faithful equivalent of M rows of one epoch is therefore M report
calls, at steps epoch*M .. epoch*M + M-1 (report keeps one value per step, so
the steps must be distinct). trial.set_user_attr would also be one commit per
value, but it stores a JSON attribute instead of the per-step history that
pruners read, so report is the closer match.

Errors such as "database is locked" (SQLite refusing a writer while another
holds the lock past its 5 s timeout) are counted by kind and the call is
retried; the retries' time is in the latencies. A report that failed that way
is lost all the same: Optuna's storage cache records the value before the
write fails, so the retried report() warns "already reported" and stores
nothing. So the rate counts the values in the database at the end
(values_stored), not the report calls (values). Prints one JSON line (and a
table with --table).

  /usr/bin/python3 bench/coordinator_load_optuna.py --workers 8 --trials 100 \\
      --epochs 10 --metrics-per-epoch 20
"""

import argparse
import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import threading
import time
import warnings

import optuna

STUDY = "sslsweep-load"


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index]


class OutOfTime(Exception):
    """--max-seconds passed while a call was still being retried."""


def with_retry(call, errors, deadline=None):
    """Runs call() until it succeeds, or until `deadline` (time.monotonic())
    passes (then raises OutOfTime); counts each failure by its first line."""
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            raise OutOfTime()
        try:
            return call()
        except Exception as e:  # sqlalchemy.exc.OperationalError and the like
            # Optuna wraps SQLAlchemy's error (StorageInternalError "An
            # exception is raised during the commit..."); the cause says what.
            cause = e.__cause__ or e
            text = str(getattr(cause, "orig", None) or cause).splitlines()
            key = f"{type(e).__name__}: {text[0][:100] if text else type(cause).__name__}"
            errors[key] = errors.get(key, 0) + 1
            if os.environ.get("BENCH_DEBUG"):
                import traceback
                traceback.print_exc()
            time.sleep(0.001)


def make_storage(url):
    return optuna.storages.RDBStorage(url)


def worker(url, trials_left, epochs, metrics, max_seconds, ready, results, index):
    """One worker: takes trials from the shared counter until none is left."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Counted from the database instead (see the module's docstring).
    warnings.filterwarnings("ignore", message="The reported value is ignored")
    errors = {}
    storage = with_retry(lambda: make_storage(url), errors)
    study = with_retry(lambda: optuna.load_study(study_name=STUDY, storage=storage),
                       errors)
    # Start together, once every worker is connected, like the C++ side.
    ready.wait()
    deadline = time.monotonic() + max_seconds
    ask_ms, report_ms, tell_ms = [], [], []
    values = 0
    trials = 0
    while time.monotonic() < deadline:
        with trials_left.get_lock():
            if trials_left.value <= 0:
                break
            trials_left.value -= 1
        start = time.perf_counter()
        try:
            trial = with_retry(study.ask, errors, deadline)
        except OutOfTime:
            break
        ask_ms.append((time.perf_counter() - start) * 1e3)
        told = True
        for epoch in range(epochs):
            for m in range(metrics):
                if time.monotonic() >= deadline:
                    told = False  # cut short by --max-seconds: left unfinished
                    break
                value = 1.0 / (1 + epoch) + 0.001 * m
                step = epoch * metrics + m
                start = time.perf_counter()
                try:
                    with_retry(lambda: trial.report(value, step), errors, deadline)
                except OutOfTime:
                    told = False
                    break
                report_ms.append((time.perf_counter() - start) * 1e3)
                values += 1
            if not told:
                break
        if not told:
            break
        start = time.perf_counter()
        try:
            with_retry(lambda: study.tell(trial, 1.0 / (1 + epochs)), errors, deadline)
        except OutOfTime:
            break
        tell_ms.append((time.perf_counter() - start) * 1e3)
        trials += 1
    results.put({"index": index, "trials": trials, "values": values, "ask_ms": ask_ms,
                 "report_ms": report_ms, "tell_ms": tell_ms, "errors": errors})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8, help="K concurrent workers")
    parser.add_argument("--trials", type=int, default=100, help="trials in all")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--metrics-per-epoch", type=int, default=20)
    parser.add_argument("--db", default="", help="SQLite file (default: a fresh temp file)")
    parser.add_argument("--max-seconds", type=float, default=600,
                        help="stop after this long, leaving the trials under way "
                             "unfinished (their values still count)")
    parser.add_argument("--threads", action="store_true",
                        help="workers are threads of one process, not processes")
    parser.add_argument("--table", action="store_true", help="also print a table")
    args = parser.parse_args()
    if args.workers < 1 or args.trials < 1 or args.epochs < 1 or args.metrics_per_epoch < 1:
        parser.error("--workers, --trials, --epochs, --metrics-per-epoch must be >= 1")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = None
    db = args.db
    if not db:
        tmp = tempfile.mkdtemp(prefix="sslsweep-optuna-")
        db = os.path.join(tmp, "optuna.db")
    url = "sqlite:///" + os.path.abspath(db)
    optuna.create_study(study_name=STUDY, storage=make_storage(url), direction="minimize")

    if args.threads:
        import queue
        results = queue.Queue()
        trials_left = multiprocessing.Value("i", args.trials, lock=True)
        ready = threading.Barrier(args.workers + 1)
        spawn = threading.Thread
    else:
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        trials_left = context.Value("i", args.trials, lock=True)
        ready = context.Barrier(args.workers + 1)
        spawn = context.Process

    workers = [spawn(target=worker,
                     args=(url, trials_left, args.epochs, args.metrics_per_epoch,
                           args.max_seconds, ready, results, i))
               for i in range(args.workers)]
    for w in workers:
        w.start()
    ready.wait()
    start = time.monotonic()
    collected = [results.get() for _ in workers]
    elapsed = time.monotonic() - start
    for w in workers:
        w.join()

    ask = sorted(x for r in collected for x in r["ask_ms"])
    report = sorted(x for r in collected for x in r["report_ms"])
    tell = sorted(x for r in collected for x in r["tell_ms"])
    errors = {}
    for r in collected:
        for key, count in r["errors"].items():
            errors[key] = errors.get(key, 0) + count
    trials = sum(r["trials"] for r in collected)
    values = sum(r["values"] for r in collected)
    with sqlite3.connect(db) as connection:
        values_stored = connection.execute(
            "SELECT COUNT(*) FROM trial_intermediate_values").fetchone()[0]
        trials_stored = connection.execute(
            "SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    result = {
        "system": "optuna-rdb-sqlite",
        "optuna": optuna.__version__,
        "workers": args.workers,
        "mode": "threads" if args.threads else "processes",
        "epochs": args.epochs,
        "metrics_per_epoch": args.metrics_per_epoch,
        "trials_requested": args.trials,
        "trials": trials,
        "trials_stored": trials_stored,
        "values": values,
        "values_stored": values_stored,
        "seconds": round(elapsed, 3),
        "values_per_s": round(values_stored / elapsed, 1) if elapsed > 0 else 0.0,
        "trials_per_s": round(trials / elapsed, 2) if elapsed > 0 else 0.0,
        "ask_ms": {"p50": round(percentile(ask, 0.5), 3), "p99": round(percentile(ask, 0.99), 3),
                   "n": len(ask)},
        "report_ms": {"p50": round(percentile(report, 0.5), 3),
                      "p99": round(percentile(report, 0.99), 3), "n": len(report)},
        "tell_ms": {"p50": round(percentile(tell, 0.5), 3),
                    "p99": round(percentile(tell, 0.99), 3), "n": len(tell)},
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "complete": trials == args.trials,
    }
    print(json.dumps(result, sort_keys=True))
    if args.table:
        print(f"optuna {optuna.__version__} RDBStorage(sqlite), {args.workers} "
              f"{result['mode']}: {trials} trials, {values_stored} values stored "
              f"({values} reported) in {elapsed:.1f} s = {result['values_per_s']} values/s")
        for name, series in (("ask", ask), ("report (1 value)", report), ("tell", tell)):
            print(f"  {name:<18} p50 {percentile(series, 0.5):8.2f} ms   "
                  f"p99 {percentile(series, 0.99):8.2f} ms   n {len(series)}")
        for key, count in sorted(errors.items(), key=lambda kv: -kv[1]):
            print(f"  error x{count}: {key}")
    if tmp:
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
