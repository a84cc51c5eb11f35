#!/usr/bin/env bash
# Build the runner and `ecg` with whisper.cpp on CUDA, against the toolkit that
# cuda-toolkit.sh assembles from PyPI wheels. Output: target/gpu/release/{gpu-runner,ecg}.
#
# Env: CUDA_ARCHITECTURES  the GPUs to compile for (CMake syntax), default below.
#      CARGO_BUILD_JOBS    as for cargo.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
toolkit=$repo/target/cuda-toolkit
"$here/cuda-toolkit.sh" "$toolkit"

# Machine code for the runner fleet's GPUs only (template.yaml's RunnerInstanceTypes):
# T4 (g4dn) = sm_75, A10G (g5) = sm_86, L4 (g6) = sm_89, plus sm_89's PTX, which the driver
# compiles for any newer GPU on first use. Each architecture adds about the same compile time.
export CMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-75-real;86-real;89}
export CMAKE_CUDA_COMPILER=$toolkit/bin/nvcc
export CUDAToolkit_ROOT=$toolkit
# No CUDA virtual-memory pool: ggml then calls no driver API, so libcuda.so (which only the
# NVIDIA driver provides) is not needed at link time.
export GGML_CUDA_NO_VMM=ON
# whisper.cpp cannot time words by DTW with flash attention, so its kernels (the larger part of
# the CUDA compile) would never run.
export GGML_CUDA_FA=OFF
# CPU code for any x86-64 with AVX2 (g4dn Intel, g5/g6 AMD), not for the build machine.
export GGML_NATIVE=OFF GGML_AVX=ON GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON
export RUSTFLAGS="-L native=$toolkit/lib -L native=$toolkit/lib/stubs"

start=$SECONDS
cd "$repo"
cargo build --release --target-dir target/gpu \
  -p ecg -p ecg-gpu-runner --features ecg/cuda,ecg-gpu-runner/cuda
echo "gpu: built target/gpu/release/{gpu-runner,ecg} for $CMAKE_CUDA_ARCHITECTURES in $((SECONDS - start)) s" >&2
