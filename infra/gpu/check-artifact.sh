#!/usr/bin/env bash
# Unpack a runner artifact in a temporary root and check that it is self-contained: every
# library its programs load resolves inside it, except the base system's C and C++ runtimes
# and the NVIDIA driver's libcuda, which come with the instance; the MANIFEST holds.
#
# Usage: infra/gpu/check-artifact.sh dist/ecg-runner-<version>.tar.gz
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
artifact=$(realpath "${1:?usage: check-artifact.sh ARTIFACT}")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
tar -xzf "$artifact" -C "$root"
cd "$root"
sha256sum --check --quiet MANIFEST
for path in bin/gpu-runner bin/ecg models/ggml-base-q8_0.bin models/silero_vad.onnx \
  models/speaker_campplus.onnx models/speaker_encoder.onnx models/libonnxruntime.so infra/gpu/user-data.sh \
  infra/gpu/gpu-runner.service infra/gpu/cloudwatch-agent.json; do
  [[ -e $path ]] || { echo "check-artifact: $path is missing" >&2; exit 1; }
done

source "$here/libraries.sh"
shopt -s nullglob
status=0
for elf in bin/* lib/* models/libonnxruntime.so; do
  while read -r name arrow path _; do
    base_system "$name" && continue
    [[ $arrow == "=>" && $path == "$root"/* ]] && continue
    nvidia_driver "$name" && continue
    echo "check-artifact: $elf needs $name, resolved outside the artifact (${path:-?})" >&2
    status=1
  done < <(env -u LD_LIBRARY_PATH ldd "$elf" | sed 's/^\s*//')
done
for bin in bin/*; do
  runpath=$(readelf -d "$bin" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
  if [[ $runpath != '$ORIGIN/../lib' ]]; then
    echo "check-artifact: $bin does not look in lib/ (run path: ${runpath:-none})" >&2
    status=1
  fi
done
[[ $status == 0 ]] && echo "check-artifact: $(basename "$artifact") is self-contained ($(ls lib | tr '\n' ' '))"
exit $status
