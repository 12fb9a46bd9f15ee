"""Shape arithmetic folded before import (pipeline.onnx_shapes), on small
synthetic ONNX graphs: what is folded, what is left, and that the folded
graph computes what the original did (ONNX's reference evaluator on both)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from serenity_mlir.pipeline.onnx_shapes import (
    MAX_FOLD_ELEMENTS,
    MAX_INPUT_ELEMENTS,
    fold_shape_arithmetic,
    unshaped_results,
)


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _attention_like() -> onnx.ModelProto:
    """x [1,4,6] reshaped to [1,4,2,3] by a shape computed as torch's
    multi-head attention export computes it: Shape, a Slice whose start is
    a Mod then a Reshape, and a Concat with the head split."""
    nodes = [
        _const("c4", np.array(4, np.int64)),
        _const("c5", np.array(3, np.int64)),
        helper.make_node("Mod", ["c4", "c5"], ["m"]),  # 1
        _const("one", np.array([1], np.int64)),
        helper.make_node("Reshape", ["m", "one"], ["start"]),
        _const("zero", np.array([0], np.int64)),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "start"], ["lead"]),  # [1]
        helper.make_node("Slice", ["shape", "start", "c2"], ["mid"]),  # [4]
        _const("c2", np.array([2], np.int64)),
        _const("split", np.array([2, 3], np.int64)),
        helper.make_node("Concat", ["lead", "mid", "split"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3]),
        helper.make_node("Relu", ["t"], ["y"]),
    ]
    # Topological order: c2 before its reader.
    nodes.insert(7, nodes.pop(9))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)


def test_folding_gives_shape_inference_the_reshape() -> None:
    model = _attention_like()
    assert "r" in [r[2] for r in unshaped_results(model)]  # what IREE's importer trips on
    x = np.random.default_rng(0).standard_normal((1, 4, 6)).astype(np.float32)
    (before,) = ReferenceEvaluator(model).run(None, {"x": x})
    folded = fold_shape_arithmetic(model)
    assert folded == 6  # Mod, Reshape, Shape, two Slices, Concat
    assert [n.op_type for n in model.graph.node if n.op_type != "Constant"] == ["Reshape", "Transpose", "Relu"]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    assert unshaped_results(model) == []
    (after,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert np.array_equal(before, after)
    onnx.checker.check_model(model)


def test_nothing_to_fold_leaves_the_graph() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    text = model.SerializeToString()
    assert fold_shape_arithmetic(model) == 0
    assert model.SerializeToString() == text


@pytest.mark.parametrize("n", [MAX_FOLD_ELEMENTS, MAX_FOLD_ELEMENTS + 1])
def test_large_constant_results_stay_computed(n: int) -> None:
    """A ConstantOfShape of a known shape is folded only while shape-sized."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("ConstantOfShape", ["s"], ["z"], value=numpy_helper.from_array(np.array([1.0], np.float32))),
        helper.make_node("Add", ["x", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])],
    )
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    folded = fold_shape_arithmetic(model)
    kinds = [nd.op_type for nd in model.graph.node]
    if n <= MAX_FOLD_ELEMENTS:
        assert folded == 2 and kinds == ["Add"]
    else:
        assert folded == 1 and kinds == ["ConstantOfShape", "Add"]  # only the 1-element Shape


def test_a_model_result_is_never_folded_away() -> None:
    nodes = [helper.make_node("Shape", ["x"], ["s"])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert fold_shape_arithmetic(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Shape"]


@pytest.mark.parametrize("n", [MAX_INPUT_ELEMENTS, MAX_INPUT_ELEMENTS + 1])
def test_weights_never_feed_the_folding(n: int) -> None:
    """A Gather of two entries from a constant table is folded only while
    the table is shape-arithmetic sized, never from a weight."""
    table = numpy_helper.from_array(np.arange(n, dtype=np.float32), "table")
    idx = numpy_helper.from_array(np.array([0, 1], np.int64), "idx")
    nodes = [helper.make_node("Gather", ["table", "idx"], ["g"]), helper.make_node("Add", ["x", "g"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[table, idx],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert fold_shape_arithmetic(model) == (1 if n <= MAX_INPUT_ELEMENTS else 0)
