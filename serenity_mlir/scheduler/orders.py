"""Cheap valid orders: upper bounds for the searches and the baselines of
the reports.

The ``*_order`` functions take a :class:`~serenity_mlir.scheduler.graph.Graph`;
the others take the scheduler's bitset view of one (a
:class:`~serenity_mlir.scheduler.problem.Problem`, whose order constraints
may hold extra edges).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

from serenity_mlir.scheduler.graph import Graph
from serenity_mlir.scheduler.problem import Problem, freed, make_problem


def program_order(g: Graph) -> list[int]:
    """The imported order (index order is always a valid one)."""
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
    """:func:`greedy` on ``g`` (completing ``start``, a valid prefix)."""
    return greedy(make_problem(g, break_symmetry=False), start)


def random_topo_order(g: Graph, seed: int) -> list[int]:
    """:func:`random_topo` on ``g``."""
    return random_topo(make_problem(g, break_symmetry=False), seed)


def greedy(prob: Problem, start: Sequence[int] = ()) -> list[int]:
    """Memory-aware list scheduling: run the ready node with the smallest
    step, then the smallest live bytes after it (then the lowest index).
    Completes ``start`` (a valid prefix) when given."""
    done = 0
    live = prob.live0
    order = list(start)
    for v in order:
        done |= 1 << v
        live += prob.size[v] - freed(prob, done, v)
    ready = 0
    for v in range(prob.n):
        if not (done >> v) & 1 and not prob.pred[v] & ~done:
            ready |= 1 << v
    while ready:
        best: tuple[int, int, int] | None = None
        x = ready
        while x:
            low = x & -x
            x ^= low
            v = low.bit_length() - 1
            st = live + prob.size[v]
            after = st - freed(prob, done | low, v)
            key = (st, after, v)
            if best is None or key < best:
                best = key
        assert best is not None
        _, live, v = best
        done |= 1 << v
        order.append(v)
        ready &= ~(1 << v)
        for s in prob.succ_list[v]:
            if not prob.pred[s] & ~done:
                ready |= 1 << s
    return order


def reverse_post_order(prob: Problem) -> list[int]:
    """Depth-first from the sources, reversed post-order: finishes one
    branch before starting the next (what many compilers emit)."""
    n = prob.n
    seen = [False] * n
    post: list[int] = []
    for root in reversed(range(n)):
        if prob.pred[root] or seen[root]:
            continue
        seen[root] = True
        stack = [(root, iter(prob.succ_list[root]))]
        while stack:
            v, it = stack[-1]
            for s in it:
                if not seen[s]:
                    seen[s] = True
                    stack.append((s, iter(prob.succ_list[s])))
                    break
            else:
                stack.pop()
                post.append(v)
    post.reverse()
    return post


def random_topo(prob: Problem, seed: int) -> list[int]:
    """A seeded random topological order (the same seed, the same order)."""
    rng = random.Random(seed)
    indeg = [len(p) for p in prob.pred_list]
    ready = [v for v in range(prob.n) if indeg[v] == 0]
    order: list[int] = []
    while ready:
        v = ready.pop(rng.randrange(len(ready)))
        order.append(v)
        for s in prob.succ_list[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return order
