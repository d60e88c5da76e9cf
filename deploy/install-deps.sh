#!/usr/bin/env bash
# Installs every Debian package that sslsweep's build, tests and default run
# need; with --bench, also the Python peers the benchmarks in bench/ compare
# against (PyTorch, scikit-learn, Optuna). Idempotent: when everything is
# already installed it changes nothing and needs no network; otherwise it
# runs `apt-get update` first.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # LibTorch, and the OpenBLAS without which it trains ~16x slower
  libtorch-dev libopenblas0-pthread
  # headers of the Gloo that Debian's LibTorch links (c10d ProcessGroupGloo:
  # data-parallel trials on CPUs)
  libgloo-dev
  # service
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libyaml-cpp-dev libsqlite3-dev sqlite3 zlib1g-dev
  libcli11-dev nlohmann-json3-dev
  # plot --out FILE.png: the SVG the CLI writes, rendered by librsvg and cairo
  librsvg2-dev libcairo2-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # .npy files written by numpy itself (tests/npy_test.cc)
  python3-numpy
  # the default data set: /usr/share/datasets/fashion-mnist
  dataset-fashion-mnist
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch python3-sklearn python3-optuna)
elif [[ $# -gt 0 ]]; then
  echo "usage: deploy/install-deps.sh [--bench]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
