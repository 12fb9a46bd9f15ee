"""SERENITY's memory-aware scheduler over a :class:`~serenity_mlir.scheduler.graph.Graph`.

The exact method is the paper's dynamic program: two partial schedules that
have run the same *set* of nodes leave the same buffers alive, so the set is a
signature and only the lowest-peak partial schedule per signature is kept.
Sets are Python ints used as bitsets. The DP advances one level (one more node
scheduled) at a time, so every level is a complete frontier of the search and
the search can stop at any point with a valid answer: past its state or time
limit it completes its best partial schedules greedily and returns the best
valid order it has with ``optimal=False``.

Pure functions, no MLIR import: the pass in ``transforms`` maps ops to nodes.
Divide-and-conquer and adaptive soft budgeting plug in at :func:`schedule`
(``budget`` is already honoured by the DP).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from serenity_mlir.errors import ScheduleError
from serenity_mlir.scheduler.engine import _working_set_bound, solve
from serenity_mlir.scheduler.graph import Graph, check_order, peak
from serenity_mlir.scheduler.search import Problem, freed, make_problem

SCHEDULERS = ("serenity", "dp", "program", "greedy", "kahn")


@dataclass(frozen=True)
class ScheduleResult:
    """A valid order of a graph's nodes and what is known of its quality."""

    order: tuple[int, ...]
    peak_bytes: int
    optimal: bool
    seconds: float
    method: str
    states: int = 0
    lower_bound_bytes: int = 0
    notes: tuple[str, ...] = field(default=())
    # The last soft budget the meta-search tried, and how many independent
    # segments divide-and-conquer found (serenity only).
    tau_bytes: int = 0
    segments: int = 0

    @property
    def gap(self) -> float:
        """Relative distance to the proven lower bound (0.0 when optimal)."""
        if self.optimal or not self.lower_bound_bytes:
            return 0.0
        return (self.peak_bytes - self.lower_bound_bytes) / self.lower_bound_bytes

    def names(self, g: Graph) -> list[str]:
        return [g.names[v] for v in self.order]


def lower_bound(g: Graph) -> int:
    """A proven lower bound on any order's peak: the largest working set of
    one node (what it allocates plus every buffer it reads), and the buffers
    that stay alive to the end (they are alive when the last node runs)."""
    return _working_set_bound(make_problem(g, break_symmetry=False))


# ---------------------------------------------------------------- heuristics


def program_order(g: Graph) -> list[int]:
    return list(range(g.num_nodes))


def kahn_order(g: Graph) -> list[int]:
    """Breadth-first Kahn order: what a memory-oblivious converter emits."""
    indeg = [len(p) for p in g.preds]
    succs = g.succs()
    queue = deque(v for v in range(g.num_nodes) if indeg[v] == 0)
    order: list[int] = []
    while queue:
        v = queue.popleft()
        order.append(v)
        for s in sorted(succs[v]):
            indeg[s] -= 1
            if indeg[s] == 0:
                queue.append(s)
    return order


def greedy_order(g: Graph, start: Sequence[int] = ()) -> list[int]:
    """Memory-aware list scheduling: run the ready node with the smallest
    step peak, then the smallest live memory after it. Completes ``start``
    (a valid prefix) when given."""
    prob = make_problem(g, break_symmetry=False)
    return _greedy_from(prob, list(start))


def _greedy_from(prob: Problem, order: list[int]) -> list[int]:
    done = 0
    live = prob.live0
    for v in order:
        done |= 1 << v
        live += prob.size[v] - freed(prob, done, v)
    order = list(order)
    while len(order) < prob.n:
        best: tuple[int, int, int] | None = None
        for v in range(prob.n):
            if (done >> v) & 1 or (prob.pred[v] & ~done):
                continue
            step = live + prob.size[v]
            after = step - freed(prob, done | (1 << v), v)
            key = (step, after, v)
            if best is None or key < best:
                best = key
        assert best is not None
        v = best[2]
        done |= 1 << v
        live = best[1]
        order.append(v)
    return order


