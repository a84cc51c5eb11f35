#!/usr/bin/env python3
"""Quantize the CAM++ graph (campplus.py's) to 8-bit convolutions, calibrated on real speech.

Usage: quantize_campplus.py FLOAT.onnx SPEECH_DIR OUT.onnx

The convolutions are 85 % of CAM++'s time on a CPU. ONNX Runtime's static quantization turns
them into QLinearConv: weights int8 per output channel, activations uint8 with one range per
tensor, that range measured (minimum to maximum) while the float graph embeds real speech. The
rest of the graph (batch norms, the CAM layers' masks, pooling) stays float. Dynamic
quantization is no way out: its integer convolutions run slower than float on this CPU.

SPEECH_DIR holds 16 kHz mono 16-bit WAV files of speech: every other one, in name order,
calibrates; the rest are held out, and there the quantized embeddings must stay `MIN_COSINE`
alike to the float ones, or nothing is written. Each file is trimmed of its
silent ends and embedded as the service embeds a speech region: Kaldi fbank frames, mean-
normalised per chunk of at most `CHUNK_FRAMES`, and 1.6 s windows pooled from them.
Needs numpy and onnxruntime (with its quantization tools).
"""
import os
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

SAMPLE_RATE = 16_000
CHUNK_FRAMES = 800
WINDOW_FRAMES = 160
# Held-out windows: the mean cosine of each quantized embedding to its float one must reach
# this (measured: 0.98 and more).
MIN_COSINE = 0.95


def read_wav(path):
    """16 kHz mono 16-bit samples as floats in [-1, 1)."""
    with wave.open(str(path)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            sys.exit(f"{path}: not 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def trimmed(x):
    """Without the leading and trailing stretches below 1 % of the peak."""
    loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max()) if len(x) else []
    return x[loud[0]:loud[-1] + 1] if len(loud) else x[:0]


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(hz / 700.0)


def _bands():
    """Kaldi's 80 triangular bands, evenly spaced on the HTK mel scale from 20 Hz to 8 kHz."""
    low, high = _hz_to_mel(20.0), _hz_to_mel(SAMPLE_RATE / 2)
    step = (high - low) / 81
    mel = _hz_to_mel(np.arange(257) * SAMPLE_RATE / 512)
    left = low + step * np.arange(80)[:, None]
    rising, falling = (mel - left) / step, (left + 2 * step - mel) / step
    return np.clip(np.minimum(rising, falling), 0, None)


BANDS = _bands()
POVEY = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)) ** 0.85


def fbank(x):
    """Kaldi fbank frames, as crates/diarize/src/fbank.rs computes them: 25 ms frames every
    10 ms centred on their hop, DC removed, pre-emphasis 0.97, Povey window, 512-point power
    spectrum, natural log of the 80 bands."""
    x = np.pad(x * 32768, (200, 600))
    n = (len(x) - 800) // 160 + 1
    frames = x[np.arange(n)[:, None] * 160 + np.arange(400)]
    frames = frames - frames.mean(1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1]
    frames[:, 0] *= 0.03
    power = np.abs(np.fft.rfft(frames * POVEY, 512)) ** 2
    return np.log(np.maximum(power @ BANDS.T, 1.19e-7)).astype(np.float32)


def feeds(paths):
    """One model input per file: its first chunk, mean-normalised, and its 1.6 s windows a
    second apart (the last one flush with the end)."""
    for path in paths:
        frames = fbank(trimmed(read_wav(path)))[:CHUNK_FRAMES]
        if len(frames) < WINDOW_FRAMES:
            continue
        starts = sorted({*range(0, len(frames) - WINDOW_FRAMES, 100), len(frames) - WINDOW_FRAMES})
        pooling = np.zeros((len(starts), 1, len(frames)), np.float32)
        for w, s in enumerate(starts):
            pooling[w, 0, s:s + WINDOW_FRAMES] = 1
        yield {"fbank": (frames - frames.mean(0))[None], "pooling": pooling}


class _Speech(CalibrationDataReader):
    def __init__(self, paths):
        self.inputs = feeds(paths)

    def get_next(self):
        return next(self.inputs, None)


def unit(e):
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def agreement(float_path, quantized_path, paths):
    """The mean cosine of the quantized graph's window embeddings to the float graph's."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    before, after = (ort.InferenceSession(str(p), options) for p in (float_path, quantized_path))
    cosines = [np.sum(unit(before.run(None, f)[0]) * unit(after.run(None, f)[0]), axis=1)
               for f in feeds(paths)]
    return float(np.mean(np.concatenate(cosines)))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    float_path, speech_dir, out_path = sys.argv[1:]
    speech = sorted(Path(speech_dir).glob("*.wav"))
    calibration, held_out = speech[::2], speech[1::2]
    if not calibration or not held_out:
        sys.exit(f"{speech_dir}: too few WAV files to calibrate and check")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        # Shape inference and constant folding, as the quantizer expects its input.
        quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, out_path + ".tmp", _Speech(calibration),
                        quant_format=QuantFormat.QOperator, op_types_to_quantize=["Conv"],
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, reduce_range=True, calibrate_method=CalibrationMethod.MinMax)
    cosine = agreement(float_path, out_path + ".tmp", held_out)
    print(f"quantized CAM++: mean cosine to the float embeddings {cosine:.4f} over "
          f"{len(held_out)} held-out files", file=sys.stderr)
    if cosine < MIN_COSINE:
        os.remove(out_path + ".tmp")
        sys.exit(f"quantized embeddings too far from the float ones ({cosine:.4f} < {MIN_COSINE})")
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
