"""Write opset-17 copies of the nine ``light_*`` models of the onnx package.

The onnx package ships them in ``onnx/backend/test/data/light/`` (opset 9,
IR version 3, the weights as ``ConstantOfShape`` nodes and the batch norm
parameters as graph inputs with initializers). IREE's ONNX importer needs a
newer opset, so each copy is upgraded with ``onnx.version_converter`` to
opset 17, given IR version 8, its initializers removed from the graph
inputs (otherwise they would become runtime arguments), and shape-inferred.

    python samples/zoo/light_models.py [--out samples/zoo] [NAME ...]

Needs only ``onnx`` (the package's own dependency).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
import onnx.version_converter

OPSET = 17
IR_VERSION = 8
NAMES = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)


def light_dir() -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def upgrade(model: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.version_converter.convert_version(model, OPSET)
    init_names = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in init_names]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    model.ir_version = IR_VERSION
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"models (default: all of {', '.join(NAMES)})")
    ap.add_argument("--out", default=str(Path(__file__).parent), help="output directory (default: samples/zoo)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or NAMES:
        src = light_dir() / f"light_{name}.onnx"
        model = upgrade(onnx.load(str(src)))
        dst = out / f"light_{name}.onnx"
        onnx.save(model, str(dst))
        shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        print(f"light_{name}: {dst} {dst.stat().st_size:,} B, {len(model.graph.node)} nodes, input {shape}")


if __name__ == "__main__":
    main()
