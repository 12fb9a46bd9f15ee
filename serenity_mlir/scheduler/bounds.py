"""Proven lower bounds on the peak of any order (used by the scheduler).

The *working-set* bound: every node's allocation plus every buffer it reads
is alive while it runs, and outputs are alive at the end.

The *isolated-moment* bound: every node ``v`` runs at some moment, and at
that moment the done set ``D`` is an ideal (closed under predecessors) that
holds every ancestor of ``v`` and no descendant of it, so memory is at least
``size[v] + live(D)``. The smallest such ``live(D)`` is a minimum-weight
closure problem, solved exactly by one max-flow/min-cut per node:

* ``x_p = 1`` when node ``p`` is done (``x_b -> x_a`` for every predecessor
  ``a`` of ``b``: a done node has done predecessors);
* ``y_p = 1`` when ``p``'s buffer is dead, which needs every user done
  (``y_p -> x_u``); a done buffer costs ``size[p] * (x_p - y_p)``, an output
  ``size[p] * x_p``; an input ``size[i] * (1 - y_i)``.

The bound is ``max_v`` of those minima; it is never above the optimum and is
much stronger than the largest single-node working set on wide graphs.
"""

from __future__ import annotations

import time
from collections import deque

from serenity_mlir.scheduler.graph import Buffer, ancestor_masks
from serenity_mlir.scheduler.problem import Problem


def working_set_bound(prob: Problem) -> int:
    """Largest single-node working set: a node's allocation plus every
    buffer it reads, and the bytes alive at the end (outputs)."""
    best = prob.live_full
    for v in range(prob.n):
        ws = prob.size[v] + sum(s for _, s in prob.rd[v])
        best = max(best, ws)
    return best


