"""The scaled scheduler (divide and conquer, bounds, soft budgeting, anytime)
against exhaustive search, and its limits."""

from __future__ import annotations

import random
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serenity_mlir.bench.scheduler import watts_strogatz_dag
from serenity_mlir.errors import GraphError
from serenity_mlir.scheduler import DEFAULT_WORK_LIMIT
from serenity_mlir.scheduler.bounds import closure_lower_bound
from serenity_mlir.scheduler.budget import Budget, work_weight
from serenity_mlir.scheduler.engine import cut_nodes, solve, split
from serenity_mlir.scheduler.graph import Buffer, Graph, ancestor_masks, check_order, from_edges, load_graph_json, peak
from serenity_mlir.scheduler.orders import greedy, random_topo, reverse_post_order
from serenity_mlir.scheduler.problem import graph_buffers, make_problem, order_steps
from serenity_mlir.scheduler.schedule import brute_force, dp_schedule, schedule
from serenity_mlir.scheduler.search import threshold_search


def exhaustive(g: Graph) -> int:
    """The optimum by exhaustive search over sets of scheduled nodes,
    written from the model's definition (independent of the engines):
    live(D) sums the buffers allocated within D (or before the start) that
    are kept or still have a user outside D; the step of v after D is
    live(D) plus what v allocates; best(D) = min over ready v of
    max(step(D, v), best(D + v)). Cross-checked against permutations."""
    n = g.num_nodes
    full = (1 << n) - 1
    bufs = [(v, g.sizes[v], g.users[v], v in g.outputs) for v in range(n)]
    bufs += [(b.alloc, b.size, b.users, b.output or (b.alloc is None and not b.users)) for b in g.buffers]
    alloc = [sum(s for a, s, _, _ in bufs if a == v) for v in range(n)]

    def live(done: int) -> int:
        total = 0
        for a, s, users, keep in bufs:
            if a is not None and not (done >> a) & 1:
                continue
            if keep or any(not (done >> u) & 1 for u in users):
                total += s
        return total

    @cache
    def best(done: int) -> int:
        if done == full:
            return 0
        base = live(done)
        res = None
        for v in range(n):
            if (done >> v) & 1 or any(not (done >> p) & 1 for p in g.preds[v]):
                continue
            val = max(base + alloc[v], best(done | (1 << v)))
            res = val if res is None else min(res, val)
        assert res is not None
        return res

    return best(0) if n else live(0)


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 10) -> Graph:
    n = draw(st.integers(1, max_nodes))
    names = [f"n{i}" for i in range(n)]
    dens = draw(st.sampled_from([0.15, 0.3, 0.5]))
    rnd = random.Random(draw(st.integers(0, 10**6)))
    edges = [(names[i], names[j]) for i in range(n) for j in range(i + 1, n) if rnd.random() < dens]
    sizes = draw(st.lists(st.sampled_from([0, 1, 2, 3, 5, 8, 13, 100, 250]), min_size=n, max_size=n))
    outputs = [x for x in names if draw(st.integers(0, 4)) == 0]
    return from_edges(names, sizes, edges, outputs)


@st.composite
def model_graphs(draw: st.DrawFn, max_nodes: int = 9) -> Graph:
    """Aliases (users beyond direct successors), function inputs, and extra
    results allocated by a node (``Buffer.alloc``), some of them outputs."""
    g = draw(dags(max_nodes))
    n = g.num_nodes
    succs = g.succs()
    desc: list[set[int]] = [set() for _ in range(n)]
    for v in reversed(range(n)):
        for s in succs[v]:
            desc[v] |= {s} | desc[s]
    users = [frozenset(set(g.users[v]) | {d for d in desc[v] if draw(st.integers(0, 3)) == 0}) for v in range(n)]
    inputs = [
        Buffer(f"in{i}", draw(st.integers(1, 300)), frozenset(v for v in range(n) if draw(st.booleans())))
        for i in range(draw(st.integers(0, 2)))
    ]
    for i in range(draw(st.integers(0, 2))):
        a = draw(st.integers(0, n - 1))
        us = frozenset(d for d in desc[a] if draw(st.booleans()))
        out = draw(st.integers(0, 3)) == 0
        inputs.append(Buffer(f"x{i}", draw(st.integers(1, 300)), us, alloc=a, output=out))
    return Graph(g.names, g.sizes, g.preds, tuple(users), g.outputs, tuple(inputs))


def _check(g: Graph, order: tuple[int, ...] | list[int], reported: int) -> None:
    check_order(g, list(order))
    assert peak(g, list(order)) == reported


