"""What the import tells about a model that IREE or ONNX's own inference
trips on: the node behind an IREE error at a line of the imported file, and
shape inference that fails only inside a function op's body."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from serenity_mlir.errors import InputError
from serenity_mlir.pipeline.importer import Imported, import_model, load_onnx

IMPORTED = """module {
  func.func @g(%arg0: !torch.vtensor<[1,8,1],f32>) -> !torch.vtensor<[1,8,2],f32> {
    %0 = torch.operator "onnx.DFT"(%arg0) : (!torch.vtensor<[1,8,1],f32>) -> !torch.vtensor<[1,8,2],f32>
    %1 = torch.operator "onnx.Relu"(%0) : (!torch.vtensor<[1,8,2],f32>) -> !torch.vtensor<[1,8,2],f32>
    %2 = torch.operator "onnx.DFT"(%1) : (!torch.vtensor<[1,8,2],f32>) -> !torch.vtensor<[1,8,2],f32>
    return %2 : !torch.vtensor<[1,8,2],f32>
  }
}
"""


def _imported() -> Imported:
    nodes = {"DFT": ["spectrum/first", "spectrum/second"], "Relu": ["act"]}
    return Imported(source=Path("m.onnx"), mlir=IMPORTED, kind="onnx", onnx_nodes=nodes)


@pytest.mark.parametrize(("line", "node"), [(3, "DFT node 'spectrum/first'"), (5, "DFT node 'spectrum/second'"),
                                            (4, "Relu node 'act'")])  # fmt: skip
def test_an_error_at_a_line_names_that_node(tmp_path: Path, line: int, node: str) -> None:
    f = tmp_path / "model.input.mlir"
    f.write_text(IMPORTED)
    stderr = f"{f}:{line}:10: error: failed to legalize operation 'torch.aten.something'\n"
    assert _imported().unlowered_op_hint(stderr, f) == f"at the model's {node}"


def test_an_error_elsewhere_names_the_nodes_of_the_op(tmp_path: Path) -> None:
    f = tmp_path / "model.input.mlir"
    f.write_text(IMPORTED)
    stderr = (
        "<unknown>:0: error: failed to legalize operation 'torch.operator' that was explicitly marked illegal: "
        '%2 = "torch.operator"(%1) <{name = "onnx.DFT"}> : ...\n'
    )
    hint = _imported().unlowered_op_hint(stderr, f)
    assert hint == "IREE cannot lower the model's DFT node(s) 'spectrum/first', 'spectrum/second'"
    # Another file's line, or a line that is no ONNX node: nothing to name.
    assert _imported().unlowered_op_hint("/elsewhere/model.input.mlir:3:1: error: x\n", f) is None
    assert _imported().unlowered_op_hint(f"{f}:2:1: error: x\n", f) is None


def _mvn_model(tmp_path: Path, declared: list[int | str]) -> Path:
    """x -> Relu -> MeanVarianceNormalization -> Conv, only the input's and
    the result's shapes declared (the result's as ``declared``)."""
    import numpy as np
    from onnx import numpy_helper

    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="act"),
        helper.make_node("MeanVarianceNormalization", ["a"], ["b"], name="audio/mvn"),
        helper.make_node("Conv", ["b", "w"], ["y"], name="conv", kernel_shape=[3, 3]),
    ]
    w = numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, declared)],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    p = tmp_path / "mvn.onnx"
    onnx.save(model, str(p))
    return p


def test_inference_failing_inside_a_function_body_gives_the_input_shape(tmp_path: Path) -> None:
    """ONNX's strict inference fails on MeanVarianceNormalization's own body
    (a valid model that IREE lowers). Its result gets its input's shape,
    and inference goes on from there to the model's result."""
    with pytest.raises(Exception, match="One and only one"):  # ONNX's own failure, for the record
        onnx.shape_inference.infer_shapes(onnx.load(str(_mvn_model(tmp_path, [1, 4, 4, 4]))), strict_mode=True)
    model, notes = load_onnx(_mvn_model(tmp_path, ["n", "c", "h", "w"]), quiet=True)
    assert any("function body of MeanVarianceNormalization 'audio/mvn'" in n for n in notes), notes
    (y,) = model.graph.output  # type: ignore[attr-defined]
    assert [d.dim_value for d in y.type.tensor_type.shape.dim] == [1, 4, 4, 4]


def test_a_shape_contradiction_is_still_an_error(tmp_path: Path) -> None:
    """A declared result that the graph contradicts is refused, not taken."""
    with pytest.raises(InputError, match=r"differ in dimension 1: \(4\) vs \(5\)"):
        import_model(_mvn_model(tmp_path, [1, 5, 4, 4]), quiet=True)
