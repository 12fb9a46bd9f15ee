"""Order and offsets optimised together (OR-Tools CP-SAT, the `exact` extra)."""

from __future__ import annotations

import random

import pytest

from serenity_mlir.memory.slab import pack_slab, predict_slab, slices_for_order
from serenity_mlir.scheduler.graph import Buffer, Graph, check_order, from_edges
from serenity_mlir.scheduler.schedule import brute_force

joint = pytest.importorskip("serenity_mlir.memory.joint")
pytest.importorskip("ortools")


def _buffers(g: Graph) -> list[Buffer]:
    return [Buffer(g.names[v], g.sizes[v], g.users[v], alloc=v, output=False) for v in range(g.num_nodes)]


def test_joint_placement_removes_fragmentation() -> None:
    # The memory-optimal order (512 B live at most) packs into 576 B with
    # IREE's greedy best-fit; placing the slices by hand fits 512 B.
    g = from_edges(
        ["n0", "n1", "n2", "n3", "n4", "n5"],
        [128, 64, 128, 256, 192, 128],
        [("n1", "n3"), ("n2", "n5"), ("n3", "n5")],
    )
    best, order = brute_force(g)
    assert best == 512
    assert predict_slab(_buffers(g), order).slab_bytes == 576
    r = joint.joint_optimum(g, _buffers(g), order, time_limit=10)
    assert r.optimal and r.slab_bytes == 512 and r.bound_bytes == 512
    assert r.hint_slab_bytes == 576
    check_order(g, r.order)


@pytest.mark.parametrize("seed", range(8))
def test_joint_is_never_worse_and_its_placement_is_valid(seed: int) -> None:
    rnd = random.Random(seed)
    n = 8
    names = [f"v{i}" for i in range(n)]
    edges = [(names[i], names[j]) for i in range(n) for j in range(i + 1, n) if rnd.random() < 0.3]
    g = from_edges(names, [rnd.choice([64, 100, 192, 256, 320]) for _ in range(n)], edges)
    bufs = _buffers(g)
    hint = list(range(n))
    r = joint.joint_optimum(g, bufs, hint, time_limit=10)
    packed = predict_slab(bufs, hint)
    # Never above the hint's IREE packing, never below the live-bytes optimum
    # (a slab holds everything alive at once).
    assert brute_force(g)[0] <= r.slab_bytes <= packed.slab_bytes
    assert r.bound_bytes <= r.slab_bytes
    slices = slices_for_order(bufs, r.order)
    for i, a in enumerate(slices):
        for b in slices[i + 1 :]:
            if a.start <= b.end and b.start <= a.end:
                oa, ob = r.offsets[a.name], r.offsets[b.name]
                assert oa + a.size <= ob or ob + b.size <= oa
        assert r.offsets[a.name] % 64 == 0 and r.offsets[a.name] + a.size <= r.slab_bytes
    assert r.iree_packed_slab_bytes == pack_slab(slices)[0]