@settings(max_examples=120, deadline=None)
@given(dags(max_nodes=7))
def test_serenity_equals_permutation_brute_force(g: Graph) -> None:
    res = schedule(g, "serenity")
    _check(g, res.order, res.peak_bytes)
    assert res.optimal
    assert res.peak_bytes == brute_force(g)[0]


@settings(max_examples=80, deadline=None)
@given(dags(max_nodes=12))
def test_serenity_equals_exhaustive_search(g: Graph) -> None:
    res = schedule(g, "serenity")
    _check(g, res.order, res.peak_bytes)
    assert res.optimal
    assert res.peak_bytes == exhaustive(g)
    assert res.lower_bound_bytes <= res.peak_bytes


@settings(max_examples=120, deadline=None)
@given(model_graphs())
def test_every_engine_follows_the_memory_model(g: Graph) -> None:
    best = exhaustive(g)
    if g.num_nodes <= 6:
        assert best == brute_force(g)[0]
    for name in ("serenity", "dp"):
        res = schedule(g, name)
        _check(g, res.order, res.peak_bytes)
        assert res.optimal
        assert res.peak_bytes == best, name
    for name in ("program", "greedy", "kahn"):
        res = schedule(g, name)
        _check(g, res.order, res.peak_bytes)
        assert res.lower_bound_bytes <= best <= res.peak_bytes


@settings(max_examples=120, deadline=None)
@given(model_graphs())
def test_min_cut_bound_and_threshold_search_are_sound(g: Graph) -> None:
    best = exhaustive(g)
    lb = closure_lower_bound(g.num_nodes, [set(p) for p in g.preds], graph_buffers(g))
    assert lb <= best
    assert lb <= closure_lower_bound(g.num_nodes, [set(p) for p in g.preds], graph_buffers(g), critical=5) <= best
    prob = make_problem(g)
    for t in {best - 1, best, best + 7, lb}:
        out = threshold_search(prob, t, Budget(None, None), cap=10**6)
        assert out.found == (t >= best)
        if out.found:
            pk, _ = order_steps(prob, out.order)
            assert pk <= t
            _check(g, out.order, peak(g, out.order))
        else:
            assert out.min_pruned <= best


def chained(blocks: list[Graph]) -> Graph:
    """Blocks joined in a chain through single nodes (cut points)."""
    names: list[str] = []
    sizes: list[int] = []
    edges: list[tuple[str, str]] = []
    outs: list[str] = []
    prev: str | None = None
    for b, blk in enumerate(blocks):
        base = [f"b{b}_{x}" for x in blk.names]
        names += base
        sizes += list(blk.sizes)
        for v in range(blk.num_nodes):
            edges += [(base[p], base[v]) for p in blk.preds[v]]
            if prev is not None and not blk.preds[v]:
                edges.append((prev, base[v]))
        join = f"j{b}"
        names.append(join)
        sizes.append(1 + b)
        edges += [(base[v], join) for v in range(blk.num_nodes) if not blk.succs()[v]]
        outs += [base[o] for o in blk.outputs if blk.succs()[o]]
        prev = join
    assert prev is not None
    return from_edges(names, sizes, edges, outs + [prev])


@settings(max_examples=60, deadline=None)
@given(st.lists(dags(max_nodes=7), min_size=1, max_size=4))
def test_divided_equals_undivided(blocks: list[Graph]) -> None:
    g = chained(blocks)
    assert len(cut_nodes(g.num_nodes, [set(p) for p in g.preds])) >= len(blocks)
    assert sum(len(s) for s in split(g)) == g.num_nodes
    a = solve(g, deadline=None, work_limit=None, divide=True)
    b = solve(g, deadline=None, work_limit=None, divide=False)
    c = dp_schedule(g)
    assert a.optimal and b.optimal and c.optimal
    assert a.peak == b.peak == c.peak_bytes
    _check(g, a.order, a.peak)
    _check(g, b.order, b.peak)


def test_cut_nodes_of_a_diamond_chain() -> None:
    g = from_edges(
        ["a", "b", "c", "d", "e", "f"],
        [1] * 6,
        [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("e", "f")],
    )
    assert [g.names[c] for c in cut_nodes(6, [set(p) for p in g.preds])] == ["a", "d", "e", "f"]
    assert [[g.names[v] for v in s] for s in split(g)] == [["a"], ["b", "c", "d"], ["e"], ["f"]]


def test_medium_ws_graph_is_proven_optimal_quickly() -> None:
    g = watts_strogatz_dag(32, seed=1)
    res = schedule(g, "serenity", time_limit=30)
    assert res.optimal
    assert res.peak_bytes == dp_schedule(g).peak_bytes
    _check(g, res.order, res.peak_bytes)


