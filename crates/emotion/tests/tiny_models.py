"""Tiny ONNX "emotion classifiers" for the ecg-emotion plumbing tests (tests/onnx.rs).

Usage: python tiny_models.py OUT_DIR

They are not trained and not meant to be accurate: their arithmetic is simple enough that the
test can recompute their output, so it checks shapes, labels and that the scores reach the
result. Written:
- tiny_raw.onnx: waveform [1, N] -> [mean |x|, max |x|, mean x^2] @ RAW_W + RAW_B -> logits [1, 3]
- tiny_logmel.onnx: log-mel [1, 80, T] -> mean over bands and time -> [m, 0, ln 2] + bias
  -> softmax -> probabilities [1, 3]
"""

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Rows: mean |x|, max |x|, mean x^2; columns: the three labels. The tests repeat these numbers.
RAW_W = np.array([[60.0, 0.0, -60.0], [1.0, 0.0, -1.0], [5.0, 0.0, -5.0]], dtype=np.float32)
RAW_B = np.array([-4.0, 0.0, 4.0], dtype=np.float32)
OPSET = 17


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def raw_model(path):
    x = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, "samples"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    nodes = [
        helper.make_node("Abs", ["audio"], ["abs"]),
        helper.make_node("ReduceMean", ["abs"], ["mean_abs"], axes=[1], keepdims=1),
        helper.make_node("ReduceMax", ["abs"], ["max_abs"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["audio", "audio"], ["square"]),
        helper.make_node("ReduceMean", ["square"], ["mean_square"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["mean_abs", "max_abs", "mean_square"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "w"], ["scaled"]),
        helper.make_node("Add", ["scaled", "b"], ["logits"]),
    ]
    weights = [numpy_helper.from_array(RAW_W, "w"), numpy_helper.from_array(RAW_B, "b")]
    save(helper.make_graph(nodes, "tiny_raw", [x], [y], weights), path)


def logmel_model(path):
    x = helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, 80, "frames"])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])
    # The mean log-mel energy m raises the first score; the third is ln 2 above the second.
    w = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    b = np.array([0.0, 0.0, np.log(2.0)], dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["mel"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "axis"], ["m2"]),
        helper.make_node("MatMul", ["m2", "w"], ["scaled"]),
        helper.make_node("Add", ["scaled", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    weights = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
    ]
    save(helper.make_graph(nodes, "tiny_logmel", [x], [y], weights), path)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    raw_model(out / "tiny_raw.onnx")
    logmel_model(out / "tiny_logmel.onnx")
