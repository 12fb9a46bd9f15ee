"""Patch-based inference on linalg-on-tensors: the first stage of a network
run patch by patch, so no full-size feature map of the stage is ever live.

The *stage* starts at a function input and runs through spatial ops:
convolutions (``linalg.conv_2d_*``), depthwise convolutions, pooling,
``tensor.pad`` of the spatial dims and element-wise ``linalg.generic`` ops
(bias, batch norm as scale and shift, ReLU, a residual add), and through
*spatially pointwise* ops, which keep the two spatial dims whole but may move
them: ``tensor.expand_shape`` / ``collapse_shape`` that leave each spatial
dim a group of its own, pads of other dims, ``linalg.transpose``, 5-D
poolings whose window and stride are 1 over the spatial dims, element-wise
generics of any rank. That is LRN as IREE's ONNX import writes it (AlexNet,
ZFNet, GoogLeNet): the squares expanded to 5-D, padded over channels,
transposed, summed over channels, transposed back and collapsed. Each value
has its own spatial dims (``Node.spatial``); a patch runs these ops on its
window, no halo. It is cut at a
*split op*, one of its layers (a convolution or a pooling; the cut goes after
the element-wise ops that follow it alone). For an R x C grid over the cut
value's spatial extent each patch

- needs a window of every value before it: the receptive field, computed
  backwards through the stage (a layer with stride s, dilation d and kernel k
  maps output rows ``[a, b)`` to input rows ``[a*s, (b-1)*s + (k-1)*d + 1)``;
  a pad maps its window into its input and keeps only the padding that the
  window covers), so neighbouring patches overlap by the halo, recomputed;
- slices the function input (``tensor.extract_slice``);
- re-runs the stage's ops on its windows, each with the same weights (one
  constant per layer, shared by all patches) and a ``tensor.pad`` only where
  the window crosses the image border (static low/high, the original padding
  value: zero for a convolution, -inf for a max pooling);
- is written into the cut value's full tensor with ``tensor.insert_slice``
  (into a ``tensor.empty``), which IREE turns into in-place updates.

Patches are as equal as the extent allows (the first ``H mod R`` rows of
patches one row taller). Static shapes only; a stage or cut that cannot be
patched is left alone, with the reason.

Three modules, one per step: this one finds the stage (which ops belong to
it, each node's window, padding, spatial dims and MACs per pixel, read once
from the IR); :mod:`serenity_mlir.rewrite.patch_plan` cuts it and plans the
patches (windows, MACs, a quick peak estimate) over those nodes alone;
:mod:`serenity_mlir.rewrite.patch_rewrite` writes a plan into the IR.
``passes/patch.py`` is the pass, ``pipeline/patches.py`` chooses the split
and the grid for a compile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from iree.compiler import ir

from serenity_mlir.rewrite.sites import (
    affine_dims,
    as_op,
    defining_op,
    generic_maps,
    static_shape,
    where,
)

# Layers: op -> (spatial dims of the input and the output, spatial dims of
# the filter / window operand, kind).
LAYERS: dict[str, tuple[tuple[int, int], tuple[int, int], str]] = {
    "linalg.conv_2d_nchw_fchw": ((2, 3), (2, 3), "conv"),
    "linalg.conv_2d_nhwc_hwcf": ((1, 2), (0, 1), "conv"),
    "linalg.conv_2d_nhwc_fhwc": ((1, 2), (1, 2), "conv"),
    "linalg.depthwise_conv_2d_nchw_chw": ((2, 3), (1, 2), "depthwise"),
    "linalg.depthwise_conv_2d_nhwc_hwc": ((1, 2), (0, 1), "depthwise"),
}
for _layout, _sp in (("nchw", (2, 3)), ("nhwc", (1, 2))):
    for _kind in ("sum", "max", "min"):
        LAYERS[f"linalg.pooling_{_layout}_{_kind}"] = (_sp, (0, 1), "pooling")

# Spatially pointwise window ops: 5-D poolings whose window covers the
# depth dim only (ONNX's LRN sums the squares over channels that way): op ->
# the output dims their window dims 0, 1, 2 slide over.
POINTWISE_POOLS: dict[str, tuple[int, int, int]] = {}
for _kind in ("sum", "max", "min"):
    POINTWISE_POOLS[f"linalg.pooling_ndhwc_{_kind}"] = (1, 2, 3)
    POINTWISE_POOLS[f"linalg.pooling_ncdhw_{_kind}"] = (2, 3, 4)

# What an init (``outs``) of a patched op may be made of: values uniform over
# space, rebuilt at the patch's size.
_INIT_OPS = ("tensor.empty", "linalg.fill", "linalg.broadcast", "arith.constant", "linalg.generic")

Region = tuple[int, int, int, int]  # rows [h0, h1), columns [w0, w1)


class NotPatchable(Exception):
    """The stage, split or grid cannot be patched; the message says why."""


@dataclass
class Node:
    """One op of the stage."""

    op: ir.Operation
    kind: str  # conv, depthwise, pooling, pad, elementwise, reshape, transpose, pool_pointwise
    stage_operands: list[int]  # operand numbers that read stage values
    spatial: tuple[int, int] = (2, 3)  # the dims of the result that are the stage's rows and columns
    # Read once from the IR (planning tries hundreds of grids):
    index: int = 0  # in ``Stage.nodes``
    srcs: list[int] = field(default_factory=list)  # the nodes read (-1: the input), per stage operand
    window: tuple[list[int], list[int], list[int]] | None = None  # a layer's kernel, strides, dilations
    pad: tuple[list[int], list[int], list[int]] | None = None  # a pad's low, high, input size
    pixel_macs: int = 0  # MACs per output pixel (layers)
    pixel_bytes: int = 0  # bytes of the result per pixel

    @property
    def result(self) -> ir.Value:
        return self.op.results[0]


@dataclass
class Stage:
    """The spatial stage at one function input, and the layers it may be cut at."""

    input: ir.Value
    spatial: tuple[int, int]  # the spatial dims of the input (each node has its own: ``Node.spatial``)
    nodes: list[Node]
    layers: list[Node]  # the convolutions and poolings, in block order
    end_reason: str = ""  # what stopped the stage
    input_pixel_bytes: int = 0
    cuts: dict[int, tuple[Node, list[Node]] | str] = field(default_factory=dict)  # split -> cut (or why not)

    def value(self, i: int) -> ir.Value:
        return self.input if i < 0 else self.nodes[i].result

    def dims(self, i: int) -> tuple[int, int]:
        """The spatial dims of value ``i`` (-1: the input)."""
        return self.spatial if i < 0 else self.nodes[i].spatial


# --------------------------------------------------------------------------
# Finding the stage


def function_inputs(func: ir.Operation) -> list[ir.Value]:
    """The 4-D tensor inputs of a function body: ``hal.tensor.import``
    results (after IREE's input phase) or tensor block arguments."""
    block = func.regions[0].blocks[0]
    out: list[ir.Value] = [a for a in block.arguments if _rank(a.type) == 4]
    for o in block.operations:
        op = as_op(o)
        if op.name == "hal.tensor.import" and _rank(op.results[0].type) == 4:
            out.append(op.results[0])
    return out


def _rank(t: ir.Type) -> int | None:
    s = static_shape(t)
    return len(s) if s is not None else None


def find_stage(func: ir.Operation) -> Stage:
    """The stage at the function's first 4-D input that has a layer."""
    inputs = function_inputs(func)
    if not inputs:
        raise NotPatchable("the function has no static 4-D tensor input")
    reasons = []
    for x in inputs:
        stage = _stage_at(func, x)
        if stage.layers:
            return stage
        reasons.append(stage.end_reason or "no convolution or pooling reads it")
    raise NotPatchable(f"no spatial stage at the input: {reasons[0]}")


def _stage_at(func: ir.Operation, x: ir.Value) -> Stage:
    # the layout of the first layer in the function fixes the input's
    # spatial dims (NCHW from ONNX, NHWC from TFLite); every value of the
    # stage carries its own (a reshape or a transpose moves them)
    ops = [as_op(o) for o in func.regions[0].blocks[0].operations]
    spatial = next((LAYERS[op.name][0] for op in ops if op.name in LAYERS), (2, 3))
    inside: dict[ir.Value, tuple[int, int]] = {x: spatial}
    nodes: list[Node] = []
    end = ""
    for op in ops:
        reads = [k for k, v in enumerate(op.operands) if v in inside]
        if not reads:
            continue
        try:
            kind, sp = _classify(op, reads, inside)
        except NotPatchable as e:
            end = end or str(e)
            continue
        nodes.append(Node(op, kind, reads, sp))
        inside[op.results[0]] = sp
    index = {n.result: i for i, n in enumerate(nodes)}
    index[x] = -1
    for i, n in enumerate(nodes):
        n.index = i
        n.srcs = [index[n.op.operands[k]] for k in n.stage_operands]
        n.pixel_bytes = _pixel_bytes(n.result, n.spatial)
        if n.kind in ("conv", "depthwise", "pooling"):
            n.window = _layer_params(n.op)
            n.pixel_macs = _pixel_macs(n, n.spatial)
        elif n.kind == "pool_pointwise":
            n.pixel_macs = _pointwise_pool_macs(n)
        elif n.kind == "pad":
            n.pad = _pad_params(n.op, n.spatial)
    layers = [n for n in nodes if n.kind in ("conv", "depthwise", "pooling")]
    return Stage(x, spatial, nodes, layers, end, _pixel_bytes(x, spatial))


def _pixel_bytes(v: ir.Value, spatial: tuple[int, int]) -> int:
    rt = ir.RankedTensorType(v.type)
    shape = list(rt.shape)
    return math.prod(shape[d] for d in range(len(shape)) if d not in spatial) * max(1, rt.element_type.width // 8)  # type: ignore[attr-defined]


def _classify(
    op: ir.Operation, reads: list[int], inside: dict[ir.Value, tuple[int, int]]
) -> tuple[str, tuple[int, int]]:
    """The node kind of ``op`` and the spatial dims of its result, or NotPatchable."""
    if len(op.results) != 1 or _rank(op.results[0].type) is None:
        raise NotPatchable(f"{where(op)} does not give one static 4-D tensor")
    spatial = inside[op.operands[reads[0]]]  # the spatial dims of the first stage value it reads
    if op.name in LAYERS:
        sp, _, kind = LAYERS[op.name]
        if sp != spatial or _rank(op.results[0].type) != 4:
            raise NotPatchable(f"{where(op)} mixes layouts in the stage")
        if reads != [0]:
            raise NotPatchable(f"{where(op)} reads the stage through its weights or init")
        if kind != "pooling" and defining_op(op.operands[1]) is None:
            raise NotPatchable(f"{where(op)} has weights that are a function argument")
        _check_init(op.operands[2], sp)
        return kind, sp
    if op.name == "tensor.pad":
        if len(op.operands) != 1:
            raise NotPatchable(f"{where(op)} has dynamic padding")
        body = [as_op(b) for b in op.regions[0].blocks[0].operations]
        if len(body) != 1:
            raise NotPatchable(f"{where(op)} computes its padding value per element")
        return "pad", spatial
    if op.name == "linalg.generic":
        return "elementwise", _check_elementwise(op, reads, inside)
    if op.name in ("tensor.expand_shape", "tensor.collapse_shape"):
        return "reshape", _reshape_spatial(op, spatial)
    if op.name == "linalg.transpose":
        if reads != [0]:
            raise NotPatchable(f"{where(op)} reads the stage through its init")
        perm = list(ir.DenseI64ArrayAttr(op.attributes["permutation"]))
        sp = (perm.index(spatial[0]), perm.index(spatial[1]))
        _check_init(op.operands[1], sp)
        return "transpose", sp
    if op.name in POINTWISE_POOLS:
        _check_pointwise_pool(op, reads, spatial)
        return "pool_pointwise", spatial
    if _rank(op.results[0].type) != 4:
        raise NotPatchable(f"{where(op)} does not give one static 4-D tensor")
    raise NotPatchable(f"{where(op)} is not a spatial op the patch rewrite handles")


def _reshape_spatial(op: ir.Operation, spatial: tuple[int, int]) -> tuple[int, int]:
    """Where an expand or collapse shape puts the spatial dims: each must
    be a reassociation group of its own (its size and position in the group
    kept), or the reshape mixes rows or columns with other dims."""
    groups = [
        [int(ir.IntegerAttr(d).value) for d in ir.ArrayAttr(g)] for g in ir.ArrayAttr(op.attributes["reassociation"])
    ]
    expand = op.name == "tensor.expand_shape"
    if expand and len(op.operands) != 1:
        raise NotPatchable(f"{where(op)} has a dynamic shape")
    out = []
    for d in spatial:
        if expand:
            # groups are indexed by source dim and list result dims
            if len(groups[d]) != 1:
                raise NotPatchable(f"{where(op)} splits a spatial dim")
            out.append(groups[d][0])
        else:
            j = next((j for j, g in enumerate(groups) if d in g), None)
            if j is None or groups[j] != [d]:
                raise NotPatchable(f"{where(op)} merges a spatial dim with another")
            out.append(j)
    return out[0], out[1]


def _check_pointwise_pool(op: ir.Operation, reads: list[int], spatial: tuple[int, int]) -> None:
    """A 5-D pooling that slides over neither spatial dim: a window of 1 and
    a stride of 1 there, the input as large as the output there."""
    if reads != [0]:
        raise NotPatchable(f"{where(op)} reads the stage through its window or init")
    slide = POINTWISE_POOLS[op.name]
    ins, win, outs = (static_shape(op.operands[k].type) for k in range(3))
    if ins is None or outs is None or win is None:
        raise NotPatchable(f"{where(op)} is dynamic")
    strides = [1] * 3
    if "strides" in op.attributes:
        strides = [int(x) for x in ir.DenseIntElementsAttr(op.attributes["strides"])]
    for d in spatial:
        w = slide.index(d) if d in slide else None  # batch and channels map straight through
        if ins[d] != outs[d] or (w is not None and (win[w] != 1 or strides[w] != 1)):
            raise NotPatchable(f"{where(op)} slides over a spatial dim")
    _check_init(op.operands[2], spatial)


def _pointwise_pool_macs(n: Node) -> int:
    """One per window element per output element, per output pixel."""
    out, win = static_shape(n.result.type), static_shape(n.op.operands[1].type)
    assert out is not None and win is not None
    return math.prod(out[d] for d in range(len(out)) if d not in n.spatial) * math.prod(win)


def _check_init(v: ir.Value, spatial: tuple[int, int]) -> None:
    """An init the patches can rebuild at their own size: tensor.empty,
    linalg.fill of one, a broadcast over the spatial dims (``linalg.broadcast``,
    or a ``linalg.generic`` whose inputs do not vary over space: TOSA's bias),
    a splat constant."""
    src = defining_op(v)
    if src is None or src.name not in _INIT_OPS:
        raise NotPatchable(f"an init is not uniform over space ({src.name if src else 'an argument'})")
    if src.name == "tensor.empty" and len(src.operands) != 0:
        raise NotPatchable(f"{where(src)} is dynamic")
    if src.name == "arith.constant" and not ir.DenseElementsAttr(src.attributes["value"]).is_splat:
        raise NotPatchable(f"{where(src)} is an init that varies over space")
    if src.name == "linalg.broadcast" and not set(spatial) <= set(ir.DenseI64ArrayAttr(src.attributes["dimensions"])):
        raise NotPatchable(f"{where(src)} is an init that varies over space")
    if src.name == "linalg.generic":
        iters = [str(a) for a in ir.ArrayAttr(src.attributes["iterator_types"])]
        n_in, n_out = list(ir.DenseI32ArrayAttr(src.attributes["operandSegmentSizes"]))
        maps = generic_maps(src)
        if len(iters) != _rank(v.type) or any("parallel" not in i for i in iters) or n_out != 1:
            raise NotPatchable(f"{where(src)} is an init that is not a broadcast")
        if maps[n_in] != ir.AffineMap.get_identity(len(iters), context=src.context):
            raise NotPatchable(f"{where(src)} permutes its result")
        for m in maps[:n_in]:
            dims = affine_dims(m)
            if dims is None or any(d in spatial for d in dims if d is not None):
                raise NotPatchable(f"{where(src)} is an init that varies over space")
        for inner in src.regions[0].blocks[0].operations:
            if as_op(inner).name == "linalg.index":
                raise NotPatchable(f"{where(src)} depends on the element index")
        _check_init(src.operands[n_in], spatial)
    if src.name in ("linalg.fill", "linalg.broadcast"):
        _check_init(src.operands[1], spatial)


def _check_elementwise(
    op: ir.Operation, reads: list[int], inside: dict[ir.Value, tuple[int, int]]
) -> tuple[int, int]:
    """Checks an element-wise ``linalg.generic`` over stage values (which
    must share their spatial dims) and gives its result's spatial dims."""
    iters = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if any("parallel" not in i for i in iters):
        raise NotPatchable(f"{where(op)} is not element-wise (it reduces)")
    n_in, n_out = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    if n_out != 1 or len(iters) != _rank(op.results[0].type):
        raise NotPatchable(f"{where(op)} is not a 4-D element-wise op with one result")
    spatial = inside[op.operands[reads[0]]]
    if any(inside[op.operands[k]] != spatial for k in reads):
        raise NotPatchable(f"{where(op)} reads stage values with their spatial dims at other places")
    maps = generic_maps(op)
    identity = ir.AffineMap.get_identity(len(iters), context=op.context)
    if maps[n_in] != identity:
        raise NotPatchable(f"{where(op)} permutes its result")
    for k, x in enumerate(op.operands):
        if k in reads:
            if maps[k] != identity:
                raise NotPatchable(f"{where(op)} does not read the stage element-wise")
            continue
        dims = affine_dims(maps[k])
        if dims is None:
            raise NotPatchable(f"{where(op)} reads an operand through a non-trivial map")
        if k < n_in and any(d in spatial for d in dims if d is not None):
            raise NotPatchable(f"{where(op)} reads an operand that varies over space")
        if k >= n_in:
            _check_init(x, spatial)
    for inner in op.regions[0].blocks[0].operations:
        if as_op(inner).name == "linalg.index":
            raise NotPatchable(f"{where(op)} depends on the element index")
    return spatial


# --------------------------------------------------------------------------
# Per-node geometry, read once while the stage is found


def _layer_params(op: ir.Operation) -> tuple[list[int], list[int], list[int]]:
    """(kernel, strides, dilations) over the two spatial dims."""
    _, fdims, _ = LAYERS[op.name]
    fshape = static_shape(op.operands[1].type)
    assert fshape is not None
    kernel = [fshape[fdims[0]], fshape[fdims[1]]]
    return kernel, _pair(op, "strides"), _pair(op, "dilations")


def _pair(op: ir.Operation, name: str) -> list[int]:
    if name not in op.attributes:
        return [1, 1]
    return [int(x) for x in ir.DenseIntElementsAttr(op.attributes[name])]


def _pad_params(op: ir.Operation, spatial: tuple[int, int]) -> tuple[list[int], list[int], list[int]]:
    low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
    high = list(ir.DenseI64ArrayAttr(op.attributes["static_high"]))
    s = static_shape(op.operands[0].type)
    assert s is not None
    return [low[d] for d in spatial], [high[d] for d in spatial], [s[d] for d in spatial]


def _pixel_macs(n: Node, sp: tuple[int, int]) -> int:
    """Multiply-accumulates of a layer per output pixel (pooling: one per
    window element; element-wise ops and pads count 0)."""
    out = static_shape(n.result.type)
    assert out is not None and n.window is not None
    k = n.window[0]
    per = math.prod(out[d] for d in range(len(out)) if d not in sp) * k[0] * k[1]  # batch x output channels x window
    if n.kind == "conv":
        ins = static_shape(n.op.operands[0].type)
        assert ins is not None
        per *= ins[1 if sp == (2, 3) else 3]
    return per
