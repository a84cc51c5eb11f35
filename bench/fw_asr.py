#!/usr/bin/env python3
"""The peer: faster-whisper ASR only, as one process per file, like `ecg analyze`.

Usage: fw_asr.py --model CT2_DIR --threads N [--beam 5] [--compute int8] FILE OUT.json

Loads the CTranslate2 Whisper directory (the same base weights our ggml file comes from),
transcribes with word timestamps and the Silero VAD filter on, and writes
{"text", "language", "words", "timings": {"import_s", "load_s", "transcribe_s"}} to OUT.json.
Nothing is downloaded: the model is a local directory.
"""
import argparse
import json
import os
import time

t0 = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from faster_whisper import WhisperModel  # noqa: E402

t_import = time.perf_counter()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--compute", default="int8")
    p.add_argument("file")
    p.add_argument("out")
    a = p.parse_args()

    t1 = time.perf_counter()
    model = WhisperModel(a.model, device="cpu", compute_type=a.compute,
                         cpu_threads=a.threads, num_workers=1, local_files_only=True)
    t2 = time.perf_counter()
    segments, info = model.transcribe(a.file, beam_size=a.beam, word_timestamps=True,
                                      vad_filter=True)
    texts, words = [], []
    for s in segments:  # a generator: decoding happens here
        texts.append(s.text.strip())
        words.extend({"word": w.word, "start": w.start, "end": w.end} for w in s.words or [])
    t3 = time.perf_counter()
    with open(a.out, "w") as f:
        json.dump({
            "text": " ".join(texts),
            "language": info.language,
            "duration": info.duration,
            "words": words,
            "timings": {"import_s": t_import - t0, "load_s": t2 - t1, "transcribe_s": t3 - t2},
        }, f)


if __name__ == "__main__":
    main()
