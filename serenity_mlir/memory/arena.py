"""Placing the call's inputs and results inside the arena (``--arena-entry``).

A normal IREE entry point keeps the caller's input buffer alive for the whole
call and writes its results into buffers of their own, outside the transient
slab. TFLite Micro does not: the input is a tensor of its arena, and once the
last operator that reads it has run, its bytes are free for later tensors.
An *arena entry point* does the same with IREE (``backend.arena``): the
caller passes one buffer, the arena, writes the input at an offset the build
reports, and reads the results at theirs.

The placement problem stays the slab's (``memory.placement``): slices with
inclusive lifetimes over the execution region's steps. The inputs and results
join it as pseudo-slices:

- an input lives ``[0, last step that reads it]``: the caller wrote it
  before step 0, and a slice may take its bytes only from the step after
  its last read (strictly after: a slice that starts on the same step would
  be written while the step still reads the input);
- a result lives ``[first step that writes it, last step]``: the caller
  reads it after the call, so a slice may share its bytes only if it ends
  strictly before the result is first written.

With IREE's inclusive intersection rule (``a.end >= b.start and b.end >=
a.start``) these two sentences are exactly "the pseudo-slice does not
intersect", so the placer needs no new case; :func:`check_io_rule` states
the rule on its own, independently of the placer, and the stage runs it on
every answer.

Pure functions; no MLIR import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from serenity_mlir.errors import InternalError
from serenity_mlir.memory.placement import EXACT_MAX_SLICES, Interval, Placement, as_intervals, place_with
from serenity_mlir.memory.slab import ALIGNMENT, align
from serenity_mlir.settings import DEFAULT_PLACEMENT, PlacementSettings


@dataclass(frozen=True)
class IoBuffer:
    """An input or a result of the call, to be placed in the arena.

    ``step``: for an input the last step of the execution region that reads
    it, for a result the first step that writes it (None: no step touches
    it; an input then lives ``[0, 0]``, a result the whole region)."""

    name: str
    kind: Literal["input", "output"]
    size: int
    step: int | None


def io_interval(buf: IoBuffer, last_step: int) -> Interval:
    """The pseudo-slice of an input or a result: ``(start, end, size)``,
    inclusive, over the steps ``0 .. last_step``."""
    if buf.kind == "input":
        return (0, 0 if buf.step is None else buf.step, buf.size)
    return (0 if buf.step is None else buf.step, last_step, buf.size)


@dataclass(frozen=True)
class ArenaPlacement:
    """Offsets for the slab's slices and for the inputs and results, in one
    arena of ``total`` bytes (64-byte aligned, as are all offsets)."""

    slab_offsets: tuple[int, ...]
    io_offsets: tuple[int, ...]
    total: int
    placement: Placement  # over the slices then the pseudo-slices, in that order
    last_step: int
    pseudo: tuple[Interval, ...]  # the inputs' and results' pseudo-slices, in ``io``'s order

    @property
    def lower_bound(self) -> int:
        """The most aligned bytes alive at one time, inputs and results included."""
        return self.placement.lower_bound


def place_arena(
    slices: Sequence[Any],
    io: Sequence[IoBuffer],
    last_step: int,
    settings: PlacementSettings = DEFAULT_PLACEMENT,
    alignment: int = ALIGNMENT,
    exact_max_slices: int = EXACT_MAX_SLICES,
) -> ArenaPlacement:
    """Places the slab's ``slices`` (inclusive lifetimes over the region's
    steps ``0 .. last_step``) and the inputs and results ``io`` together,
    with the same placer as the slab alone (:func:`memory.placement.place`,
    same options), and checks the input/output rule on the answer."""
    iv = as_intervals(slices)
    if iv:
        last_step = max(last_step, max(e for _s, e, _z in iv))
    pseudo = [io_interval(b, last_step) for b in io]
    p = place_with([*iv, *pseudo], settings, alignment, exact_max_slices)
    n = len(iv)
    out = ArenaPlacement(p.offsets[:n], p.offsets[n:], p.total, p, last_step, tuple(pseudo))
    check_io_rule(iv, out.slab_offsets, io, out.io_offsets, last_step, out.total, alignment)
    return out


def check_io_rule(
    slices: Sequence[Any],
    slab_offsets: Sequence[int],
    io: Sequence[IoBuffer],
    io_offsets: Sequence[int],
    last_step: int,
    total: int,
    alignment: int = ALIGNMENT,
) -> None:
    """Raises InternalError unless every input and result lies inside the
    arena at an aligned offset, no two of them overlap, and every slice that
    shares bytes with one of them respects its lifetime: it starts strictly
    after the input's last read, or ends strictly before the result's first
    write."""
    iv = as_intervals(slices)
    if len(io_offsets) != len(io) or len(slab_offsets) != len(iv):
        raise InternalError("arena placement: offsets and buffers differ in number")

    def overlap(o1: int, s1: int, o2: int, s2: int) -> bool:
        return o1 < o2 + align(s2, alignment) and o2 < o1 + align(s1, alignment) and s1 > 0 and s2 > 0

    for k, (b, o) in enumerate(zip(io, io_offsets, strict=True)):
        if o % alignment or o < 0 or o + b.size > total:
            raise InternalError(
                f"arena placement: {b.kind} {b.name} at {o} ({b.size} B) is not aligned or not inside "
                f"the {total} B arena"
            )
        first, last = io_interval(b, last_step)[:2]
        for i, ((start, end, size), so) in enumerate(zip(iv, slab_offsets, strict=True)):
            if not overlap(o, b.size, so, size):
                continue
            ok = start > last if b.kind == "input" else end < first
            if not ok:
                raise InternalError(
                    f"arena placement: slice {i} [{start}, {end}] shares bytes with {b.kind} {b.name} "
                    f"(steps [{first}, {last}])"
                )
        for j in range(k):
            other, oo = io[j], io_offsets[j]
            a, z = io_interval(other, last_step)[:2]
            if overlap(o, b.size, oo, other.size) and a <= last and first <= z:
                raise InternalError(f"arena placement: {b.name} and {other.name} overlap while both alive")


def step_bounds(touched: Sequence[set[int]], slices: Sequence[Any], last: int) -> tuple[list[int], list[int]]:
    """Bounds on the lifetime index of each command of the region.

    IREE numbers the lifetimes of a pack over the ops of the *async*
    execution region; some of those ops leave no command behind (a concat's
    in-place updates), so the k-th command is not step k. Each command
    ``k`` touches the slices ``touched[k]`` (indices into ``slices``), so its
    index lies in every such slice's ``[start, end]``, and the commands keep
    the async ops' order, one op each (strictly increasing indices).
    Returns ``(lower, upper)`` per command, propagated both ways over that
    order; ``last``: the region's last index. The input's pseudo-slice ends
    at the upper bound of its last reader and a result's starts at the lower
    bound of its first writer: safe whatever the exact index is, and exact
    when every command has an op of its own (lower == upper). If the
    bounds contradict the one-op-per-command assumption, they are propagated
    without it (non-decreasing), which is always safe."""
    iv = as_intervals(slices)
    n = len(touched)

    def propagate(strict: int) -> tuple[list[int], list[int]]:
        lower = [0] * n
        upper = [last] * n
        for k in range(n):
            lo = max([iv[s][0] for s in touched[k]], default=0)
            lower[k] = max(lo, lower[k - 1] + strict) if k else lo
        for k in reversed(range(n)):
            hi = min([iv[s][1] for s in touched[k]], default=last)
            upper[k] = min(hi, upper[k + 1] - strict) if k < n - 1 else hi
        return lower, upper

    lower, upper = propagate(1)
    if any(lo > hi for lo, hi in zip(lower, upper, strict=True)):
        lower, upper = propagate(0)
    return lower, upper
