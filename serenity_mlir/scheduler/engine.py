"""SERENITY's scheduler at scale: divide and conquer, adaptive soft budgeting
and an anytime answer, over the threshold search of
:mod:`serenity_mlir.scheduler.search`.

1. **Divide and conquer.** A *cut node* ``c`` is one that every other node
   is an ancestor or a descendant of. Every valid order runs exactly
   ``A = ancestors(c) + c`` before anything else, so the set of scheduled
   nodes passes through ``A`` and the live bytes there are fixed. The peak
   of an order is then the largest peak of its *segments* (the nodes between
   two consecutive cut nodes), each scheduled with the buffers it inherits
   alive; the segments are independent problems and the optimum is the
   largest segment optimum. Segments are rebuilt as small problems of their
   own (:func:`_segment`): inherited buffers become buffers alive from the
   start, buffers still needed after the segment are outputs of it.
2. **Bounds first.** Each segment gets an upper bound (the best of program
   order, a memory-aware greedy list scheduler, reverse post-order, seeded
   random topological orders and a beam search) and a proven lower bound
   (the largest single-node working set and the min-cut isolated-moment
   bound of :mod:`serenity_mlir.scheduler.bounds`). A segment whose plain DP
   (:mod:`serenity_mlir.scheduler.levels`) stays small is solved by it
   outright. The answer's peak is the largest segment peak, so a segment
   whose upper bound is not above the largest *lower* bound of any segment
   needs no search at all.
3. **Adaptive soft budgeting.** For the others, the meta-search keeps
   ``lo <= optimum <= hi`` and asks the threshold search "does some order fit
   ``tau``?": a found order lowers ``hi`` to its peak; "no order fits" raises
   ``lo`` to the smallest step the search had to prune (no order has a peak
   below it); a search that stores too many sets (too loose a budget) is
   retried with a budget closer to ``lo`` and a larger cap. ``tau`` starts at
   ``lo`` (the tightest budget prunes most and is often the optimum) and then
   bisects.
4. **Anytime.** Past the deadline the best valid order found so far is the
   answer, with ``optimal=False`` and the proven lower bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from serenity_mlir.scheduler.bounds import closure_lower_bound, working_set_bound
from serenity_mlir.scheduler.budget import MEMORY_LIMIT, Budget, OutOfBudget
from serenity_mlir.scheduler.graph import Buffer, Graph, peak, stable_topological_order
from serenity_mlir.scheduler.levels import beam_search, level_dp
from serenity_mlir.scheduler.orders import greedy, random_topo, reverse_post_order
from serenity_mlir.scheduler.problem import Problem, build_problem, graph_buffers, order_steps
from serenity_mlir.scheduler.search import RunCap, stored_ceiling, threshold_search

# First cap (stored sets) of one threshold search; doubled on each retry.
FIRST_CAP = 250_000
# After a found order the next budget is just below it, up to this many
# times in a row (found orders come cheap from the dives; a failed search
# there proves the order optimal), then bisection.
BELOW_TRIES = 8
BEAM_WIDTH = 64
# Segments whose plain DP stays under this many sets are solved by it outright.
SMALL_DP_STATES = 20_000
# Nodes whose relative orders the lower bound examines (2^k * k max-flows).
CRITICAL = 8
# The max-flow work one segment's lower bound may do, per set of the work
# budget (bounds.closure_lower_bound's units: a phase costs the network's
# size). With the default budget, 5,000,000: 3.6 times what the largest
# sample needs (darts_cifar, 1,368,034), a few seconds; without a limit a
# 1,200-node graph spends minutes in max-flows.
BOUND_WORK_PER_SET = 5


@dataclass
class EngineResult:
    order: list[int]
    peak: int
    lower_bound: int
    optimal: bool
    states: int
    tau: int  # the last budget the meta-search tried (or the final peak)
    upper_bound_first: int  # best cheap order's peak (before any search)
    segments: int
    notes: list[str] = field(default_factory=list)
    # The limit that ended the work early ("work-limit", "time-limit",
    # "memory-limit"; None: every step ran, or the answer is proven anyway).
    stopped_by: str | None = None


@dataclass
class _Seg:
    nodes: list[int]  # global indices, in a topological (index) order
    preds: list[set[int]]  # local
    bufs: list[Buffer]  # local
    prob: Problem
    order: list[int]  # best local order so far
    hi: int  # its peak
    lo: int  # proven lower bound
    tau: int = 0


# ---------------------------------------------------------------- decomposition


def cut_nodes(n: int, preds: list[set[int]], order: list[int] | None = None) -> list[int]:
    """Nodes that every other node is an ancestor or a descendant of, in
    topological order. Linear time (no ancestor sets): in a topological
    order, the node at position ``i`` is a cut node exactly when every node
    before it has a successor at a position ``<= i`` (then, from ``i - 1``
    down, each reaches the node through that successor) and every node after
    it has a predecessor at a position ``>= i``. ``order``: a topological
    order of the nodes (default: one is computed)."""
    if order is None:
        order = stable_topological_order(n, preds)
    pos = [0] * n
    for i, v in enumerate(order):
        pos[v] = i
    first_succ = [n] * n  # by position: the earliest position of a successor
    last_pred = [-1] * n  # by position: the latest position of a predecessor
    for v in range(n):
        pv = pos[v]
        for p in preds[v]:
            pp = pos[p]
            if pv < first_succ[pp]:
                first_succ[pp] = pv
            if pp > last_pred[pv]:
                last_pred[pv] = pp
    after = [n] * (n + 1)  # after[i]: the least last_pred at positions >= i
    for i in range(n - 1, -1, -1):
        after[i] = min(after[i + 1], last_pred[i])
    cuts = []
    before = -1  # the largest first_succ at positions < i
    for i in range(n):
        if before <= i and after[i + 1] >= i:
            cuts.append(order[i])
        before = max(before, first_succ[i])
    return cuts


def split(g: Graph) -> list[list[int]]:
    """The segments of ``g``: each ends with a cut node (but the last). A
    cut node's ancestors are exactly the nodes before it in a topological
    order, so the segments are runs of that order (each in index order)."""
    n = g.num_nodes
    preds = [set(p) for p in g.preds]
    # The index order is topological (the program order) in every graph
    # built by from_edges; checked, as it costs one look at each edge.
    indexed = all(p < v for v in range(n) for p in preds[v])
    order = list(range(n)) if indexed else stable_topological_order(n, preds)
    cut = set(cut_nodes(n, preds, order))
    segs: list[list[int]] = []
    seg: list[int] = []
    for v in order:
        seg.append(v)
        if v in cut:
            segs.append(sorted(seg))
            seg = []
    if seg:
        segs.append(sorted(seg))
    return segs


def _segment(
    g: Graph, bufs: list[Buffer], done: set[int], nodes: list[int], candidates: list[int] | None = None
) -> tuple[list[set[int]], list[Buffer]]:
    """The problem of scheduling ``nodes`` once exactly ``done`` has run:
    local order constraints and the buffers alive during it, such that its
    live bytes equal the whole graph's at every step. ``candidates``: the
    indices (ascending) of the buffers that can matter, every buffer
    allocated in ``nodes`` or alive after ``done`` among them (default:
    all; :func:`_segments` passes the few that do, so a long chain of
    segments costs linear time)."""
    local = {v: i for i, v in enumerate(nodes)}
    segset = set(nodes)
    preds = [{local[p] for p in g.preds[v] if p in segset} for v in nodes]
    out: list[Buffer] = []
    for j in candidates if candidates is not None else range(len(bufs)):
        b = bufs[j]
        inherited = b.alloc is None or b.alloc in done
        if not inherited and b.alloc not in segset:
            continue  # allocated later
        later = b.users - done - segset
        if inherited and not b.output and not (b.users - done):
            continue  # already dead
        users = frozenset(local[u] for u in b.users if u in segset)
        alloc = None if inherited or b.alloc is None else local[b.alloc]
        out.append(Buffer(b.name, b.size, users, alloc, b.output or bool(later)))
    return preds, out


def _segments(g: Graph, bufs: list[Buffer], groups: list[list[int]]) -> Iterator[tuple[list[set[int]], list[Buffer]]]:
    """:func:`_segment` of each group in turn, visiting only the buffers
    alive at the group's start or allocated in it (kept up to date as the
    groups pass), not every buffer of the graph for every group."""
    allocated: dict[int, list[int]] = {}
    used_by: dict[int, list[int]] = {}
    remaining = [len(b.users) for b in bufs]
    alive: set[int] = set()
    for j, b in enumerate(bufs):
        if b.alloc is None:
            alive.add(j)
        else:
            allocated.setdefault(b.alloc, []).append(j)
        for u in b.users:
            used_by.setdefault(u, []).append(j)
    done: set[int] = set()
    for nodes in groups:
        own = [j for v in nodes for j in allocated.get(v, ())]
        yield _segment(g, bufs, done, nodes, sorted(alive.union(own)))
        done.update(nodes)
        alive.update(own)
        for v in nodes:
            for j in used_by.get(v, ()):
                remaining[j] -= 1
        alive = {j for j in alive if bufs[j].output or remaining[j] > 0}


# ---------------------------------------------------------------- entry point


def solve(
    g: Graph,
    *,
    deadline: float | None,
    work_limit: int | None,
    memory_limit: int | None = None,
    divide: bool = True,
) -> EngineResult:
    """Schedules ``g`` (see the module docstring). Every order returned is a
    valid topological order of ``g``; ``optimal`` only when proven.
    ``work_limit``: sets the searches may store in all (the deterministic
    limit); ``deadline``: the wall-clock backstop."""
    budget = Budget(deadline, work_limit, memory_limit)
    bufs = graph_buffers(g)
    n = g.num_nodes
    groups = split(g) if divide else [list(range(n))]
    segs: list[_Seg] = []
    notes: list[str] = []
    # 1. Segments, cheap orders and bounds (these are cheap, but still honour
    # the deadline: a segment left without its bounds keeps greedy and 0).
    for i, (nodes, (preds, sbufs)) in enumerate(zip(groups, _segments(g, bufs, groups), strict=True)):
        if not i & 255 and budget.expired():
            # Out of time before every segment has an order (a very long
            # graph on a short limit): the program order, with what is proven.
            return _program_answer(g, segs, budget)
        prob = build_problem(len(nodes), preds, sbufs)
        order = greedy(prob)
        hi, _ = order_steps(prob, order)
        segs.append(_Seg(nodes, preds, sbufs, prob, order, hi, working_set_bound(prob)))
    for seg in segs:
        if budget.expired():
            break
        prob = seg.prob
        if prob.n <= 1:
            continue  # one order only
        cands = [list(range(prob.n)), reverse_post_order(prob)] + [random_topo(prob, s) for s in range(4)]
        for o in cands:
            pk, _ = order_steps(prob, o)
            if pk < seg.hi:
                seg.hi, seg.order = pk, o
    glob_lo = max((s.lo for s in segs), default=0)
    for seg in segs:
        if seg.hi > max(glob_lo, seg.lo) and not budget.expired():
            # On small segments the plain exact DP is the fastest proof there
            # is (no bounds to compute, no budget to search).
            run = level_dp(seg.prob, max_states=min(SMALL_DP_STATES, stored_ceiling(budget, seg.prob.n)))
            if run.stopped is None:
                seg.hi, seg.order = run.best()
                budget.charge(run.states, seg.prob.n)
                seg.lo = seg.hi
                glob_lo = max(glob_lo, seg.lo)
    for seg in sorted(segs, key=lambda s: -s.hi):
        if seg.hi <= glob_lo or budget.expired():
            continue
        seg.lo = closure_lower_bound(
            seg.prob.n,
            seg.preds,
            seg.bufs,
            deadline=deadline,
            start=seg.lo,
            critical=CRITICAL,
            work_limit=None if work_limit is None else BOUND_WORK_PER_SET * work_limit,
        )
        # A bound cut short by the deadline is still valid, but weaker: the
        # result then depends on the machine's speed (expired() records it).
        budget.expired()
        glob_lo = max(glob_lo, seg.lo)
    first_ub = max((s.hi for s in segs), default=0)
    # 2. Beam search and the meta-search, on the segments that decide the peak.
    try:
        for seg in sorted(segs, key=lambda s: -s.hi):
            if seg.hi <= max(glob_lo, seg.lo):
                continue
            pk, o = beam_search(seg.prob, BEAM_WIDTH, budget)
            if pk < seg.hi:
                seg.hi, seg.order = pk, o
            glob_lo = _meta_search(seg, budget, glob_lo)
    except OutOfBudget as e:
        notes.append(f"stopped by the {e.args[0]} after {budget.states} sets stored")
    order = [seg.nodes[v] for seg in segs for v in seg.order]
    pk = max((s.hi for s in segs), default=0)
    lo = max((s.lo for s in segs), default=0)
    lo = max(lo, glob_lo)
    if n == 0:
        pk = lo = sum(b.size for b in bufs if b.alloc is None)
    taus = [s.tau for s in segs if s.tau]
    optimal = lo >= pk
    return EngineResult(
        order=order,
        peak=pk,
        lower_bound=min(lo, pk),
        optimal=optimal,
        states=budget.states,
        tau=max(taus) if taus else pk,
        upper_bound_first=first_ub,
        segments=len(segs),
        notes=notes,
        stopped_by=None if optimal else budget.stopped,
    )


def _program_answer(g: Graph, segs: list[_Seg], budget: Budget) -> EngineResult:
    """The program (index) order of ``g``, with the lower bounds of the
    segments built so far: the answer when time ran out that early."""
    order = list(range(g.num_nodes))
    pk = peak(g, order)
    lo = min(max((s.lo for s in segs), default=0), pk)
    return EngineResult(
        order=order,
        peak=pk,
        lower_bound=lo,
        optimal=lo >= pk,
        states=budget.states,
        tau=pk,
        upper_bound_first=pk,
        segments=len(segs),
        notes=["stopped by the time-limit before every segment had an order: the program order"],
        stopped_by=None if lo >= pk else budget.stopped,
    )


def _meta_search(seg: _Seg, budget: Budget, glob_lo: int) -> int:
    """Closes the gap of one segment down to ``glob_lo`` (no need to go
    lower: another segment already forces that peak). Returns the new
    global lower bound.

    ``tau`` starts at the lower bound (the tightest budget prunes most, and
    the bound is often the optimum), then bisects ``[lo, hi)``. A search that
    stores more than its cap means the budget admits too many partial
    schedules: the cap doubles (up to the memory ceiling, ``MAX_STORED`` or
    less under the byte limit) and
    the next budget moves halfway toward ``lo`` (from ``lo`` itself, to the
    middle: a found order there lowers ``hi`` at little cost)."""
    cap = FIRST_CAP
    tau = max(seg.lo, glob_lo)
    found_in_row = 0  # searches in a row that found an order
    while seg.hi > max(seg.lo, glob_lo):
        lo = max(seg.lo, glob_lo)
        tau = min(max(tau, lo), seg.hi - 1)
        seg.tau = tau
        try:
            res = threshold_search(seg.prob, tau, budget, cap)
        except RunCap:
            if cap >= stored_ceiling(budget, seg.prob.n):
                raise budget.stop(MEMORY_LIMIT) from None
            cap *= 2
            # At lo the budget cannot get tighter: try the middle (a found
            # order lowers hi cheaply); elsewhere move halfway toward lo.
            tau = lo + (seg.hi - 1 - lo) // 2 if tau == lo else lo + (tau - lo) // 2
            continue
        if res.found:
            pk, _ = order_steps(seg.prob, res.order)
            assert pk <= tau, "threshold search returned an order over its budget"
            seg.hi, seg.order = pk, res.order
        else:
            seg.lo = max(seg.lo, tau + 1, res.min_pruned)
            glob_lo = max(glob_lo, seg.lo)
        lo = max(seg.lo, glob_lo)
        # After a found order, ask just below it (up to BELOW_TRIES times in
        # a row): a failed search costs the most, and one there proves the
        # order optimal at once (its smallest pruned step lifts lo to the
        # peak); after a failed search, or past the tries, bisect.
        found_in_row = found_in_row + 1 if res.found else 0
        try_below = 0 < found_in_row <= BELOW_TRIES
        tau = seg.hi - 1 if try_below else lo + (seg.hi - 1 - lo) // 2
    return glob_lo
