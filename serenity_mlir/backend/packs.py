"""IREE's transient packs in a stream-phase module, read and rewritten in memory.

After ``iree-stream-schedule-allocation`` (and ``emplace-transients``,
``materialize-transient-size-queries``) every execution region's transients
are one ``stream.resource.pack``::

    %p:N = stream.resource.pack on(...) [offset(%base)] slices({
      [start, end] = %size, ...   // inclusive lifetimes, IREE's own
    }) : index

result 0 the slab's length, result i+1 the offset of slice i.
``iree-stream-layout-slices`` (in the cmd pipeline) would give the offsets;
:func:`place_packs` gives them instead, as ``arith.constant`` ops, from
``memory.placement`` (never worse than IREE's own greedy). The pass
``serenity-place`` and ``backend.stream`` both call it; the placement stage
(``pipeline.place``) also checks these slices against the memory model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from iree.compiler import ir

from serenity_mlir.errors import InternalError
from serenity_mlir.ir.mlir import format_location
from serenity_mlir.memory.placement import Placement, place_with
from serenity_mlir.memory.slab import ALIGNMENT
from serenity_mlir.settings import DEFAULT_PLACEMENT, PlacementSettings

PACK_OP = "stream.resource.pack"


class PackSlice(NamedTuple):
    """One slice of a pack: IREE's lifetime (inclusive) and byte size, in the
    order the pack op lists them (a tuple, so ``PackSlice(*interval)`` reads
    one straight from the op's attributes)."""

    start: int
    end: int
    size: int


@dataclass(frozen=True)
class PackPlacement:
    """What was done with one pack."""

    function: str
    location: str
    slices: tuple[PackSlice, ...]
    placement: Placement | None  # None: left to IREE (dynamic sizes)
    note: str = ""

    @property
    def iree_bytes(self) -> int | None:
        return self.placement.iree_total if self.placement else None

    @property
    def slab_bytes(self) -> int | None:
        return self.placement.total if self.placement else None

    @property
    def lower_bound_bytes(self) -> int | None:
        return self.placement.lower_bound if self.placement else None

    def to_json(self) -> dict[str, object]:
        p = self.placement
        return {
            "function": self.function,
            "location": self.location,
            "num_slices": len(self.slices),
            "slices": [[s.start, s.end, s.size] for s in self.slices],
            "iree_slab_bytes": p.iree_total if p else None,
            "slab_bytes": p.total if p else None,
            "slab_live_bytes": p.lower_bound if p else None,
            "method": p.method if p else "iree (not placed)",
            "optimal": p.optimal if p else None,
            "seconds": round(p.seconds, 3) if p else None,
            "moves": p.moves if p else None,
            "offsets": list(p.offsets) if p else None,
            "note": self.note,
        }


@dataclass
class PackLayout:
    """Every pack of a module and what was done with it; the sums count the
    packs of the functions' execution regions only: a pack in a
    ``util.initializer`` (splat-initialised globals, allocated once at module
    initialisation) or of the call's results (one external allocation) is
    placed too, but is no part of the call's transient slab (the memory model
    counts those globals and the results apart)."""

    placement: str
    packs: list[PackPlacement] = field(default_factory=list)

    @property
    def call_packs(self) -> list[PackPlacement]:
        return [p for p in self.packs if p.function]

    @property
    def slab_bytes(self) -> int:
        """The placed slabs of the call, summed over its packs (one pack per
        execution region; with serial partitioning there is one)."""
        return sum(p.slab_bytes or 0 for p in self.call_packs)

    @property
    def iree_slab_bytes(self) -> int:
        return sum(p.iree_bytes or 0 for p in self.call_packs)

    @property
    def slab_live_bytes(self) -> int:
        return sum(p.lower_bound_bytes or 0 for p in self.call_packs)


def find_packs(module: ir.Operation) -> list[tuple[str, ir.Operation]]:
    """Every ``stream.resource.pack`` in the module, with its function's name,
    in the module's order. A pack outside the call's transient slab gets the
    name "": one in a ``util.initializer``, and one that lays out the call's
    results (several results are one external allocation, counted with the
    results)."""
    out: list[tuple[str, ir.Operation]] = []

    def walk(op: ir.Operation, fname: str) -> None:
        for region in op.regions:
            for block in region.blocks:
                for child in block.operations:
                    o = child.operation
                    name = fname
                    if "sym_name" in o.attributes and o.name in ("util.func", "func.func"):
                        name = ir.StringAttr(o.attributes["sym_name"]).value
                    if o.name == PACK_OP:
                        # The call's results are one external allocation, not transients.
                        out.append(("" if allocates_results(o) else name, o))
                    else:
                        walk(o, name)

    walk(module, "")
    return out


def allocates_results(pack: ir.Operation) -> bool:
    """True when ``pack`` lays out the call's results: its total sizes an
    allocation of ``!stream.resource<external>`` (IREE packs several results
    into one), which the memory model counts with the results, outside the slab."""
    for use in pack.results[0].uses:
        owner = use.owner
        if owner.name in ("stream.resource.alloca", "stream.resource.alloc"):
            if any(str(r.type).startswith("!stream.resource<external>") for r in owner.results):
                return True
    return False


def _segments(op: ir.Operation) -> list[int]:
    return [int(x) for x in ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"])]


def _constant_index(v: ir.Value) -> int | None:
    owner = v.owner
    if not isinstance(owner, ir.Operation):
        owner = getattr(owner, "operation", owner)
    if not isinstance(owner, ir.Operation) or owner.name != "arith.constant":
        return None
    try:
        return int(ir.IntegerAttr(owner.attributes["value"]).value)
    except (ValueError, KeyError):
        return None


def read_pack(op: ir.Operation) -> tuple[list[PackSlice], bool]:
    """The pack's slices in its order, and whether every size is a constant
    (a dynamic size has size -1 here)."""
    intervals = [int(ir.IntegerAttr(a).value) for a in ir.ArrayAttr(op.attributes["lifetime_intervals"])]
    has_base, n_sizes = _segments(op)[0], _segments(op)[1]
    sizes = [_constant_index(op.operands[has_base + i]) for i in range(n_sizes)]
    if len(intervals) != 2 * n_sizes or len(op.results) != n_sizes + 1:
        raise InternalError(f"{format_location(op.location)}: a {PACK_OP} with an unexpected shape")
    slices = [PackSlice(intervals[2 * i], intervals[2 * i + 1], -1 if s is None else s) for i, s in enumerate(sizes)]
    return slices, all(s is not None for s in sizes)


def set_pack_offsets(op: ir.Operation, total: int, offsets: list[int]) -> None:
    """Replaces the pack by constants: ``total`` for result 0, ``offsets[i]``
    for slice i (plus the pack's base offset, if it has one), and erases it."""
    has_base = _segments(op)[0]
    if len(offsets) != len(op.results) - 1:
        raise InternalError(f"{len(offsets)} offsets for a pack of {len(op.results) - 1} slices")
    with op.context, op.location, ir.InsertionPoint(op):
        index = ir.IndexType.get()

        def const(v: int) -> ir.Value:
            c = ir.Operation.create(
                "arith.constant", results=[index], attributes={"value": ir.IntegerAttr.get(index, v)}
            )
            return c.results[0]

        def at(v: int) -> ir.Value:
            c = const(v)
            if not has_base:
                return c
            add = ir.Operation.create("arith.addi", results=[index], operands=[op.operands[0], c])
            return add.results[0]

        values = [at(total), *(at(o) for o in offsets)]
    for old, new in zip(op.results, values, strict=True):
        old.replace_all_uses_with(new)
    op.erase()


def iter_placements(
    module: ir.Operation, settings: PlacementSettings = DEFAULT_PLACEMENT, alignment: int = ALIGNMENT
) -> Iterator[PackPlacement]:
    """Places every pack of ``module`` in place (see :func:`place_packs`)."""
    for fname, op in find_packs(module):
        slices, static = read_pack(op)
        where = format_location(op.location)
        if not static:
            yield PackPlacement(fname, where, tuple(slices), None, "dynamic slice sizes: left to IREE")
            continue
        p = place_with(slices, settings, alignment)
        if settings.placed:
            set_pack_offsets(op, p.total, list(p.offsets))
        yield PackPlacement(fname, where, tuple(slices), p)


def place_packs(
    module: ir.Operation, settings: PlacementSettings = DEFAULT_PLACEMENT, alignment: int = ALIGNMENT
) -> list[PackPlacement]:
    """Solves every static pack of ``module`` with ``memory.placement.place``
    and writes the offsets in as constants (the pack is erased). With
    placement ``iree`` the packs are read and reported but left to IREE's
    ``layout-slices``. Packs with a dynamic size are always left to IREE."""
    out = list(iter_placements(module, settings, alignment))
    if settings.placed and any(p.placement for p in out):
        try:
            module.verify()
        except ir.MLIRError as e:
            raise InternalError(f"the placed module does not verify: {e}") from None
    return out


# --- Ground truth: IREE's slices against the memory model's buffers ---------


@dataclass(frozen=True)
class SliceUse:
    """One slice of a pack and the dispatches that touch it, as ordinals of
    the ``stream.cmd.dispatch`` ops of the function (the k-th dispatch of a
    serially partitioned module is the k-th ``flow.dispatch`` of the body)."""

    pack: int
    index: int
    start: int
    end: int
    size: int
    dispatches: tuple[int, ...]
    labels: tuple[str, ...]  # entry points of those dispatches


def _offset_slices(v: ir.Value, results: dict[int, tuple[int, int]], depth: int = 3) -> list[tuple[int, int]]:
    """(pack, slice) whose offset ``v`` is, directly or through arith.addi."""
    key = hash(v)
    if key in results:
        return [results[key]]
    if depth == 0:
        return []
    owner = v.owner
    if isinstance(owner, ir.Operation) and owner.name in ("arith.addi", "util.align"):
        out: list[tuple[int, int]] = []
        for x in owner.operands:
            out += _offset_slices(x, results, depth - 1)
        return out
    return []


def slice_uses(module: ir.Operation, only: ir.Operation | None = None) -> list[SliceUse]:
    """For every static pack of a stream-phase module's functions (before
    placement), the dispatches that read or write each slice; ``only``: that
    pack alone (an arena entry point's region pack: its clones size the
    arena and are touched by no dispatch)."""
    packs = find_packs(module)
    results: dict[int, tuple[int, int]] = {}
    for p, (_f, op) in enumerate(packs):
        for i, r in enumerate(list(op.results)[1:]):
            results[hash(r)] = (p, i)
    touched: dict[tuple[int, int], list[tuple[int, str]]] = {}
    counter = [0]

    def walk(op: ir.Operation) -> None:
        for region in op.regions:
            for block in region.blocks:
                for child in block.operations:
                    o = child.operation
                    if o.name == "stream.cmd.dispatch":
                        k = counter[0]
                        counter[0] += 1
                        label = dispatch_label(o)
                        for x in o.operands:
                            for ps in _offset_slices(x, results):
                                touched.setdefault(ps, []).append((k, label))
                    else:
                        if o.name in ("util.func", "func.func"):
                            counter[0] = 0
                        walk(o)

    walk(module)
    out = []
    for p, (fname, op) in enumerate(packs):
        if not fname:
            continue  # a util.initializer's pack: module state, not the call's slab
        if only is not None and op != only:
            continue
        slices, _static = read_pack(op)
        for i, s in enumerate(slices):
            uses = sorted(set(touched.get((p, i), [])))
            out.append(SliceUse(p, i, s.start, s.end, s.size, tuple(k for k, _ in uses), tuple(lb for _, lb in uses)))
    return out


def dispatch_label(op: ir.Operation) -> str:
    """``@executable`` of a flow or stream dispatch (its first entry point)."""
    for key in ("entry_points", "entry_point"):
        if key in op.attributes:
            text = str(op.attributes[key])
            return text.strip("[]").split("::")[0].strip()
    return op.name