def random_topo_order(g: Graph, seed: int) -> list[int]:
    rng = random.Random(seed)
    indeg = [len(p) for p in g.preds]
    succs = g.succs()
    ready = [v for v in range(g.num_nodes) if indeg[v] == 0]
    order: list[int] = []
    while ready:
        v = ready.pop(rng.randrange(len(ready)))
        order.append(v)
        for s in succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return order


# ---------------------------------------------------------------- exact DP


def dp_schedule(
    g: Graph,
    *,
    time_limit: float | None = None,
    state_limit: int | None = None,
    budget: int | None = None,
) -> ScheduleResult:
    """SERENITY's plain dynamic program (optimal under the memory model): one
    level per scheduled node, every down-closed set kept with its lowest peak
    so far. No divide-and-conquer, no reductions: the baseline of
    ``bench-scheduler``.

    ``budget`` prunes partial schedules whose peak exceeds it (soft
    budgeting); when it prunes everything a ``ScheduleError`` says so. Past
    ``time_limit`` seconds or ``state_limit`` states the best valid order found
    is returned with ``optimal=False``.
    """
    t0 = time.perf_counter()
    prob = make_problem(g, break_symmetry=False)
    size, rd, selffree, pred = prob.size, prob.rd, prob.selffree, prob.pred
    # The search stops at 85% of the limit: completing the best partial
    # schedules into valid orders takes the rest (O(n^2) each).
    deadline = None if time_limit is None else t0 + 0.85 * time_limit
    hard_deadline = None if time_limit is None else t0 + time_limit
    # level: signature (set of scheduled nodes) -> (peak so far, live bytes)
    level: dict[int, tuple[int, int]] = {0: (prob.live0, prob.live0)}
    # parents[k][mask] = the node scheduled last on the best path to mask.
    parents: list[dict[int, int]] = []
    states = 1
    full = prob.full
    stopped = False
    nxt: dict[int, tuple[int, int]] = {}
    for _ in range(prob.n):
        nxt = {}
        par: dict[int, int] = {}
        count = 0
        for done, (pk, live) in level.items():
            todo = full & ~done
            while todo:
                low = todo & -todo
                v = low.bit_length() - 1
                todo ^= low
                if pred[v] & ~done:
                    continue
                step = live + size[v]
                p2 = pk if pk >= step else step
                if budget is not None and p2 > budget:
                    continue
                d2 = done | low
                old = nxt.get(d2)
                if old is not None and old[0] <= p2:
                    continue
                if old is None:
                    states += 1
                    f = selffree[v]
                    for um, sz in rd[v]:
                        if not um & ~d2:
                            f += sz
                    nxt[d2] = (p2, step - f)
                else:
                    nxt[d2] = (p2, old[1])
                par[d2] = v
            count += 1
            if (state_limit is not None and states > state_limit) or (
                deadline is not None and not count & 255 and time.perf_counter() > deadline
            ):
                stopped = True
                break
        if not nxt and not stopped:
            raise ScheduleError(
                f"no schedule fits the budget of {budget} bytes "
                f"(the proven lower bound is {lower_bound(g)} bytes)"
            )
        parents.append(par)
        if stopped:
            break
        level = nxt
        if deadline is not None and time.perf_counter() > deadline:
            stopped = True
            break
    lb = lower_bound(g)
    if not stopped:
        final_peak = level[full][0] if prob.n else prob.live0
        order = _backtrack(parents, full) if prob.n else []
        check_order(g, order)
        return ScheduleResult(
            order=tuple(order),
            peak_bytes=final_peak,
            optimal=True,
            seconds=time.perf_counter() - t0,
            method="dp",
            states=states,
            lower_bound_bytes=lb,
        )
    # Anytime answer: complete the best partial schedules greedily, compare
    # with the cheap orders, keep the best valid one.
    candidates: list[list[int]] = [program_order(g)]
    partial = nxt if nxt else level
    for done, _ in sorted(partial.items(), key=lambda kv: kv[1][0])[:8]:
        if hard_deadline is not None and time.perf_counter() > hard_deadline:
            break
        candidates.append(_greedy_from(prob, _backtrack(parents, done)))
    best = min(candidates, key=lambda o: peak(g, o))
    check_order(g, best)
    return ScheduleResult(
        order=tuple(best),
        peak_bytes=peak(g, best),
        optimal=False,
        seconds=time.perf_counter() - t0,
        method="dp-anytime",
        states=states,
        lower_bound_bytes=lb,
        notes=(f"stopped at the {'time' if deadline else 'state'} limit after {states} states",),
    )


