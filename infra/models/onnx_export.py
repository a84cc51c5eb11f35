"""What the ONNX converters share: a checked model from a graph, and the command line."""
import os
import sys

import onnx
from onnx import helper

# Opset 17 keeps ReduceMean's and ReduceL2's axes attributes and is well inside what ONNX Runtime
# runs.
OPSET = 17


def checked_model(graph, producer):
    """The model of `graph`, at our opset and IR version 8, after ONNX's full check."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=producer)
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main(doc, load_weights, build_graph):
    """`converter.py SOURCE OUT.onnx`: the graph of SOURCE's weights, written atomically."""
    if len(sys.argv) != 3:
        sys.exit(doc)
    source, out_path = sys.argv[1:]
    model = build_graph(load_weights(source))
    tmp = f"{out_path}.tmp"
    onnx.save(model, tmp)
    os.replace(tmp, out_path)