class _Net:
    """A small residual network with integer capacities (Dinic)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.adj: list[list[int]] = [[] for _ in range(n)]
        self.to: list[int] = []
        self.cap: list[int] = []
        # Work done by every maxflow so far (a phase costs the network's
        # size, an augmenting path its length): a deterministic budget.
        self.work = 0

    def add(self, u: int, v: int, c: int) -> int:
        e = len(self.to)
        self.to += (v, u)
        self.cap += (c, 0)
        self.adj[u].append(e)
        self.adj[v].append(e + 1)
        return e

    def maxflow(self, cap: list[int], s: int, t: int) -> int:
        """Max flow with the capacities ``cap`` (modified in place)."""
        adj, to = self.adj, self.to
        flow = 0
        while True:
            self.work += self.n + len(to)
            level = [-1] * self.n
            level[s] = 0
            q = deque([s])
            while q:
                u = q.popleft()
                for e in adj[u]:
                    if cap[e] > 0 and level[to[e]] < 0:
                        level[to[e]] = level[u] + 1
                        q.append(to[e])
            if level[t] < 0:
                return flow
            it = [0] * self.n
            while True:
                # Iterative DFS for one augmenting path in the level graph.
                path: list[int] = []
                u = s
                while u != t:
                    lst = adj[u]
                    i = it[u]
                    while i < len(lst):
                        e = lst[i]
                        if cap[e] > 0 and level[to[e]] == level[u] + 1:
                            break
                        i += 1
                    it[u] = i
                    if i == len(lst):
                        if u == s:
                            break
                        level[u] = -1  # dead end
                        e = path.pop()
                        u = to[e ^ 1]
                        it[u] += 1
                        continue
                    path.append(lst[i])
                    u = to[lst[i]]
                if u != t:
                    break
                self.work += len(path)
                f = min(cap[e] for e in path)
                for e in path:
                    cap[e] -= f
                    cap[e ^ 1] += f
                flow += f


def closure_lower_bound(
    n: int,
    preds: list[set[int]],
    bufs: list[Buffer],
    deadline: float | None = None,
    start: int = 0,
    critical: int = 0,
    work_limit: int | None = None,
) -> int:
    """The isolated-moment bound (see the module docstring) of ``n`` nodes
    with order constraints ``preds`` and buffers ``bufs`` (the model of
    :mod:`serenity_mlir.scheduler.problem`). Stops early, still valid, past
    ``deadline`` (a ``time.perf_counter`` value) or past ``work_limit``
    units of max-flow work (the same point on any machine). ``start`` is an already
    known bound: nodes that cannot beat it are skipped. ``critical`` > 0 also
    bounds the orders of that many nodes of highest single bound (a DP over
    their subsets, up to ``2^critical * critical`` max-flows)."""
    if n == 0:
        return start
    pred_sets = [sorted(p) for p in preds]
    nb = len(bufs)
    s, t = n + nb, n + nb + 1
    net = _Net(n + nb + 2)
    big = sum(b.size for b in bufs) + 1
    ysum = 0  # sum of the (negative) weights of the "dead" variables
    const = 0  # bytes of buffers alive from the start
    step = [0] * n
    for v in range(n):
        for a in pred_sets[v]:
            net.add(v, a, big)
    for j, b in enumerate(bufs):
        if b.alloc is not None:
            step[b.alloc] += b.size
        if b.size == 0:
            continue
        if b.alloc is None:
            const += b.size
        if b.output:
            if b.alloc is not None:
                net.add(b.alloc, t, b.size)
            continue
        if not b.users:
            if b.alloc is None:
                const -= b.size
            continue
        if b.alloc is not None:
            net.add(b.alloc, t, b.size)
            net.add(n + j, b.alloc, big)
        net.add(s, n + j, b.size)
        ysum += b.size
        for u in b.users:
            net.add(n + j, u, big)
    # Switchable edges: s -> x_p (force done) and x_p -> t (force not done).
    force_done = [net.add(s, p, 0) for p in range(n)]
    force_todo = [net.add(p, t, 0) for p in range(n)]
    base = list(net.cap)

    def moment(v: int, done: list[int], todo: list[int]) -> int:
        """Least memory while ``v`` runs with ``done`` run and ``todo`` not."""
        cap = list(base)
        for a in pred_sets[v]:
            cap[force_done[a]] = big
        for a in done:
            cap[force_done[a]] = big
        cap[force_todo[v]] = big
        for a in todo:
            cap[force_todo[a]] = big
        cut = net.maxflow(cap, s, t)
        return min(step[v] + const + cut - ysum, big)

    # Cheap upper estimate per node: the ideal "exactly its ancestors".
    anc = ancestor_masks(n, [set(p) for p in pred_sets])
    upper = [step[v] + _live_of(bufs, anc[v]) for v in range(n)]
    best = start
    single: dict[int, int] = {}
    for v in sorted(range(n), key=lambda v: -upper[v]):
        if upper[v] <= best:
            break
        if deadline is not None and time.perf_counter() > deadline:
            return best
        if work_limit is not None and net.work > work_limit:
            return best
        single[v] = moment(v, [], [])
        best = max(best, single[v])
    if not critical:
        return best
    # Orders of a few critical nodes S (highest single bounds): every order
    # of the graph runs S in some order pi, and the peak is at least each
    # node's moment with the nodes of S before it run and those after it not.
    # So peak >= min over pi of max_i moment(pi_i, pi_<i, pi_>i), computed by
    # a DP over the subsets A of S already run (2^k * k max-flows).
    top = sorted(single, key=lambda v: -single[v])[:critical]
    k = len(top)
    full = (1 << k) - 1
    memo: dict[tuple[int, int], int] = {}

    def mom(i: int, a: int) -> int:
        key = (i, a)
        if key not in memo:
            done = [top[j] for j in range(k) if (a >> j) & 1]
            todo = [top[j] for j in range(k) if not (a >> j) & 1 and j != i]
            memo[key] = moment(top[i], done, todo)
        return memo[key]

    f: dict[int, int] = {full: 0}
    for a in sorted(range(full), key=lambda m: -m.bit_count()):
        if deadline is not None and time.perf_counter() > deadline:
            return best
        if work_limit is not None and net.work > work_limit:
            return best
        val = big
        for i in range(k):
            if (a >> i) & 1:
                continue
            if anc[top[i]] & ~_set_bits(a, top) & _set_bits(full, top):
                continue  # an S-ancestor of top[i] has not run
            rest = f.get(a | (1 << i), big)
            if rest >= val:
                continue
            val = min(val, max(mom(i, a), rest))
        f[a] = val
    return max(best, f[0])


def _set_bits(a: int, nodes: list[int]) -> int:
    m = 0
    for j, v in enumerate(nodes):
        if (a >> j) & 1:
            m |= 1 << v
    return m


def _live_of(bufs: list[Buffer], done: int) -> int:
    """Bytes alive once exactly the nodes of ``done`` have run."""
    live = 0
    for b in bufs:
        if b.alloc is not None and not (done >> b.alloc) & 1:
            continue
        if b.output or any(not (done >> u) & 1 for u in b.users):
            live += b.size
    return live
