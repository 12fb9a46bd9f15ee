"""Identity graph rewriting (SERENITY's second lever) on linalg-on-tensors.

A ``tensor.concat`` that feeds a convolution keeps all of its inputs alive in
one buffer until the convolution runs. Two identities let each input die as
soon as its own share of the work is done, and the concat is never built:

- channel-wise partitioning:
  ``conv(concat(x1..xn), W) = sum_i conv(xi, Wi)``, ``Wi`` the input-channel
  slice of ``W`` that multiplies ``xi``. linalg convolutions accumulate into
  their ``outs`` operand, so the sum is a chain: the first partial conv starts
  from the original init (which carries the bias, so the bias is added once)
  and each later one accumulates into the previous result. No extra add ops.
- kernel-wise partitioning:
  ``depthwise(concat(x1..xn), K) = concat(depthwise(xi, Ki))``, and the same
  for pooling (max, min, sum: global average pooling after IREE's input
  phase), which also works channel by channel.

Between the concat and the convolution the matcher looks through ops that
commute with a split along the concat dimension: element-wise
``linalg.generic`` ops (ReLU, batch norm folded to scale/shift: their other
operands are sliced to the piece's channels), ``tensor.pad`` that does not pad
the channel dimension, and ``tensor.extract_slice`` that keeps all channels
(DARTS' factorized reduce shifts the image by one pixel that way). Each such
op is duplicated per piece.

A concat is a *site*; it is rewritten only when every use, through such
ops, ends in a convolution with constant weights: if anything else reads the
concat (or a value derived from it) the concatenated buffer has to exist
anyway and nothing is gained. Grouped convolutions that are not depthwise
and convolutions whose weights are not compile-time constants are left
alone. Weights are sliced at compile time (new ``arith.constant`` ops).

This module is pure IR matching and rewriting with IREE's Python bindings;
``transforms/rewrite_pass.py`` wraps it as the ``serenity-rewrite`` pass and
``pipeline.py`` decides per site whether the rewrite lowers the scheduled
peak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from iree.compiler import ir

from serenity_mlir.errors import InternalError
from serenity_mlir.ir.mlir import format_location

# Channel-wise partitioning: op -> (channel dim of the input, input-channel dim of the filter).
CHANNEL_WISE = {
    "linalg.conv_2d_nchw_fchw": (1, 1),
    "linalg.conv_2d_nhwc_hwcf": (3, 2),
    "linalg.conv_2d_nhwc_fhwc": (3, 3),
    "linalg.conv_1d_ncw_fcw": (1, 1),
    "linalg.conv_1d_nwc_wcf": (2, 1),
    "linalg.conv_3d_ncdhw_fcdhw": (1, 1),
}
# Kernel-wise partitioning: op -> (channel dim of the input, of the filter
# (None: the op has no per-channel weights), of the output).
KERNEL_WISE: dict[str, tuple[int, int | None, int]] = {
    "linalg.depthwise_conv_2d_nchw_chw": (1, 0, 1),
    "linalg.depthwise_conv_2d_nhwc_hwc": (3, 2, 3),
    "linalg.depthwise_conv_1d_ncw_cw": (1, 0, 1),
    "linalg.depthwise_conv_1d_nwc_wc": (2, 1, 2),
}
# Pooling works channel by channel like a depthwise convolution whose window
# operand is only a shape: pool(concat(xi)) = concat(pool(xi)). (Global
# average pooling becomes a sum pool and a division after IREE's input phase.)
for _layout, _c in (("nchw", 1), ("nhwc", 3)):
    for _kind in ("sum", "max", "min"):
        KERNEL_WISE[f"linalg.pooling_{_layout}_{_kind}"] = (_c, None, _c)
POOLING = frozenset(k for k in KERNEL_WISE if k.startswith("linalg.pooling_"))
GROUPED = (
    "linalg.conv_2d_ngchw_fgchw",
    "linalg.conv_2d_ngchw_gfchw",
    "linalg.conv_2d_nhwgc_gfhwc",
    "linalg.conv_2d_ngchw_gfchw_q",
    "linalg.conv_2d_nhwgc_gfhwc_q",
    "linalg.depthwise_conv_2d_nhwc_hwcm",
)


@dataclass
class Site:
    """One ``tensor.concat`` and what the matcher found behind it."""

    index: int
    concat: ir.Operation
    location: str
    dim: int
    pieces: list[int]  # channel count of each concat operand
    applicable: bool = False
    reason: str = ""
    kind: str = "none"  # channel-wise, kernel-wise, mixed
    chain: list[ir.Operation] = field(default_factory=list)
    terminals: list[ir.Operation] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "location": self.location,
            "pieces": len(self.pieces),
            "channels": self.pieces,
            "applicable": self.applicable,
            "kind": self.kind,
            "convolutions": [t.name for t in self.terminals] if self.applicable else [],
            "pushed_through": [o.name for o in self.chain] if self.applicable else [],
            "reason": self.reason,
        }


class _NotRewritable(Exception):
    pass


def _op(x: Any) -> ir.Operation:
    return x.operation if hasattr(x, "operation") else x


def _users(v: ir.Value) -> list[tuple[ir.Operation, int]]:
    return [(_op(u.owner), u.operand_number) for u in v.uses]


def _where(op: ir.Operation) -> str:
    return f"{op.name} at {format_location(op.location)}"


def _static_shape(t: ir.Type) -> list[int] | None:
    if not isinstance(t, ir.RankedTensorType):
        return None
    rt = ir.RankedTensorType(t)
    if not rt.has_static_shape:
        return None
    return list(rt.shape)


def _with_dim(t: ir.Type, dim: int, size: int) -> ir.Type:
    rt = ir.RankedTensorType(t)
    shape = list(rt.shape)
    shape[dim] = size
    return ir.RankedTensorType.get(shape, rt.element_type, rt.encoding)


def _constant_array(v: ir.Value) -> Any | None:
    """The value of a dense ``arith.constant`` as a numpy array (None when
    ``v`` is not one, or the elements cannot be read: resources, bf16)."""
    import numpy as np

    if not isinstance(v.owner, ir.Operation | ir.OpView):
        return None
    op = _op(v.owner)
    if op.name != "arith.constant" or not isinstance(op.attributes["value"], ir.DenseElementsAttr):
        return None
    try:
        return np.array(ir.DenseElementsAttr(op.attributes["value"]))
    except Exception:  # noqa: BLE001 - the bindings raise several types for unreadable data
        return None


def _defining_op(v: ir.Value) -> ir.Operation | None:
    owner = v.owner
    if isinstance(owner, ir.Block):
        return None
    return _op(owner)


def find_sites(func: ir.Operation, first_index: int = 0) -> list[Site]:
    """Every ``tensor.concat`` in the function's blocks, with the verdict of
    the matcher (and why a site cannot be rewritten); numbered from
    ``first_index`` (sites are numbered across a module)."""
    sites: list[Site] = []
    for region in func.regions:
        for block in region.blocks:
            for op in block.operations:
                o = _op(op)
                if o.name == "tensor.concat":
                    sites.append(_analyse(first_index + len(sites), o))
    _exclude_overlaps(sites)
    return sites


def _exclude_overlaps(sites: list[Site]) -> None:
    """An op between two concats and their convolutions (an add of values
    derived from both) would be split by the first rewrite and erased under
    the second: only the first such site stays rewritable."""
    claimed: list[tuple[ir.Operation, int]] = []
    for s in sites:
        if not s.applicable:
            continue
        ops = [*s.chain, *s.terminals]
        other = next((i for op in ops for c, i in claimed if c == op), None)
        if other is not None:
            s.applicable, s.kind, s.chain, s.terminals = False, "none", [], []
            s.reason = f"shares ops with site {other} (rewrite that one)"
            continue
        claimed.extend((op, s.index) for op in ops)


def _analyse(index: int, concat: ir.Operation) -> Site:
    dim = ir.IntegerAttr(concat.attributes["dim"]).value
    shapes = [_static_shape(x.type) for x in concat.operands]
    site = Site(index, concat, format_location(concat.location), dim, [s[dim] if s else -1 for s in shapes])
    try:
        if _static_shape(concat.results[0].type) is None or any(s is None for s in shapes):
            raise _NotRewritable("dynamic shapes")
        _walk(site)
    except _NotRewritable as e:
        site.reason = str(e)
        site.chain, site.terminals = [], []
        return site
    kinds = {"channel-wise" if t.name in CHANNEL_WISE else "kernel-wise" for t in site.terminals}
    site.kind = kinds.pop() if len(kinds) == 1 else "mixed"
    site.applicable = True
    return site


def _walk(site: Site) -> None:
    """Follows every use of the concat through split-commuting ops; fills
    ``site.chain`` and ``site.terminals`` or raises _NotRewritable."""
    chain_values: set[ir.Value] = {site.concat.results[0]}
    work = [site.concat.results[0]]
    seen: set[ir.Operation] = set()
    while work:
        v = work.pop()
        users = _users(v)
        if not users:
            continue
        for op, _ in users:
            if op in seen:
                continue
            name = op.name
            if name in CHANNEL_WISE or name in KERNEL_WISE:
                _check_conv(site, op, chain_values)
                site.terminals.append(op)
            elif name in GROUPED:
                raise _NotRewritable(f"grouped convolution that is not depthwise ({_where(op)})")
            elif name == "linalg.generic":
                _check_elementwise(site, op, chain_values)
                site.chain.append(op)
            elif name == "tensor.pad":
                _check_pad(site, op)
                site.chain.append(op)
            elif name == "tensor.extract_slice":
                _check_slice(site, op)
                site.chain.append(op)
            else:
                raise _NotRewritable(f"the concat (or a value computed from it) is also used by {_where(op)}")
            seen.add(op)
            if op not in site.terminals:
                chain_values.add(op.results[0])
                work.append(op.results[0])
    if not site.terminals:
        raise _NotRewritable("no convolution reads the concat")
    for op in [*site.chain, *site.terminals]:
        if _block_of(op) != _block_of(site.concat):
            raise _NotRewritable(f"{_where(op)} is in another block than the concat")


def _block_of(op: ir.Operation) -> ir.Block:
    return op.block


def _check_conv(site: Site, op: ir.Operation, chain_values: set[ir.Value]) -> None:
    if op.operands[0] not in chain_values:
        raise _NotRewritable(f"the concat reaches {_where(op)} as its filter, not its input")
    for k in range(1, len(op.operands)):
        if op.operands[k] in chain_values:
            raise _NotRewritable(f"the concat reaches {_where(op)} as its filter or accumulator")
    in_dim = CHANNEL_WISE[op.name][0] if op.name in CHANNEL_WISE else KERNEL_WISE[op.name][0]
    if in_dim != site.dim:
        raise _NotRewritable(f"the concat joins dim {site.dim} but {_where(op)} reads channels on dim {in_dim}")
    if op.name not in POOLING and _constant_array(op.operands[1]) is None:
        raise _NotRewritable(f"the weights of {_where(op)} are not a compile-time constant")
    if len(op.results) != 1 or _static_shape(op.results[0].type) is None:
        raise _NotRewritable(f"{_where(op)} has a dynamic result")


def _affine_dims(m: ir.AffineMap) -> list[int | None] | None:
    """Per result of ``m``: the loop dim it reads, None for a constant, or
    None overall when a result is any other expression."""
    out: list[int | None] = []
    for e in m.results:
        if isinstance(e, ir.AffineDimExpr):
            out.append(ir.AffineDimExpr(e).position)
        elif isinstance(e, ir.AffineConstantExpr):
            out.append(None)
        else:
            return None
    return out


def _generic_maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]


def _check_elementwise(site: Site, op: ir.Operation, chain_values: set[ir.Value]) -> None:
    iters = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if any("parallel" not in i for i in iters):
        raise _NotRewritable(f"{_where(op)} is not element-wise (it reduces)")
    n_in, n_out = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    if n_out != 1 or len(op.results) != 1:
        raise _NotRewritable(f"{_where(op)} has several results")
    rank = len(iters)
    maps = _generic_maps(op)
    identity = ir.AffineMap.get_identity(rank, context=op.context)
    if maps[n_in] != identity:
        raise _NotRewritable(f"{_where(op)} permutes its result")
    for k in range(n_in):
        x = op.operands[k]
        if x in chain_values:
            if maps[k] != identity:
                raise _NotRewritable(f"{_where(op)} does not read the concat element-wise")
        else:
            dims = _affine_dims(maps[k])
            if dims is None:
                raise _NotRewritable(f"{_where(op)} reads an operand through a non-trivial map")
            if site.dim in dims and _static_shape(x.type) is None:
                raise _NotRewritable(f"{_where(op)} has an operand of dynamic shape")
    for inner in op.regions[0].blocks[0].operations:
        if _op(inner).name == "linalg.index":
            raise _NotRewritable(f"{_where(op)} depends on the element index")


def _check_pad(site: Site, op: ir.Operation) -> None:
    low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
    high = list(ir.DenseI64ArrayAttr(op.attributes["static_high"]))
    if len(op.operands) != 1:
        raise _NotRewritable(f"{_where(op)} has dynamic padding")
    if low[site.dim] != 0 or high[site.dim] != 0:
        raise _NotRewritable(f"{_where(op)} pads the concatenated dimension")
    body = [_op(o) for o in op.regions[0].blocks[0].operations]
    if len(body) != 1:
        raise _NotRewritable(f"{_where(op)} computes its padding value per element")


def _check_slice(site: Site, op: ir.Operation) -> None:
    if len(op.operands) != 1:
        raise _NotRewritable(f"{_where(op)} has dynamic offsets or sizes")
    src = _static_shape(op.operands[0].type)
    res = _static_shape(op.results[0].type)
    if src is None or res is None or len(src) != len(res):
        raise _NotRewritable(f"{_where(op)} drops dimensions")
    offsets = list(ir.DenseI64ArrayAttr(op.attributes["static_offsets"]))
    sizes = list(ir.DenseI64ArrayAttr(op.attributes["static_sizes"]))
    strides = list(ir.DenseI64ArrayAttr(op.attributes["static_strides"]))
    d = site.dim
    if offsets[d] != 0 or sizes[d] != src[d] or strides[d] != 1:
        raise _NotRewritable(f"{_where(op)} slices the concatenated dimension")


# --------------------------------------------------------------------------
# Rewriting


def apply_sites(sites: Iterable[Site]) -> int:
    """Rewrites the given (applicable) sites of ``func``; returns how many."""
    count = 0
    for s in sites:
        if not s.applicable:
            raise InternalError(f"site {s.index} at {s.location} is not rewritable: {s.reason}")
        _rewrite(s)
        count += 1
    return count


def _block_position(op: ir.Operation) -> dict[ir.Operation, int]:
    return {_op(o): i for i, o in enumerate(op.block.operations)}


def _rewrite(site: Site) -> None:
    pos = _block_position(site.concat)
    chain = sorted(set(site.chain), key=lambda o: pos[o])
    terminals = sorted(set(site.terminals), key=lambda o: pos[o])
    offsets = []
    off = 0
    for c in site.pieces:
        offsets.append(off)
        off += c
    n = len(site.pieces)
    # (original value, piece index) -> that piece's value
    piece: dict[tuple[ir.Value, int], ir.Value] = {}
    for i in range(n):
        piece[(site.concat.results[0], i)] = site.concat.operands[i]
    d = site.dim
    for op in chain:
        for i in range(n):
            piece[(op.results[0], i)] = _split_chain_op(op, i, d, offsets[i], site.pieces[i], piece)
    for op in terminals:
        if op.name in CHANNEL_WISE:
            _split_channel_wise(op, d, offsets, site.pieces, piece)
        else:
            _split_kernel_wise(op, d, offsets, site.pieces, piece)
    _sweep_dead(site.concat.block)


_PURE = (
    "tensor.empty",
    "linalg.fill",
    "arith.constant",
    "tensor.extract_slice",
    "tensor.pad",
    "tensor.concat",
    "linalg.generic",
)


def _sweep_dead(block: ir.Block) -> None:
    """Erases side-effect-free ops whose results nobody reads: the original
    concat and the ops between it and the convolutions, the init tensors and
    fills they leave behind, pieces of a branch that was already dead.

    One sweep from the end to the start removes whole dead chains; it is a
    fresh walk each time because the bindings may hand out several Python
    handles for one op and a handle of an erased op must not be touched."""
    changed = True
    while changed:
        changed = False
        for op in reversed([_op(o) for o in block.operations]):
            if op.name in _PURE and op.results and not any(list(r.uses) for r in op.results):
                op.erase()
                changed = True


def _split_chain_op(
    op: ir.Operation, i: int, d: int, off: int, size: int, piece: dict[tuple[ir.Value, int], ir.Value]
) -> ir.Value:
    ctx = op.context
    with ctx, op.location, ir.InsertionPoint(op):
        rtype = _with_dim(op.results[0].type, d, size)
        if op.name == "linalg.generic":
            n_in = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))[0]
            maps = _generic_maps(op)
            operands = []
            for k, x in enumerate(op.operands):
                if (x, i) in piece:
                    operands.append(piece[(x, i)])
                    continue
                dims = _affine_dims(maps[k]) if k < n_in else list(range(len(rtype.shape)))
                assert dims is not None
                if d in dims:
                    operands.append(slice_value(x, dims.index(d), off, size))
                else:
                    operands.append(x)
            return _recreate(op, operands, [rtype]).results[0]
        if op.name == "tensor.pad":
            return _recreate(op, [piece[(op.operands[0], i)]], [rtype]).results[0]
        if op.name == "tensor.extract_slice":
            sizes = list(ir.DenseI64ArrayAttr(op.attributes["static_sizes"]))
            sizes[d] = size
            return _recreate(
                op, [piece[(op.operands[0], i)]], [rtype], {"static_sizes": ir.DenseI64ArrayAttr.get(sizes)}
            ).results[0]
    raise InternalError(f"cannot split {_where(op)}")


def _split_channel_wise(
    op: ir.Operation, d: int, offsets: list[int], sizes: list[int], piece: dict[tuple[ir.Value, int], ir.Value]
) -> None:
    """conv(concat(xi), W) -> acc = init; acc = conv(xi, Wi, acc) for each i
    (with a barrier between the partial convolutions, see ``_barrier``)."""
    fdim = CHANNEL_WISE[op.name][1]
    x, w, init = op.operands[0], op.operands[1], op.operands[2]
    acc = init
    with op.context, op.location, ir.InsertionPoint(op):
        for i, (off, size) in enumerate(zip(offsets, sizes, strict=True)):
            wi = slice_value(w, fdim, off, size)
            part = op.clone(ir.InsertionPoint(op))
            part.operands[0] = piece[(x, i)]
            part.operands[1] = wi
            part.operands[2] = acc
            acc = part.results[0]
            if i < len(sizes) - 1:
                acc = _barrier(acc)
    op.results[0].replace_all_uses_with(acc)
    op.erase()


def _barrier(v: ir.Value) -> ir.Value:
    """``iree_tensor_ext.compute_barrier.start``: keeps IREE from undoing the chain.

    IREE's ``DetachElementwiseFromNamedOps`` splits a convolution whose init
    is produced by another linalg op into a zero-init convolution plus an
    element-wise add, and element-wise fusion then merges the adds of all
    partial convolutions into one dispatch that reads every partial result at
    once (seen on DARTS: three partials live together, no memory saved). With
    a non-linalg op between one partial convolution and the next one's init,
    the detach does not fire and each partial convolution accumulates into
    the previous result in place (its dispatch result is tied to the
    accumulator). IREE's compute barrier is removed after dispatch formation,
    so unlike ``util.optimization_barrier`` (which this pass used before) it
    does not end IREE's execution region: the whole body stays one region
    with one packed slab, and the accumulator costs nothing extra."""
    return ir.Operation.create("iree_tensor_ext.compute_barrier.start", results=[v.type], operands=[v]).results[0]


def _split_kernel_wise(
    op: ir.Operation, d: int, offsets: list[int], sizes: list[int], piece: dict[tuple[ir.Value, int], ir.Value]
) -> None:
    """depthwise(concat(xi), K) -> concat(depthwise(xi, Ki))."""
    _, kdim, odim = KERNEL_WISE[op.name]
    x, k, init = op.operands[0], op.operands[1], op.operands[2]
    parts = []
    with op.context, op.location, ir.InsertionPoint(op):
        for i, (off, size) in enumerate(zip(offsets, sizes, strict=True)):
            rtype = _with_dim(op.results[0].type, odim, size)
            ki = k if kdim is None else slice_value(k, kdim, off, size)
            init_i = slice_value(init, odim, off, size)
            new = _recreate(op, [piece[(x, i)], ki, init_i], [rtype])
            parts.append(new.results[0])
        cat = ir.Operation.create(
            "tensor.concat",
            results=[op.results[0].type],
            operands=parts,
            attributes={"dim": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), odim)},
        )
    op.results[0].replace_all_uses_with(cat.results[0])
    op.erase()


def slice_value(v: ir.Value, dim: int, off: int, size: int) -> ir.Value:
    """``v[..., off:off+size (on dim), ...]``: a new constant when ``v`` is a
    constant (sliced now, at compile time), a smaller ``tensor.empty`` /
    ``linalg.fill`` when it is one, a ``tensor.extract_slice`` otherwise.
    Needs an active context, location and insertion point."""
    import numpy as np

    full = _static_shape(v.type)
    assert full is not None
    if full[dim] == size:
        return v
    rtype = _with_dim(v.type, dim, size)
    src = _defining_op(v)
    if src is not None and src.name == "arith.constant":
        attr = ir.DenseElementsAttr(src.attributes["value"])
        if attr.is_splat:
            new_attr = ir.DenseElementsAttr.get_splat(rtype, attr.get_splat_value())
        else:
            arr = _constant_array(v)
            if arr is not None:
                index = [slice(None)] * arr.ndim
                index[dim] = slice(off, off + size)
                new_attr = ir.DenseElementsAttr.get(np.ascontiguousarray(arr[tuple(index)]), type=rtype)
            else:
                new_attr = None
        if new_attr is not None:
            return ir.Operation.create("arith.constant", results=[rtype], attributes={"value": new_attr}).results[0]
    if src is not None and src.name == "tensor.empty" and not src.operands:
        return ir.Operation.create("tensor.empty", results=[rtype]).results[0]
    if src is not None and src.name == "linalg.fill" and len(src.operands) == 2:
        outs = slice_value(src.operands[1], dim, off, size)
        return _recreate(src, [src.operands[0], outs], [rtype]).results[0]
    rank = len(full)
    offsets = [0] * rank
    offsets[dim] = off
    sizes = list(full)
    sizes[dim] = size
    return ir.Operation.create(
        "tensor.extract_slice",
        results=[rtype],
        operands=[v],
        attributes={
            "static_offsets": ir.DenseI64ArrayAttr.get(offsets),
            "static_sizes": ir.DenseI64ArrayAttr.get(sizes),
            "static_strides": ir.DenseI64ArrayAttr.get([1] * rank),
            "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 0, 0, 0]),
        },
    ).results[0]


def _recreate(
    op: ir.Operation,
    operands: list[ir.Value],
    result_types: list[ir.Type],
    overrides: dict[str, ir.Attribute] | None = None,
) -> ir.Operation:
    """A copy of ``op`` with new operands and result types (``clone`` keeps
    the result types): same attributes and a copy of its region bodies.
    Inserted at the current insertion point."""
    attrs = {name: op.attributes[name] for name in op.attributes}
    attrs.pop("linalg.memoized_indexing_maps", None)
    attrs.update(overrides or {})
    new = ir.Operation.create(
        op.name, results=result_types, operands=operands, attributes=attrs, regions=len(op.regions), loc=op.location
    )
    for old_region, new_region in zip(op.regions, new.regions, strict=True):
        for old_block in old_region.blocks:
            nb = ir.Block.create_at_start(new_region, [a.type for a in old_block.arguments])
            mapping: dict[ir.Value, ir.Value] = dict(zip(old_block.arguments, nb.arguments, strict=True))
            for inner in old_block.operations:
                c = _op(inner).clone(ir.InsertionPoint(nb))
                for k, x in enumerate(c.operands):
                    if x in mapping:
                        c.operands[k] = mapping[x]
                for r_old, r_new in zip(_op(inner).results, c.results, strict=True):
                    mapping[r_old] = r_new
    return new
