"""Rewriting the sites :mod:`.sites` found: the identities themselves.

Channel-wise: the convolution after a concat becomes a chain of partial
convolutions, each over one piece's channels and the matching slice of the
weights, accumulating into the previous one's result (IREE's compute barrier
between them keeps IREE from detaching and fusing the accumulations).
Kernel-wise: a depthwise convolution or a pooling after a concat becomes one
per piece, concatenated afterwards. The element-wise ops, pads and slices in
between are duplicated per piece; the dead originals are swept.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from iree.compiler import ir

from serenity_mlir.errors import InternalError
from serenity_mlir.rewrite.sites import (
    CHANNEL_WISE,
    DERIVED_ATTR,
    KERNEL_WISE,
    SITE_ATTR,
    Site,
    affine_dims,
    as_op,
    constant_array,
    defining_op,
    generic_maps,
    static_shape,
    where,
    with_dim,
)


@dataclass
class FixedPointLog:
    """What :func:`rewrite_to_fixed_point` did, by the first round's site numbers."""

    applied: list[int] = field(default_factory=list)  # the first-round sites rewritten (groups: every member)
    second_round: dict[int, int] = field(default_factory=dict)  # site -> concats its rewrite produced and rewrote
    skipped: dict[int, str] = field(default_factory=dict)  # chosen but no longer rewritable, and why


def rewrite_to_fixed_point(
    funcs: Sequence[ir.Operation], find: Callable[[], list[Site]], chosen: Collection[int]
) -> FixedPointLog:
    """Rewrites the ``chosen`` sites (numbers of ``find()`` on the module as
    it is now) and then, until there is none left, every rewritable concat
    that a kernel-wise rewrite produced.

    A depthwise convolution or pooling split by a kernel-wise rewrite hands
    its pieces to a new concat, which often feeds a 1x1 convolution: a
    channel-wise site of its own (the paper applies both partitionings
    together). Each rewrite changes the IR around the others (a concat a site
    flattens into gains operands; a second-round concat appears), so the
    sites are found afresh after each one and known again by a number kept
    on their concat (``SITE_ATTR``), removed at the end."""
    first = find()
    for s in first:
        with s.concat.context:
            s.concat.attributes[SITE_ATTR] = _i64(s.index)
    by_index = {s.index: s for s in first}
    wanted: set[int] = set()
    for i in chosen:
        wanted.update(m.index for m in by_index[i].group)
    log = FixedPointLog()
    limit = 4 * sum(len(list(b.operations)) for f in funcs for r in f.regions for b in r.blocks) + 16
    for _ in range(limit):
        current = find()
        nxt = next((s for s in current if s.applicable and s.derived_from is not None), None)
        if nxt is None:
            nxt = next((s for s in current if s.applicable and s.tag in wanted), None)
        if nxt is None:
            break
        for m in nxt.group:
            if m.derived_from is not None:
                log.second_round[m.derived_from] = log.second_round.get(m.derived_from, 0) + 1
            elif m.tag is not None:
                wanted.discard(m.tag)
                log.applied.append(m.tag)
        _rewrite(nxt)
    else:
        raise InternalError("the rewrite did not reach a fixed point")
    for s in find():
        if s.tag in wanted:
            log.skipped[s.tag] = s.reason or "not rewritable after the other rewrites"
        for name in (SITE_ATTR, DERIVED_ATTR):
            if name in s.concat.attributes:
                del s.concat.attributes[name]
    log.applied.sort()
    return log


def _i64(value: int) -> ir.Attribute:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)


def _block_position(op: ir.Operation) -> dict[ir.Operation, int]:
    return {as_op(o): i for i, o in enumerate(op.block.operations)}


def _rewrite(site: Site) -> None:
    pos = _block_position(site.concat)
    chain = sorted(set(site.chain), key=lambda o: pos[o])
    terminals = sorted(set(site.terminals), key=lambda o: pos[o])
    split = site.split or site.pieces
    offsets = []
    off = 0
    for c in split:
        offsets.append(off)
        off += c
    n = len(split)
    d = site.dim
    # (original value, piece index) -> that piece's value
    piece: dict[tuple[ir.Value, int], ir.Value] = {}
    for root in site.roots:
        for i in range(n):
            piece[(root.results[0], i)] = _root_piece(root, d, offsets[i], split[i])
    for op in chain:
        for i in range(n):
            piece[(op.results[0], i)] = _split_chain_op(op, i, d, offsets[i], split[i], piece)
    tag = site.derived_from if site.derived_from is not None else site.tag
    for op in terminals:
        if op.name in CHANNEL_WISE:
            _split_channel_wise(op, d, offsets, split, piece)
        elif op.name == "tensor.concat":
            _flatten_into(op, n, piece)
        else:
            _split_kernel_wise(op, d, offsets, split, piece, tag)
    sweep_dead(site.concat.block)


