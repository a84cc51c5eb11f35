#!/usr/bin/env bash
# `make bench`: our pipeline (A: `ecg analyze`) against faster-whisper (B: ASR only), side by side,
# with per-stage times, peak memory, accuracy (WER), cold starts, and BENCHMARKS.md.
#
# Usage: bench/run.sh            # the full measurement, writes BENCHMARKS.md
#        BENCH_QUICK=1 bench/run.sh   # development: 1-minute clip, one run, no warm-up,
#                                     # writes bench/.work/BENCHMARKS-quick.md
# Settings (environment):
#   BENCH_LENGTHS="1 5 20"   clip lengths in minutes
#   BENCH_RUNS=3             counted A/B pairs per clip (A B A B ...)
#   BENCH_WARMUP=1           warm-up pairs before the first clip's counted pairs
#   BENCH_MP4=5              also run the mp4 of this clip length ("" skips it)
#   ECG_ASR_THREADS=2        whisper.cpp threads for A, cpu_threads for B
#   BENCH_COLD_RUNS=10       repetitions of each cold-start measurement
#   BENCH_LEVERS=0           1: also run `ecg analyze` under speed levers set from the outside
#                            (threads, beam, quantized ggml weights, word timing) on the
#                            BENCH_LEVER_CLIP (5) minute clip, BENCH_LEVER_RUNS (2) each;
#                            BENCH_LEVER_SET picks variants (see bench/bench.py)
#   BENCH_PROBE=0            1: also time whisper.cpp directly (bench/probe: encoder per window,
#                            quantized weights, flash attention, audio_ctx, language detection)
#   BENCH_WAIT_QUIET=0       seconds to wait for a quiet machine (load < 0.5, no other busy
#                            process) before measuring; the report says whether it became quiet
#   BENCH_REAL=<testdata>    the real-voice clip (Allison's telephone prompts, `make testdata`)
#                            is built from this test data directory and measured; "" skips it
#   BENCH_OUT=BENCHMARKS.md  where the report goes
# Needs the models (`make models`); builds the release binaries; installs
# infra/requirements-bench.txt into the project venv; generates its audio under bench/.work/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
work=$repo/bench/.work
mkdir -p "$work"
log() { echo "bench: $*" >&2; }

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  : "${BENCH_LENGTHS:=1}" "${BENCH_RUNS:=1}" "${BENCH_WARMUP:=0}" "${BENCH_COLD_RUNS:=3}"
  : "${BENCH_OUT:=$work/BENCHMARKS-quick.md}"
  BENCH_MP4=${BENCH_MP4-}
fi
export BENCH_LENGTHS=${BENCH_LENGTHS:-1 5 20}
export BENCH_RUNS=${BENCH_RUNS:-3}
export BENCH_WARMUP=${BENCH_WARMUP:-1}
export BENCH_MP4=${BENCH_MP4-5}
export BENCH_COLD_RUNS=${BENCH_COLD_RUNS:-10}
export BENCH_LEVERS=${BENCH_LEVERS:-0}
export BENCH_LEVER_CLIP=${BENCH_LEVER_CLIP:-5}
export BENCH_OUT=${BENCH_OUT:-$repo/BENCHMARKS.md}
export BENCH_REAL=${BENCH_REAL-${ECG_TESTDATA_DIR:-$repo/testdata}}
export ECG_ASR_THREADS=${ECG_ASR_THREADS:-2}
export ECG_MODEL_DIR=${ECG_MODEL_DIR:-$repo/models}

# ---- tools: GNU time for peak RSS (the rest comes with `make deps`)
if [[ ! -x /usr/bin/time ]]; then
  log "installing GNU time"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends time >&2
fi
for tool in espeak-ng text2wave sox ffmpeg; do
  command -v "$tool" >/dev/null || { log "$tool missing: run make deps"; exit 1; }
done

# ---- models: provisioned by `make models` (the Makefile's bench target runs it first)
for f in ggml-base.bin ggml-base-q8_0.bin silero_vad.onnx whisper-base-ct2/model.bin; do
  [[ -f $ECG_MODEL_DIR/$f ]] || { log "$ECG_MODEL_DIR/$f missing: run make models"; exit 1; }
done

# ---- binaries: the CLI as asked, then the function and the runner for their cold starts
log "building release binaries"
cargo build --release --quiet --bin ecg
cargo build --release --quiet -p ecg-function-api --bin ecg-api
cargo build --release --quiet -p ecg-gpu-runner --bin gpu-runner

# ---- the peer, into the project venv; reinstalled only when the pins change
py=$(infra/python-env.sh | tail -n1)
reqs=infra/requirements-bench.txt
venv=$(dirname "$(dirname "$py")")
stamp=$venv/.stamp-$(basename "$reqs").sha256
if [[ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum <"$reqs" | cut -d' ' -f1)" ]]; then
  log "installing $reqs into $venv"
  "$py" -m pip install --disable-pip-version-check --quiet --only-binary=:all: \
    --requirement=infra/requirements.txt --requirement="$reqs" >&2
  sha256sum <"$reqs" | cut -d' ' -f1 >"$stamp"
fi

# ---- audio (cached)
audio_args=($BENCH_LENGTHS)
[[ -z $BENCH_MP4 ]] || audio_args+=(--mp4 "$BENCH_MP4")
[[ -z $BENCH_REAL ]] || audio_args+=(--real "$BENCH_REAL")
[[ $BENCH_LEVERS != 1 && ${BENCH_PROBE:-0} != 1 ]] || audio_args+=("$BENCH_LEVER_CLIP")
"$py" bench/audio.py "$work" "${audio_args[@]}"

# ---- measure, then write the report
"$py" bench/bench.py "$work"
"$py" bench/report.py "$work" "$BENCH_OUT"
log "report: $BENCH_OUT"
