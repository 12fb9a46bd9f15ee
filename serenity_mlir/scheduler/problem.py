"""The scheduler's bitset view of a graph (or of one segment of it).

Memory model (see :mod:`serenity_mlir.scheduler.graph`): after the nodes of a
down-closed set ``D`` have run, a buffer is alive iff it was allocated within
``D`` (or before the start) and is an output or has a user outside ``D``;
running a ready node ``v`` costs ``step(D, v) = live(D) + size[v]``.
Everything is a function of ``D``: a set is a signature, stored as a Python
int (bitset). :class:`Problem` holds what the searches need to follow that
model incrementally, computed once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from serenity_mlir.scheduler.graph import Buffer, Graph, ancestor_masks


def graph_buffers(g: Graph) -> list[Buffer]:
    """Every buffer of ``g`` in the model of :func:`serenity_mlir.scheduler.graph.peak`:
    one per node (its own index allocates it), plus ``g.buffers``. An
    argument with no user stays alive to the end, so it is made an
    ``output``; an allocated buffer with no user dies at once."""
    bufs = [Buffer(g.names[v], g.sizes[v], g.users[v], v, v in g.outputs) for v in range(g.num_nodes)]
    for b in g.buffers:
        bufs.append(Buffer(b.name, b.size, b.users, b.alloc, b.output or (b.alloc is None and not b.users)))
    return bufs


@dataclass(frozen=True)
class Problem:
    """Bitset view of one graph (or one segment), computed once.

    ``size[v]`` is everything ``v`` allocates when it runs; ``rd[v]`` lists
    the buffers ``v`` can free as their last user (users mask, size);
    ``selffree[v]`` what ``v`` allocates and frees at once (no user, not an
    output)."""

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
    keep_alloc: tuple[int, ...] = ()  # output bytes each node allocates
    keep0: int = 0  # output bytes alive from the start
    work: tuple[int, ...] = ()  # size[v] + every freeable buffer v reads
    work_order: tuple[int, ...] = ()  # nodes by decreasing work


def make_problem(g: Graph, break_symmetry: bool = True) -> Problem:
    return build_problem(g.num_nodes, [set(p) for p in g.preds], graph_buffers(g), break_symmetry)


def build_problem(n: int, preds_in: list[set[int]], bufs: list[Buffer], break_symmetry: bool = True) -> Problem:
    """The search view of ``n`` nodes with order constraints ``preds_in``
    and buffers ``bufs`` (node indices ``0..n-1``).

    A buffer read by a node that is not a descendant of its allocating node
    has no meaning in the model (it would be read before it exists); such a
    user gets an order edge from the allocating node so that the incremental
    bookkeeping here and :func:`serenity_mlir.scheduler.graph.peak` agree."""
    preds = [set(p) for p in preds_in]
    anc = ancestor_masks(n, preds)
    for b in bufs:
        if b.alloc is not None:
            for u in b.users:
                if not (anc[u] >> b.alloc) & 1:
                    preds[u].add(b.alloc)
                    anc = ancestor_masks(n, preds)
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
            owns[b.alloc].append((b.size, tuple(sorted(b.users)), b.output))
        if b.output:
            live_full += b.size
            continue
        if not b.users:
            if b.alloc is not None:
                selffree[b.alloc] += b.size
            else:
                live0 -= b.size  # never alive: nobody reads it and it is not an output
            continue
        um = bits(b.users)
        for u in b.users:
            reads[u].add(j)
            if b.size > 0:
                rd_l[u].append((um, b.size))
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
    pred = [bits(p) for p in preds]
    succ_l: list[list[int]] = [[] for _ in range(n)]
    for v in range(n):
        for p in preds[v]:
            succ_l[p].append(v)
    succ = [bits(s) for s in succ_l]
    can_free = tuple(selffree[v] + sum(s for _, s in rd_l[v]) >= size[v] for v in range(n))
    keep_alloc = [0] * n
    keep0 = 0
    for b in bufs:
        if b.output:
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
    )


def bits(items: Iterable[int]) -> int:
    """The bitset of a collection of node indices."""
    m = 0
    for i in items:
        m |= 1 << i
    return m


def members(m: int) -> list[int]:
    """The node indices of a bitset, ascending."""
    out = []
    while m:
        low = m & -m
        out.append(low.bit_length() - 1)
        m ^= low
    return out


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
