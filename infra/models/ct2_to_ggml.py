#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model directory to whisper.cpp's ggml format.

Usage: ct2_to_ggml.py CT2_DIR OUT.bin

Needs numpy only. Reads CTranslate2's binary `model.bin` (layout version 6)
directly, un-fuses its attention weights and writes the legacy whisper.cpp
file: header hparams, 80-bin Slaney mel filterbank, byte-level BPE tokens,
then named tensors (f16 for matrices, f32 for vectors/biases/positional
embeddings, as whisper.cpp's loader expects for ftype=1).
"""
import json
import mmap
import os
import re
import struct
import sys
from pathlib import Path

import numpy as np

GGML_MAGIC = 0x67676D6C  # "ggml"
FTYPE_F16 = 1

# CTranslate2 DataType enum ids -> numpy dtype (5 = bfloat16, handled apart).
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
CT2_BF16 = 5


# --------------------------------------------------------------- CTranslate2
def read_ct2(path):
    """Return ({name: ndarray}, spec_name) for a CTranslate2 model.bin.

    Layout (little endian): u32 version, str spec, u32 revision, u32 count,
    then per variable: str name, u8 rank, u32 dims[rank], u8 dtype,
    u32 nbytes, raw data; then u32 count of aliases (str alias, str target).
    A str is u16 length (incl. trailing NUL) + bytes.  Arrays are views on
    a read-only mmap, so nothing is copied until converted.
    """
    with open(path, "rb") as f:
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def string():
        nonlocal pos
        n = take("H")
        s = bytes(buf[pos : pos + n - 1]).decode("utf-8")
        pos += n
        return s

    version = take("I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, expected 6")
    spec = string()
    take("I")  # spec revision
    variables = {}
    for _ in range(take("I")):
        name = string()
        rank = take("B")
        shape = tuple(take("I") for _ in range(rank))
        dtype_id, nbytes = take("B"), take("I")
        if dtype_id == CT2_BF16:  # bf16 = top half of an f32
            raw = np.frombuffer(buf, np.uint16, nbytes // 2, pos)
            arr = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            dt = np.dtype(CT2_DTYPES[dtype_id])
            arr = np.frombuffer(buf, dt, nbytes // dt.itemsize, pos)
        variables[name] = arr.reshape(shape)
        pos += nbytes
    for _ in range(take("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return variables, spec


# ---------------------------------------------------------------- mel filters
# Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
MEL_HZ = 200.0 / 3
LOG_MEL0 = 1000.0 / MEL_HZ  # mel value at 1 kHz (= 15)
LOG_STEP = np.log(6.4) / 27.0  # 27 mels per factor 6.4 in Hz


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    log = LOG_MEL0 + np.log(np.maximum(f, 1e-10) / 1000.0) / LOG_STEP
    return np.where(f >= 1000.0, log, f / MEL_HZ)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    log = 1000.0 * np.exp(LOG_STEP * (m - LOG_MEL0))
    return np.where(m >= LOG_MEL0, log, m * MEL_HZ)


def mel_filters(sr=16000, n_fft=400, n_mels=80):
    """Triangular Slaney-normalised filterbank, shape (n_mels, n_fft//2+1).

    Same definition as librosa.filters.mel(sr, n_fft, n_mels) with its
    defaults (fmin=0, fmax=sr/2, htk=False, norm="slaney", float32): band
    edges equally spaced in mel, each triangle scaled by 2/(bandwidth in Hz)
    so every filter has unit area.  Rounded to f32 at the same steps.
    """
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    width = np.diff(edges)
    dist = edges[:, None] - fft_hz[None, :]  # edge minus bin frequency
    w = np.zeros((n_mels, len(fft_hz)), dtype=np.float32)
    for i in range(n_mels):
        rising = -dist[i] / width[i]
        falling = dist[i + 2] / width[i + 1]
        w[i] = np.maximum(0.0, np.minimum(rising, falling))
    w *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return w


# --------------------------------------------------------------------- tokens
def _byte_of_char():
    """Inverse of GPT-2's byte->printable-unicode table used by byte-level BPE.

    Printable Latin-1 bytes map to themselves; the other 68 bytes are moved,
    in increasing order, to code points 256, 257, ...
    """
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {chr(b): b for b in keep}
    moved = [b for b in range(256) if b not in table.values()]
    table.update({chr(256 + i): b for i, b in enumerate(moved)})
    return table


def read_tokens(ct2_dir):
    """Raw bytes of every token before <|endoftext|> (whisper.cpp adds specials)."""
    ct2_dir = Path(ct2_dir)
    if (ct2_dir / "vocabulary.txt").exists():
        # split on "\n" only: tokens may hold other Unicode line separators
        vocab = (ct2_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    else:
        vocab = json.loads((ct2_dir / "vocabulary.json").read_text(encoding="utf-8"))
    vocab = vocab[: vocab.index("<|endoftext|>")]
    table = _byte_of_char()
    return [bytes(table[c] for c in tok) for tok in vocab]


# -------------------------------------------------------------------- tensors
def ggml_tensors(v):
    """Yield (whisper.cpp name, array) from CTranslate2 Whisper variables."""
    def linear(dst, src, bias=True):
        yield f"{dst}.weight", v[f"{src}/weight"]
        if bias:
            yield f"{dst}.bias", v[f"{src}/bias"]

    def norm(dst, src):
        yield f"{dst}.weight", v[f"{src}/gamma"]
        yield f"{dst}.bias", v[f"{src}/beta"]

    def split(src, parts):
        """Split a fused projection along its output rows; [q|]k|v order.

        whisper.cpp has no key bias, so the key part must be all zeros.
        """
        w, b = np.split(v[f"{src}/weight"], parts), np.split(v[f"{src}/bias"], parts)
        if np.any(b[-2]):
            raise ValueError(f"{src}: non-zero key bias cannot be represented")
        return w, b

    def self_attn(dst, src):
        yield from norm(f"{dst}.attn_ln", f"{src}/layer_norm")
        (wq, wk, wv), (bq, _, bv) = split(f"{src}/linear_0", 3)  # q|k|v; key bias is 0
        yield from [(f"{dst}.attn.query.weight", wq), (f"{dst}.attn.query.bias", bq),
                    (f"{dst}.attn.key.weight", wk),
                    (f"{dst}.attn.value.weight", wv), (f"{dst}.attn.value.bias", bv)]
        yield from linear(f"{dst}.attn.out", f"{src}/linear_1")

    def cross_attn(dst, src):
        yield from norm(f"{dst}.cross_attn_ln", f"{src}/layer_norm")
        yield from linear(f"{dst}.cross_attn.query", f"{src}/linear_0")
        (wk, wv), (_, bv) = split(f"{src}/linear_1", 2)  # k|v; key bias is 0
        yield from [(f"{dst}.cross_attn.key.weight", wk),
                    (f"{dst}.cross_attn.value.weight", wv), (f"{dst}.cross_attn.value.bias", bv)]
        yield from linear(f"{dst}.cross_attn.out", f"{src}/linear_2")

    def ffn(dst, src):
        yield from norm(f"{dst}.mlp_ln", f"{src}/layer_norm")
        yield from linear(f"{dst}.mlp.0", f"{src}/linear_0")
        yield from linear(f"{dst}.mlp.2", f"{src}/linear_1")

    yield "encoder.positional_embedding", v["encoder/position_encodings/encodings"]
    for i in (1, 2):
        yield f"encoder.conv{i}.weight", v[f"encoder/conv{i}/weight"]  # (out, in, k)
        yield f"encoder.conv{i}.bias", v[f"encoder/conv{i}/bias"].reshape(-1, 1)
    for i in range(n_layers(v, "encoder")):
        yield from self_attn(f"encoder.blocks.{i}", f"encoder/layer_{i}/self_attention")
        yield from ffn(f"encoder.blocks.{i}", f"encoder/layer_{i}/ffn")
    yield from norm("encoder.ln_post", "encoder/layer_norm")

    yield "decoder.positional_embedding", v["decoder/position_encodings/encodings"]
    yield "decoder.token_embedding.weight", v["decoder/embeddings/weight"]  # also the output projection
    for i in range(n_layers(v, "decoder")):
        yield from self_attn(f"decoder.blocks.{i}", f"decoder/layer_{i}/self_attention")
        yield from cross_attn(f"decoder.blocks.{i}", f"decoder/layer_{i}/attention")
        yield from ffn(f"decoder.blocks.{i}", f"decoder/layer_{i}/ffn")
    yield from norm("decoder.ln", "decoder/layer_norm")


def n_layers(v, side):
    pat = re.compile(rf"{side}/layer_(\d+)/")
    return len({m.group(1) for m in map(pat.match, v) if m})


def hparams(v):
    conv1 = v["encoder/conv1/weight"]
    emb = v["decoder/embeddings/weight"]
    return [
        emb.shape[0],                                        # n_vocab
        v["encoder/position_encodings/encodings"].shape[0],  # n_audio_ctx
        conv1.shape[0],                                      # n_audio_state
        int(v["encoder/num_heads"]),                         # n_audio_head
        n_layers(v, "encoder"),                              # n_audio_layer
        v["decoder/position_encodings/encodings"].shape[0],  # n_text_ctx
        emb.shape[1],                                        # n_text_state
        int(v["decoder/num_heads"]),                         # n_text_head
        n_layers(v, "decoder"),                              # n_text_layer
        conv1.shape[1],                                      # n_mels
        FTYPE_F16,                                           # ftype
    ]


# whisper.cpp allocates these 2-D tensors as f32; every other >=2-D one as f16.
F32_NAMES = {"encoder.conv1.bias", "encoder.conv2.bias",
             "encoder.positional_embedding", "decoder.positional_embedding"}


def ggml_dtype(name, arr):
    return np.dtype("<f4" if arr.ndim < 2 or name in F32_NAMES else "<f2")


# --------------------------------------------------------------------- ggml io
def f16_or_f32(name, arr):
    """A tensor as whisper.cpp expects it unquantized: (ggml type id, little-endian bytes)."""
    data = np.ascontiguousarray(arr, dtype=ggml_dtype(name, arr))
    return (1 if data.dtype.itemsize == 2 else 0), data.tobytes()


def write_ggml(path, hp, filters, tokens, tensors, encode=f16_or_f32):
    """Write the file to PATH.tmp and rename, so a crash leaves no half file.

    TENSORS yields (name, array); ENCODE turns each into (ggml type id, bytes)."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<12i", GGML_MAGIC, *hp))
            f.write(struct.pack("<2i", *filters.shape))
            f.write(filters.astype("<f4").tobytes())
            f.write(struct.pack("<i", len(tokens)))
            for tok in tokens:
                f.write(struct.pack("<i", len(tok)) + tok)
            for name, arr in tensors:
                ggml_type, data = encode(name, arr)
                raw = name.encode()
                # ggml lists dims innermost first: the reverse of numpy's shape
                f.write(struct.pack(f"<3i{arr.ndim}i", arr.ndim, len(raw), ggml_type, *arr.shape[::-1]))
                f.write(raw)
                f.write(data)
    except BaseException:
        os.remove(tmp)
        raise
    os.replace(tmp, path)


