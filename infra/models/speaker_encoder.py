#!/usr/bin/env python3
"""Convert Resemblyzer's GE2E speaker encoder to an ONNX graph, without PyTorch.

Usage: speaker_encoder.py SOURCE OUT.onnx
  SOURCE is `pretrained.pt`, or the Resemblyzer wheel that holds it.

The weights are a legacy (pre-1.6, non-zip) PyTorch pickle; a small
restricted unpickler reads it (torch_weights.read_legacy). The graph, built with the
`onnx` package, is Resemblyzer's VoiceEncoder.forward:

  mels [batch, frames, 40] (power mel, 160 frames = 1.6 s)
    -> 3-layer LSTM (hidden 256), last hidden state of the top layer
    -> Linear(256 -> 256) -> ReLU -> L2 normalisation
    -> embedding [batch, 256]
"""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnx_export import checked_model, main
from torch_weights import read_legacy, weights_file

N_MELS, HIDDEN, LAYERS, EMBEDDING = 40, 256, 3, 256
WHEEL_MEMBER = "resemblyzer/pretrained.pt"


def load_weights(source):
    """The encoder's state dict {name: float32 array} from pretrained.pt or the wheel."""
    state = read_legacy(weights_file(source, WHEEL_MEMBER))["model_state"]
    return {k: np.asarray(v, np.float32) for k, v in state.items()}


# -------------------------------------------------------------------- graph
def _ifgo_to_iofc(w):
    """PyTorch stacks LSTM gates i,f,g,o along axis 0; ONNX expects i,o,f,c (c = g)."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def build_graph(weights):
    """The ONNX model of VoiceEncoder.forward for these weights."""
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    # ONNX LSTM (layout 0) reads [seq, batch, features].
    nodes.append(helper.make_node("Transpose", ["mels"], ["x0"], perm=[1, 0, 2]))
    axis0, axis1 = const("axis0", np.array([0], np.int64)), const("axis1", np.array([1], np.int64))
    x = "x0"
    for layer in range(LAYERS):
        w = _ifgo_to_iofc(weights[f"lstm.weight_ih_l{layer}"])[None]
        r = _ifgo_to_iofc(weights[f"lstm.weight_hh_l{layer}"])[None]
        b = np.concatenate([_ifgo_to_iofc(weights[f"lstm.bias_ih_l{layer}"]),
                            _ifgo_to_iofc(weights[f"lstm.bias_hh_l{layer}"])])[None]
        y, y_h = f"y{layer}", f"h{layer}"
        nodes.append(helper.make_node(
            "LSTM", [x, const(f"W{layer}", w), const(f"R{layer}", r), const(f"B{layer}", b)],
            [y, y_h], hidden_size=HIDDEN))
        # Y is [seq, directions=1, batch, hidden]: drop the direction axis for the next layer.
        x = f"x{layer + 1}"
        nodes.append(helper.make_node("Squeeze", [y, axis1], [x]))
    last = f"h{LAYERS - 1}"
    nodes += [
        helper.make_node("Squeeze", [last, axis0], ["hidden"]),
        helper.make_node("Gemm", ["hidden", const("linear_w", weights["linear.weight"]),
                                  const("linear_b", weights["linear.bias"])], ["linear"], transB=1),
        helper.make_node("Relu", ["linear"], ["raw"]),
        helper.make_node("ReduceL2", ["raw"], ["norm"], axes=[1], keepdims=1),
        # An all-zero vector after ReLU stays zero instead of turning into NaN.
        helper.make_node("Max", ["norm", const("tiny", np.array([1e-12], np.float32))], ["safe_norm"]),
        helper.make_node("Div", ["raw", "safe_norm"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "ge2e_speaker_encoder",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["batch", "frames", N_MELS])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBEDDING])],
        inits)
    return checked_model(graph, "ecg speaker_encoder.py")


if __name__ == "__main__":
    main(__doc__, load_weights, build_graph)
