"""The search engine behind ``schedule(g, "serenity")``: budgeted threshold
searches over sets of scheduled nodes.

Memory model (see :mod:`serenity_mlir.scheduler.graph`): after the nodes of a down-closed
set ``D`` have run, buffer ``p`` is alive iff ``p`` is in ``D`` and is an
output or has a user outside ``D``; running a ready node ``v`` costs
``step(D, v) = live(D) + size[v]``. Everything is a function of ``D``: a set
is a signature, stored as a Python int (bitset).

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
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import NamedTuple

from serenity_mlir.scheduler.graph import Graph

_INF = 1 << 62
# Sets stored by one threshold search, whatever the caller's limits (memory).
MAX_STORED = 4_000_000


class OutOfBudget(Exception):
    """The global time or state limit is spent."""


class RunCap(Exception):
    """One threshold search went over its own state cap."""


class Budget:
    """Global limits shared by every search of one ``schedule`` call."""

    def __init__(self, deadline: float | None, state_limit: int | None) -> None:
        self.deadline = deadline
        self.state_limit = state_limit
        self.states = 0

    def expired(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def check(self) -> None:
        if self.expired():
            raise OutOfBudget("time")
        if self.state_limit is not None and self.states > self.state_limit:
            raise OutOfBudget("states")

    def remaining_states(self) -> int:
        if self.state_limit is None:
            return MAX_STORED
        return max(0, self.state_limit - self.states)


class Buf(NamedTuple):
    """One buffer of the memory model: allocated when ``alloc`` runs (or
    alive from the start when None), freed once every node of ``users`` has
    run, never freed when ``keep`` (graph outputs, unused inputs)."""

    alloc: int | None
    size: int
    users: frozenset[int]
    keep: bool


def graph_buffers(g: Graph) -> list[Buf]:
    """Every buffer of ``g`` in the model of :func:`serenity_mlir.scheduler.graph.peak`:
    one per node, plus ``g.inputs`` (an input with no user and no allocating
    node stays alive to the end; an allocated one with no user dies at once)."""
    bufs = [Buf(v, g.sizes[v], g.users[v], v in g.outputs) for v in range(g.num_nodes)]
    for b in g.inputs:
        bufs.append(Buf(b.alloc, b.size, b.users, b.alloc is None and not b.users))
    return bufs


@dataclass(frozen=True)
class Problem:
    """Bitset view of one graph (or one segment), computed once.

    ``size[v]`` is everything ``v`` allocates when it runs; ``rd[v]`` lists
    the buffers ``v`` can free as their last user; ``selffree[v]`` what ``v``
    allocates and frees at once (no user, not kept)."""

    n: int
    full: int
    size: tuple[int, ...]
    pred: tuple[int, ...]  # masks, including symmetry-breaking edges
    succ: tuple[int, ...]
    pred_list: tuple[tuple[int, ...], ...]
    succ_list: tuple[tuple[int, ...], ...]
    rd: tuple[tuple[tuple[int, int], ...], ...]
    selffree: tuple[int, ...]
    can_free: tuple[bool, ...]  # whether v can ever free >= size[v]
    live0: int  # live bytes before anything runs
    live_full: int  # live bytes after everything ran
    twin_edges: int  # symmetry-breaking edges added
    keep_alloc: tuple[int, ...] = ()  # kept bytes each node allocates
    keep0: int = 0  # kept bytes alive from the start
    work: tuple[int, ...] = ()  # size[v] + every freeable buffer v reads
    work_order: tuple[int, ...] = ()  # nodes by decreasing work


def make_problem(g: Graph, break_symmetry: bool = True) -> Problem:
    return build_problem(g.num_nodes, [set(p) for p in g.preds], graph_buffers(g), break_symmetry)


def build_problem(n: int, preds_in: list[set[int]], bufs: list[Buf], break_symmetry: bool = True) -> Problem:
    """The search view of ``n`` nodes with order constraints ``preds_in``
    and buffers ``bufs`` (node indices ``0..n-1``).

    A buffer read by a node that is not a descendant of its allocating node
    has no meaning in the model (it would be read before it exists); such a
    user gets an order edge from the allocating node so that the incremental
    bookkeeping here and :func:`serenity_mlir.scheduler.graph.peak` agree."""
    preds = [set(p) for p in preds_in]
    anc = _ancestor_masks(n, preds)
    for b in bufs:
        if b.alloc is not None:
            for u in b.users:
                if not (anc[u] >> b.alloc) & 1:
                    preds[u].add(b.alloc)
                    anc = _ancestor_masks(n, preds)
    size = [0] * n
    selffree = [0] * n
    rd_l: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    reads: list[set[int]] = [set() for _ in range(n)]
    owns: list[list[tuple[int, tuple[int, ...], bool]]] = [[] for _ in range(n)]
    live0 = live_full = 0
    for j, b in enumerate(bufs):
        if b.alloc is None:
            live0 += b.size
        else:
            size[b.alloc] += b.size
            owns[b.alloc].append((b.size, tuple(sorted(b.users)), b.keep))
        if b.keep:
            live_full += b.size
            continue
        if not b.users:
            if b.alloc is not None:
                selffree[b.alloc] += b.size
            else:
                live0 -= b.size  # never alive: nobody reads it and it is not kept
            continue
        um = _bits(b.users)
        for u in b.users:
            reads[u].add(j)
            if b.size > 0:
                rd_l[u].append((um, b.size))
    twin_edges = 0
    if break_symmetry:
        # Nodes that are indistinguishable for the memory model (same
        # predecessors and successors, reading the same buffers, allocating
        # buffers of the same sizes, users and fate): swapping two of them in
        # any order is an automorphism and keeps every step, so some optimal
        # order runs them in index order.
        succ_sets: list[set[int]] = [set() for _ in range(n)]
        for v in range(n):
            for p in preds[v]:
                succ_sets[p].add(v)
        groups: dict[tuple[object, ...], list[int]] = {}
        for v in range(n):
            key = (
                frozenset(preds[v]),
                frozenset(succ_sets[v]),
                frozenset(reads[v]),
                tuple(sorted(owns[v])),
            )
            groups.setdefault(key, []).append(v)
        for members in groups.values():
            for first, second in zip(members, members[1:], strict=False):
                preds[second].add(first)
                twin_edges += 1
    pred = [_bits(p) for p in preds]
    succ_l: list[list[int]] = [[] for _ in range(n)]
    for v in range(n):
        for p in preds[v]:
            succ_l[p].append(v)
    succ = [_bits(s) for s in succ_l]
    can_free = tuple(selffree[v] + sum(s for _, s in rd_l[v]) >= size[v] for v in range(n))
    keep_alloc = [0] * n
    keep0 = 0
    for b in bufs:
        if b.keep:
            if b.alloc is None:
                keep0 += b.size
            else:
                keep_alloc[b.alloc] += b.size
    work = tuple(size[v] + sum(s for _, s in rd_l[v]) for v in range(n))
    return Problem(
        keep_alloc=tuple(keep_alloc),
        keep0=keep0,
        work=work,
        work_order=tuple(sorted(range(n), key=lambda v: -work[v])),
        n=n,
        full=(1 << n) - 1,
        size=tuple(size),
        pred=tuple(pred),
        succ=tuple(succ),
        pred_list=tuple(tuple(sorted(p)) for p in preds),
        succ_list=tuple(tuple(sorted(s)) for s in succ_l),
        rd=tuple(tuple(r) for r in rd_l),
        selffree=tuple(selffree),
        can_free=can_free,
        live0=live0,
        live_full=live_full,
        twin_edges=twin_edges,
    )


def _ancestor_masks(n: int, preds: list[set[int]]) -> list[int]:
    """Ancestor bitsets (any index order: iterative, memoised)."""
    anc: list[int | None] = [None] * n
    for v0 in range(n):
        stack = [v0]
        while stack:
            x = stack[-1]
            if anc[x] is not None:
                stack.pop()
                continue
            pending = [p for p in preds[x] if anc[p] is None]
            if pending:
                stack.extend(pending)
                continue
            m = 0
            for p in preds[x]:
                a = anc[p]
                assert a is not None
                m |= a | (1 << p)
            anc[x] = m
            stack.pop()
    return [a or 0 for a in anc]


def _bits(items: frozenset[int] | set[int] | list[int]) -> int:
    m = 0
    for i in items:
        m |= 1 << i
    return m


def order_steps(prob: Problem, order: list[int]) -> tuple[int, int]:
    """(peak, live bytes at the end) of a complete or partial order."""
    live = prob.live0
    pk = live
    done = 0
    for v in order:
        st = live + prob.size[v]
        if st > pk:
            pk = st
        done |= 1 << v
        live = st - freed(prob, done, v)
    return pk, live


def freed(prob: Problem, done: int, v: int) -> int:
    """Bytes released once ``v`` has run (``done`` includes ``v``)."""
    f = prob.selffree[v]
    for um, sz in prob.rd[v]:
        if not um & ~done:
            f += sz
    return f


# ---------------------------------------------------------------- threshold search


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
    cap = min(cap, MAX_STORED)
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
        budget.states += len(nxt)
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
                budget.states += limit
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
        (d0, (live0, mask0, _)), = start.front.items()
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
                raise OutOfBudget("time")
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
    size, rd, selffree, pred, succ_list, can_free = (
        prob.size, prob.rd, prob.selffree, prob.pred, prob.succ_list, prob.can_free,
    )
    keep_alloc, work, work_order = prob.keep_alloc, prob.work, prob.work_order
    wmax = work[work_order[0]] if prob.n else 0
    nxt: dict[int, tuple[int, int, int]] = {}
    par: dict[int, int] = {}
    mn = side.min_pruned
    count = 0
    for d, (live, ready, kept) in side.front.items():
        count += 1
        if not count & 4095:
            if budget.expired():
                raise OutOfBudget("time")
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
            if budget.expired():
                raise OutOfBudget("time")
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


# ---------------------------------------------------------------- beam search


def level_dp(
    prob: Problem, width: int | None = None, max_states: int | None = None, budget: Budget | None = None
) -> tuple[int, list[int], int] | None:
    """The level-by-level DP over down-closed sets, keeping the lowest peak
    per set. Exact with no ``width``; with one, a beam search that keeps the
    ``width`` best sets of each level (lowest peak so far, then lowest live
    bytes): a good upper bound. Gives up (None) past ``max_states`` stored
    sets and raises ``OutOfBudget`` past the budget's deadline. Returns
    (peak, order, sets stored)."""
    size, rd, selffree, pred, succ_list = prob.size, prob.rd, prob.selffree, prob.pred, prob.succ_list
    ready0 = 0
    for v in range(prob.n):
        if not pred[v]:
            ready0 |= 1 << v
    # set -> (peak so far, live bytes, ready nodes)
    level: dict[int, tuple[int, int, int]] = {0: (prob.live0, prob.live0, ready0)}
    parents: list[dict[int, int]] = []  # per level: set -> the node run last
    states = 0
    for _ in range(prob.n):
        if budget is not None and budget.expired():
            raise OutOfBudget("time")
        nxt: dict[int, tuple[int, int, int]] = {}
        par: dict[int, int] = {}
        for d, (pk, live, ready) in level.items():
            x = ready
            while x:
                low = x & -x
                x ^= low
                v = low.bit_length() - 1
                st = live + size[v]
                p2 = pk if pk >= st else st
                d2 = d | low
                old = nxt.get(d2)
                if old is not None:
                    # Same set, same live bytes and ready nodes: keep the lower peak.
                    if old[0] > p2:
                        nxt[d2] = (p2, old[1], old[2])
                        par[d2] = v
                    continue
                f = selffree[v]
                for um, sz in rd[v]:
                    if not um & ~d2:
                        f += sz
                r2 = ready & ~low
                for s2 in succ_list[v]:
                    if not pred[s2] & ~d2:
                        r2 |= 1 << s2
                nxt[d2] = (p2, st - f, r2)
                par[d2] = v
        if width is not None and len(nxt) > width:
            nxt = dict(heapq.nsmallest(width, nxt.items(), key=lambda kv: (kv[1][0], kv[1][1])))
        states += len(nxt)
        if budget is not None:
            budget.states += len(nxt)
        if max_states is not None and states > max_states:
            return None
        parents.append(par)
        level = nxt
    d = prob.full
    order: list[int] = []
    for k in range(prob.n - 1, -1, -1):
        v = parents[k][d]
        order.append(v)
        d ^= 1 << v
    order.reverse()
    return level[prob.full][0], order, states


def beam_search(prob: Problem, width: int, budget: Budget) -> tuple[int, list[int]]:
    """``level_dp`` keeping the ``width`` best sets per level: (peak, order)."""
    res = level_dp(prob, width=width, budget=budget)
    assert res is not None  # no state cap was given
    return res[0], res[1]
