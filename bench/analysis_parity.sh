#!/usr/bin/env bash
# Issue 4's parity check, end to end: trains a small VICReg model on
# Fashion-MNIST (ConvNet depth 5 width 16, EPOCHS epochs, default 3, on
# TRAIN_SAMPLES training images, default 20000, and the 10,000 test images),
# exports its embedding with `sslsweep-train --export-features`, and runs
# bench/analysis_parity.py on it: `sslsweep analyze` against scikit-learn and
# numpy on the same saved embeddings.
#
#   bench/analysis_parity.sh [BUILD_DIR]
#
# BUILD_DIR (default: build) must hold bin/sslsweep, bin/sslsweep-analyze and
# bin/sslsweep-train; this script builds nothing. PYTHON (default
# /usr/bin/python3) needs numpy and scikit-learn (Debian: python3-sklearn;
# deploy/install-deps.sh --bench installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${1:-build}"
python="${PYTHON:-/usr/bin/python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat > "$work/trial.yaml" <<YAML
seed: 0
epochs: ${EPOCHS:-3}
data: {dataset: fashion_mnist, train_samples: ${TRAIN_SAMPLES:-20000}}
backbone: {name: convnet, depth: 5, width: 16}
optim: {name: adamw, lr: 0.001}
analysis: {every: 1000, layers: embedding, targets: fine, metrics: ncc, max_samples: 0}
YAML
"$build_dir/bin/sslsweep-train" --config "$work/trial.yaml" --out "$work/run" \
    --export-features "$work/export" > /dev/null
"$python" bench/analysis_parity.py --bin "$build_dir/bin" --dir "$work/export"
