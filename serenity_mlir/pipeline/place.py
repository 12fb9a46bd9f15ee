"""Step 5, place: SERENITY lays out the transient slab itself, inside IREE.

IREE packs each execution region's transients greedily in slice order
(``iree-stream-layout-slices``), which can leave holes; the stage splits
IREE's stream phase (``backend.stream``), solves every pack with
``memory.placement`` (reaching the order's live bytes where it can, never
worse than IREE's own layout) and finishes the build with those offsets.

It also checks ground truth: the packs hold IREE's real lifetimes and sizes
for the chosen order, which must match the memory model's buffers; any
difference is reported as a warning naming the dispatch.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from iree.compiler import ir

from serenity_mlir.analysis import BodyGraph
from serenity_mlir.backend.packs import PackLayout, dispatch_label, find_packs, slice_uses
from serenity_mlir.backend.stream import PlacedBuild, compile_placed
from serenity_mlir.passes.place import SerenityPlace
from serenity_mlir.passes.schedule import ScheduleOutcome
from serenity_mlir.settings import PlacementSettings
from serenity_mlir.targets import Target


@dataclass(frozen=True)
class GroundTruth:
    """The pack's slices against the model's buffers for the module's order."""

    matched: int
    differences: tuple[str, ...]  # one warning each, naming the dispatch
    slices: int
    buffers: int

    @property
    def ok(self) -> bool:
        return not self.differences


def compare_with_model(
    body: BodyGraph, stream_module: ir.Operation, order: Sequence[int] | None = None, pack: ir.Operation | None = None
) -> GroundTruth:
    """Compares IREE's real slices (``stream_module``: the scheduled flow
    module that ``body`` was built from, lowered to the packs, not yet
    placed) with the memory model's slab buffers for the module's order
    (:mod:`serenity_mlir.analysis`): a slice the model does not have, a
    buffer IREE gives no slice, and a size or lifetime (first and last
    dispatch) that differs are reported, naming the dispatch. ``body`` is the
    graph the scheduler already built and ``order`` the order it applied
    (None: the body's own); ``pack``: compare that pack's slices only."""
    seq = list(range(len(body.node_ops))) if order is None else list(order)
    ordinal: dict[int, int] = {}
    labels: dict[int, str] = {}
    k = 0
    for v in seq:
        op = body.node_ops[v]
        if op.name == "flow.dispatch":
            ordinal[v] = k
            labels[k] = dispatch_label(op)
            k += 1
    region_of = _regions(body, seq)
    model: list[tuple[int, int, int, str]] = []  # (size, first, last, name)
    for b in body.buffers:
        if b.output or b.size == 0:
            continue
        nodes = [v for v in (b.alloc, *b.users) if v is not None]
        if len({region_of(v) for v in nodes}) > 1:
            continue  # crosses execution regions: an allocation of its own
        ds = sorted(ordinal[v] for v in nodes if v in ordinal)
        if ds:
            model.append((b.size, ds[0], ds[-1], b.name))
    uses = slice_uses(stream_module, pack)
    real = [(u.size, u.dispatches[0], u.dispatches[-1], u) for u in uses if u.dispatches]
    diffs: list[str] = [
        f"slice {u.index} of pack {u.pack} ({u.size} B, [{u.start}, {u.end}]) is touched by no dispatch"
        for u in uses
        if not u.dispatches
    ]
    unmatched_model = list(model)
    unmatched_real = []
    for r in real:
        hit = next((m for m in unmatched_model if m[:3] == r[:3]), None)
        if hit is not None:
            unmatched_model.remove(hit)
        else:
            unmatched_real.append(r)

    def where(d: int) -> str:
        return f"dispatch #{d} ({labels.get(d, '?')})"

    for size, first, last, u in unmatched_real:
        near = next((m for m in unmatched_model if m[1] == first), None)
        if near is not None:
            unmatched_model.remove(near)
            what = []
            if near[0] != size:
                what.append(f"size {size} B, model {near[0]} B")
            if near[2] != last:
                what.append(f"last use {where(last)}, model {where(near[2])}")
            diffs.append(f"slice {u.index} of pack {u.pack} written by {where(first)}: " + "; ".join(what))
        else:
            diffs.append(
                f"slice {u.index} of pack {u.pack} ({size} B, {where(first)} .. {where(last)}) has no model buffer"
            )
    for size, first, last, name in unmatched_model:
        diffs.append(f"model buffer {name} ({size} B, {where(first)} .. {where(last)}) has no slice in IREE's packs")
    return GroundTruth(len(real) - len(unmatched_real), tuple(diffs), len(real), len(model))


def _regions(body: BodyGraph, seq: Sequence[int]) -> Callable[[int], int]:
    """Node -> execution region index (a barrier ends a region), in the
    order ``seq`` runs the nodes."""
    position = {v: i for i, v in enumerate(seq)}
    ends = sorted(position[b] for b in (body.barriers or ()) if b in position)

    def region(v: int) -> int:
        return bisect.bisect_left(ends, position[v])

    return region


@dataclass(frozen=True)
class Placed:
    """The place stage's record: the build with SERENITY's layout, and the
    check of IREE's slices against the memory model."""

    build: PlacedBuild
    truth: GroundTruth


@dataclass(frozen=True)
class PlaceJob:
    """What a place stage takes (this module's and :mod:`.arena`'s): the
    schedule and the flow file it wrote, where the build goes, for which
    target, with which placement settings, and where the stream-phase files
    are kept."""

    sched: ScheduleOutcome
    flow_file: Path
    out: Path
    target: Target
    settings: PlacementSettings
    stream_dir: Path


def place_and_compile(job: PlaceJob) -> Placed:
    """Compiles the scheduled flow file with every pack placed by the
    serenity-place pass (the stream-phase files go to ``job.stream_dir``), and
    checks IREE's slices, read from the packs before they are placed,
    against the memory model of the order ``job.sched`` applied."""
    sched, settings = job.sched, job.settings
    truths: list[GroundTruth] = []
    place = SerenityPlace.of(settings)

    def placer(module: ir.Operation) -> PackLayout:
        truths.append(compare_with_model(sched.body, module, sched.result.order))
        if not find_packs(module):
            # No transients at all (a model that only returns its input, a
            # constant...): nothing to place.
            return PackLayout(settings.placement, [])
        return place.apply(module)

    build = compile_placed(job.flow_file, job.out, job.target, settings, keep_dir=job.stream_dir, placer=placer)
    return Placed(build, truths[0])
