"""The scheduler's entry point: :func:`schedule` over a
:class:`~serenity_mlir.scheduler.graph.Graph`, by name.

``serenity`` is SERENITY at scale (:mod:`serenity_mlir.scheduler.engine`:
divide and conquer, bounds, adaptive soft budgeting, an anytime answer);
``dp`` is the paper's plain dynamic program (:func:`dp_schedule`, the
reference of ``bench-scheduler``); ``program``, ``greedy`` and ``kahn`` are
the cheap orders of :mod:`serenity_mlir.scheduler.orders`.

Pure functions, no MLIR import: the schedule pass
(:mod:`serenity_mlir.passes.schedule`) maps ops to nodes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from serenity_mlir.errors import ScheduleError
from serenity_mlir.scheduler.bounds import working_set_bound
from serenity_mlir.scheduler.budget import (
    DEFAULT_WORK_LIMIT,
    MEMORY_LIMIT,
    TIME_LIMIT,
    WORK_LIMIT,
    bytes_per_state,
    default_memory_limit,
)
from serenity_mlir.scheduler.engine import solve
from serenity_mlir.scheduler.graph import Graph, check_order, peak
from serenity_mlir.scheduler.levels import backtrack, level_dp
from serenity_mlir.scheduler.orders import greedy, greedy_order, kahn_order, program_order
from serenity_mlir.scheduler.problem import make_problem

SCHEDULERS = ("serenity", "dp", "program", "greedy", "kahn")


class _Unset:
    """The default of a keyword that was not given."""


_UNSET = _Unset()
# Seconds the final check of an order takes per node and edge (measured on
# a 100,000-node chain here, under load, with a margin).
_CHECK_SECONDS_PER_ITEM = 1.5e-5


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
    # What ended the search before it proved its answer: "work-limit" (the
    # deterministic budget: the same input and flags give the same order
    # anywhere), "time-limit" (the wall-clock backstop: the order may differ
    # on a faster or less loaded machine), "memory-limit"; None when nothing
    # did (or the scheduler does not search).
    stopped_by: str | None = None

    def names(self, g: Graph) -> list[str]:
        return [g.names[v] for v in self.order]


def lower_bound(g: Graph) -> int:
    """A proven lower bound on any order's peak: the largest working set of
    one node (what it allocates plus every buffer it reads), and the buffers
    that stay alive to the end (they are alive when the last node runs)."""
    return working_set_bound(make_problem(g, break_symmetry=False))


# ---------------------------------------------------------------- plain DP


def dp_schedule(
    g: Graph,
    *,
    time_limit: float | None = None,
    state_limit: int | None = None,
    limit_name: str = WORK_LIMIT,
) -> ScheduleResult:
    """SERENITY's plain dynamic program (optimal under the memory model,
    :func:`serenity_mlir.scheduler.levels.level_dp`): one level per scheduled
    node, every down-closed set kept with its lowest peak so far. No
    divide-and-conquer, no reductions: the baseline of ``bench-scheduler``.
    ``states`` counts the sets stored, the empty set included.

    Past ``time_limit`` seconds or ``state_limit`` states it completes its
    best partial schedules greedily and returns the best valid order it has
    with ``optimal=False`` (and ``stopped_by``: ``limit_name`` for the state
    limit, "time-limit").
    """
    t0 = time.perf_counter()
    prob = make_problem(g, break_symmetry=False)
    # The search stops at 85% of the limit: completing the best partial
    # schedules into valid orders takes the rest (O(n^2) each).
    deadline = None if time_limit is None else t0 + 0.85 * time_limit
    hard_deadline = None if time_limit is None else t0 + time_limit
    run = level_dp(prob, max_states=None if state_limit is None else state_limit - 1, deadline=deadline)
    states = run.states + 1
    lb = lower_bound(g)
    if run.stopped is None:
        final_peak, order = run.best()
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
    # with the program order, keep the best valid one.
    candidates: list[list[int]] = [program_order(g)]
    for done, _ in sorted(run.frontier.items(), key=lambda kv: kv[1][0])[:8]:
        if hard_deadline is not None and time.perf_counter() > hard_deadline:
            break
        candidates.append(greedy(prob, backtrack(run.parents, done)))
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
        notes=(f"stopped at the {'time' if run.stopped == 'time' else 'state'} limit after {states} states",),
        stopped_by=TIME_LIMIT if run.stopped == "time" else limit_name,
    )


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
    time_limit: float | None = None,
    work_limit: int | None = DEFAULT_WORK_LIMIT,
    memory_limit: int | None = None,
    state_limit: int | None | _Unset = _UNSET,
) -> ScheduleResult:
    """Orders ``g`` with the named scheduler; every result is a checked,
    valid topological order whose ``peak_bytes`` is recomputed from scratch.

    ``work_limit``: sets the search may store in all (default
    :data:`~serenity_mlir.scheduler.budget.DEFAULT_WORK_LIMIT`; None: no
    limit). It is what ends a long search, at the same point on any machine
    under any load, so the order depends only on the graph and the limits.
    ``time_limit``: seconds for the whole call, preprocessing included, a
    backstop for slow machines (``stopped_by="time-limit"`` when it ended
    the search; None, the default of this pure function: no clock at all;
    the tools' default is ``serenity_mlir.settings.TIME_LIMIT``). ``memory_limit``: bytes the search may keep stored
    (default, None: half the machine's available memory). Each ends the
    search with the best valid order found and ``optimal=False``.
    ``state_limit``: the former name of ``work_limit`` (wins when given)."""
    t0 = time.perf_counter()
    if not isinstance(state_limit, _Unset):
        work_limit = state_limit
    # The limit bounds the whole call: the engine stops early enough to leave
    # the final check of its order (two linear passes over the graph) in time.
    edges = sum(len(p) for p in g.preds)
    reserve = 0.0 if time_limit is None else min(0.25 * time_limit, _CHECK_SECONDS_PER_ITEM * (g.num_nodes + edges))
    deadline = None if time_limit is None else t0 + time_limit - reserve
    if memory_limit is None:
        memory_limit = default_memory_limit()
    if scheduler == "serenity":
        res = _serenity(g, deadline=deadline, work_limit=work_limit, memory_limit=memory_limit)
    elif scheduler == "dp":
        per_state = bytes_per_state(g.num_nodes)
        by_memory = max(2, memory_limit // per_state)
        limit = by_memory if work_limit is None else min(work_limit, by_memory)
        name = MEMORY_LIMIT if work_limit is None or by_memory < work_limit else WORK_LIMIT
        res = dp_schedule(g, time_limit=time_limit, state_limit=limit, limit_name=name)
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
    optimal = res.optimal or (res.peak_bytes == res.lower_bound_bytes)
    return ScheduleResult(
        order=res.order,
        peak_bytes=res.peak_bytes,
        optimal=optimal,
        seconds=time.perf_counter() - t0,
        method=res.method,
        states=res.states,
        lower_bound_bytes=res.lower_bound_bytes,
        notes=res.notes,
        tau_bytes=res.tau_bytes,
        segments=res.segments,
        stopped_by=None if optimal else res.stopped_by,
    )


def _serenity(
    g: Graph, *, deadline: float | None, work_limit: int | None, memory_limit: int | None = None
) -> ScheduleResult:
    """Divide and conquer + bounds + adaptive soft budgeting (:func:`~serenity_mlir.scheduler.engine.solve`)."""
    t0 = time.perf_counter()
    r = solve(g, deadline=deadline, work_limit=work_limit, memory_limit=memory_limit)
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
        stopped_by=r.stopped_by,
    )
