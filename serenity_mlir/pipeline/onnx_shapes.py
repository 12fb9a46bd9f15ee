"""Static shapes for an ONNX graph before import: inference and its workarounds.

With every input shape pinned, each value of the graph has a static shape,
and IREE's importer needs them. ONNX's own shape inference (strict, with data
propagation) gives them, except in two cases that real exports hit:

- Shape arithmetic. Exporters often compute a ``Reshape``'s target at run
  time: torch's multi-head attention takes ``Shape`` of a projection,
  slices it and concatenates a head count onto it; its GroupNorm reshapes
  by a computed shape too. Inference then leaves the reshaped tensor
  without a rank (IREE's importer types it as a rank-0 tensor and fails on
  the next op: IREE alone fails the same way) or a dimension unknown (the
  model's result comes out dynamic). :func:`fold_shape_arithmetic`
  evaluates such subgraphs: ``Shape`` of a tensor whose shape is known,
  then every node whose inputs are all constants and whose results are
  small (at most :data:`MAX_FOLD_ELEMENTS` elements), with ONNX's own
  reference evaluator. Folded results become initializers; the nodes go.
- Function ops whose own body ONNX cannot infer (the Constant with an
  attribute reference in MeanVarianceNormalization's): strict inference
  fails on a valid model that IREE lowers. Those ops keep their input's
  shape, so inference runs on a copy where they stand as ``Identity``
  (strictly: a real contradiction is still refused).

:func:`static_shapes_of` applies both only when needed, so a graph that
infers as it is is not touched.
"""

from __future__ import annotations

import math
import re
from typing import Any

# A folded result must be shape-sized: folding never materialises a weight-
# sized tensor that the model computes (a ConstantOfShape of an activation).
MAX_FOLD_ELEMENTS = 64
# ... and every input of a folded node at most this many.
MAX_INPUT_ELEMENTS = 4096

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

    # Only small constants feed the folding: shape arithmetic never reads a
    # weight, and a weight-sized evaluation would be thrown away anyway.
    values: dict[str, Any] = {
        i.name: numpy_helper.to_array(i) for i in model.graph.initializer if math.prod(i.dims) <= MAX_INPUT_ELEMENTS
    }
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
            if const is not None and np.asarray(const[0]).size <= MAX_INPUT_ELEMENTS:
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


class ShapeInferenceFailed(Exception):
    """ONNX's shape inference refused the graph; the message is ONNX's own,
    on one line (every node that failed)."""


def static_shapes_of(model: Any, name: str) -> tuple[Any, list[str]]:
    """The model with its shapes inferred (folded or stood in for where
    needed, see the module's docstring) and a note for each workaround used;
    ``name`` names the file in the notes."""
    notes: list[str] = []
    stand_ins: frozenset[str] = frozenset()
    try:
        model = _infer(model, stand_ins)
    except Exception as e:  # noqa: BLE001 - onnx raises several types
        # ONNX lists one line per node that failed: all of them, on one line.
        text = " ".join(str(e).split())
        inside = _failed_inside_function_bodies(text)
        if not inside:
            raise ShapeInferenceFailed(text) from None
        stand_ins = frozenset(op for op, _ in inside)
        try:
            model = _infer(model, stand_ins)
        except Exception as again:  # noqa: BLE001
            text = " ".join(str(again).split())
            for op, node in inside:  # the stand-in's name for it is not the model's
                text = text.replace(f"(op_type:Identity, node name: {node})", f"(op_type:{op}, node name: {node})")
            raise ShapeInferenceFailed(text) from None
        which = ", ".join(f"{op} '{node}'" for op, node in inside)
        notes.append(f"ONNX shape inference failed inside the function body of {which}: inferred as its input's shape")
    if unshaped_results(model):
        folded = fold_shape_arithmetic(model)
        if folded:
            model = _infer(model, stand_ins)
            notes.append(f"folded {folded} shape-computation node(s) of {name} into constants")
    return model, notes


# One failed node in ONNX's inference message, and whether its error is a
# nested list (the node's function body failed, not the node's own rule).
_INFERENCE_NODE = re.compile(r"\(op_type:(\w+), node name: ([^)]*)\): \[ShapeInferenceError\] (Inference error\(s\):)?")


# Function ops whose result has their first input's shape, and whose body
# ONNX's own inference cannot get through.
SAME_SHAPE_FUNCTION_OPS = frozenset({"MeanVarianceNormalization"})


def _failed_inside_function_bodies(text: str) -> list[tuple[str, str]]:
    """The nodes (op type, name) of an ONNX shape-inference failure when
    every failure is inside the function body of an op of
    :data:`SAME_SHAPE_FUNCTION_OPS`; else []."""
    nodes = _INFERENCE_NODE.findall(text)
    if not nodes or not all(nested and op in SAME_SHAPE_FUNCTION_OPS for op, _, nested in nodes):
        return []
    return [(op, name) for op, name, _ in nodes]


def _infer(model: Any, stand_ins: frozenset[str]) -> Any:
    """ONNX's strict shape inference (with data propagation); the nodes of
    the op types in ``stand_ins`` are inferred as ``Identity`` (on a copy:
    the model keeps its ops and gets the copy's shapes)."""
    import onnx

    if not stand_ins:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for n in probe.graph.node:
        if n.op_type in stand_ins and n.domain in ("", "ai.onnx"):
            n.op_type = "Identity"
            del n.attribute[:]
            del n.input[1:]
    probe = onnx.shape_inference.infer_shapes(probe, strict_mode=True, data_prop=True)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.value_info[:]
    out.graph.value_info.extend(probe.graph.value_info)
    for mine, inferred in zip(out.graph.output, probe.graph.output, strict=True):
        mine.CopyFrom(inferred)
    return out