def _root_piece(root: ir.Operation, d: int, off: int, size: int) -> ir.Value:
    """Channels ``off:off+size`` of the concat ``root``: one of its operands,
    or a slice of one when the group's common split cuts it finer."""
    start = 0
    for x in root.operands:
        shape = static_shape(x.type)
        assert shape is not None
        if start <= off < start + shape[d]:
            with root.context, root.location, ir.InsertionPoint(root):
                return slice_value(x, d, off - start, size)
        start += shape[d]
    raise InternalError(f"the split of {where(root)} does not match its operands")


def _flatten_into(outer: ir.Operation, n: int, piece: dict[tuple[ir.Value, int], ir.Value]) -> None:
    """concat(.., f(concat(x1..xn)), ..) -> concat(.., f(x1), .., f(xn), ..):
    the inner concat is never built and each piece can die on its own."""
    operands: list[ir.Value] = []
    for x in outer.operands:
        if (x, 0) in piece:
            operands.extend(piece[(x, i)] for i in range(n))
        else:
            operands.append(x)
    with outer.context, outer.location, ir.InsertionPoint(outer):
        new = _recreate(outer, operands, [outer.results[0].type])
    outer.results[0].replace_all_uses_with(new.results[0])
    outer.erase()


_PURE = (
    "tensor.empty",
    "linalg.fill",
    "arith.constant",
    "tensor.extract_slice",
    "tensor.pad",
    "tensor.concat",
    "linalg.generic",
)


def sweep_dead(block: ir.Block, names: Iterable[str] = _PURE) -> None:
    """Erases ops named in ``names`` (side-effect free: by default the ones a
    concat rewrite leaves) whose results nobody reads: the original
    concat and the ops between it and the convolutions, the init tensors and
    fills they leave behind, pieces of a branch that was already dead.

    One sweep from the end to the start removes whole dead chains; it is a
    fresh walk each time because the bindings may hand out several Python
    handles for one op and a handle of an erased op must not be touched."""
    names = frozenset(names)
    changed = True
    while changed:
        changed = False
        for op in reversed([as_op(o) for o in block.operations]):
            if op.name in names and op.results and not any(list(r.uses) for r in op.results):
                op.erase()
                changed = True


def _split_chain_op(
    op: ir.Operation, i: int, d: int, off: int, size: int, piece: dict[tuple[ir.Value, int], ir.Value]
) -> ir.Value:
    ctx = op.context
    with ctx, op.location, ir.InsertionPoint(op):
        rtype = with_dim(op.results[0].type, d, size)
        if op.name == "linalg.generic":
            n_in = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))[0]
            maps = generic_maps(op)
            operands = []
            for k, x in enumerate(op.operands):
                if (x, i) in piece:
                    operands.append(piece[(x, i)])
                    continue
                dims = affine_dims(maps[k]) if k < n_in else list(range(len(rtype.shape)))
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
    raise InternalError(f"cannot split {where(op)}")


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
    op: ir.Operation,
    d: int,
    offsets: list[int],
    sizes: list[int],
    piece: dict[tuple[ir.Value, int], ir.Value],
    tag: int | None,
) -> None:
    """depthwise(concat(xi), K) -> concat(depthwise(xi, Ki)); the new concat
    is marked as produced by site ``tag`` (a second-round site)."""
    _, kdim, odim = KERNEL_WISE[op.name]
    x, k, init = op.operands[0], op.operands[1], op.operands[2]
    parts = []
    with op.context, op.location, ir.InsertionPoint(op):
        for i, (off, size) in enumerate(zip(offsets, sizes, strict=True)):
            rtype = with_dim(op.results[0].type, odim, size)
            ki = k if kdim is None else slice_value(k, kdim, off, size)
            init_i = slice_value(init, odim, off, size)
            new = _recreate(op, [piece[(x, i)], ki, init_i], [rtype])
            parts.append(new.results[0])
        cat = ir.Operation.create(
            "tensor.concat",
            results=[op.results[0].type],
            operands=parts,
            attributes={"dim": _i64(odim)},
        )
        if tag is not None:
            cat.attributes[DERIVED_ATTR] = _i64(tag)
    op.results[0].replace_all_uses_with(cat.results[0])
    op.erase()


def slice_value(v: ir.Value, dim: int, off: int, size: int) -> ir.Value:
    """``v[..., off:off+size (on dim), ...]``: a new constant when ``v`` is a
    constant (sliced now, at compile time), a smaller ``tensor.empty`` /
    ``linalg.fill`` when it is one, a ``tensor.extract_slice`` otherwise.
    Needs an active context, location and insertion point."""
    import numpy as np

    full = static_shape(v.type)
    assert full is not None
    if full[dim] == size:
        return v
    rtype = with_dim(v.type, dim, size)
    src = defining_op(v)
    if src is not None and src.name == "arith.constant":
        attr = ir.DenseElementsAttr(src.attributes["value"])
        if attr.is_splat:
            new_attr = ir.DenseElementsAttr.get_splat(rtype, attr.get_splat_value())
        else:
            arr = constant_array(v)
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
                c = as_op(inner).clone(ir.InsertionPoint(nb))
                for k, x in enumerate(c.operands):
                    if x in mapping:
                        c.operands[k] = mapping[x]
                for r_old, r_new in zip(as_op(inner).results, c.results, strict=True):
                    mapping[r_old] = r_new
    return new
