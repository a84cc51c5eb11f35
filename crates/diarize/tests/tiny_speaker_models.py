"""Tiny ONNX "speaker models" for the pluggable speaker-model tests (tests/speaker_model.rs).

Usage: python tiny_speaker_models.py OUT_DIR

Not trained: each takes the maximum of every band over the window's frames and projects the 80
maxima onto 16 fixed random directions, so the test can check that the layouts reach the model
and agree. Written:
- fbank_frames_first.onnx: feats [batch, frames, 80] -> embs [batch, 16]
- fbank_bands_first.onnx:  feats [batch, 80, frames] -> embs [batch, 16] (the same weights)
- unsupported.onnx:        feats [batch, frames, 64] -> embs [batch, 16]
- fbank_pooling.onnx:      feats [chunks, frames, 80], pooling [windows, chunks, frames]
                           -> embs [windows, 16]: the mean of each window's chosen frames, projected
- bad_second_input.onnx:   feats [batch, frames, 80], lengths [batch] -> embs [batch, 16]
"""

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
WEIGHTS = np.random.default_rng(7).standard_normal((80, 16)).astype(np.float32)


def save(path, shape, time_axis, weights=WEIGHTS):
    x = helper.make_tensor_value_info("feats", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("embs", TensorProto.FLOAT, ["batch", 16])
    nodes = [
        helper.make_node("ReduceMax", ["feats"], ["peak"], axes=[time_axis], keepdims=0),
        helper.make_node("MatMul", ["peak", "w"], ["embs"]),
    ]
    graph = helper.make_graph(nodes, "tiny_speaker", [x], [y], [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def save_pooling(path):
    feats = helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["chunks", "frames", 80])
    pooling = helper.make_tensor_value_info("pooling", TensorProto.FLOAT, ["windows", "chunks", "frames"])
    y = helper.make_tensor_value_info("embs", TensorProto.FLOAT, ["windows", 16])
    inits = [numpy_helper.from_array(WEIGHTS, "w"),
             numpy_helper.from_array(np.array([-1, 80], np.int64), "frames_by_band"),
             numpy_helper.from_array(np.array([0, -1], np.int64), "windows_by_frame"),
             numpy_helper.from_array(np.array([1], np.int64), "frame_axis")]
    nodes = [
        helper.make_node("Reshape", ["feats", "frames_by_band"], ["all_frames"]),
        helper.make_node("Reshape", ["pooling", "windows_by_frame"], ["chosen"]),
        helper.make_node("MatMul", ["chosen", "all_frames"], ["sums"]),
        helper.make_node("ReduceSum", ["chosen", "frame_axis"], ["count"], keepdims=1),
        helper.make_node("Div", ["sums", "count"], ["means"]),
        helper.make_node("MatMul", ["means", "w"], ["embs"]),
    ]
    graph = helper.make_graph(nodes, "tiny_pooling_speaker", [feats, pooling], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def save_bad_second_input(path):
    save(path, ["batch", "frames", 80], 1)
    model = onnx.load(str(path))
    model.graph.input.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]))
    onnx.save(model, str(path))


out = Path(sys.argv[1])
save(out / "fbank_frames_first.onnx", ["batch", "frames", 80], 1)
save(out / "fbank_bands_first.onnx", ["batch", 80, "frames"], 2)
save(out / "unsupported.onnx", ["batch", "frames", 64], 1, WEIGHTS[:64])
save_pooling(out / "fbank_pooling.onnx")
save_bad_second_input(out / "bad_second_input.onnx")
