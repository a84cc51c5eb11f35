"""ct2_to_ggml: a tiny synthetic CTranslate2 Whisper round-trips into ggml."""
import json
import struct

import numpy as np
import pytest

import ct2_to_ggml as conv

# Tiny Whisper: state 8, 2 heads, 4 mels, 1 encoder + 1 decoder layer.
S, MELS, FF, AUDIO_CTX, TEXT_CTX = 8, 4, 16, 6, 5
# byte-level BPE spellings: Ġ = space, Ċ = newline, Ń = 0xAD (soft hyphen), ä = 0xE4
VOCAB = ["a", "Ġb", "Ċ", "Ń", "ä", "", "<|endoftext|>", "<|en|>"]
CT2_DTYPE_ID = {np.dtype(np.float32): 0, np.dtype(np.int8): 1,
                np.dtype(np.int16): 2, np.dtype(np.float16): 4}


def write_ct2(path, variables, aliases):
    """Write CTranslate2's model.bin layout version 6 (see conv.read_ct2)."""
    def string(s):
        raw = s.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", 6), string("WhisperSpec"), struct.pack("<II", 3, len(variables))]
    for name, arr in variables.items():
        out += [string(name), struct.pack(f"<B{arr.ndim}I", arr.ndim, *arr.shape),
                struct.pack("<BI", CT2_DTYPE_ID[arr.dtype], arr.nbytes), arr.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [string(alias), string(target)]
    path.write_bytes(b"".join(out))


def tiny_variables(rng):
    """CTranslate2 Whisper variables; matrices f16, a few vectors f32 (both occur)."""
    def w(*shape, dtype=np.float16):
        return rng.standard_normal(shape).astype(dtype)

    def zero_key_bias(n_parts):  # fused bias with the key part zeroed
        b = w(n_parts * S)
        b[(n_parts - 2) * S:(n_parts - 1) * S] = 0
        return b

    v = {"encoder/num_heads": np.array(2, np.int16), "decoder/num_heads": np.array(2, np.int16),
         "decoder/pre_norm": np.array(1, np.int8),
         "encoder/conv1/weight": w(S, MELS, 3), "encoder/conv1/bias": w(S, dtype=np.float32),
         "encoder/conv2/weight": w(S, S, 3), "encoder/conv2/bias": w(S),
         "encoder/position_encodings/encodings": w(AUDIO_CTX, S),
         "decoder/position_encodings/encodings": w(TEXT_CTX, S),
         "decoder/embeddings/weight": w(len(VOCAB), S)}
    for side, attn in (("encoder", ["self_attention"]), ("decoder", ["self_attention", "attention"])):
        p = f"{side}/layer_0"
        for block in attn + ["ffn"]:
            v[f"{p}/{block}/layer_norm/gamma"] = w(S, dtype=np.float32)
            v[f"{p}/{block}/layer_norm/beta"] = w(S)
        v[f"{p}/self_attention/linear_0/weight"] = w(3 * S, S)  # q|k|v
        v[f"{p}/self_attention/linear_0/bias"] = zero_key_bias(3)
        v[f"{p}/self_attention/linear_1/weight"] = w(S, S)
        v[f"{p}/self_attention/linear_1/bias"] = w(S)
        v[f"{p}/ffn/linear_0/weight"] = w(FF, S, dtype=np.float32)  # f32 source -> f16
        v[f"{p}/ffn/linear_0/bias"] = w(FF)
        v[f"{p}/ffn/linear_1/weight"] = w(S, FF)
        v[f"{p}/ffn/linear_1/bias"] = w(S)
        v[f"{side}/layer_norm/gamma"] = w(S)
        v[f"{side}/layer_norm/beta"] = w(S)
    p = "decoder/layer_0/attention"
    v[f"{p}/linear_0/weight"], v[f"{p}/linear_0/bias"] = w(S, S), w(S)  # q
    v[f"{p}/linear_1/weight"], v[f"{p}/linear_1/bias"] = w(2 * S, S), zero_key_bias(2)  # k|v
    v[f"{p}/linear_2/weight"], v[f"{p}/linear_2/bias"] = w(S, S), w(S)
    return v


@pytest.fixture
def tiny(tmp_path):
    v = tiny_variables(np.random.default_rng(0))
    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    write_ct2(ct2 / "model.bin", v, {"decoder/projection/weight": "decoder/embeddings/weight"})
    (ct2 / "vocabulary.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (ct2 / "config.json").write_text(json.dumps({}))
    out = tmp_path / "ggml.bin"
    conv.convert(ct2, out)
    return v, conv.read_ggml(out)


def test_ct2_reader_round_trip(tmp_path):
    v = tiny_variables(np.random.default_rng(1))
    write_ct2(tmp_path / "model.bin", v, {"alias": "decoder/embeddings/weight"})
    got, spec = conv.read_ct2(tmp_path / "model.bin")
    assert spec == "WhisperSpec"
    assert set(got) == set(v) | {"alias"}
    for k in v:
        assert got[k].dtype == v[k].dtype and np.array_equal(got[k], v[k]), k
    assert np.array_equal(got["alias"], v["decoder/embeddings/weight"])


def test_header_tokens_and_filters(tiny):
    _, (hp, filters, tokens, _) = tiny
    assert hp == [len(VOCAB), AUDIO_CTX, S, 2, 1, TEXT_CTX, S, 2, 1, MELS, 1]
    # raw bytes of every token before <|endoftext|>; whisper.cpp adds the rest
    assert tokens == [b"a", b" b", b"\n", b"\xad", b"\xe4", b""]
    assert filters.shape == (MELS, 201)
    assert np.array_equal(filters, conv.mel_filters(n_mels=MELS))


def test_tensor_names_match_whisper_cpp(tiny):
    _, (_, _, _, t) = tiny
    attn = ["query.weight", "query.bias", "key.weight", "value.weight", "value.bias",
            "out.weight", "out.bias"]
    block = ["attn_ln.weight", "attn_ln.bias", "mlp_ln.weight", "mlp_ln.bias", "mlp.0.weight",
             "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"] + [f"attn.{a}" for a in attn]
    cross = ["cross_attn_ln.weight", "cross_attn_ln.bias"] + [f"cross_attn.{a}" for a in attn]
    want = {"encoder.positional_embedding", "encoder.conv1.weight", "encoder.conv1.bias",
            "encoder.conv2.weight", "encoder.conv2.bias", "encoder.ln_post.weight",
            "encoder.ln_post.bias", "decoder.positional_embedding",
            "decoder.token_embedding.weight", "decoder.ln.weight", "decoder.ln.bias"}
    want |= {f"encoder.blocks.0.{n}" for n in block}
    want |= {f"decoder.blocks.0.{n}" for n in block + cross}
    assert set(t) == want


def test_tensor_values_types_and_shapes(tiny):
    v, (_, _, _, t) = tiny
    f16 = lambda a: a.astype(np.float16)  # noqa: E731
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    qkv = v["encoder/layer_0/self_attention/linear_0/weight"]
    expect = {
        "encoder.blocks.0.attn.query.weight": f16(qkv[:S]),
        "encoder.blocks.0.attn.key.weight": f16(qkv[S:2 * S]),
        "encoder.blocks.0.attn.value.weight": f16(qkv[2 * S:]),
        "encoder.blocks.0.attn.value.bias":
            f32(v["encoder/layer_0/self_attention/linear_0/bias"][2 * S:]),
        "decoder.blocks.0.cross_attn.key.weight": f16(v["decoder/layer_0/attention/linear_1/weight"][:S]),
        "decoder.blocks.0.cross_attn.value.bias": f32(v["decoder/layer_0/attention/linear_1/bias"][S:]),
        "decoder.blocks.0.cross_attn.out.weight": f16(v["decoder/layer_0/attention/linear_2/weight"]),
        "encoder.blocks.0.mlp.0.weight": f16(v["encoder/layer_0/ffn/linear_0/weight"]),  # f32 -> f16
        "decoder.blocks.0.mlp.2.bias": f32(v["decoder/layer_0/ffn/linear_1/bias"]),
        "decoder.token_embedding.weight": f16(v["decoder/embeddings/weight"]),
        "encoder.ln_post.weight": f32(v["encoder/layer_norm/gamma"]),
        "decoder.blocks.0.attn_ln.weight": f32(v["decoder/layer_0/self_attention/layer_norm/gamma"]),
        # whisper.cpp: conv weights (out, in, k) in f16 (im2col needs it), conv bias (out, 1) f32
        "encoder.conv1.weight": f16(v["encoder/conv1/weight"]),
        "encoder.conv1.bias": f32(v["encoder/conv1/bias"]).reshape(S, 1),
        "encoder.positional_embedding": f32(v["encoder/position_encodings/encodings"]),
    }
    for name, want in expect.items():
        assert t[name].dtype == want.dtype and t[name].shape == want.shape, name
        assert np.array_equal(t[name], want), name
    # rule: f16 for every >=2-D tensor except conv biases and positional embeddings
    for name, arr in t.items():
        small = arr.ndim < 2 or name in conv.F32_NAMES
        assert arr.dtype == (np.float32 if small else np.float16), name


def test_nonzero_key_bias_is_refused(tmp_path):
    v = tiny_variables(np.random.default_rng(2))
    v["encoder/layer_0/self_attention/linear_0/bias"][S] = 1
    write_ct2(tmp_path / "model.bin", v, {})
    (tmp_path / "vocabulary.txt").write_text("\n".join(VOCAB), encoding="utf-8")
    with pytest.raises(ValueError, match="key bias"):
        conv.convert(tmp_path, tmp_path / "out.bin")


def test_byte_table_is_a_bijection():
    table = conv._byte_of_char()
    assert sorted(table.values()) == list(range(256))
    assert table["Ġ"] == 0x20 and table["Ċ"] == 0x0A and table["!"] == 0x21


# --------------------------------------------------------- real provisioned model
def test_real_model(model_dir):
    ggml = model_dir / "ggml-base.bin"
    assert ggml.stat().st_size == 147_951_465
    hp, filters, tokens, t = conv.read_ggml(ggml)
    assert hp == [51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]
    assert len(tokens) == 50257 and tokens[220] == b" " and len(t) == 245
    assert np.array_equal(filters, conv.mel_filters())
    v, _ = conv.read_ct2(model_dir / "whisper-base-ct2" / "model.bin")
    assert np.array_equal(t["decoder.token_embedding.weight"],
                          v["decoder/embeddings/weight"].astype(np.float16))
    qkv = v["decoder/layer_3/self_attention/linear_0/weight"]
    assert np.array_equal(t["decoder.blocks.3.attn.key.weight"], qkv[512:1024])
    assert np.array_equal(t["encoder.conv2.weight"], v["encoder/conv2/weight"])
    assert t["encoder.conv1.weight"].shape == (512, 80, 3)  # ggml ne = [3, 80, 512]