GGML_Q8_0 = 8  # ggml's type id


def read_ggml(path):
    """Read a whisper ggml file back: (hparams, filters, tokens, {name: array}).

    f16 and f32 tensors come back in their shape; q8_0 ones as their raw blocks (uint8, one row
    of 34 bytes per 32 weights)."""
    buf = Path(path).read_bytes()
    magic, *hp = struct.unpack_from("<12i", buf, 0)
    assert magic == GGML_MAGIC, hex(magic)
    pos = 48
    rows, cols = struct.unpack_from("<2i", buf, pos)
    pos += 8
    filters = np.frombuffer(buf, "<f4", rows * cols, pos).reshape(rows, cols)
    pos += 4 * rows * cols
    (n_tok,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tokens = []
    for _ in range(n_tok):
        (n,) = struct.unpack_from("<i", buf, pos)
        tokens.append(buf[pos + 4 : pos + 4 + n])
        pos += 4 + n
    tensors = {}
    while pos < len(buf):
        ndim, nlen, ftype = struct.unpack_from("<3i", buf, pos)
        dims = struct.unpack_from(f"<{ndim}i", buf, pos + 12)
        pos += 12 + 4 * ndim
        name = buf[pos : pos + nlen].decode()
        pos += nlen
        count = int(np.prod(dims))
        if ftype == GGML_Q8_0:
            # 32 weights a block: an f16 scale, then 32 int8 quants
            tensor = np.frombuffer(buf, np.uint8, count // 32 * 34, pos).reshape(-1, 34)
        else:
            dt = np.dtype("<f2" if ftype == 1 else "<f4")
            tensor = np.frombuffer(buf, dt, count, pos).reshape(dims[::-1])
        tensors[name] = tensor
        pos += tensor.nbytes
    return hp, filters, tokens, tensors


def convert(ct2_dir, out_path):
    v, spec = read_ct2(Path(ct2_dir) / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"not a Whisper model: spec {spec}")
    hp = hparams(v)
    write_ggml(out_path, hp, mel_filters(n_mels=hp[9]), read_tokens(ct2_dir), ggml_tensors(v))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(sys.argv[1], sys.argv[2])
