#!/usr/bin/env bash
# Assemble a CUDA toolkit root from NVIDIA's pinned PyPI wheels, for building
# whisper.cpp with CUDA where no system toolkit is installed.
#
# Usage: infra/gpu/cuda-toolkit.sh [ROOT]   (ROOT defaults to <repo>/target/cuda-toolkit)
# Produces the layout CMake's FindCUDAToolkit and whisper-rs-sys expect:
#   bin/nvcc (+ ptxas, fatbinary, nvlink, cudafe++), nvvm/, include/,
#   lib64/ with libcudart.so, libcublas.so, libcublasLt.so (+ .so.13),
#   lib64/stubs/libcuda.so and lib64/libculibos.a (link-time placeholders, below).
# Idempotent: a STAMP holding the lock's hash marks a finished root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
root=$(realpath -m "${1:-$repo/target/cuda-toolkit}")
lock=$here/cuda-wheels.sha256
cache=$(dirname "$root")/cuda-wheels
stamp=$root/STAMP
want=$(cat "$lock" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)

log() { echo "cuda-toolkit: $*" >&2; }

if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  log "up to date in $root"
  exit 0
fi

mkdir -p "$cache"
# The wheel file names carry name and version: pip fetches exactly those.
specs=()
while read -r _ file; do
  IFS=- read -r name version _ <<<"$file"
  specs+=("${name//_/-}==$version")
done <"$lock"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 \
  --platform manylinux2010_x86_64 -d "$cache" "${specs[@]}"
(cd "$cache" && sha256sum --check --quiet "$lock")

rm -rf "$root"
mkdir -p "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while read -r _ file; do
  unzip -q -o "$cache/$file" 'nvidia/cu13/*' -d "$tmp"
done <"$lock"
cp -a "$tmp/nvidia/cu13/." "$root/"
chmod +x "$root"/bin/* "$root"/nvvm/bin/*

# The wheels ship versioned libraries and a lib/ folder; the linker wants the
# unversioned names and CMake looks in lib64/.
ln -s lib "$root/lib64"
for name in cudart cublas cublasLt; do
  ln -sf "lib$name.so.13" "$root/lib/lib$name.so"
done

# whisper-rs-sys names libcuda and libculibos on the link line. Built with
# GGML_CUDA_NO_VMM nothing references the driver API, so an empty libcuda stub
# (the real one comes with the NVIDIA driver) and an empty archive satisfy the
# linker, and --as-needed keeps libcuda out of the runner's dependencies.
mkdir -p "$root/lib/stubs"
echo 'void ecg_cuda_driver_stub(void) {}' >"$tmp/stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" "$tmp/stub.c"
ar rcs "$root/lib/libculibos.a"

"$root/bin/nvcc" --version | tail -n 2 >&2
echo "$want" >"$stamp"
log "ready in $root"
