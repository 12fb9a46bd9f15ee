"""What kind of op an op is, for the memory model, and small op helpers.

Op tables (views, free ops, inputs, exports, region barriers, control flow,
side-effect-free dialects) and the accessors the graph builder and the
reordering need (tied operands, a dispatch's arguments, values captured by
regions). No policy: :mod:`.body` decides what becomes a node.
"""

from __future__ import annotations

from collections.abc import Iterable

from iree.compiler import ir

from serenity_mlir.ir.mlir import format_location

# Ops whose results alias operand 0 (no new memory).
VIEW_OPS = frozenset(
    {
        "flow.tensor.reshape",
        "flow.tensor.bitcast",
        "flow.tensor.tie_shape",
        "hal.tensor.barrier",
        "hal.tensor.alias",
        "tensor.collapse_shape",
        "tensor.expand_shape",
        "tensor.cast",
        "tensor.reshape",
        "tosa.reshape",
        "stablehlo.reshape",
        "torch_c.from_builtin_tensor",
        "torch_c.to_builtin_tensor",
    }
)
# Ops that hold no activation memory: weights, constants, fresh uninitialised
# buffers (allocated by their first in-place writer).
FREE_OPS = frozenset(
    {
        "util.global.load",
        "arith.constant",
        "flow.tensor.constant",
        "stablehlo.constant",
        "tosa.const",
        "torch.constant.none",
        "torch.constant.int",
        "torch.constant.float",
        "torch.constant.bool",
        "torch.constant.str",
        "torch.vtensor.literal",
        "tensor.empty",
        "flow.tensor.empty",
        "flow.tensor.splat",
        "util.null",
    }
)
# Buffers created by these ops get their memory from their first writer.
# A splat becomes a fill command right before its writer, and a splat value
# that CSE shared between several in-place writers is cloned for each of them
# (copy-on-write): like an empty buffer, its memory comes from the writer.
LAZY_BUFFER_OPS = frozenset({"flow.tensor.empty", "flow.tensor.splat"})
INPUT_OPS = frozenset({"hal.tensor.import"})
# Host-side ops that end IREE's current execution region: a node of its own
# (so the schedule places it) whose results alias its operands.
REGION_BARRIER_OPS = frozenset({"util.optimization_barrier"})
EXPORT_OPS = frozenset({"hal.tensor.export"})
# Views of several tensors at once: result i aliases operand i (the entry
# function's results all pass one ``hal.tensor.barrier join(...)``).
JOIN_OPS = frozenset({"hal.tensor.barrier"})
CONTROL_FLOW_PREFIXES = (
    "scf.",
    "cf.",
    "affine.for",
    "affine.if",
    "stablehlo.while",
    "stablehlo.if",
    "tosa.cond_if",
    "tosa.while_loop",
)
# Dialects whose ops are free of side effects (safe to reorder by data flow).
PURE_DIALECTS = (
    "arith.",
    "math.",
    "tensor.",
    "linalg.",
    "tosa.",
    "stablehlo.",
    "chlo.",
    "torch.",
    "torch_c.",
    "flow.",
    "iree_tensor_ext.",
)
PURE_OPS = frozenset({"util.global.load", "util.null", "util.optimization_barrier"})


def where(op: ir.Operation) -> str:
    return format_location(op.location)


def value_key(v: ir.Value) -> int:
    return hash(v)


def op_key(op: ir.Operation) -> int:
    return hash(op)


def defining_op(v: ir.Value) -> ir.Operation:
    owner = v.owner
    return owner.operation if hasattr(owner, "operation") else owner


def single_use(v: ir.Value) -> bool:
    """True when one op uses ``v``: an in-place write needs no copy. With
    more users IREE copies the value first (copy-on-write)."""
    owners = {hash(use.owner) for use in v.uses}
    return len(owners) <= 1


def is_pure(name: str) -> bool:
    return name in PURE_OPS or name.startswith(PURE_DIALECTS) and name not in ("flow.tensor.trace",)


def label(op: ir.Operation) -> str:
    if op.name == "flow.dispatch" and "entry_points" in op.attributes:
        text = str(op.attributes["entry_points"])
        return text.strip("[]@").split("::@")[-1]
    return op.name


def tied_operands(op: ir.Operation) -> list[int] | None:
    if "tied_operands" not in op.attributes:
        return None
    arr = ir.ArrayAttr(op.attributes["tied_operands"])
    return [ir.IntegerAttr(a).value for a in arr]


def _segments(op: ir.Operation) -> list[int] | None:
    if "operandSegmentSizes" not in op.attributes:
        return None
    return list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))


def dispatch_arguments(op: ir.Operation) -> list[ir.Value]:
    """The ``arguments`` operand segment of a flow.dispatch (after the
    workload), which ``tied_operands`` indexes."""
    seg = _segments(op)
    operands = list(op.operands)
    if seg is None or len(seg) < 2:
        return operands
    return operands[seg[0] : seg[0] + seg[1]]


def all_operands(op: ir.Operation, block: ir.Block) -> Iterable[ir.Value]:
    """Operands, plus values from the body used inside the op's regions (they
    must dominate the op wherever it moves)."""
    yield from op.operands
    if len(op.regions) == 0:
        return
    seen: set[int] = set()
    for region in op.regions:
        for inner_block in region.blocks:
            for inner in inner_block.operations:
                yield from _captured(inner.operation, block, seen)


def _captured(op: ir.Operation, block: ir.Block, seen: set[int]) -> Iterable[ir.Value]:
    for x in op.operands:
        owner = _owner_block(x)
        if owner is not None and owner == block and hash(x) not in seen:
            seen.add(hash(x))
            yield x
    for region in op.regions:
        for b in region.blocks:
            for inner in b.operations:
                yield from _captured(inner.operation, block, seen)


def _owner_block(v: ir.Value) -> ir.Block | None:
    owner = v.owner
    if isinstance(owner, ir.Block):
        return owner
    op = owner.operation if hasattr(owner, "operation") else owner
    return op.block if op.parent is not None else None