def test_time_limit_returns_a_valid_order() -> None:
    """How close to the limit it returns is a figure of ``bench-scheduler``."""
    g = watts_strogatz_dag(160, seed=3)
    res = schedule(g, "serenity", time_limit=1.5, work_limit=None)
    assert not res.optimal
    assert res.method == "serenity-anytime"
    assert res.stopped_by == "time-limit"
    assert res.lower_bound_bytes < res.peak_bytes
    _check(g, res.order, res.peak_bytes)


def test_plain_dp_time_limit() -> None:
    g = watts_strogatz_dag(96, seed=3)
    res = dp_schedule(g, time_limit=1.0)
    assert not res.optimal
    assert res.method == "dp-anytime"
    assert "time limit" in res.notes[0]
    _check(g, res.order, res.peak_bytes)


def test_twelve_node_graphs_equal_exhaustive_search() -> None:
    """Hypothesis favours small graphs: here every graph has 12 nodes."""
    rnd = random.Random(7)
    for _ in range(25):
        n = 12
        names = [f"n{i}" for i in range(n)]
        dens = rnd.choice([0.12, 0.2, 0.3])
        edges = [(names[i], names[j]) for i in range(n) for j in range(i + 1, n) if rnd.random() < dens]
        sizes = [rnd.choice([1, 2, 5, 8, 13, 100, 250]) for _ in range(n)]
        outputs = [x for x in names if rnd.random() < 0.2]
        g = from_edges(names, sizes, edges, outputs)
        res = schedule(g, "serenity")
        _check(g, res.order, res.peak_bytes)
        assert res.optimal
        assert res.peak_bytes == exhaustive(g)


