"""The dataflow graph the scheduler works on, and its memory model.

This module is pure Python with no MLIR import (like tinygrad's memory
planner), so the scheduler can be tested on synthetic graphs and reused by any
front end. A node is one op that runs; it allocates ``size`` bytes when it
runs (its outputs coexist with its inputs at that moment), and that buffer
stays alive until every node in ``users`` has run, or to the end when the
node is a graph output. Buffers beyond the one per node are listed apart
(``Graph.buffers``): function arguments, live from the start until their last
user has run, and a node's further results (``alloc`` = the node), allocated
together with its first result but freed on their own.

``preds`` (the order constraints) and ``users`` (what keeps a buffer alive)
are separate on purpose: with views and in-place updates a buffer is kept
alive by ops that read an alias of it, not only by its direct consumers.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from serenity_mlir.errors import GraphError


@dataclass(frozen=True)
class Buffer:
    """One buffer of the memory model. With ``alloc=None`` it exists before
    the first node runs (a function argument); otherwise node ``alloc``
    allocates it when it runs (a second result of a dispatch). It is freed
    once every node of ``users`` has run, unless ``output``: then it lives
    to the end."""

    name: str
    size: int
    users: frozenset[int]
    alloc: int | None = None
    output: bool = False


@dataclass(frozen=True)
class Graph:
    """A DAG of nodes with sizes, order constraints and buffer lifetimes.

    Node indices follow ``names``; the index order is the program (imported)
    order, which is always a valid topological order.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    preds: tuple[frozenset[int], ...]
    users: tuple[frozenset[int], ...]
    outputs: frozenset[int] = frozenset()
    # Buffers beyond the one per node (function arguments, further results).
    buffers: tuple[Buffer, ...] = ()
    # Free-form per-node labels (op name, location) for reports and plots.
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.names)
        if not (len(self.sizes) == len(self.preds) == len(self.users) == n):
            raise GraphError("graph arrays have different lengths")
        if self.labels and len(self.labels) != n:
            raise GraphError("labels must name every node")
        for b in self.buffers:
            if b.alloc is not None and not 0 <= b.alloc < n:
                raise GraphError(f"buffer '{b.name}' is allocated by a bad node {b.alloc}")
            if b.alloc is not None and b.alloc in b.users:
                raise GraphError(f"buffer '{b.name}' lists its allocating node as a user")
        for v in range(n):
            for p in self.preds[v]:
                if not 0 <= p < n or p == v:
                    raise GraphError(f"node '{self.names[v]}' has a bad predecessor {p}")
            for u in self.users[v]:
                if not 0 <= u < n or u == v:
                    raise GraphError(f"node '{self.names[v]}' has a bad user {u}")
            if self.sizes[v] < 0:
                raise GraphError(f"node '{self.names[v]}' has a negative size")
        _check_acyclic(self)

    @property
    def num_nodes(self) -> int:
        return len(self.names)

    def succs(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.names]
        for v, ps in enumerate(self.preds):
            for p in ps:
                out[p].append(v)
        return out

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


def _check_acyclic(g: Graph) -> None:
    """Kahn's algorithm; names a node on a cycle when there is one."""
    indeg = [len(p) for p in g.preds]
    succs = g.succs()
    ready = [v for v, d in enumerate(indeg) if d == 0]
    seen = 0
    while ready:
        v = ready.pop()
        seen += 1
        for s in succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if seen != g.num_nodes:
        stuck = sorted(v for v, d in enumerate(indeg) if d > 0)
        raise GraphError(
            f"the graph has a cycle through node '{g.names[stuck[0]]}' ({len(stuck)} nodes cannot be ordered)"
        )


def from_edges(
    names: Sequence[str],
    sizes: Sequence[int],
    edges: Iterable[tuple[str, str]],
    outputs: Iterable[str] = (),
) -> Graph:
    """Builds the plain graph of ``schedule-graph``: every edge is both an
    order constraint and a use that keeps the producer's tensor alive."""
    idx: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in idx:
            raise GraphError(f"node '{name}' is defined twice")
        idx[name] = i
    preds: list[set[int]] = [set() for _ in names]
    users: list[set[int]] = [set() for _ in names]
    for a, b in edges:
        for end in (a, b):
            if end not in idx:
                raise GraphError(f"edge [{a!r}, {b!r}] names unknown node '{end}'")
        if a == b:
            raise GraphError(f"edge [{a!r}, {b!r}] is a self-loop")
        preds[idx[b]].add(idx[a])
        users[idx[a]].add(idx[b])
    outs = set()
    for o in outputs:
        if o not in idx:
            raise GraphError(f"output names unknown node '{o}'")
        outs.add(idx[o])
    # Reindex into a topological order that keeps the given order where it
    # can, so index order is always a valid program order.
    order = stable_topological_order(len(names), preds)
    pos = {v: i for i, v in enumerate(order)}
    return Graph(
        names=tuple(names[v] for v in order),
        sizes=tuple(int(sizes[v]) for v in order),
        preds=tuple(frozenset(pos[p] for p in preds[v]) for v in order),
        users=tuple(frozenset(pos[u] for u in users[v]) for v in order),
        outputs=frozenset(pos[o] for o in outs),
    )


