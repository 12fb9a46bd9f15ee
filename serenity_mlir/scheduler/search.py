"""The threshold search behind ``schedule(g, "serenity")``: does some order
keep every step within a budget? (The model and the bitset view are in
:mod:`serenity_mlir.scheduler.problem`.)

``threshold_search(prob, t)`` decides whether some order keeps every step
``<= t`` (soft budgeting with budget ``t``). It runs two searches at once, one
forward from the empty set and one backward from the full set, level by level
(one node per level), always expanding the smaller frontier; each is complete
on its own, so the first to die proves "no order fits ``t``" and the first to
reach its far end (or a set reached by both) gives an order that fits.
Frontiers hold only sets whose partial order fits ``t``.

Two reductions keep the searches small; both only drop sets when another
kept set is at least as good, so "no order fits" stays a proof:

* forward: if a ready ``v`` fits (``live(D) + size[v] <= t``) and frees at
  least ``size[v]`` (``live(D+v) <= live(D)``), some fitting completion of
  ``D`` starts with ``v`` (move ``v`` to the front: every step before its old
  place sees no more live bytes, since what ``v`` frees at ``D`` it also frees
  later, and ``v``'s own buffer is alive no longer than before), so ``v`` is
  the only successor kept;
* backward, the mirror image: if a node ``u`` that is last in ``D`` (no
  successor in ``D``) fits and ``live(D-u) <= live(D)``, some fitting order
  of ``D`` ends with ``u``.

A failed search also reports the smallest step it pruned: no order has a peak
below it (every decision of the search is the same for any budget below that
value), which is how the meta-search raises its proven lower bound.

Why one module of about 400 lines: the forward and backward expansions are
mirror images that share their frontier records and reductions; split, each
half would be read without the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from serenity_mlir.scheduler.budget import TIME_LIMIT, WORK_LIMIT, Budget
from serenity_mlir.scheduler.problem import Problem

_INF = 1 << 62
# Sets stored by one threshold search, whatever the caller's limits (memory).
MAX_STORED = 4_000_000


def stored_ceiling(budget: Budget, n: int) -> int:
    """Sets one search may store: the memory ceiling, or less under the
    caller's byte limit (``--memory-limit``)."""
    limit = budget.max_stored(n)
    return MAX_STORED if limit is None else min(MAX_STORED, limit)


class RunCap(Exception):
    """One threshold search went over its own state cap."""


@dataclass
class SearchOutcome:
    found: bool
    order: list[int]  # when found: every step fits the threshold
    min_pruned: int  # when not found: no order has a peak below this
    states: int


class _Side:
    """One direction of the race: its frontier and the parents of every level."""

    def __init__(self, forward: bool, prob: Problem) -> None:
        self.forward = forward
        if forward:
            self.k = 0
            start = 0
            ready = 0
            for v in range(prob.n):
                if not prob.pred[v]:
                    ready |= 1 << v
            self.front: dict[int, tuple[int, int, int]] = {start: (prob.live0, ready, prob.keep0)}
        else:
            self.k = prob.n
            start = prob.full
            last = 0
            for v in range(prob.n):
                if not prob.succ[v]:
                    last |= 1 << v
            self.front = {start: (prob.live_full, last, 0)}
        # levels[k]: set -> node that links it to level k-1 (forward: the node
        # run last) or to level k+1 (backward: the node run next).
        self.levels: dict[int, dict[int, int]] = {self.k: {start: -1}}
        self.min_pruned = _INF


def threshold_search(prob: Problem, t: int, budget: Budget, cap: int, dives: bool = True) -> SearchOutcome:
    """Is there an order whose every step is ``<= t``? Raises ``RunCap``
    past ``cap`` stored sets and ``OutOfBudget`` past the global limits.

    After each level, a bounded depth-first dive from the most promising set
    of the level just built looks for a fitting order quickly (it only ever
    finds; proofs come from the breadth-first sides)."""
    n = prob.n
    if n == 0:
        return SearchOutcome(True, [], _INF, 0)
    fw = _Side(True, prob)
    bw = _Side(False, prob)
    stored = 2
    cap = min(cap, stored_ceiling(budget, n))
    divers = (_Diver(prob, t, True), _Diver(prob, t, False)) if dives else None
    while True:
        side = fw if len(fw.front) <= len(bw.front) else bw
        if side.forward:
            nxt, par = _expand_forward(prob, side, t, budget, cap - stored)
            side.k += 1
        else:
            nxt, par = _expand_backward(prob, side, t, budget, cap - stored)
            side.k -= 1
        if not nxt:
            return SearchOutcome(False, [], side.min_pruned, stored)
        side.front = nxt
        side.levels[side.k] = par
        stored += len(nxt)
        budget.charge(len(nxt), n)
        if stored > cap:
            raise RunCap
        budget.check()
        if fw.k == n:
            return SearchOutcome(True, _path_forward(fw, prob.full, n), _INF, stored)
        if bw.k == 0:
            return SearchOutcome(True, _path_backward(bw, 0, 0, n), _INF, stored)
        other = bw if side.forward else fw
        k = side.k
        if k in other.levels:
            a, b = side.levels[k], other.levels[k]
            if len(a) > len(b):
                a, b = b, a
            for d in a:
                if d in b:
                    return SearchOutcome(True, _path_forward(fw, d, k) + _path_backward(bw, d, k, n), _INF, stored)
        if divers is not None:
            # Each diver may visit about as many sets as the breadth-first
            # sides have stored so far.
            for diver in divers:
                limit = max(64, len(nxt))
                found = diver.resume(bw if diver.forward else fw, limit, budget)
                budget.charge(limit, n)
                if found is not None:
                    return SearchOutcome(True, found, _INF, stored)


