#!/usr/bin/env bash
# The CUDA runner on a machine with an NVIDIA GPU: `ecg analyze` on one clip with the GPU and
# with `enable_gpu: false`, then the device, real-time factors, peak GPU memory, Whisper's
# memory per decoding state, and whether the two transcripts agree.
#
# Usage: bench/gpu-check.sh RUNNER CLIP [REFERENCE.txt]
#   RUNNER  the artifact (dist/ecg-runner-*.tar.gz, unpacked here) or an unpacked one
#           (bin/ecg, lib/, models/); libraries it lacks are looked for in the Python
#           environment's NVIDIA wheels (nvidia/cu13/lib) and onnxruntime package.
#   CLIP    a media file (bench/audio.py writes 5-minute ones).
#   REFERENCE  the script spoken in CLIP: each transcript's WER against it.
# Env: ECG_ASR_MODEL (default base-q8_0), GPU_CHECK_OUT (results; a temporary folder).
set -euo pipefail

runner=${1:?usage: gpu-check.sh RUNNER CLIP [REFERENCE]}
clip=$(realpath "${2:?usage: gpu-check.sh RUNNER CLIP [REFERENCE]}")
reference=${3:+$(realpath "$3")}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${GPU_CHECK_OUT:-$(mktemp -d)}
mkdir -p "$out"
export ECG_ASR_MODEL=${ECG_ASR_MODEL:-base-q8_0}

say() { printf '%-28s %s\n' "$1" "$2"; }

if ! command -v nvidia-smi >/dev/null; then
  echo "gpu-check: no NVIDIA driver here (nvidia-smi is missing): nothing to measure" >&2
  exit 1
fi

if [[ -f $runner ]]; then
  unpacked=$out/runner
  mkdir -p "$unpacked"
  tar -xzf "$runner" -C "$unpacked" --strip-components=1
  runner=$unpacked
fi
runner=$(realpath "$runner")
ecg=$runner/bin/ecg
export ECG_MODEL_DIR=$runner/models

say device "$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader)"

# Libraries the runner does not carry (a bare build): the Python environment's wheels.
if ldd "$ecg" | grep -q 'not found'; then
  extra=$(python3 -c 'import glob, nvidia, os
print(":".join(sorted({os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(d + "/*/lib/lib*.so*")})))')
  export LD_LIBRARY_PATH=$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if ldd "$ecg" | grep 'not found'; then
  echo "gpu-check: the runner's libraries are missing" >&2
  exit 1
fi
say libraries "$(ldd "$ecg" | awk '/cudart|cublas/ {print $3}' | tr '\n' ' ')"
if [[ ! -e $ECG_MODEL_DIR/libonnxruntime.so && -z ${ECG_ORT_DYLIB:-} ]]; then
  ECG_ORT_DYLIB=$(python3 -c 'import glob, onnxruntime, os
print(sorted(glob.glob(os.path.dirname(onnxruntime.__file__) + "/capi/libonnxruntime.so*"))[0])')
  export ECG_ORT_DYLIB
fi

# One analysis, with the GPU's memory in use sampled every 100 ms beside it.
analyze() {
  local name=$1
  shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$out/$name.mem" &
  local sampler=$!
  sleep 0.5
  local start end
  start=$(date +%s.%N)
  RUST_LOG=${RUST_LOG:-info} "$ecg" analyze "$clip" --no-emotion -o "$out/$name.json" "$@" 2>"$out/$name.log"
  end=$(date +%s.%N)
  kill "$sampler"
  wait "$sampler" 2>/dev/null || true
  echo "$start $end" >"$out/$name.time"
}
analyze gpu
analyze cpu --no-gpu

if grep -q 'found [1-9][0-9]* CUDA devices' "$out/gpu.log"; then
  say "whisper.cpp on CUDA" yes
else
  say "whisper.cpp on CUDA" "NO (see $out/gpu.log)"
fi
say "model" "$ECG_ASR_MODEL"
# whisper.cpp's own account of one decoding state's buffers (per job, beside the shared
# weights), and the runner's measurement of the states that fit.
grep -hoE '(kv [a-z]+ +size|compute buffer \([a-z]+\)) += +[0-9.]+ MB' "$out/gpu.log" | sort -u |
  awk -F' += +' '{printf "  state: %-19s %s\n", $1, $2; sum += $2} END {printf "  state: %-19s %.1f MB\n", "total", sum}'
grep -hoE 'state_mib=[0-9]+ states_that_fit=[0-9]+' "$out/gpu.log" | head -n1 |
  while read -r line; do say "states measured" "$line"; done

python3 - "$out" "$clip" "$here" "$reference" <<'PY'
import json, sys
out, clip, here, reference = sys.argv[1:5]
sys.path.insert(0, here)
from wer import wer

def load(name):
    doc = json.load(open(f"{out}/{name}.json"))
    result = doc.get("result", doc)
    start, end = map(float, open(f"{out}/{name}.time").read().split())
    mem = [int(x) for x in open(f"{out}/{name}.mem").read().split() if x.strip().isdigit()]
    return result, end - start, mem

runs = {name: load(name) for name in ("gpu", "cpu")}
duration = runs["gpu"][0]["duration"]
for name, (result, wall, mem) in runs.items():
    label = "GPU" if name == "gpu" else "CPU (enable_gpu: false)"
    print(f"{label + ':':<28} {wall:.1f} s for {duration:.0f} s of audio, "
          f"real-time factor {wall / duration:.4f}, processing_time {result['metadata']['processing_time']:.1f} s")
gpu_mem = runs["gpu"][2]
print(f"{'peak GPU memory:':<28} {max(gpu_mem)} MiB ({max(gpu_mem) - gpu_mem[0]} MiB above the {gpu_mem[0]} MiB in use before)")
gpu_text, cpu_text = runs["gpu"][0]["text"], runs["cpu"][0]["text"]
agree = wer(gpu_text, cpu_text)
print(f"{'transcripts agree:':<28} {'yes' if agree['wer'] == 0 else 'no'}: "
      f"{agree['sub'] + agree['del'] + agree['ins']} of {agree['ref_words']} words differ "
      f"({100 * agree['wer']:.2f} %)")
if reference:
    ref = open(reference).read()
    for name in ("gpu", "cpu"):
        print(f"{'WER ' + name.upper() + ':':<28} {100 * wer(ref, runs[name][0]['text'])['wer']:.2f} %")
PY