def test_schedule_graph_reports_bounds_states_method(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from serenity_mlir.scheduler.graph import to_json
    from serenity_mlir.tools.cli import main

    g = watts_strogatz_dag(24, seed=2)
    f = tmp_path / "g.json"
    f.write_text(json.dumps(to_json(g)))
    assert main(["schedule-graph", str(f), "--time-limit", "10"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("order", "peak_bytes", "optimal", "seconds", "lower_bound_bytes", "states", "method"):
        assert key in out
    assert out["optimal"] is True and out["method"] == "serenity"
    assert out["lower_bound_bytes"] == out["peak_bytes"] == dp_schedule(g).peak_bytes
    assert out["states"] > 0


@settings(max_examples=150, deadline=None)
@given(model_graphs(max_nodes=11))
def test_budgeted_search_path_equals_exhaustive(g: Graph) -> None:
    """With the small-segment DP off, every segment goes through the bounds
    and the meta-search over tau."""
    from serenity_mlir.scheduler import engine as _engine

    saved = _engine.SMALL_DP_STATES
    _engine.SMALL_DP_STATES = 0
    try:
        for divide in (True, False):
            r = _engine.solve(g, deadline=None, work_limit=None, divide=divide)
            assert r.optimal
            assert r.peak == exhaustive(g)
            _check(g, r.order, r.peak)
    finally:
        _engine.SMALL_DP_STATES = saved


@settings(max_examples=80, deadline=None)
@given(model_graphs(max_nodes=10), st.data())
def test_cheap_orders_are_valid_and_ancestors_any_index_order(g: Graph, data: st.DataObject) -> None:
    prob = make_problem(g)
    for order in (greedy(prob), reverse_post_order(prob), random_topo(prob, 3)):
        assert sorted(order) == list(range(g.num_nodes))
        assert all(not prob.pred[v] & ~sum(1 << u for u in order[:i]) for i, v in enumerate(order))
        _check(g, order, peak(g, order))
    # greedy completes a valid prefix
    prefix = random_topo(prob, 5)[: data.draw(st.integers(0, g.num_nodes))]
    assert greedy(prob, prefix)[: len(prefix)] == prefix
    # ancestors of a relabelled graph (index order no longer topological)
    n = g.num_nodes
    perm = data.draw(st.permutations(range(n)))
    preds = [set() for _ in range(n)]
    for v in range(n):
        preds[perm[v]] = {perm[p] for p in g.preds[v]}
    anc = ancestor_masks(n, preds)
    for v in range(n):
        want, todo = 0, list(preds[v])
        while todo:
            p = todo.pop()
            if not (want >> p) & 1:
                want |= 1 << p
                todo += preds[p]
        assert anc[v] == want


# -- limits: work (deterministic), time (the backstop), long graphs (issue 24) ---


def _cut_nodes_by_ancestor_sets(n: int, preds: list[set[int]]) -> list[int]:
    """The definition, quadratic: every other node an ancestor or a descendant."""
    anc = ancestor_masks(n, preds)
    desc = [sum(1 for u in range(n) if (anc[u] >> v) & 1) for v in range(n)]
    cuts = [v for v in range(n) if anc[v].bit_count() + desc[v] == n - 1]
    return sorted(cuts, key=lambda v: anc[v].bit_count())


@settings(max_examples=80, deadline=None)
@given(st.lists(dags(max_nodes=6), min_size=1, max_size=5))
def test_linear_cut_nodes_match_the_definition(blocks: list[Graph]) -> None:
    g = chained(blocks)
    preds = [set(p) for p in g.preds]
    assert cut_nodes(g.num_nodes, preds) == _cut_nodes_by_ancestor_sets(g.num_nodes, preds)


def test_cut_nodes_in_any_index_order() -> None:
    # Indices not in topological order: c -> a -> b, d beside a.
    preds = [{2}, {0, 3}, set(), {2}]
    assert cut_nodes(4, preds) == _cut_nodes_by_ancestor_sets(4, preds) == [2, 1]


def _chain(n: int) -> Graph:
    names = [f"n{i}" for i in range(n)]
    return from_edges(names, [4] * n, [(names[i], names[i + 1]) for i in range(n - 1)], [names[-1]])


def test_long_chain_is_linear() -> None:
    """A 100,000-node chain: 100,000 segments, each cut found and each
    problem built in time linear in the graph (it was quadratic: ancestor
    masks, and every buffer visited for every segment)."""
    import time

    g = _chain(100_000)
    t0 = time.perf_counter()
    res = schedule(g, "serenity", time_limit=None)
    seconds = time.perf_counter() - t0
    assert res.optimal and res.peak_bytes == 8 and res.segments == 100_000
    assert seconds < 60, f"took {seconds:.0f} s"


def test_time_limit_bounds_the_whole_call_on_a_long_chain() -> None:
    """The limit covers the preprocessing too: a short limit on a long
    chain ends near it with a valid order (the program order at worst)."""
    g = _chain(30_000)
    res = schedule(g, "serenity", time_limit=0.5)
    assert res.seconds <= 0.5 + 1.0, f"{res.seconds:.1f} s for a 0.5 s limit"
    _check(g, res.order, res.peak_bytes)


def test_work_limit_is_deterministic_and_named() -> None:
    """The work budget ends the search at the same point every time: the
    same order, peak and state count, whatever the clock says."""
    g = watts_strogatz_dag(128, seed=1)
    runs = [schedule(g, "serenity", time_limit=None, work_limit=30_000) for _ in range(2)]
    a, b = runs
    assert not a.optimal and a.stopped_by == "work-limit"
    assert (a.order, a.peak_bytes, a.states, a.lower_bound_bytes) == (
        b.order,
        b.peak_bytes,
        b.states,
        b.lower_bound_bytes,
    )
    # Each set weighs work_weight(128) = 2; checked every 4,096 expansions and
    # after each level: a small overshoot.
    assert 30_000 < a.states * work_weight(g.num_nodes) < 30_000 + 20_000
    _check(g, a.order, a.peak_bytes)


def test_default_work_limit_keeps_ws64_optimal() -> None:
    """The default work budget leaves room for the hardest bench graph that
    is proven today (WS(64): 493,628 sets)."""
    assert DEFAULT_WORK_LIMIT >= 2 * 493_628
    g = watts_strogatz_dag(16, seed=1)
    res = schedule(g, "serenity")
    assert res.optimal and res.stopped_by is None


def test_state_limit_is_the_work_limit() -> None:
    g = watts_strogatz_dag(128, seed=1)
    a = schedule(g, "serenity", time_limit=None, state_limit=20_000)
    b = schedule(g, "serenity", time_limit=None, work_limit=20_000)
    assert a.order == b.order and a.stopped_by == b.stopped_by == "work-limit"


def test_deeply_nested_json_is_a_graph_error() -> None:
    with pytest.raises(GraphError, match="nested too deeply"):
        load_graph_json("[" * 200_000 + "]" * 200_000, "deep.json")
    with pytest.raises(GraphError, match="deep.json"):
        load_graph_json('{"nodes": [{"name": "a", "bytes": ' + "9" * 5000 + "}]}", "deep.json")


def test_lower_bound_work_limit_is_deterministic_and_valid() -> None:
    """The max-flow bound under a work limit stops at the same point every
    time, with a bound no higher than the unlimited one (still valid)."""
    g = watts_strogatz_dag(96, seed=4)
    prob = make_problem(g, break_symmetry=False)
    preds = [set(p) for p in g.preds]
    bufs = graph_buffers(g)
    full = closure_lower_bound(prob.n, preds, bufs, critical=8)
    cut = [closure_lower_bound(prob.n, preds, bufs, critical=8, work_limit=20_000) for _ in range(2)]
    assert cut[0] == cut[1] <= full
