#!/usr/bin/env bash
# Builds the CUDA trainer into build-gpu/ on a GPU machine, against the CUDA
# LibTorch inside PyTorch's Python package and NCCL (-DSSLSWEEP_CUDA=ON),
# and runs the GPU tests: nccl_communicator_test, data_parallel_group_test.
# Extra arguments go to the CMake configure step.
#
# Needs an NVIDIA GPU and driver (nvidia-smi), the CUDA toolkit with NCCL
# (CUDAToolkit_ROOT, default /usr/local/cuda-13.0), python3 with a CUDA build
# of torch that uses the new C++ ABI, and the Debian packages that
# deploy/install-deps.sh lists. That script runs here when apt is; it needs
# no network once they are installed. A GPU machine without internet needs
# the .debs carried there (`apt-get download` them on a machine with the same
# Debian release, then `dpkg -i`).
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "build-gpu: $*" >&2
  exit 1
}

command -v nvidia-smi >/dev/null || die "no nvidia-smi: this machine has no NVIDIA driver"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[[ "$gpus" -gt 0 ]] || die "nvidia-smi lists no GPU"
cuda_root="${CUDAToolkit_ROOT:-/usr/local/cuda-13.0}"
[[ -x "$cuda_root/bin/nvcc" ]] || die "no CUDA toolkit at $cuda_root (set CUDAToolkit_ROOT)"

python3 -c 'import torch' 2>/dev/null ||
  die "python3 cannot import torch: install PyTorch (a CUDA build)"
read -r torch_version torch_cuda torch_abi torch_dir < <(python3 -c '
import os, torch
print(torch.__version__, torch.version.cuda, int(torch._C._GLIBCXX_USE_CXX11_ABI),
      os.path.join(torch.utils.cmake_prefix_path, "Torch"))') ||
  die "python3 could not describe its torch"
[[ "$torch_cuda" != None ]] ||
  die "torch $torch_version is a CPU-only build (torch.version.cuda is None): install a CUDA build"
[[ "$torch_abi" == 1 ]] ||
  die "torch $torch_version uses the old C++ ABI (_GLIBCXX_USE_CXX11_ABI=0); abseil, gRPC and" \
    "yaml-cpp from Debian use the new one: install a torch built with the new ABI"
python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' ||
  die "torch $torch_version (CUDA $torch_cuda) sees no GPU: is the driver too old for CUDA $torch_cuda?"
echo "build-gpu: torch $torch_version, CUDA $torch_cuda; toolkit $cuda_root; $gpus GPU(s)"

if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  deploy/install-deps.sh ||
    die "deploy/install-deps.sh failed; without network, carry its .debs here and dpkg -i them"
fi
command -v cmake >/dev/null || die "no cmake (deploy/install-deps.sh lists it)"
command -v ninja >/dev/null || die "no ninja (ninja-build; deploy/install-deps.sh lists it)"

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_BASEDIR="$PWD"
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSSLSWEEP_CUDA=ON \
  -DSSLSWEEP_BUILD_TESTS=ON -DTorch_DIR="$torch_dir" -DCUDAToolkit_ROOT="$cuda_root" "$@"
tests=(nccl_communicator_test data_parallel_group_test)
cmake --build build-gpu -j "$(nproc)" --target sslsweep-train "${tests[@]}"

for t in "${tests[@]}"; do
  log="build-gpu/$t.log"
  GTEST_COLOR=no "build-gpu/bin/$t" 2>&1 | tee "$log" || die "$t failed (log: $log)"
  # With a GPU here, the one-device tests must run: a skip means the build
  # does not see CUDA (e.g. libtorch_cuda not loaded).
  if grep -qE '^\[  SKIPPED \] .*One(Cuda)?Rank' "$log"; then
    die "$t skipped a one-GPU test on a machine with $gpus GPU(s) (log: $log)"
  fi
done
echo "build-gpu: build-gpu/bin/sslsweep-train built; GPU tests passed"
