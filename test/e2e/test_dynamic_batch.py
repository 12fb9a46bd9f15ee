"""Dynamic batch in: a dynamic leading dimension is pinned to 1, as TFLite,
TFLite Micro and onnxruntime run such models; other dimensions are set by
name (``input_shapes``); anything left dynamic is a clear error. With the
real importers and IREE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT
from onnx import TensorProto, helper, numpy_helper

from serenity_mlir import api
from serenity_mlir.errors import InputError
from serenity_mlir.pipeline.importer import _FlatBuffer, import_model

TFLITE = ROOT / "samples" / "tflm" / "mobilenet_v2_035.f32.tflite"


def _onnx(path: Path, dims: list[int | str]) -> Path:
    """Two branches of 3x3 conv 3->8 + ReLU, added; input ``x`` of ``dims``
    (NCHW, str = a dim_param); declared output and intermediate shapes carry
    the same symbols, as PyTorch's exporter writes them."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node("Conv", ["x", "w2"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["b"], ["rb"]),
        helper.make_node("Add", ["ra", "rb"], ["y"]),
    ]
    out_dims = [dims[0], 8, dims[2], dims[3]]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims)],
        [w1, w2],
        value_info=[helper.make_tensor_value_info("a", TensorProto.FLOAT, out_dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_onnx_dim_param_batch_compiles(tmp_path: Path) -> None:
    model = _onnx(tmp_path / "dyn.onnx", ["batch", 3, 16, 16])
    imported = import_model(model, quiet=True)
    assert imported.input_shapes == ["x: 1x3x16x16xf32 (batch pinned from 'batch')"]
    assert any("batch pinned" in n for n in imported.notes)
    assert "tensor<?x" not in str(imported.mlir) and "!torch.vtensor<[1,3,16,16],f32>" in str(imported.mlir)
    report = api.compile_model(model, tmp_path / "dyn.vmfb", target="host")
    # input 1x3x16x16 f32 and result 1x8x16x16 f32 as the measurement saw them
    assert report["input_bytes"] == 3 * 16 * 16 * 4
    assert report["output_bytes"] == 8 * 16 * 16 * 4
    assert report["outputs_bit_identical"] is True


def test_onnx_static_model_unchanged(tmp_path: Path) -> None:
    model = _onnx(tmp_path / "static.onnx", [1, 3, 16, 16])
    imported = import_model(model, quiet=True)
    assert imported.input_shapes == ["x: 1x3x16x16xf32"]
    assert not any("pinned" in n for n in imported.notes)


def test_onnx_other_dims_need_a_shape(tmp_path: Path) -> None:
    model = _onnx(tmp_path / "hw.onnx", ["N", 3, "H", "W"])
    with pytest.raises(InputError, match=r"dynamic dimension 2 \('H'\).*--input-shape x=1x3xNxN"):
        import_model(model, quiet=True)
    imported = import_model(model, quiet=True, input_shapes={"x": (1, 3, 8, 12)})
    assert imported.input_shapes == ["x: 1x3x8x12xf32 (dim 0 set from 'N', dim 2 set from 'H', dim 3 set from 'W')"]
    assert "!torch.vtensor<[1,8,8,12],f32>" in str(imported.mlir)


def test_onnx_bad_shapes_are_named(tmp_path: Path) -> None:
    model = _onnx(tmp_path / "dyn.onnx", ["batch", 3, 16, 16])
    with pytest.raises(InputError, match=r"no input named 'y'.*the inputs: x"):
        import_model(model, quiet=True, input_shapes={"y": (1, 3, 16, 16)})
    with pytest.raises(InputError, match="rank 4, the shape given for it rank 3"):
        import_model(model, quiet=True, input_shapes={"x": (3, 16, 16)})
    with pytest.raises(InputError, match="dimension 1 fixed at 3 in the file; the shape given says 4"):
        import_model(model, quiet=True, input_shapes={"x": (1, 4, 16, 16)})
    with pytest.raises(InputError, match="positive sizes"):
        import_model(model, quiet=True, input_shapes={"x": (0, 3, 16, 16)})


def _input_signature(path: Path) -> tuple[list[int], list[int]]:
    fb = _FlatBuffer(bytearray(path.read_bytes()))
    sg = fb.tables(fb.u32(0), 2)[0]
    t = fb.tables(sg, 0)[fb.ints(sg, 1)[0]]
    return fb.ints(t, 0), fb.ints(t, 7)


def test_tflite_dynamic_batch_compiles(tmp_path: Path) -> None:
    pytest.importorskip("tosa_converter_for_tflite", reason="the 'tflite' extra is not installed")
    # As TensorFlow's converter writes a Keras model: shape [1,96,96,3], signature [-1,96,96,3].
    assert _input_signature(TFLITE) == ([1, 96, 96, 3], [-1, 96, 96, 3])
    imported = import_model(TFLITE, quiet=True)
    (line,) = imported.input_shapes
    assert line.endswith(": 1x96x96x3xf32 (batch pinned from ?)")
    with pytest.raises(InputError, match="can only be 1x96x96x3"):
        import_model(TFLITE, quiet=True, input_shapes={line.rsplit(": ", 1)[0]: (2, 96, 96, 3)})
    report = api.compile_model(TFLITE, tmp_path / "m.vmfb", target="host")
    assert report["input_bytes"] == 96 * 96 * 3 * 4
    assert report["output_bytes"] == 10 * 4
    assert report["outputs_bit_identical"] is True
