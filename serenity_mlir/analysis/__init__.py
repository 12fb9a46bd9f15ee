"""The dataflow graph of a function body, as IREE will allocate it.

Maps the ops of one single-block function body to the scheduler's pure
:class:`~serenity_mlir.scheduler.graph.Graph` (nodes, sizes, order
constraints, buffer lifetimes) following IREE's allocation rules at the flow
phase (views alias, concats are updated in place, results live outside the
slab), and keeps the op behind each node so a schedule can be applied.
"""

from serenity_mlir.analysis.dataflow import (
    FUNC_OPS,
    INPUT_OPS,
    MODELS,
    BodyGraph,
    Buffer,
    build_body_graph,
    find_body_function,
    public_functions,
    tensor_bytes,
)
from serenity_mlir.analysis.dataflow import _all_operands as all_operands
from serenity_mlir.analysis.dataflow import _func_name as func_name

__all__ = [
    "FUNC_OPS",
    "INPUT_OPS",
    "MODELS",
    "BodyGraph",
    "Buffer",
    "all_operands",
    "build_body_graph",
    "find_body_function",
    "func_name",
    "public_functions",
    "tensor_bytes",
]
