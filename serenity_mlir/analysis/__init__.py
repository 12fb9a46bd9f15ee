"""The dataflow graph of a function body, as IREE will allocate it.

Maps the ops of one single-block function body to the scheduler's pure
:class:`~serenity_mlir.scheduler.graph.Graph` (nodes, sizes, order
constraints, buffer lifetimes) following IREE's allocation rules at the flow
phase (views alias, concats are updated in place, results live outside the
slab), and keeps the op behind each node so a schedule can be applied.

``body`` builds the graph; ``ops`` classifies ops; ``concat`` finds the
concats IREE builds in place; ``types`` sizes tensors; ``functions`` finds
the function whose body runs the model.
"""

from serenity_mlir.analysis.body import MODELS, BodyGraph, build_body_graph
from serenity_mlir.analysis.functions import FUNC_OPS, find_body_function, func_name, public_functions
from serenity_mlir.analysis.ops import INPUT_OPS, all_operands
from serenity_mlir.analysis.types import tensor_bytes

__all__ = [
    "FUNC_OPS",
    "INPUT_OPS",
    "MODELS",
    "BodyGraph",
    "all_operands",
    "build_body_graph",
    "find_body_function",
    "func_name",
    "public_functions",
    "tensor_bytes",
]
