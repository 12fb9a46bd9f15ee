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

from dataclasses import dataclass, field

from serenity_mlir.scheduler.bounds import closure_lower_bound, working_set_bound
from serenity_mlir.scheduler.budget import Budget, OutOfBudget
from serenity_mlir.scheduler.graph import Buffer, Graph, ancestor_masks
from serenity_mlir.scheduler.levels import beam_search, level_dp
from serenity_mlir.scheduler.orders import greedy, random_topo, reverse_post_order
from serenity_mlir.scheduler.problem import Problem, build_problem, graph_buffers, members, order_steps
from serenity_mlir.scheduler.search import RunCap, stored_ceiling, threshold_search

# First cap (stored sets) of one threshold search; doubled on each retry.
FIRST_CAP = 250_000
BEAM_WIDTH = 64
# Segments whose plain DP stays under this many sets are solved by it outright.
SMALL_DP_STATES = 20_000
# Nodes whose relative orders the lower bound examines (2^k * k max-flows).
CRITICAL = 8


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


def cut_nodes(n: int, preds: list[set[int]]) -> list[int]:
    """Nodes that every other node is an ancestor or a descendant of, in
    topological order (their ancestor sets are nested)."""
    anc = ancestor_masks(n, preds)
    desc_count = [0] * n
    for v in range(n):
        m = anc[v]
        while m:
            low = m & -m
            desc_count[low.bit_length() - 1] += 1
            m ^= low
    cuts = [v for v in range(n) if anc[v].bit_count() + desc_count[v] == n - 1]
    cuts.sort(key=lambda v: anc[v].bit_count())
    return cuts


def split(g: Graph) -> list[list[int]]:
    """The segments of ``g``: each ends with a cut node (but the last)."""
    n = g.num_nodes
    preds = [set(p) for p in g.preds]
    cuts = cut_nodes(n, preds)
    anc = ancestor_masks(n, preds)
    segs: list[list[int]] = []
    prev = 0
    for c in cuts:
        upto = anc[c] | (1 << c)
        seg = upto & ~prev
        segs.append(members(seg))
        prev = upto
    rest = ((1 << n) - 1) & ~prev
    if rest:
        segs.append(members(rest))
    return segs


def _segment(g: Graph, bufs: list[Buffer], done: set[int], nodes: list[int]) -> tuple[list[set[int]], list[Buffer]]:
    """The problem of scheduling ``nodes`` once exactly ``done`` has run:
    local order constraints and the buffers alive during it, such that its
    live bytes equal the whole graph's at every step."""
    local = {v: i for i, v in enumerate(nodes)}
    segset = set(nodes)
    preds = [{local[p] for p in g.preds[v] if p in segset} for v in nodes]
    out: list[Buffer] = []
    for b in bufs:
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


# ---------------------------------------------------------------- entry point


def solve(
    g: Graph,
    *,
    deadline: float | None,
    state_limit: int | None,
    memory_limit: int | None = None,
    divide: bool = True,
) -> EngineResult:
    """Schedules ``g`` (see the module docstring). Every order returned is a
    valid topological order of ``g``; ``optimal`` only when proven."""
    budget = Budget(deadline, state_limit, memory_limit)
    bufs = graph_buffers(g)
    n = g.num_nodes
    groups = split(g) if divide else [list(range(n))]
    segs: list[_Seg] = []
    done: set[int] = set()
    notes: list[str] = []
    # 1. Segments, cheap orders and bounds (these are cheap, but still honour
    # the deadline: a segment left without its bounds keeps greedy and 0).
    for nodes in groups:
        preds, sbufs = _segment(g, bufs, done, nodes)
        prob = build_problem(len(nodes), preds, sbufs)
        order = greedy(prob)
        hi, _ = order_steps(prob, order)
        segs.append(_Seg(nodes, preds, sbufs, prob, order, hi, working_set_bound(prob)))
        done.update(nodes)
    for seg in segs:
        if budget.expired():
            break
        prob = seg.prob
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
                budget.states += run.states
                seg.lo = seg.hi
                glob_lo = max(glob_lo, seg.lo)
    for seg in sorted(segs, key=lambda s: -s.hi):
        if seg.hi <= glob_lo or budget.expired():
            continue
        seg.lo = closure_lower_bound(
            seg.prob.n, seg.preds, seg.bufs, deadline=deadline, start=seg.lo, critical=CRITICAL
        )
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
        notes.append(f"stopped at the {e.args[0]} limit")
    order = [seg.nodes[v] for seg in segs for v in seg.order]
    pk = max((s.hi for s in segs), default=0)
    lo = max((s.lo for s in segs), default=0)
    lo = max(lo, glob_lo)
    if n == 0:
        pk = lo = sum(b.size for b in bufs if b.alloc is None)
    taus = [s.tau for s in segs if s.tau]
    return EngineResult(
        order=order,
        peak=pk,
        lower_bound=min(lo, pk),
        optimal=lo >= pk,
        states=budget.states,
        tau=max(taus) if taus else pk,
        upper_bound_first=first_ub,
        segments=len(segs),
        notes=notes,
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
    while seg.hi > max(seg.lo, glob_lo):
        lo = max(seg.lo, glob_lo)
        tau = min(max(tau, lo), seg.hi - 1)
        seg.tau = tau
        try:
            res = threshold_search(seg.prob, tau, budget, cap)
        except RunCap:
            if cap >= stored_ceiling(budget, seg.prob.n):
                raise OutOfBudget("memory") from None
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
        tau = lo + (seg.hi - 1 - lo) // 2
    return glob_lo
