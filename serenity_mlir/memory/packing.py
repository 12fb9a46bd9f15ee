"""Looking for an order that IREE's greedy packer fragments less.

The scheduler minimises the sum of live bytes; IREE then packs the slices
greedily in definition order, so an order that is optimal for the sum can
pack into a larger slab than another. What the device must reserve is the
packed slab, so after scheduling the pass compares orders by it
(:func:`choose_by_slab`), using a seeded local search
(:func:`improve_packing`). Pure functions over a graph and its buffers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Sequence
from dataclasses import replace

from serenity_mlir.memory.slab import ALIGNMENT, Slice, align, live_sum_peak, predict_slab, slices_for_order
from serenity_mlir.scheduler.graph import Graph, peak
from serenity_mlir.scheduler.orders import greedy_order, kahn_order, program_order
from serenity_mlir.scheduler.schedule import ScheduleResult


def improve_packing(
    preds: Sequence[frozenset[int]],
    buffers: Sequence,
    order: Sequence[int],
    time_limit: float = 1.0,
    seed: int = 0,
    alignment: int = ALIGNMENT,
    barriers: Collection[int] = (),
    max_moves: int | None = None,
) -> list[int]:
    """Moves nodes within their valid ranges while IREE's packing of the
    order does not grow, keeping the first order found with the smallest slab.

    The scheduler minimises live bytes, and IREE's greedy best-fit packer
    then fragments: the slab can exceed the live peak by tens of percent, yet
    another order with the same live peak may pack tightly. A seeded hill
    climb (sideways moves allowed, to cross plateaus) looks for one; it stops
    after ``max_moves`` candidate orders, at ``time_limit`` seconds, or as soon
    as the slab equals the order's live peak (no fragmentation left). With a
    move budget the result depends only on the inputs and the seed, not on how
    busy the machine is (the time limit is then a safety cap): the rewrite
    driver compares schedules of several graphs and must not be swayed by
    noise. ``preds`` are the graph's order constraints; every order it visits
    is a valid topological order."""
    rng = random.Random(seed)
    n = len(order)
    succs: list[list[int]] = [[] for _ in range(n)]
    for v, ps in enumerate(preds):
        for p in ps:
            succs[p].append(v)

    def cost(o: list[int]) -> tuple[int, int]:
        """(IREE's slab, the aligned live peak: the least a slab can be)."""
        sl = slices_for_order(buffers, o)
        aligned = [Slice(s.name, align(s.size, alignment), s.start, s.end) for s in sl]
        return predict_slab(buffers, o, alignment, barriers, slices=sl).slab_bytes, live_sum_peak(aligned)

    cur = list(order)
    cur_cost = cost(cur)
    best, best_cost = list(cur), cur_cost
    deadline = time.perf_counter() + time_limit
    moves = 0
    while best_cost[0] > best_cost[1] and time.perf_counter() < deadline and n > 1:
        if max_moves is not None and moves >= max_moves:
            break
        moves += 1
        pos = {v: i for i, v in enumerate(cur)}
        v = cur[rng.randrange(n)]
        i = pos[v]
        lo = max((pos[p] + 1 for p in preds[v]), default=0)
        hi = min((pos[s] - 1 for s in succs[v]), default=n - 1)
        if hi <= lo:
            continue
        j = rng.randint(lo, hi)
        if j == i:
            continue
        cand = cur[:i] + cur[i + 1 :]
        cand.insert(j, v)
        c = cost(cand)
        if c[0] <= cur_cost[0]:
            cur, cur_cost = cand, c
            if c[0] < best_cost[0]:
                best, best_cost = list(cand), c
    return best


def choose_by_slab(
    g: Graph,
    buffers: Sequence,
    barriers: Collection[int],
    result: ScheduleResult,
    search_seconds: float = 30.0,
    search_moves: int = 3000,
) -> ScheduleResult:
    """Keeps the order whose packed slab is smallest.

    The cheap orders are compared by their slab, and then a short local
    search (:func:`improve_packing`) moves nodes while the slab shrinks. An
    order replaces the scheduler's only when its slab is strictly smaller;
    ``optimal`` then stays true only if its live peak is still the optimum."""

    def slab(order: Sequence[int]) -> int:
        return predict_slab(buffers, order, barriers=barriers).slab_bytes

    slab0 = slab(result.order)
    best_order, best_slab, how = list(result.order), slab0, ""
    for name, fn in (("program", program_order), ("greedy", greedy_order), ("kahn", kahn_order)):
        order = fn(g)
        s = slab(order)
        if s < best_slab:
            best_order, best_slab, how = order, s, f"the {name} order"
    if search_seconds > 0 and search_moves > 0:
        order = improve_packing(
            g.preds, buffers, best_order, time_limit=search_seconds, barriers=barriers, max_moves=search_moves
        )
        s = slab(order)
        if s < best_slab:
            best_order, best_slab = order, s
            how = f"{how or 'the schedule'} after a packing search"
    if not how:
        return result
    p = peak(g, best_order)
    return replace(
        result,
        order=tuple(best_order),
        peak_bytes=p,
        optimal=result.optimal and p == result.peak_bytes,
        method=f"{result.method}+slab",
        notes=(
            *result.notes,
            f"{how} packs into a smaller slab ({best_slab} B) than the schedule ({slab0} B), "
            f"at {p} live bytes (the schedule: {result.peak_bytes}): kept it",
        ),
    )
