"""Patch-based inference, the IR half: a planned stage
(:func:`serenity_mlir.rewrite.patch_plan.plan`) written as patches.

Each patch slices the function input, re-runs the stage's ops on its
windows (one shared weight per layer, a ``tensor.pad`` only where a window
crosses the image border), and is inserted into the cut value's full tensor
(``tensor.insert_slice`` into a ``tensor.empty``); the original stage ops
and the inits nobody reads any more are then erased. Kept apart from the
planning (:mod:`.patches`), which needs no IR writes and is what the
automatic choice runs many times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iree.compiler import ir

from serenity_mlir.rewrite.apply import sweep_dead
from serenity_mlir.rewrite.patch_plan import Plan, full_region, layer_window, plan
from serenity_mlir.rewrite.patches import Node, Region, find_stage
from serenity_mlir.rewrite.sites import defining_op, static_shape


@dataclass
class PatchOutcome:
    """What :func:`apply_patches` did."""

    plan: Plan
    description: dict[str, Any]


def apply_patches(func: ir.Operation, split: int, grid: tuple[int, int]) -> PatchOutcome:
    """Rewrites the stage of ``func`` at layer ``split`` into a ``grid`` of
    patches (see the module doc); NotPatchable leaves the function untouched."""
    stage = find_stage(func)
    p = plan(stage, split, grid)
    description = p.describe()
    _rewrite(p)
    return PatchOutcome(p, description)


def _rewrite(p: Plan) -> None:
    sp = p.stage.spatial
    anchor = p.cut.op
    full_t = ir.RankedTensorType(p.cut.result.type)
    with anchor.context, anchor.location, ir.InsertionPoint(anchor):
        acc = ir.Operation.create("tensor.empty", results=[full_t]).results[0]
        for need, region in zip(p.regions, p.patch_regions, strict=True):
            x = p.stage.input
            have: Have = {-1: (_slice(x, full_region(x, sp), need[-1], sp), need[-1], sp)}
            for n in p.nodes:
                if n.index in need:
                    have[n.index] = (_patch_op(n, need, have), need[n.index], n.spatial)
            value, got, _ = have[p.cut.index]
            assert got == region
            acc = _insert(value, acc, region, p.cut.spatial)
    p.cut.result.replace_all_uses_with(acc)
    _sweep(anchor.block, [n.op for n in p.nodes])


# node index (-1: the input) -> (its patch value, the region it holds, its spatial dims)
Have = dict[int, tuple[ir.Value, Region, tuple[int, int]]]


def _take(i: int, want: Region, have: Have) -> ir.Value:
    value, got, sp = have[i]
    return _slice(value, got, want, sp)


def _slice(v: ir.Value, got: Region, want: Region, sp: tuple[int, int]) -> ir.Value:
    """``want`` (in the full value's coordinates) out of ``v``, which holds ``got``."""
    if got == want:
        return v
    shape = static_shape(v.type)
    assert shape is not None
    offsets = [0] * len(shape)
    sizes = list(shape)
    offsets[sp[0]], sizes[sp[0]] = want[0] - got[0], want[1] - want[0]
    offsets[sp[1]], sizes[sp[1]] = want[2] - got[2], want[3] - want[2]
    rt = ir.RankedTensorType(v.type)
    return ir.Operation.create(
        "tensor.extract_slice",
        results=[ir.RankedTensorType.get(sizes, rt.element_type, rt.encoding)],
        operands=[v],
        attributes={
            "static_offsets": ir.DenseI64ArrayAttr.get(offsets),
            "static_sizes": ir.DenseI64ArrayAttr.get(sizes),
            "static_strides": ir.DenseI64ArrayAttr.get([1] * len(shape)),
            "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 0, 0, 0]),
        },
    ).results[0]


def _insert(v: ir.Value, dest: ir.Value, region: Region, sp: tuple[int, int]) -> ir.Value:
    shape = static_shape(v.type)
    assert shape is not None
    offsets = [0] * len(shape)
    offsets[sp[0]], offsets[sp[1]] = region[0], region[2]
    return ir.Operation.create(
        "tensor.insert_slice",
        results=[dest.type],
        operands=[v, dest],
        attributes={
            "static_offsets": ir.DenseI64ArrayAttr.get(offsets),
            "static_sizes": ir.DenseI64ArrayAttr.get(shape),
            "static_strides": ir.DenseI64ArrayAttr.get([1] * len(shape)),
            "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 1, 0, 0, 0]),
        },
    ).results[0]


def _patch_type(v: ir.Value, region: Region, sp: tuple[int, int]) -> ir.Type:
    rt = ir.RankedTensorType(v.type)
    shape = list(rt.shape)
    shape[sp[0]] = region[1] - region[0]
    shape[sp[1]] = region[3] - region[2]
    return ir.RankedTensorType.get(shape, rt.element_type, rt.encoding)


def _init(v: ir.Value, t: ir.Type) -> ir.Value:
    """A copy of the uniform init ``v`` at type ``t``."""
    src = defining_op(v)
    assert src is not None
    if src.name == "tensor.empty":
        return ir.Operation.create("tensor.empty", results=[t]).results[0]
    if src.name == "arith.constant":
        splat = ir.DenseElementsAttr(src.attributes["value"]).get_splat_value()
        attr = ir.DenseElementsAttr.get_splat(ir.ShapedType(t), splat)
        return ir.Operation.create("arith.constant", results=[t], attributes={"value": attr}).results[0]
    k = len(src.operands) - 1  # the outs operand (fill, broadcast, generic)
    outs = _init(src.operands[k], t)
    new = src.clone(ir.InsertionPoint.current)
    new.operands[k] = outs
    new.results[0].set_type(t)
    return new.results[0]


def _patch_op(n: Node, need: dict[int, Region], have: Have) -> ir.Value:
    op = n.op
    region = need[n.index]
    sp = n.spatial
    t = _patch_type(n.result, region, sp)
    h0, h1, w0, w1 = region
    if n.kind == "pad":
        assert n.pad is not None
        low, _, size = n.pad
        # the padded window [h0, h1) covers low padding rows [h0, low) and
        # high padding rows [low + size, h1)
        lo = [max(0, min(h1, low[0]) - h0), max(0, min(w1, low[1]) - w0)]
        hi = [max(0, h1 - max(h0, low[0] + size[0])), max(0, w1 - max(w0, low[1] + size[1]))]
        inner = (h0 - low[0] + lo[0], h1 - low[0] - hi[0], w0 - low[1] + lo[1], w1 - low[1] - hi[1])
        x = _take(n.srcs[0], inner, have)
        # the padding of the other dims (channels: LRN) is kept as it is
        lows = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
        highs = list(ir.DenseI64ArrayAttr(op.attributes["static_high"]))
        lows[sp[0]], lows[sp[1]] = lo
        highs[sp[0]], highs[sp[1]] = hi
        if not any(lows) and not any(highs):
            return x
        new = op.clone(ir.InsertionPoint.current)
        new.operands[0] = x
        new.attributes["static_low"] = ir.DenseI64ArrayAttr.get(lows)
        new.attributes["static_high"] = ir.DenseI64ArrayAttr.get(highs)
        new.results[0].set_type(t)
        return new.results[0]
    operands = list(op.operands)
    if n.kind in ("conv", "depthwise", "pooling"):
        assert n.window is not None
        operands[0] = _take(n.srcs[0], layer_window(n.window, region), have)
        operands[2] = _init(op.operands[2], t)
    elif n.kind == "reshape":
        operands[0] = _take(n.srcs[0], region, have)
    elif n.kind in ("transpose", "pool_pointwise"):  # the init is the last operand
        operands[0] = _take(n.srcs[0], region, have)
        operands[-1] = _init(op.operands[-1], t)
    else:
        n_in = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))[0]
        srcs = dict(zip(n.stage_operands, n.srcs, strict=True))
        for k_, x in enumerate(op.operands):
            if k_ in srcs:
                operands[k_] = _take(srcs[k_], region, have)
            elif k_ >= n_in:
                operands[k_] = _init(x, t)
    # the operands first: a clone is inserted before what it reads otherwise
    new = op.clone(ir.InsertionPoint.current)
    for k_, x in enumerate(operands):
        new.operands[k_] = x
    new.results[0].set_type(t)
    if op.name == "tensor.expand_shape":
        shape = static_shape(t)
        assert shape is not None
        new.attributes["static_output_shape"] = ir.DenseI64ArrayAttr.get(shape)
    return new.results[0]


_PURE = (
    "tensor.empty",
    "linalg.fill",
    "linalg.broadcast",
    "linalg.generic",
    "arith.constant",
    "tensor.pad",
    "tensor.extract_slice",
)


def _sweep(block: ir.Block, originals: Sequence[ir.Operation]) -> None:
    """Erases the original stage ops and the inits nobody reads any more."""
    sweep_dead(block, {*_PURE, *(o.name for o in originals)})
