"""The exact DP against brute force, and the anytime contract."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from serenity_mlir.scheduler import (
    Buffer,
    Graph,
    brute_force,
    check_order,
    dp_schedule,
    from_edges,
    greedy_order,
    kahn_order,
    live_profile,
    lower_bound,
    peak,
    schedule,
)


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 8) -> Graph:
    n = draw(st.integers(1, max_nodes))
    names = [f"n{i}" for i in range(n)]
    edges = [
        (names[i], names[j]) for i in range(n) for j in range(i + 1, n) if draw(st.booleans()) and draw(st.booleans())
    ]
    sizes = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    outputs = [x for x in names if draw(st.integers(0, 4)) == 0]
    return from_edges(names, sizes, edges, outputs)


@st.composite
def aliased_graphs(draw: st.DrawFn, max_nodes: int = 7) -> Graph:
    """Graphs where a buffer is kept alive by nodes beyond its direct
    successors (views, in-place updates) and inputs are live from the start."""
    g = draw(dags(max_nodes))
    n = g.num_nodes
    desc: list[set[int]] = [set() for _ in range(n)]
    for v in reversed(range(n)):
        for s in g.succs()[v]:
            desc[v] |= {s} | desc[s]
    users = []
    for v in range(n):
        extra = {d for d in desc[v] if draw(st.integers(0, 3)) == 0}
        users.append(frozenset(set(g.users[v]) | extra))
    inputs = tuple(
        Buffer(f"in{i}", draw(st.integers(1, 500)), frozenset(v for v in range(n) if draw(st.booleans())))
        for i in range(draw(st.integers(0, 2)))
    )
    return Graph(g.names, g.sizes, g.preds, tuple(users), g.outputs, inputs)


@settings(max_examples=150, deadline=None)
@given(dags())
def test_dp_equals_brute_force(g: Graph) -> None:
    res = schedule(g, "dp")
    assert res.method == "dp"  # the exact DP ran to the end
    check_order(g, res.order)
    assert res.peak_bytes == peak(g, res.order)
    assert res.peak_bytes == brute_force(g)[0]
    assert res.optimal


@settings(max_examples=100, deadline=None)
@given(aliased_graphs())
def test_dp_equals_brute_force_with_aliases_and_inputs(g: Graph) -> None:
    best = brute_force(g)[0]
    for name in ("dp", "serenity"):
        res = schedule(g, name)
        assert res.peak_bytes == best == peak(g, res.order), name


@settings(max_examples=100, deadline=None)
@given(dags())
def test_bounds_bracket_every_order(g: Graph) -> None:
    best = brute_force(g)[0]
    assert lower_bound(g) <= best
    for order in (list(range(g.num_nodes)), kahn_order(g), greedy_order(g)):
        check_order(g, order)
        assert peak(g, order) >= best


def wide_graph(n: int, seed: int) -> Graph:
    r = random.Random(seed)
    names = [f"v{i}" for i in range(n)]
    edges = [(names[i], names[j]) for i in range(n) for j in range(i + 1, min(n, i + 12)) if r.random() < 0.15]
    return from_edges(names, [r.randint(1, 1000) for _ in range(n)], edges, [names[-1]])


def test_state_limit_returns_valid_order_not_optimal() -> None:
    g = wide_graph(60, 1)
    res = dp_schedule(g, state_limit=200)
    check_order(g, res.order)
    assert not res.optimal
    assert res.method == "dp-anytime"
    assert 200 < res.states <= 200 + g.num_nodes  # stops within one expansion of the limit
    assert "state limit" in res.notes[0]
    assert res.peak_bytes == peak(g, res.order)
    assert res.peak_bytes >= lower_bound(g)


def test_hand_computed_branches() -> None:
    # Two expand/project branches into a sum: run one branch to completion first.
    g = from_edges(
        ["e0", "e1", "p0", "p1", "s"],
        [256, 256, 32, 32, 32],
        [("e0", "p0"), ("e1", "p1"), ("p0", "s"), ("p1", "s")],
        ["s"],
    )
    assert peak(g, [0, 1, 2, 3, 4]) == 256 + 256 + 32
    res = schedule(g)
    assert res.peak_bytes == 256 + 32 + 32
    assert res.names(g)[:2] in (["e0", "p0"], ["e1", "p1"])


def down_closed_sets(g: Graph) -> int:
    """How many sets of nodes hold every predecessor of their members
    (the empty and the full set included), by enumerating every subset."""
    n = g.num_nodes
    return sum(all(not (d >> v) & 1 or all((d >> p) & 1 for p in g.preds[v]) for v in range(n)) for d in range(1 << n))


@settings(max_examples=60, deadline=None)
@given(dags(max_nodes=9))
def test_plain_dp_stores_every_down_closed_set_once(g: Graph) -> None:
    """The plain DP keeps one partial schedule per down-closed set: its
    ``states`` (the figure ``bench-scheduler`` reports) is their number."""
    assert dp_schedule(g).states == down_closed_sets(g)


def test_output_buffer_lives_to_the_end() -> None:
    # a -> b -> c; "x" is allocated by a and read by b: freed after b unless
    # it is an output.
    g = from_edges(["a", "b", "c"], [10, 20, 30], [("a", "b"), ("b", "c")], ["c"])
    freed = Graph(g.names, g.sizes, g.preds, g.users, g.outputs, (Buffer("x", 100, frozenset({1}), alloc=0),))
    kept = Graph(g.names, g.sizes, g.preds, g.users, g.outputs, (Buffer("x", 100, frozenset({1}), 0, output=True),))
    assert live_profile(freed, [0, 1, 2]) == [110, 130, 50]
    assert live_profile(kept, [0, 1, 2]) == [110, 130, 150]
    for name in ("serenity", "dp"):
        assert schedule(freed, name).peak_bytes == 130
        assert schedule(kept, name).peak_bytes == 150
