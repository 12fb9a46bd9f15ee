"""IREE's slab as the allocator predicts it: execution regions."""

from __future__ import annotations

from serenity_mlir.memory.slab import predict_slab
from serenity_mlir.scheduler.graph import Buffer


def test_regions_split_the_slab() -> None:
    # Nodes: a(0) -> b(1) -> barrier(2); x(3) -> c(4). The barrier ends IREE's
    # execution region: what lives inside a region is packed into that
    # region's slab; a buffer made in one region and read in a later one gets
    # an allocation of its own beside the slabs.
    bufs = [
        Buffer("a", 1024, frozenset({1}), alloc=0, output=False),
        Buffer("b", 512, frozenset({2}), alloc=1, output=False),
        Buffer("x", 256, frozenset({4}), alloc=3, output=False),
        Buffer("c", 128, frozenset(), alloc=4, output=False),
    ]
    # x after the barrier: region 0 holds a and b (1,536 B), region 1 x and c.
    assert predict_slab(bufs, [0, 1, 2, 3, 4], barriers={2}).slab_bytes == 1536
    # x before the barrier crosses into region 1: 1,536 + 256 during region 0.
    assert predict_slab(bufs, [0, 3, 1, 2, 4], barriers={2}).slab_bytes == 1792
    # Without barriers the same orders are one slab, packed as IREE does.
    assert predict_slab(bufs, [0, 1, 2, 3, 4]).slab_bytes == 1536
    # The live bytes do not depend on regions.
    order = [0, 3, 1, 2, 4]
    assert predict_slab(bufs, order, barriers={2}).live_bytes == predict_slab(bufs, order).live_bytes
