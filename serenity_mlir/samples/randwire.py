"""RandWire (Xie et al., 2019) networks on Watts-Strogatz random graphs, CIFAR-sized.

Each stage is a WS(N, K, P) graph turned into a DAG by orienting every edge from
the lower to the higher node index.  An extra input node feeds every node
without predecessors (those take stride 2), an extra output node averages every
node without successors.  A graph node is: aggregate inputs (one ``Sum`` when
there are several) -> ReLU -> separable conv 3x3 (depthwise + pointwise) -> BN.

Nodes are emitted stage by stage in node-index order, exactly as a PyTorch
``for node in range(N)`` loop would run them; index order is a topological order
because edges only go from lower to higher indices.
"""

from __future__ import annotations

import numpy as np
import onnx

from ._builder import GraphBuilder, pick

Edge = tuple[int, int]


def watts_strogatz(n: int, k: int, p: float, rng: np.random.Generator) -> list[Edge]:
    """Undirected WS small-world graph as sorted ``(low, high)`` edges.

    Start from a ring lattice where each node links to its k/2 nearest
    neighbours on each side; then, going round the ring once per neighbour
    distance, rewire each lattice edge (u, u+j) with probability ``p`` to
    (u, w) for a uniformly drawn w that is neither u nor already adjacent to u.
    The edge count n*k/2 is preserved.
    """
    if k % 2 or not 0 < k < n:
        raise ValueError(f"need an even 0 < K < N, got N={n}, K={k}")
    adj: list[set[int]] = [set() for _ in range(n)]
    for j in range(1, k // 2 + 1):
        for u in range(n):
            v = (u + j) % n
            adj[u].add(v)
            adj[v].add(u)
    for j in range(1, k // 2 + 1):
        for u in range(n):
            v = (u + j) % n
            if rng.random() >= p or len(adj[u]) >= n - 1:
                continue
            w = int(rng.integers(n))
            while w == u or w in adj[u]:
                w = int(rng.integers(n))
            adj[u].discard(v)
            adj[v].discard(u)
            adj[u].add(w)
            adj[w].add(u)
    return sorted({(min(u, v), max(u, v)) for u in range(n) for v in adj[u]})


def stage_graphs(stages: int, n: int, k: int, p: float, seed: int) -> list[list[Edge]]:
    """The WS graph of every stage; stage ``s`` uses its own fixed seed ``(seed, s)``."""
    return [watts_strogatz(n, k, p, np.random.default_rng([seed, s])) for s in range(stages)]


def predecessors(n: int, edges: list[Edge]) -> list[list[int]]:
    """Predecessor lists of the DAG obtained by orienting edges low -> high."""
    preds: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        preds[v].append(u)
    return [sorted(ps) for ps in preds]


def random_stage(b: GraphBuilder, x: str, c_out: int, n: int, edges: list[Edge]) -> str:
    """One random-wired stage: stride 2 on the nodes fed by the stage input."""
    preds = predecessors(n, edges)
    has_succ = {u for u, _ in edges}
    outs: list[str] = []
    for i in range(n):
        with b.scope(f"node{i}"):
            if preds[i]:
                ins = [outs[j] for j in preds[i]]
                y, stride = (ins[0] if len(ins) == 1 else b.sum(ins)), 1
            else:
                y, stride = x, 2
            c_in = b.channels(y)
            y = b.relu(y)
            y = b.conv(y, c_in, 3, stride=stride, groups=c_in, name="dw")
            y = b.conv(y, c_out, 1, gain=1.0, name="pw")
            outs.append(b.batch_norm(y))
    sinks = [outs[i] for i in range(n) if i not in has_succ]
    return sinks[0] if len(sinks) == 1 else b.mean(sinks, name="output_node")


def build_randwire(*, name: str, classes: int, channels: int | None = None,
                   nodes: int | None = None, stages: int | None = None, k: int = 4,
                   p: float = 0.75, resolution: int | None = None, head: int | None = None,
                   seed: int = 0, paper: bool = False) -> onnx.ModelProto:
    """CIFAR RandWire: conv1 (3x3, C/2) -> conv2 (3x3, C) -> WS stages (C, 2C, 4C, ...).

    Each stage halves the resolution.  Head: ReLU, 1x1 conv to ``head`` channels,
    BN, ReLU, global average pool, linear.  Small default: C=8, N=32, 2 stages,
    head 64.  ``paper=True``: 3 stages at the "small regime" width C=78 and a
    1280-wide head.
    """
    c = pick(channels, 8, 78, paper)
    n = pick(nodes, 32, 32, paper)
    stages = pick(stages, 2, 3, paper)  # 2 by default keeps iree-compile under ~20 s
    res = pick(resolution, 32, 32, paper)
    head = pick(head, 64, 1280, paper)
    b = GraphBuilder(name, (1, 3, res, res), seed)
    with b.scope("conv1"):
        x = b.batch_norm(b.conv(b.input_name, c // 2, 3, gain=1.0))
    with b.scope("conv2"):
        x = b.batch_norm(b.conv(b.relu(x), c, 3))
    for s, edges in enumerate(stage_graphs(stages, n, k, p, seed)):
        with b.scope(f"stage{s}"):
            x = random_stage(b, x, c * 2**s, n, edges)
    with b.scope("head"):
        x = b.relu(b.batch_norm(b.conv(b.relu(x), head, 1)))
    logits = b.classifier(x, classes)
    return b.build(logits, doc=f"RandWire WS({n},{k},{p}) x{stages} stages, C={c}, "
                              f"{classes} classes.")


def build_randwire_cifar10(*, channels: int | None = None, nodes: int | None = None,
                           stages: int | None = None, seed: int = 10,
                           paper: bool = False) -> onnx.ModelProto:
    """RandWire for CIFAR-10 (graph and weight seed 10)."""
    return build_randwire(name="randwire_cifar10", classes=10, channels=channels, nodes=nodes,
                          stages=stages, seed=seed, paper=paper)


def build_randwire_cifar100(*, channels: int | None = None, nodes: int | None = None,
                            stages: int | None = None, seed: int = 100,
                            paper: bool = False) -> onnx.ModelProto:
    """RandWire for CIFAR-100 (graph and weight seed 100, so a different wiring)."""
    return build_randwire(name="randwire_cifar100", classes=100, channels=channels, nodes=nodes,
                          stages=stages, seed=seed, paper=paper)
