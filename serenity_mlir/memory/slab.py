"""What IREE's allocator does with an order: slab slices and their packing.

IREE gives every transient buffer of an execution region a slice with a
lifetime interval (first and last command that touches it) and packs the
slices into one slab greedily, in definition order: each slice goes into the
smallest gap between the already placed slices whose lifetimes overlap it,
or on top; offsets and sizes are aligned (64 bytes on the CPU targets). The
slab can therefore exceed the largest sum of live bytes (fragmentation).

Pure functions over buffers and an order; no MLIR import.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass

ALIGNMENT = 64


@dataclass(frozen=True)
class Slice:
    name: str
    size: int
    start: int  # position in the order of the allocating node
    end: int  # position of the last node that uses it (inclusive)


def align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def slices_for_order(buffers: Sequence, order: Sequence[int]) -> list[Slice]:
    """The slab slices of ``order``: every non-result buffer, with its
    lifetime in positions of the order, in definition order."""
    pos = {v: i for i, v in enumerate(order)}
    out = []
    for b in buffers:
        if b.output or b.size == 0:
            continue
        start = pos[b.alloc]
        end = max([start, *(pos[u] for u in b.users)])
        out.append(Slice(b.name, b.size, start, end))
    out.sort(key=lambda s: s.start)
    return out


def live_sum_peak(slices: Sequence[Slice]) -> int:
    """The largest sum of sizes of slices alive at one position."""
    events: dict[int, int] = {}
    for s in slices:
        events[s.start] = events.get(s.start, 0) + s.size
        events[s.end + 1] = events.get(s.end + 1, 0) - s.size
    live = best = 0
    for t in sorted(events):
        live += events[t]
        best = max(best, live)
    return best


def pack_slab(slices: Sequence[Slice], alignment: int = ALIGNMENT) -> tuple[int, list[int]]:
    """IREE's greedy best-fit strip packing in definition order; returns the
    slab size and each slice's offset."""
    placed: list[tuple[int, int, Slice]] = []  # (offset, aligned size, slice), by offset
    offsets = []
    high = 0
    for s in slices:
        size = align(s.size, alignment)
        best = None
        best_fit = None
        cur = 0
        for off, psize, p in placed:
            if p.end < s.start or s.end < p.start:
                continue
            cand = align(cur, alignment)
            if cand + size <= off and (best_fit is None or off - cand < best_fit):
                best = cand
                best_fit = off - cur
            cur = max(cur, off + psize)
        if best is None:
            best = align(cur, alignment)
        i = 0
        while i < len(placed) and placed[i][0] < best:
            i += 1
        placed.insert(i, (best, size, s))
        offsets.append(best)
        high = max(high, best + size)
    return align(high, alignment), offsets


@dataclass(frozen=True)
class SlabPrediction:
    """What IREE will allocate for an order: the live-bytes peak of the slab
    slices, and the slab after packing (alignment and fragmentation)."""

    live_bytes: int
    slab_bytes: int


def predict_slab(
    buffers: Sequence,
    order: Sequence[int],
    alignment: int = ALIGNMENT,
    barriers: Collection[int] = (),
    slices: list[Slice] | None = None,
) -> SlabPrediction:
    """The live-bytes peak of the order's slab slices, and what IREE
    allocates for them.

    Without ``barriers`` the whole body is one execution region: one slab,
    packed like IREE. Each barrier node ends a region: IREE then packs the
    slices that live inside a region into that region's slab, allocated for
    the whole region, and gives a buffer that crosses regions an allocation
    of its own, from its producer's region to its last user's. The prediction
    is the largest sum over a region of its slab and the crossing buffers
    alive during it. ``slices``: the order's slices, when already laid out."""
    if slices is None:
        slices = slices_for_order(buffers, order)
    live = live_sum_peak(slices)
    marks = [i for i, v in enumerate(order) if v in barriers]
    if not marks:
        return SlabPrediction(live, pack_slab(slices, alignment)[0])

    def region(pos: int) -> int:
        return bisect.bisect_left(marks, pos)

    local: dict[int, list[Slice]] = {}
    crossing: list[tuple[int, int, int]] = []
    for s in slices:
        r0, r1 = region(s.start), region(s.end)
        if r0 == r1:
            local.setdefault(r0, []).append(s)
        else:
            crossing.append((r0, r1, s.size))
    total = 0
    for r in range(len(marks) + 1):
        slab = pack_slab(local.get(r, []), alignment)[0]
        total = max(total, slab + sum(size for r0, r1, size in crossing if r0 <= r <= r1))
    return SlabPrediction(live, total)


def peak_position(slices: Sequence[Slice]) -> int | None:
    """The first position in the order where the live bytes of the slices peak."""
    if not slices:
        return None
    last = max(s.end for s in slices)
    delta = [0] * (last + 2)
    for s in slices:
        delta[s.start] += s.size
        delta[s.end + 1] -= s.size
    live = 0
    best = (-1, 0)
    for t in range(last + 1):
        live += delta[t]
        if live > best[0]:
            best = (live, t)
    return best[1]
