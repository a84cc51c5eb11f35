#!/usr/bin/env python3
"""Quantize a whisper.cpp ggml file (f16, as ct2_to_ggml.py writes it) to q8_0, q5_1, q5_0 or q4_0.

`make models` provisions q8_0 as the service's default model (`ggml-base-q8_0.bin`): on CPUs
with AVX2/AVX-512 whisper.cpp runs it 12–23 % faster than f16 at the same accuracy
(BENCHMARKS.md); the benchmark's levers try the others.

Usage: quantize_ggml.py IN.bin OUT.bin TYPE

whisper.cpp gives every 2-D weight the file's type (the header's ftype, stored as
ftype + 1000 * quantization version 2) except the positional embeddings and the conv biases
(f32); conv kernels stay f16 and vectors f32. The blocks are ggml's: 32 weights per block,
an f16 scale (and an f16 minimum for q5_1), then the quants; 5-bit types keep the fifth bits
of the 32 quants in one little-endian u32. Needs numpy.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ct2_to_ggml import F32_NAMES, GGML_Q8_0, f16_or_f32, read_ggml, write_ggml  # noqa: E402

QK = 32
QNT_VERSION = 2
# name -> (ggml type id, ggml ftype id)
TYPES = {"q4_0": (2, 2), "q5_0": (6, 8), "q5_1": (7, 9), "q8_0": (GGML_Q8_0, 7)}


def blocks(w):
    x = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, QK)
    return x


def pack_high_bits(q):
    """Bit 4 of each of the 32 quants of a block, as a u32 (quant j -> bit j)."""
    hi = ((q >> 4) & 1).astype(np.uint32)
    return (hi << np.arange(QK, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)


def nibbles(q):
    """Low 4 bits: byte j holds quant j (low nibble) and quant j + 16 (high nibble)."""
    lo = (q & 0xF).astype(np.uint8)
    return lo[:, :16] | (lo[:, 16:] << 4)


def q8_0(w):
    x = blocks(w)
    d = np.abs(x).max(axis=1) / 127
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    q = np.round(x * inv[:, None]).astype(np.int8)
    out = np.empty((len(x), 2 + QK), np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def q5_0(w):
    x = blocks(w)
    idx = np.abs(x).argmax(axis=1)
    m = x[np.arange(len(x)), idx]  # the signed value of largest magnitude
    d = m / -16
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.clip(np.floor(x * inv[:, None] + 16.5), 0, 31).astype(np.uint8)
    out = np.empty((len(x), 2 + 4 + 16), np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:6] = pack_high_bits(q).astype("<u4").view(np.uint8).reshape(-1, 4)
    out[:, 6:] = nibbles(q)
    return out.tobytes()


def q5_1(w):
    x = blocks(w)
    lo, hi = x.min(axis=1), x.max(axis=1)
    d = (hi - lo) / 31
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    q = np.clip(np.floor((x - lo[:, None]) * inv[:, None] + 0.5), 0, 31).astype(np.uint8)
    out = np.empty((len(x), 4 + 4 + 16), np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = lo.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 4:8] = pack_high_bits(q).astype("<u4").view(np.uint8).reshape(-1, 4)
    out[:, 8:] = nibbles(q)
    return out.tobytes()


def q4_0(w):
    x = blocks(w)
    idx = np.abs(x).argmax(axis=1)
    m = x[np.arange(len(x)), idx]
    d = m / -8
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.clip(np.floor(x * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    out = np.empty((len(x), 2 + 16), np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = nibbles(q)
    return out.tobytes()


QUANTIZE = {"q4_0": q4_0, "q5_0": q5_0, "q5_1": q5_1, "q8_0": q8_0}


def quantize(src, dst, kind):
    ggml_type, ftype = TYPES[kind]
    hp, filters, tokens, tensors = read_ggml(src)
    if hp[10] != 1:
        raise SystemExit(f"{src}: ftype {hp[10]}, expected 1 (f16)")
    hp = list(hp)
    hp[10] = QNT_VERSION * 1000 + ftype

    def encode(name, arr):
        if arr.ndim == 2 and name not in F32_NAMES:
            assert arr.shape[-1] % QK == 0, name
            return ggml_type, QUANTIZE[kind](arr)
        return f16_or_f32(name, arr)

    write_ggml(dst, hp, filters, tokens, tensors.items(), encode)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[3] not in TYPES:
        sys.exit(__doc__)
    quantize(sys.argv[1], sys.argv[2], sys.argv[3])
