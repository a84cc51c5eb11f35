#!/usr/bin/env bash
# Pack the runner into one deployable artifact: dist/ecg-runner-<version>.tar.gz, laid out as
# /opt/ecg on an instance (template.yaml's user data unpacks it there):
#   bin/gpu-runner, bin/ecg   the binaries, which find lib/ through their run path
#   lib/                      every library they link that an instance lacks (cudart, cuBLAS
#                             from the wheels; libopus)
#   models/                   `make models`' default Whisper model, Silero VAD, the speaker
#                             models (CAM++, GE2E) and libonnxruntime (loaded from here at run time)
#   infra/gpu/                user-data.sh, gpu-runner.service, cloudwatch-agent.json
#   MANIFEST                  sha256 of every file
#
# Usage: infra/gpu/package.sh [BUILD_DIR] [MODEL_DIR] [OUT_DIR]
#   BUILD_DIR defaults to target/gpu/release (infra/gpu/build.sh), MODEL_DIR to models/,
#   OUT_DIR to dist/. Prints the artifact's path.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(realpath "${1:-$repo/target/gpu/release}")
models=$(realpath "${2:-${ECG_MODEL_DIR:-$repo/models}}")
dist=$(realpath -m "${3:-$repo/dist}")
toolkit=$repo/target/cuda-toolkit
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/gpu-runner/Cargo.toml" | head -n1)
artifact=$dist/ecg-runner-$version.tar.gz

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,models,infra/gpu}
for bin in gpu-runner ecg; do
  # Debug info is most of a binary's size and never read on the instance.
  objcopy --strip-debug "$build/$bin" "$stage/bin/$bin"
done

# Every library the binaries need (ldd lists them transitively) that an instance lacks: the
# CUDA libraries from the toolkit's wheels, libopus. The binaries find them through their run
# path; the CUDA libraries find each other through their own ($ORIGIN).
source "$here/libraries.sh"
LD_LIBRARY_PATH=$toolkit/lib ldd "$stage"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  sort -u | while read -r soname path; do
  base_system "$soname" || nvidia_driver "$soname" || cp -L "$path" "$stage/lib/$soname"
done
patchelf --set-rpath '$ORIGIN/../lib' "$stage"/bin/*

cp -L "$models"/{ggml-base-q8_0.bin,silero_vad.onnx,speaker_campplus.onnx,speaker_encoder.onnx} "$stage/models/"
ort=$(basename "$(readlink -f "$models/libonnxruntime.so")")
cp "$models/$ort" "$stage/models/"
ln -s "$ort" "$stage/models/libonnxruntime.so"
ln -s "$ort" "$stage/models/libonnxruntime.so.1"
cp "$here"/{user-data.sh,gpu-runner.service,cloudwatch-agent.json} "$stage/infra/gpu/"

(cd "$stage" && find . -type f ! -name MANIFEST -printf '%P\n' | sort | xargs sha256sum >MANIFEST)
chmod 755 "$stage"  # it becomes /opt/ecg, which the service's user reads
mkdir -p "$dist"
tar -czf "$artifact.tmp" -C "$stage" --owner=0 --group=0 .
mv "$artifact.tmp" "$artifact"
echo "$artifact"