def _backtrack(parents: list[dict[int, int]], done: int) -> list[int]:
    order: list[int] = []
    k = bin(done).count("1")
    while k > 0:
        v = parents[k - 1][done]
        order.append(v)
        done ^= 1 << v
        k -= 1
    order.reverse()
    return order


def brute_force(g: Graph) -> tuple[int, list[int]]:
    """Exhaustive search over all topological orders (tests only: factorial)."""
    best: list[tuple[int, list[int]]] = []

    def rec(order: list[int], done: set[int]) -> None:
        if len(order) == g.num_nodes:
            p = peak(g, order)
            if not best or p < best[0][0]:
                best[:] = [(p, list(order))]
            return
        for v in range(g.num_nodes):
            if v not in done and g.preds[v] <= done:
                order.append(v)
                done.add(v)
                rec(order, done)
                done.discard(v)
                order.pop()

    rec([], set())
    return best[0]


# ---------------------------------------------------------------- entry point


def schedule(
    g: Graph,
    scheduler: str = "serenity",
    *,
    time_limit: float | None = 60.0,
    state_limit: int | None = 5_000_000,
) -> ScheduleResult:
    """Orders ``g`` with the named scheduler; every result is a checked,
    valid topological order whose ``peak_bytes`` is recomputed from scratch."""
    t0 = time.perf_counter()
    if scheduler == "serenity":
        res = _serenity(g, time_limit=time_limit, state_limit=state_limit)
    elif scheduler == "dp":
        res = dp_schedule(g, time_limit=time_limit, state_limit=state_limit)
    elif scheduler in ("program", "greedy", "kahn"):
        fn = {"program": program_order, "greedy": greedy_order, "kahn": kahn_order}[scheduler]
        order = fn(g)
        res = ScheduleResult(
            order=tuple(order),
            peak_bytes=peak(g, order),
            optimal=False,
            seconds=0.0,
            method=scheduler,
            lower_bound_bytes=lower_bound(g),
        )
    else:
        raise ScheduleError(f"unknown scheduler '{scheduler}' (known: {', '.join(SCHEDULERS)})")
    check_order(g, res.order)
    recomputed = peak(g, res.order)
    if recomputed != res.peak_bytes:
        raise ScheduleError(
            f"internal error: scheduler '{scheduler}' reported peak {res.peak_bytes} "
            f"but the order's peak is {recomputed}"
        )
    return ScheduleResult(
        order=res.order,
        peak_bytes=res.peak_bytes,
        optimal=res.optimal or (res.peak_bytes == res.lower_bound_bytes),
        seconds=time.perf_counter() - t0,
        method=res.method,
        states=res.states,
        lower_bound_bytes=res.lower_bound_bytes,
        notes=res.notes,
        tau_bytes=res.tau_bytes,
        segments=res.segments,
    )


def _serenity(g: Graph, *, time_limit: float | None, state_limit: int | None) -> ScheduleResult:
    """Divide and conquer + bounds + adaptive soft budgeting (``_engine``)."""
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit
    r = solve(g, deadline=deadline, state_limit=state_limit)
    notes = [
        f"{r.segments} segment(s); first upper bound {r.upper_bound_first} B, final tau {r.tau} B",
        *r.notes,
    ]
    if not r.optimal:
        gap = (r.peak - r.lower_bound) / r.lower_bound if r.lower_bound else 0.0
        notes.append(f"gap to the proven lower bound: {100 * gap:.2f}%")
    return ScheduleResult(
        order=tuple(r.order),
        peak_bytes=r.peak,
        optimal=r.optimal,
        seconds=time.perf_counter() - t0,
        method="serenity" if r.optimal else "serenity-anytime",
        states=r.states,
        lower_bound_bytes=r.lower_bound,
        notes=tuple(notes),
        tau_bytes=r.tau,
        segments=r.segments,
    )
