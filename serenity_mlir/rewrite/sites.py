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

This module finds the sites and says why one cannot be rewritten;
:mod:`.apply` rewrites them (pure IR matching and rewriting with IREE's
Python bindings). ``passes/rewrite.py`` wraps both as the ``serenity-rewrite``
pass and ``pipeline/rewrite.py`` decides per site whether the rewrite lowers
the scheduled peak.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from iree.compiler import ir

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


# Discardable attributes the rewrite puts on concats while it works (and
# removes before the module is written): a site's number, so it is known
# again after other rewrites changed the IR around it, and the number of the
# site whose kernel-wise rewrite produced a concat (a second-round site).
SITE_ATTR = "serenity.site"
DERIVED_ATTR = "serenity.derived_from"


@dataclass
class Site:
    """One ``tensor.concat`` and what the matcher found behind it.

    Sites whose element-wise descendants meet (SwiftNet's residual add of a
    cell's concat and the previous cell's) are rewritten together as one
    *group*: every member concat is cut at the union of their cut points (a
    common refinement of their splits, ``split``), so the shared ops split
    piece by piece. ``chain`` and ``terminals`` are then the group's."""

    index: int
    concat: ir.Operation
    location: str
    dim: int
    pieces: list[int]  # channel count of each concat operand
    applicable: bool = False
    reason: str = ""
    kind: str = "none"  # channel-wise, kernel-wise, flatten, mixed
    chain: list[ir.Operation] = field(default_factory=list)
    terminals: list[ir.Operation] = field(default_factory=list)
    group: list[Site] = field(default_factory=list)  # the members, this one included
    split: list[int] = field(default_factory=list)  # the group's common split
    tag: int | None = None  # SITE_ATTR, when the rewrite driver numbered the concats
    derived_from: int | None = None  # DERIVED_ATTR: produced by rewriting that site

    @property
    def roots(self) -> list[ir.Operation]:
        return [m.concat for m in self.group] if self.group else [self.concat]

    def describe(self) -> SiteInfo:
        """What a report says of the site (no op handles: it outlives the module)."""
        grouped = self.applicable and len(self.group) > 1
        return SiteInfo(
            index=self.index,
            location=self.location,
            pieces=len(self.pieces),
            channels=list(self.pieces),
            elements=_elements(self.concat),
            applicable=self.applicable,
            kind=self.kind,
            convolutions=[t.name for t in self.terminals] if self.applicable else [],
            pushed_through=[o.name for o in self.chain] if self.applicable else [],
            reason=self.reason,
            group=[m.index for m in self.group] if grouped else None,
            split=list(self.split) if grouped else None,
        )


@dataclass
class SiteInfo:
    """A concat site as reports give it (``rewrite_sites``), and what the
    rewrite and the site search decided for it (None: not decided here)."""

    index: int
    location: str
    pieces: int
    channels: list[int]
    elements: int
    applicable: bool
    kind: str
    convolutions: list[str]
    pushed_through: list[str]
    reason: str
    group: list[int] | None = None  # the sites rewritten together (a shared split)
    split: list[int] | None = None
    second_round_rewrites: int | None = None  # concats its kernel-wise rewrite produced, rewritten in turn
    skipped: str | None = None  # chosen but no longer rewritable, and why
    predicted_peak_bytes_without: int | None = None
    accepted: bool | None = None

    @property
    def unit(self) -> int:
        """The site that stands for its group in the search (itself alone)."""
        return self.group[0] if self.group else self.index

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


class _NotRewritable(Exception):
    pass


def as_op(x: Any) -> ir.Operation:
    return x.operation if hasattr(x, "operation") else x


def _users(v: ir.Value) -> list[tuple[ir.Operation, int]]:
    return [(as_op(u.owner), u.operand_number) for u in v.uses]


def where(op: ir.Operation) -> str:
    return f"{op.name} at {format_location(op.location)}"


def static_shape(t: ir.Type) -> list[int] | None:
    if not isinstance(t, ir.RankedTensorType):
        return None
    rt = ir.RankedTensorType(t)
    if not rt.has_static_shape:
        return None
    return list(rt.shape)


def with_dim(t: ir.Type, dim: int, size: int) -> ir.Type:
    rt = ir.RankedTensorType(t)
    shape = list(rt.shape)
    shape[dim] = size
    return ir.RankedTensorType.get(shape, rt.element_type, rt.encoding)


def constant_array(v: ir.Value) -> Any | None:
    """The value of a dense ``arith.constant`` as a numpy array (None when
    ``v`` is not one, or the elements cannot be read: resources, bf16)."""
    import numpy as np

    if not isinstance(v.owner, ir.Operation | ir.OpView):
        return None
    op = as_op(v.owner)
    if op.name != "arith.constant" or not isinstance(op.attributes["value"], ir.DenseElementsAttr):
        return None
    try:
        return np.array(ir.DenseElementsAttr(op.attributes["value"]))
    except Exception:  # noqa: BLE001 - the bindings raise several types for unreadable data
        return None


