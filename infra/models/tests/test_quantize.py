"""quantize_ggml: ggml's block formats, checked by decoding them back."""
import struct

import numpy as np
import pytest

import quantize_ggml as qz
from ct2_to_ggml import GGML_MAGIC, read_ggml

QK = qz.QK


def weights(rng, rows=4, cols=64):
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    w[0, :QK] = 0.0  # an all-zero block must not divide by zero
    return w


def f16(raw):
    return np.frombuffer(raw, "<f2").astype(np.float32)


def decode_q8_0(data, n):
    b = np.frombuffer(data, np.uint8).reshape(n, 2 + QK)
    d = f16(b[:, :2].tobytes())
    q = b[:, 2:].view(np.int8).astype(np.float32)
    return q * d[:, None], d


def unpack5(b, hi_at):
    lo = b[:, hi_at + 4:]
    q = np.concatenate([lo & 0xF, lo >> 4], axis=1).astype(np.uint32)
    hi = np.frombuffer(b[:, hi_at:hi_at + 4].tobytes(), "<u4")
    return q | (((hi[:, None] >> np.arange(QK, dtype=np.uint32)) & 1) << 4)


def decode_q5_0(data, n):
    b = np.frombuffer(data, np.uint8).reshape(n, 2 + 4 + 16)
    d = f16(b[:, :2].tobytes())
    return (unpack5(b, 2).astype(np.float32) - 16) * d[:, None], np.abs(d)


def decode_q5_1(data, n):
    b = np.frombuffer(data, np.uint8).reshape(n, 4 + 4 + 16)
    d, m = f16(b[:, :2].tobytes()), f16(b[:, 2:4].tobytes())
    return unpack5(b, 4).astype(np.float32) * d[:, None] + m[:, None], d


def decode_q4_0(data, n):
    b = np.frombuffer(data, np.uint8).reshape(n, 2 + 16)
    d = f16(b[:, :2].tobytes())
    q = np.concatenate([b[:, 2:] & 0xF, b[:, 2:] >> 4], axis=1).astype(np.float32)
    return (q - 8) * d[:, None], np.abs(d)


# The symmetric 4/5-bit types map the largest magnitude to -8 (-16) steps, so the other side
# clips at +7 (+15) steps: up to one step off there, as in ggml's reference quantizer.
@pytest.mark.parametrize("kind,decode,steps", [("q8_0", decode_q8_0, 0.5),
                                               ("q5_1", decode_q5_1, 0.5),
                                               ("q5_0", decode_q5_0, 1.0),
                                               ("q4_0", decode_q4_0, 1.0)])
def test_blocks_decode_to_the_weights(kind, decode, steps):
    w = weights(np.random.default_rng(7))
    blocks = w.reshape(-1, QK)
    decoded, step = decode(qz.QUANTIZE[kind](w), len(blocks))
    # Plus the f16 rounding of the scale (and minimum).
    tolerance = step[:, None] * steps + np.abs(blocks) * 2e-3 + 1e-6
    assert np.all(np.abs(decoded - blocks) <= tolerance)
    assert np.all(decoded[0] == 0.0)


def test_q8_0_uses_the_whole_int8_range():
    w = weights(np.random.default_rng(3))
    raw = np.frombuffer(qz.q8_0(w), np.uint8).reshape(-1, 2 + QK)[1:, 2:].view(np.int8)
    assert np.abs(raw).max(axis=1).min() == 127


def test_the_provisioned_default_is_q8_0_of_the_f16_model(model_dir):
    path = model_dir / "ggml-base-q8_0.bin"
    header = struct.unpack("<12i", path.read_bytes()[:48])
    assert header[0] == GGML_MAGIC
    assert header[11] == qz.QNT_VERSION * 1000 + qz.TYPES["q8_0"][1]
    _, _, _, source = read_ggml(model_dir / "ggml-base.bin")
    _, _, _, quantized = read_ggml(path)
    assert quantized.keys() == source.keys()
    is_q8_0 = {name: arr.dtype == np.uint8 for name, arr in quantized.items()}
    assert sum(is_q8_0.values()) >= 50  # every 2-D weight
    for name, arr in quantized.items():
        want = source[name].astype(np.float32)
        if not is_q8_0[name]:
            assert name in qz.F32_NAMES or want.ndim != 2, name
            continue
        got, scale = decode_q8_0(arr.tobytes(), want.size // QK)
        err = np.abs(got.reshape(-1, QK) - want.reshape(-1, QK))
        # Rounding to the nearest quant: within half a step, plus the f16 scale's own rounding.
        assert (err <= scale[:, None] * 0.5 + np.abs(want.reshape(-1, QK)) * 2e-3 + 1e-6).all(), name