class _Diver:
    """A depth-first search (lowest live bytes first) from one end, resumed
    for a few sets after each level of the breadth-first sides. It looks for
    the far end or any set stored by the other side; it never proves
    anything (its visited sets are only skipped as a heuristic)."""

    def __init__(self, prob: Problem, t: int, forward: bool) -> None:
        self.prob, self.t, self.forward = prob, t, forward
        start = _Side(forward, prob)
        ((d0, (live0, mask0, _)),) = start.front.items()
        self.seen: set[int] = {d0}
        self.k0 = start.k
        self.stack: list[tuple[int, int, list[tuple[int, int, int, int]]]] = [
            (d0, start.k, _children(prob, t, d0, live0, mask0, forward, self.seen))
        ]
        self.path: list[int] = []

    def resume(self, other: _Side, limit: int, budget: Budget) -> list[int] | None:
        """Returns a complete order that fits ``t``, or None (out of sets)."""
        prob, forward, stack, path = self.prob, self.forward, self.stack, self.path
        n = prob.n
        step = 1 if forward else -1
        goal = n if forward else 0
        visited = 0
        while stack:
            d, k, kids = stack[-1]
            if not kids:
                stack.pop()
                if path:
                    path.pop()
                continue
            live2, v, d2, mask2 = kids.pop()
            if d2 in self.seen:
                continue
            self.seen.add(d2)
            k2 = k + step
            lv = other.levels.get(k2)
            if k2 == goal or (lv is not None and d2 in lv):
                if forward:
                    order = path + [v]
                    return order + _path_backward(other, d2, k2, n) if k2 != goal else order
                order = path + [v]
                order.reverse()
                return _path_forward(other, d2, k2) + order if k2 != goal else order
            path.append(v)
            stack.append((d2, k2, _children(prob, self.t, d2, live2, mask2, forward, self.seen)))
            visited += 1
            if visited >= limit:
                break
            if not visited & 4095 and budget.expired():
                raise budget.stop(TIME_LIMIT)
        return None


def _children(
    prob: Problem, t: int, d: int, live: int, mask: int, forward: bool, seen: set[int]
) -> list[tuple[int, int, int, int]]:
    """The successors of one set that fit ``t`` (with the reductions), best
    last: (live bytes of the new set, node, new set, new ready/last mask)."""
    size, rd, selffree = prob.size, prob.rd, prob.selffree
    out: list[tuple[int, int, int, int]] = []
    x = mask
    while x:
        low = x & -x
        x ^= low
        v = low.bit_length() - 1
        if forward:
            st = live + size[v]
            if st > t:
                continue
            d2 = d | low
            f = selffree[v]
            for um, sz in rd[v]:
                if not um & ~d2:
                    f += sz
            live2 = st - f
            forced = f >= size[v]
        else:
            f = selffree[v]
            for um, sz in rd[v]:
                if not um & ~d:
                    f += sz
            st = live + f
            if st > t:
                continue
            d2 = d ^ low
            live2 = st - size[v]
            forced = f <= size[v]
        if forced:
            out = [(live2, v, d2, 0)]
            break
        if d2 not in seen:
            out.append((live2, v, d2, 0))
    res: list[tuple[int, int, int, int]] = []
    for live2, v, d2, _ in out:
        if d2 in seen:
            continue
        low = 1 << v
        if forward:
            m2 = mask & ~low
            for s in prob.succ_list[v]:
                if not prob.pred[s] & ~d2:
                    m2 |= 1 << s
        else:
            m2 = mask & ~low
            for p in prob.pred_list[v]:
                if not prob.succ[p] & d2:
                    m2 |= 1 << p
        res.append((live2, v, d2, m2))
    res.sort(reverse=True)
    return res


