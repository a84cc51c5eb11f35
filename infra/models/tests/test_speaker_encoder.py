"""speaker_encoder: the legacy-pickle reader and the ONNX graph of the GE2E encoder.

The graph is checked against a plain numpy LSTM written here from PyTorch's
equations (gates i, f, g, o), on the same weights and a fixed random input.
"""
import io
import pickle
import struct

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import speaker_encoder as enc
import torch_weights
from conftest import wheel_weights

WHEEL = "Resemblyzer-0.1.4-py3-none-any.whl"
EXPECTED_SHAPES = {
    "similarity_weight": (1,), "similarity_bias": (1,),
    **{f"lstm.weight_ih_l{i}": (1024, 40 if i == 0 else 256) for i in range(3)},
    **{f"lstm.weight_hh_l{i}": (1024, 256) for i in range(3)},
    **{f"lstm.bias_{kind}_l{i}": (1024,) for kind in ("ih", "hh") for i in range(3)},
    "linear.weight": (256, 256), "linear.bias": (256,),
}


# ------------------------------------------------- independent reference
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_encoder(weights, mels):
    """VoiceEncoder.forward, step by step, in float64."""
    x = mels.astype(np.float64)
    batch = x.shape[0]
    for layer in range(3):
        w_ih, w_hh = weights[f"lstm.weight_ih_l{layer}"], weights[f"lstm.weight_hh_l{layer}"]
        b = weights[f"lstm.bias_ih_l{layer}"] + weights[f"lstm.bias_hh_l{layer}"]
        h, c = np.zeros((batch, 256)), np.zeros((batch, 256))
        outputs = []
        for t in range(x.shape[1]):
            gates = x[:, t] @ w_ih.T + h @ w_hh.T + b
            i, f, g, o = np.split(gates, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            outputs.append(h)
        x = np.stack(outputs, axis=1)
    raw = np.maximum(h @ weights["linear.weight"].T + weights["linear.bias"], 0)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def run_graph(weights, mels):
    model = enc.build_graph(weights)
    (out,) = ReferenceEvaluator(model).run(None, {"mels": mels})
    return out


def random_weights(rng):
    # Scaled like a trained LSTM's so that the gates neither saturate nor vanish.
    return {name: (rng.standard_normal(shape) * 0.2).astype(np.float32)
            for name, shape in EXPECTED_SHAPES.items()}


def test_graph_matches_numpy_on_random_weights():
    rng = np.random.default_rng(7)
    weights = random_weights(rng)
    mels = rng.random((3, 160, 40), dtype=np.float32)
    out = run_graph(weights, mels)
    assert out.shape == (3, 256)
    np.testing.assert_allclose(out, numpy_encoder(weights, mels), atol=1e-4)


def test_gate_order_matters():
    """Swapping PyTorch's gate blocks changes the output: the reorder is not a no-op."""
    rng = np.random.default_rng(8)
    weights = random_weights(rng)
    mels = rng.random((1, 20, 40), dtype=np.float32)
    swapped = dict(weights)
    for name in [k for k in weights if k.startswith("lstm.")]:
        i, f, g, o = np.split(weights[name], 4, axis=0)
        swapped[name] = np.concatenate([i, o, f, g])
    assert not np.allclose(run_graph(swapped, mels), numpy_encoder(weights, mels), atol=1e-3)


# ------------------------------------------------- legacy pickle
class Op:
    """Pickle opcodes, enough to write what torch.save wrote for a state dict."""

    @staticmethod
    def text(s):
        raw = s.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw

    @staticmethod
    def int(n):
        return b"J" + struct.pack("<i", n)

    @staticmethod
    def tuple(items):
        return b"(" + b"".join(items) + b"t"

    @staticmethod
    def glob(module, name):
        return b"c" + f"{module}\n{name}\n".encode()


def legacy_file(tensors, extra_global=None):
    """A legacy torch.save file of {'model_state': OrderedDict(tensors)}; each
    tensor gets its own storage, except that the second one shares the first's
    storage at an offset, as cuDNN's flat LSTM buffers do."""
    names = list(tensors)
    storages = []  # (key, flat array)
    body = [b"\x80\x02}(", Op.text("model_state"),
            Op.glob("collections", "OrderedDict"), b")R("]
    for n, name in enumerate(names):
        arr = tensors[name]
        if n == 1:
            key, offset = storages[0][0], storages[0][1].size
            storages[0] = (key, np.concatenate([storages[0][1], arr.ravel()]))
        else:
            key, offset = str(100 + n), 0
            storages.append((key, arr.ravel()))
        stride = [int(np.prod(arr.shape[i + 1:])) for i in range(arr.ndim)]
        pid = Op.tuple([Op.text("storage"), Op.glob("torch", "FloatStorage"), Op.text(key),
                        Op.text("cpu"), b"%SIZE" + key.encode() + b"%", b"N"])
        body += [Op.text(name), Op.glob("torch._utils", "_rebuild_tensor_v2"), b"(", pid, b"Q",
                 Op.int(offset), Op.tuple(Op.int(d) for d in arr.shape),
                 Op.tuple(Op.int(s) for s in stride), b"\x89",
                 Op.glob("collections", "OrderedDict"), b")R", b"t", b"R"]
    if extra_global:
        body += [Op.text("evil"), Op.glob(*extra_global)]
    body.append(b"uu.")  # SETITEMS into the OrderedDict, then into the outer dict
    pickled = b"".join(body)
    for key, flat in storages:  # element counts are known only once storages are shared
        pickled = pickled.replace(b"%SIZE" + key.encode() + b"%", Op.int(flat.size))
    out = io.BytesIO()
    for header in (torch_weights.LEGACY_MAGIC, torch_weights.LEGACY_PROTOCOL, {"little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(pickled)
    pickle.dump([key for key, _ in storages], out, protocol=2)
    for _, flat in storages:
        out.write(struct.pack("<q", flat.size) + flat.astype("<f4").tobytes())
    return out.getvalue()


def test_reads_a_synthetic_legacy_file():
    rng = np.random.default_rng(1)
    tensors = {"a": rng.standard_normal((4, 3)).astype(np.float32),
               "b": rng.standard_normal((5,)).astype(np.float32),
               "c": rng.standard_normal((2, 2, 2)).astype(np.float32)}
    state = torch_weights.read_legacy(io.BytesIO(legacy_file(tensors)))["model_state"]
    assert list(state) == list(tensors)
    for name, arr in tensors.items():
        np.testing.assert_array_equal(state[name], arr)


def test_refuses_foreign_globals_and_truncation():
    tensors = {"a": np.ones((2, 2), np.float32)}
    with pytest.raises(pickle.UnpicklingError, match="refusing global os.system"):
        torch_weights.read_legacy(io.BytesIO(legacy_file(tensors, extra_global=("os", "system"))))
    with pytest.raises(ValueError, match="truncated"):
        torch_weights.read_legacy(io.BytesIO(legacy_file(tensors)[:-4]))
    with pytest.raises(ValueError, match="magic"):
        torch_weights.read_legacy(io.BytesIO(pickle.dumps(1234, protocol=2)))


# ------------------------------------------------- the real weights
@pytest.fixture(scope="module")
def real_weights(model_dir):
    return wheel_weights(model_dir, WHEEL, enc.load_weights)


def test_reads_every_resemblyzer_tensor(real_weights):
    assert {k: v.shape for k, v in real_weights.items()} == EXPECTED_SHAPES
    assert all(np.isfinite(v).all() for v in real_weights.values())


@pytest.mark.filterwarnings("ignore:overflow encountered in exp")  # saturated gates in onnx.reference
def test_real_graph_matches_numpy(real_weights):
    rng = np.random.default_rng(0)
    # Power-mel magnitudes as speech gives them: mostly small, a few large.
    mels = (rng.random((2, 160, 40)) ** 4 * 5).astype(np.float32)
    out = run_graph(real_weights, mels)
    np.testing.assert_allclose(out, numpy_encoder(real_weights, mels), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_provisioned_model_is_the_conversion(model_dir, real_weights):
    onnx_file = model_dir / "speaker_encoder.onnx"
    assert onnx_file.exists(), "speaker_encoder.onnx missing: run `make models`"
    assert onnx_file.read_bytes() == enc.build_graph(real_weights).SerializeToString()