def stable_topological_order(n: int, preds: Sequence[set[int]]) -> list[int]:
    """A topological order that takes the lowest-numbered ready node first,
    so it keeps the given numbering wherever the constraints allow."""
    indeg = [len(p) for p in preds]
    succs: list[list[int]] = [[] for _ in range(n)]
    for v in range(n):
        for p in preds[v]:
            succs[p].append(v)
    heap = [v for v in range(n) if indeg[v] == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        v = heapq.heappop(heap)
        order.append(v)
        for s in succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(heap, s)
    if len(order) != n:
        stuck = [v for v in range(n) if indeg[v] > 0]
        raise GraphError(f"the graph has a cycle ({len(stuck)} nodes cannot be ordered)")
    return order


def ancestor_masks(n: int, preds: Sequence[set[int]]) -> list[int]:
    """The ancestors of every node as a bitset, for order constraints
    ``preds`` in any index order."""
    anc = [0] * n
    for v in stable_topological_order(n, preds):
        m = 0
        for p in preds[v]:
            m |= anc[p] | (1 << p)
        anc[v] = m
    return anc


def load_graph_json(text: str, source: str = "<graph>") -> Graph:
    """Parses the ``schedule-graph`` JSON format, naming what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise GraphError(f"{source}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from e
    except RecursionError:
        # Arrays or objects nested deeper than the parser's recursion limit
        # (no graph needs more than three levels).
        raise GraphError(f"{source}: invalid graph: JSON nested too deeply") from None
    except ValueError as e:
        # An integer of more digits than Python converts (sys.set_int_max_str_digits).
        raise GraphError(f"{source}: invalid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise GraphError(f"{source}: expected an object with a 'nodes' list")
    names: list[str] = []
    sizes: list[int] = []
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            raise GraphError(f"{source}: nodes[{i}] needs a string 'name'")
        size = node.get("bytes", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise GraphError(f"{source}: nodes[{i}] ('{node['name']}') needs a non-negative integer 'bytes'")
        names.append(node["name"])
        sizes.append(size)
    edges = data.get("edges", [])
    if not isinstance(edges, list) or not all(
        isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in edges
    ):
        raise GraphError(f"{source}: 'edges' must be a list of [from, to] name pairs")
    outputs = data.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        raise GraphError(f"{source}: 'outputs' must be a list of node names")
    try:
        return from_edges(names, sizes, [(a, b) for a, b in edges], outputs)
    except GraphError as e:
        raise GraphError(f"{source}: {e}") from e


def check_order(g: Graph, order: Sequence[int]) -> None:
    """Raises unless ``order`` schedules every node once, after its preds."""
    if len(order) != g.num_nodes or set(order) != set(range(g.num_nodes)):
        raise GraphError("the order does not schedule every node exactly once")
    done = [False] * g.num_nodes
    for v in order:
        for p in g.preds[v]:
            if not done[p]:
                raise GraphError(f"the order runs '{g.names[v]}' before its predecessor '{g.names[p]}'")
        done[v] = True


def live_profile(g: Graph, order: Sequence[int]) -> list[int]:
    """Memory while each node of ``order`` runs (its outputs allocated, the
    buffers it reads still alive). The peak of the order is the maximum."""
    check_order(g, order)
    remaining = [len(u) for u in g.users]
    readers: list[list[int]] = [[] for _ in g.names]
    for v, us in enumerate(g.users):
        for u in us:
            readers[u].append(v)
    extra_alloc = [0] * g.num_nodes
    own_extra: list[list[int]] = [[] for _ in g.names]
    extra_readers: list[list[int]] = [[] for _ in g.names]
    in_remaining = [len(b.users) for b in g.buffers]
    live = 0
    for j, b in enumerate(g.buffers):
        if b.alloc is None:
            live += b.size
        else:
            extra_alloc[b.alloc] += b.size
            own_extra[b.alloc].append(j)
        for u in b.users:
            extra_readers[u].append(j)
    profile: list[int] = []
    for v in order:
        live += g.sizes[v] + extra_alloc[v]
        profile.append(live)
        for p in readers[v]:
            remaining[p] -= 1
            if remaining[p] == 0 and p not in g.outputs:
                live -= g.sizes[p]
        for j in extra_readers[v]:
            in_remaining[j] -= 1
            if in_remaining[j] == 0 and not g.buffers[j].output:
                live -= g.buffers[j].size
        if remaining[v] == 0 and v not in g.outputs:
            live -= g.sizes[v]
        for j in own_extra[v]:
            if in_remaining[j] == 0 and not g.buffers[j].output:
                live -= g.buffers[j].size
    return profile


def peak(g: Graph, order: Sequence[int]) -> int:
    prof = live_profile(g, order)
    return max(prof) if prof else sum(b.size for b in g.buffers if b.alloc is None)


def to_json(g: Graph) -> dict[str, object]:
    """The ``schedule-graph`` form of a graph. The buffers beyond the one per
    node are listed apart under ``inputs`` (making them 0-cost nodes that
    carry their size would change the model); ``users`` beyond the order
    edges are not written."""
    return {
        "nodes": [{"name": n, "bytes": s} for n, s in zip(g.names, g.sizes, strict=True)],
        "edges": [[g.names[p], g.names[v]] for v in range(g.num_nodes) for p in sorted(g.preds[v])],
        "outputs": [g.names[o] for o in sorted(g.outputs)],
        "inputs": [
            {
                "name": b.name,
                "bytes": b.size,
                "users": [g.names[u] for u in sorted(b.users)],
                **({"allocated_by": g.names[b.alloc]} if b.alloc is not None else {}),
                **({"output": True} if b.output else {}),
            }
            for b in g.buffers
        ],
    }