def _expand_forward(
    prob: Problem, side: _Side, t: int, budget: Budget, room: int
) -> tuple[dict[int, tuple[int, int, int]], dict[int, int]]:
    """One forward level. Besides the budget on each step, a set ``D`` is
    dropped when some node not yet run cannot fit later: kept buffers
    (outputs) allocated in ``D`` stay alive to the end, so that node's step
    is at least ``kept(D) + work[v]`` (what it allocates plus the freeable
    buffers it reads, which are alive while it runs and are not kept)."""
    size, rd, selffree = prob.size, prob.rd, prob.selffree
    pred, succ_list, can_free = prob.pred, prob.succ_list, prob.can_free
    keep_alloc, work, work_order = prob.keep_alloc, prob.work, prob.work_order
    wmax = work[work_order[0]] if prob.n else 0
    nxt: dict[int, tuple[int, int, int]] = {}
    par: dict[int, int] = {}
    mn = side.min_pruned
    count = 0
    for d, (live, ready, kept) in side.front.items():
        count += 1
        if not count & 4095:
            if budget.over(len(nxt), prob.n):
                raise budget.stop(WORK_LIMIT)
            if budget.expired():
                raise budget.stop(TIME_LIMIT)
            if len(nxt) > room:
                raise RunCap
        x = ready
        cands: list[int] = []
        forced = -1
        ffree = 0
        while x:
            low = x & -x
            x ^= low
            v = low.bit_length() - 1
            st = live + size[v]
            if st > t:
                if st < mn:
                    mn = st
                continue
            if can_free[v]:
                d2 = d | low
                f = selffree[v]
                for um, sz in rd[v]:
                    if not um & ~d2:
                        f += sz
                if f >= size[v]:
                    forced = v
                    ffree = f
                    break
            cands.append(v)
        if forced >= 0:
            cands = [forced]
        for v in cands:
            low = 1 << v
            d2 = d | low
            if d2 in nxt:
                continue
            k2 = kept + keep_alloc[v]
            if k2 + wmax > t:
                # The heaviest node not run yet bounds every completion.
                for u in work_order:
                    if not (d2 >> u) & 1:
                        h = k2 + work[u]
                        break
                else:
                    h = k2
                if h > t:
                    if h < mn:
                        mn = h
                    continue
            if v == forced:
                f = ffree
            else:
                f = selffree[v]
                for um, sz in rd[v]:
                    if not um & ~d2:
                        f += sz
            r2 = ready & ~low
            for s2 in succ_list[v]:
                if not pred[s2] & ~d2:
                    r2 |= 1 << s2
            nxt[d2] = (live + size[v] - f, r2, k2)
            par[d2] = v
    side.min_pruned = mn
    return nxt, par


def _expand_backward(
    prob: Problem, side: _Side, t: int, budget: Budget, room: int
) -> tuple[dict[int, tuple[int, int, int]], dict[int, int]]:
    size, rd, selffree, succ, pred_list = prob.size, prob.rd, prob.selffree, prob.succ, prob.pred_list
    nxt: dict[int, tuple[int, int, int]] = {}
    par: dict[int, int] = {}
    mn = side.min_pruned
    count = 0
    for d2, (live2, last, _) in side.front.items():
        count += 1
        if not count & 4095:
            if budget.over(len(nxt), prob.n):
                raise budget.stop(WORK_LIMIT)
            if budget.expired():
                raise budget.stop(TIME_LIMIT)
            if len(nxt) > room:
                raise RunCap
        x = last
        cands: list[int] = []
        steps: list[int] = []
        while x:
            low = x & -x
            x ^= low
            u = low.bit_length() - 1
            f = selffree[u]
            for um, sz in rd[u]:
                if not um & ~d2:
                    f += sz
            st = live2 + f
            if st > t:
                if st < mn:
                    mn = st
                continue
            if f <= size[u]:
                cands = [u]
                steps = [st]
                break
            cands.append(u)
            steps.append(st)
        for u, st in zip(cands, steps, strict=True):
            low = 1 << u
            d = d2 ^ low
            if d in nxt:
                continue
            l2 = last & ~low
            for p in pred_list[u]:
                if not succ[p] & d:
                    l2 |= 1 << p
            nxt[d] = (st - size[u], l2, 0)
            par[d] = u
    side.min_pruned = mn
    return nxt, par


def _path_forward(side: _Side, d: int, k: int) -> list[int]:
    order: list[int] = []
    while k > 0:
        v = side.levels[k][d]
        order.append(v)
        d ^= 1 << v
        k -= 1
    order.reverse()
    return order


def _path_backward(side: _Side, d: int, k: int, n: int) -> list[int]:
    order: list[int] = []
    while k < n:
        u = side.levels[k][d]
        order.append(u)
        d |= 1 << u
        k += 1
    return order