def defining_op(v: ir.Value) -> ir.Operation | None:
    owner = v.owner
    if isinstance(owner, ir.Block):
        return None
    return as_op(owner)


def _elements(op: ir.Operation) -> int:
    shape = static_shape(op.results[0].type)
    n = 1
    for x in shape or []:
        n *= x
    return n if shape is not None else -1


def concat_dim(op: ir.Operation) -> int:
    return int(ir.IntegerAttr(op.attributes["dim"]).value)


def _int_attr(op: ir.Operation, name: str) -> int | None:
    return int(ir.IntegerAttr(op.attributes[name]).value) if name in op.attributes else None


def find_sites(func: ir.Operation, first_index: int = 0) -> list[Site]:
    """Every ``tensor.concat`` in the function's blocks, with the verdict of
    the matcher (and why a site cannot be rewritten); numbered from
    ``first_index`` (sites are numbered across a module)."""
    sites: list[Site] = []
    for region in func.regions:
        for block in region.blocks:
            for op in block.operations:
                o = as_op(op)
                if o.name == "tensor.concat":
                    sites.append(_analyse(first_index + len(sites), o))
    _group_overlaps(sites)
    return sites


def _shared(site: Site) -> set[ir.Operation]:
    """The ops a rewrite of ``site`` duplicates or replaces (not the concats
    it flattens into: those take each site's pieces in turn)."""
    return {*site.chain, *(t for t in site.terminals if t.name != "tensor.concat")}


def _group_overlaps(sites: list[Site]) -> None:
    """Sites whose rewrites would touch the same op (an add of values derived
    from both concats) are rewritten together, cut at a common split: the
    shared op then splits piece by piece, and neither rewrite erases what the
    other one made."""
    live = [s for s in sites if s.applicable]
    parent = {s.index: s.index for s in live}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[ir.Operation, int] = {}
    for s in live:
        for op in _shared(s):
            if op in owner:
                parent[find(s.index)] = find(owner[op])
            else:
                owner[op] = s.index
    groups: dict[int, list[Site]] = {}
    for s in live:
        groups.setdefault(find(s.index), []).append(s)
    for members in groups.values():
        if len(members) == 1:
            members[0].group, members[0].split = members, list(members[0].pieces)
            continue
        first = members[0]
        try:
            _walk_group(members)
        except _NotRewritable as e:
            for m in members:
                m.applicable, m.kind, m.chain, m.terminals = False, "none", [], []
                m.reason = f"shares ops with site {first.index if m is not first else members[1].index}, " + str(e)


def _walk_group(members: list[Site]) -> None:
    """Walks the members' concats together and cuts them at a common split."""
    first = members[0]
    if any(m.dim != first.dim for m in members):
        raise _NotRewritable("and they join different dimensions")
    totals = {sum(m.pieces) for m in members}
    if len(totals) != 1:
        raise _NotRewritable(f"and they join different sizes {sorted(totals)}")
    if any(m.concat.block != first.concat.block for m in members):
        raise _NotRewritable("in another block")
    cuts: set[int] = set()
    for m in members:
        off = 0
        for c in m.pieces:
            cuts.add(off)
            off += c
    bounds = sorted(cuts) + [totals.pop()]
    split = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
    group = Site(first.index, first.concat, first.location, first.dim, first.pieces, group=members)
    _walk(group)
    kind = site_kind(group.terminals)
    for m in members:
        m.chain, m.terminals, m.group, m.split, m.kind = group.chain, group.terminals, members, split, kind


def site_kind(terminals: list[ir.Operation]) -> str:
    kinds = {
        "channel-wise" if t.name in CHANNEL_WISE else "flatten" if t.name == "tensor.concat" else "kernel-wise"
        for t in terminals
    }
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _analyse(index: int, concat: ir.Operation) -> Site:
    dim = concat_dim(concat)
    shapes = [static_shape(x.type) for x in concat.operands]
    site = Site(index, concat, format_location(concat.location), dim, [s[dim] if s else -1 for s in shapes])
    site.tag, site.derived_from = _int_attr(concat, SITE_ATTR), _int_attr(concat, DERIVED_ATTR)
    try:
        if static_shape(concat.results[0].type) is None or any(s is None for s in shapes):
            raise _NotRewritable("dynamic shapes")
        _walk(site)
    except _NotRewritable as e:
        site.reason = str(e)
        site.chain, site.terminals = [], []
        return site
    site.kind = site_kind(site.terminals)
    site.applicable = True
    return site


