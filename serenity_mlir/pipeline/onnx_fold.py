"""Folds an ONNX graph's shape arithmetic into constants, before import.

Exporters often compute a ``Reshape``'s target shape at run time: torch's
multi-head attention, for one, takes ``Shape`` of a projection, slices it and
concatenates a head count onto it. With every input shape pinned those values
are constants, but ONNX shape inference (even with data propagation) leaves
the reshaped tensor without a rank, and IREE's importer then types it as a
rank-0 tensor and fails on the next op (IREE alone fails the same way); or
it leaves a dimension unknown (GroupNorm's export), which makes the model's
result dynamic.

:func:`fold_shape_arithmetic` evaluates such subgraphs: ``Shape`` of a
tensor whose shape is known, then every node whose inputs are all constants
and whose results are small (shape-sized, at most :data:`MAX_FOLD_ELEMENTS`
elements), with ONNX's own reference evaluator. Folded results become
initializers; the nodes go. It runs only when shape inference left some
node result without a static shape, so a graph that imports as it is is not touched.
"""

from __future__ import annotations

from typing import Any

# A folded result must be shape-sized: folding never materialises a weight-
# sized tensor that the model computes (a ConstantOfShape of an activation).
MAX_FOLD_ELEMENTS = 64

# Ops whose value depends on more than their inputs.
_NOT_FOLDABLE = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli",
     "Loop", "Scan", "If", "Dropout"}
)  # fmt: skip


def unshaped_results(model: Any) -> list[tuple[str, str, str]]:
    """(op type, node name, result) for each node result that shape inference
    left without a static shape (no rank, or a dimension it could not
    compute), in graph order."""
    shaped = set(static_shapes(model)) | {i.name for i in model.graph.initializer}
    return [(n.op_type, n.name, o) for n in model.graph.node for o in n.output if o and o not in shaped]


def static_shapes(model: Any) -> dict[str, list[int]]:
    """Every value whose shape inference (or the file) gives all dimensions."""
    out: dict[str, list[int]] = {}
    for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            out[vi.name] = [d.dim_value for d in tt.shape.dim]
    return out


def _shape_value(node: Any, dims: list[int]) -> Any:
    import numpy as np

    start, end = 0, len(dims)
    for a in node.attribute:
        if a.name == "start":
            start = a.i
        elif a.name == "end":
            end = a.i
    return np.array(dims[slice(start, end)], dtype=np.int64)


def _evaluate(model: Any, node: Any, values: dict[str, Any]) -> list[Any] | None:
    """The node's results from constant inputs (ONNX's reference evaluator on
    a one-node graph), or None when it cannot be evaluated."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    inputs = [i for i in node.input if i]
    graph = helper.make_graph(
        [node],
        "fold",
        [],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output if o],
        [numpy_helper.from_array(values[i], i) for i in inputs],
    )
    one = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    try:
        results = ReferenceEvaluator(one).run(None, {})
    except Exception:  # noqa: BLE001 - an op the evaluator lacks is simply left to IREE
        return None
    return list(results)


def fold_shape_arithmetic(model: Any) -> int:
    """Folds, in place, the nodes whose results are known constants (see the
    module's docstring); returns how many nodes were folded."""
    import numpy as np
    from onnx import numpy_helper

    values: dict[str, Any] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    shapes = static_shapes(model)
    graph_outputs = {o.name for o in model.graph.output}
    folded: list[Any] = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type in _NOT_FOLDABLE or not node.output:
            continue
        results: list[Any] | None
        if node.op_type == "Constant":
            # Its value feeds the folding; the node itself stays as it is.
            const = _evaluate(model, node, values)
            if const is not None:
                values[node.output[0]] = np.asarray(const[0])
            continue
        if any(o in graph_outputs for o in node.output):
            continue  # a result of the model stays computed by it
        if node.op_type == "Shape" and node.input[0] in shapes:
            results = [_shape_value(node, shapes[node.input[0]])]
        elif all(i in values for i in node.input if i) and any(node.input):
            results = _evaluate(model, node, values)
        else:
            continue
        if results is None or any(np.asarray(r).size > MAX_FOLD_ELEMENTS for r in results):
            continue
        for name, r in zip(node.output, results, strict=True):
            if name:
                values[name] = np.asarray(r)
        folded.append(node)
    if not folded:
        return 0
    # Only the results something still reads become initializers.
    folded_ids = {id(n) for n in folded}
    kept = [n for n in model.graph.node if id(n) not in folded_ids]
    read = {i for n in kept for i in n.input} | graph_outputs
    made = {o for n in folded for o in n.output if o}
    have = {i.name for i in model.graph.initializer}
    for name in sorted(made & read - have):
        model.graph.initializer.append(numpy_helper.from_array(values[name], name))
    del model.graph.node[:]
    model.graph.node.extend(kept)
    stale = [vi for vi in model.graph.value_info if vi.name in made]
    for vi in stale:
        model.graph.value_info.remove(vi)
    return len(folded)
