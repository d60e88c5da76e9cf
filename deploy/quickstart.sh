#!/usr/bin/env bash
# From a fresh clone: installs everything, builds, and runs the quickstart
# sweep (sweeps/quickstart.yaml: VICReg on Fashion-MNIST, 2 learning rates x
# 2 seeds) on this machine with `sslsweep local`, then prints the results.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
deploy/install-deps.sh
deploy/build.sh -DSSLSWEEP_BUILD_TESTS=OFF
built=$(date +%s)
mkdir -p runs
build/bin/sslsweep local sweeps/quickstart.yaml --db runs/quickstart.db "$@"
end=$(date +%s)
echo
echo "quickstart: install+build $((built - start)) s, sweep $((end - built)) s"
echo "The results are in runs/quickstart.db (sqlite3 runs/quickstart.db; see docs/schema.md)."
echo "To explore them: build/bin/sslsweep-coordinator --db runs/quickstart.db --listen 127.0.0.1:50051 &"
echo "  then build/bin/sslsweep results 1 --group-by optim.lr, build/bin/sslsweep report 1 --out runs/quickstart-report"
echo "  (docs/cli.md)."