def _walk(site: Site) -> None:
    """Follows every use of the site's concats through split-commuting ops;
    fills ``site.chain`` and ``site.terminals`` or raises _NotRewritable.

    A terminal is a convolution or pooling that reads the concat's value,
    or another concat on the same dimension that takes it as one operand
    (concat of concats: the pieces become that concat's operands)."""
    roots = site.roots
    chain_values: set[ir.Value] = {r.results[0] for r in roots}
    work = [r.results[0] for r in roots]
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
                raise _NotRewritable(f"grouped convolution that is not depthwise ({where(op)})")
            elif name == "linalg.generic":
                _check_elementwise(site, op, chain_values)
                site.chain.append(op)
            elif name == "tensor.pad":
                _check_pad(site, op)
                site.chain.append(op)
            elif name == "tensor.extract_slice":
                _check_slice(site, op)
                site.chain.append(op)
            elif name == "tensor.concat" and op not in roots:
                if concat_dim(op) != site.dim:
                    raise _NotRewritable(f"the concat's value is joined on another dimension by {where(op)}")
                site.terminals.append(op)
            else:
                raise _NotRewritable(f"the concat (or a value computed from it) is also used by {where(op)}")
            seen.add(op)
            if op not in site.terminals:
                chain_values.add(op.results[0])
                work.append(op.results[0])
    if not site.terminals:
        raise _NotRewritable("no convolution reads the concat")
    for op in [*site.chain, *site.terminals]:
        if _block_of(op) != _block_of(site.concat):
            raise _NotRewritable(f"{where(op)} is in another block than the concat")


def _block_of(op: ir.Operation) -> ir.Block:
    return op.block


def _check_conv(site: Site, op: ir.Operation, chain_values: set[ir.Value]) -> None:
    if op.operands[0] not in chain_values:
        raise _NotRewritable(f"the concat reaches {where(op)} as its filter, not its input")
    for k in range(1, len(op.operands)):
        if op.operands[k] in chain_values:
            raise _NotRewritable(f"the concat reaches {where(op)} as its filter or accumulator")
    in_dim = CHANNEL_WISE[op.name][0] if op.name in CHANNEL_WISE else KERNEL_WISE[op.name][0]
    if in_dim != site.dim:
        raise _NotRewritable(f"the concat joins dim {site.dim} but {where(op)} reads channels on dim {in_dim}")
    if op.name not in POOLING and constant_array(op.operands[1]) is None:
        raise _NotRewritable(f"the weights of {where(op)} are not a compile-time constant")
    if len(op.results) != 1 or static_shape(op.results[0].type) is None:
        raise _NotRewritable(f"{where(op)} has a dynamic result")


def affine_dims(m: ir.AffineMap) -> list[int | None] | None:
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


def generic_maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]


def _check_elementwise(site: Site, op: ir.Operation, chain_values: set[ir.Value]) -> None:
    iters = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if any("parallel" not in i for i in iters):
        raise _NotRewritable(f"{where(op)} is not element-wise (it reduces)")
    n_in, n_out = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
    if n_out != 1 or len(op.results) != 1:
        raise _NotRewritable(f"{where(op)} has several results")
    rank = len(iters)
    maps = generic_maps(op)
    identity = ir.AffineMap.get_identity(rank, context=op.context)
    if maps[n_in] != identity:
        raise _NotRewritable(f"{where(op)} permutes its result")
    for k in range(n_in):
        x = op.operands[k]
        if x in chain_values:
            if maps[k] != identity:
                raise _NotRewritable(f"{where(op)} does not read the concat element-wise")
        else:
            dims = affine_dims(maps[k])
            if dims is None:
                raise _NotRewritable(f"{where(op)} reads an operand through a non-trivial map")
            if site.dim in dims and static_shape(x.type) is None:
                raise _NotRewritable(f"{where(op)} has an operand of dynamic shape")
    for inner in op.regions[0].blocks[0].operations:
        if as_op(inner).name == "linalg.index":
            raise _NotRewritable(f"{where(op)} depends on the element index")


def _check_pad(site: Site, op: ir.Operation) -> None:
    low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
    high = list(ir.DenseI64ArrayAttr(op.attributes["static_high"]))
    if len(op.operands) != 1:
        raise _NotRewritable(f"{where(op)} has dynamic padding")
    if low[site.dim] != 0 or high[site.dim] != 0:
        raise _NotRewritable(f"{where(op)} pads the concatenated dimension")
    body = [as_op(o) for o in op.regions[0].blocks[0].operations]
    if len(body) != 1:
        raise _NotRewritable(f"{where(op)} computes its padding value per element")


def _check_slice(site: Site, op: ir.Operation) -> None:
    if len(op.operands) != 1:
        raise _NotRewritable(f"{where(op)} has dynamic offsets or sizes")
    src = static_shape(op.operands[0].type)
    res = static_shape(op.results[0].type)
    if src is None or res is None or len(src) != len(res):
        raise _NotRewritable(f"{where(op)} drops dimensions")
    offsets = list(ir.DenseI64ArrayAttr(op.attributes["static_offsets"]))
    sizes = list(ir.DenseI64ArrayAttr(op.attributes["static_sizes"]))
    strides = list(ir.DenseI64ArrayAttr(op.attributes["static_strides"]))
    d = site.dim
    if offsets[d] != 0 or sizes[d] != src[d] or strides[d] != 1:
        raise _NotRewritable(f"{where(op)} slices the concatenated dimension")


# --------------------------------------------------------------------------
# Rewriting
