"""Write the zoo's models with several inputs or several outputs.

The exported architectures all take one image and return one tensor; these
small hand-built graphs cover the rest of the entry signature (issue 24):

- ``multi_io_concat_add``: two inputs, a convolution on each, their concat
  feeding a third convolution (the first output) and their sum (the second);
- ``multi_io_detection``: a detection-style head, one backbone and, at two
  scales, a class map and a box map each: four outputs;
- ``multi_io_two_tower``: two inputs of different shapes, a tower of
  convolutions on each, joined by a concat into one output;
- ``multi_io_inner_output``: an output that the graph also consumes (the
  first block's feature map is returned and feeds the second block), beside
  the final one.

Seeded random weights (numpy), opset 17, IR version 8, static shapes,
shape-inferred and checked. Deterministic: the same command writes
byte-identical files.

    python samples/zoo/multi_io.py [--out samples/zoo] [NAME ...]

Needs only ``onnx`` and ``numpy``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8


class Graph:
    """A small ONNX graph under construction, with seeded weights."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.count = 0

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def input(self, name: str, shape: list[int]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def output(self, name: str) -> None:
        # Shapes come from shape inference.
        self.outputs.append(helper.make_empty_tensor_value_info(name))

    def weight(self, shape: list[int]) -> str:
        name = self.fresh("w")
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        data = (self.rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
        self.inits.append(numpy_helper.from_array(data, name))
        return name

    def op(self, kind: str, inputs: list[str], out: str | None = None, **attrs: object) -> str:
        out = out or self.fresh(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], name=self.fresh("n"), **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, out: str | None = None) -> str:
        w = self.weight([cout, cin, k, k])
        b = self.weight([cout])
        pad = k // 2
        return self.op("Conv", [x, w, b], out, kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride])

    def conv_relu(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1) -> str:
        return self.op("Relu", [self.conv(x, cin, cout, k, stride)])

    def model(self, name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="multi_io.py")
        model.ir_version = IR_VERSION
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        onnx.checker.check_model(model, full_check=True)
        return model


def concat_add() -> onnx.ModelProto:
    g = Graph(1)
    x1 = g.input("x1", [1, 8, 32, 32])
    x2 = g.input("x2", [1, 8, 32, 32])
    a = g.conv(x1, 8, 16)
    b = g.conv(x2, 8, 16)
    cat = g.op("Concat", [a, b], axis=1)
    g.conv(cat, 32, 16, k=1, out="y1")
    g.op("Add", [a, b], "y2")
    g.output("y1")
    g.output("y2")
    return g.model("multi_io_concat_add")


def detection() -> onnx.ModelProto:
    g = Graph(2)
    x = g.input("image", [1, 3, 64, 64])
    c1 = g.conv_relu(x, 3, 8, stride=2)  # 32x32
    c2 = g.conv_relu(c1, 8, 16, stride=2)  # 16x16
    c3 = g.conv_relu(c2, 16, 32, stride=2)  # 8x8
    for scale, (feat, ch) in enumerate(((c2, 16), (c3, 32))):
        head = g.conv_relu(feat, ch, ch)
        g.conv(head, ch, 6, k=1, out=f"classes{scale}")  # 2 anchors x 3 classes
        g.conv(head, ch, 8, k=1, out=f"boxes{scale}")  # 2 anchors x 4 coordinates
    for scale in range(2):
        g.output(f"classes{scale}")
        g.output(f"boxes{scale}")
    return g.model("multi_io_detection")


def two_tower() -> onnx.ModelProto:
    g = Graph(3)
    img = g.input("image", [1, 3, 32, 32])
    depth = g.input("depth", [1, 1, 64, 64])
    a = g.conv_relu(img, 3, 16)
    a = g.conv_relu(a, 16, 16)
    b = g.conv_relu(depth, 1, 8, stride=2)  # 32x32
    b = g.conv_relu(b, 8, 16)
    cat = g.op("Concat", [a, b], axis=1)
    y = g.conv_relu(cat, 32, 16, k=1)
    g.op("GlobalAveragePool", [y], "pooled")
    g.output("pooled")
    return g.model("multi_io_two_tower")


def inner_output() -> onnx.ModelProto:
    g = Graph(4)
    x = g.input("x", [1, 8, 32, 32])
    h = g.conv_relu(x, 8, 16)
    g.op("Relu", [g.conv(h, 16, 16)], "features")  # returned, and used below
    y = g.conv_relu("features", 16, 32, stride=2)
    y = g.conv(y, 32, 16, k=1)
    g.op("Add", [y, g.op("MaxPool", ["features"], kernel_shape=[2, 2], strides=[2, 2])], "y")
    g.output("features")
    g.output("y")
    return g.model("multi_io_inner_output")


MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "multi_io_concat_add": concat_add,
    "multi_io_detection": detection,
    "multi_io_two_tower": two_tower,
    "multi_io_inner_output": inner_output,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"models (default: all of {', '.join(MODELS)})")
    ap.add_argument("--out", default=str(Path(__file__).parent), help="output directory (default: samples/zoo)")
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)} (known: {', '.join(MODELS)})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or MODELS:
        path = out / f"{name}.onnx"
        onnx.save(MODELS[name](), path)
        print(f"{path}: {path.stat().st_size:,} B")


if __name__ == "__main__":
    main()
