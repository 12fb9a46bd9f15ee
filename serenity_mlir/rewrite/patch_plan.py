"""Planning patch-based inference over a found stage (:mod:`.patches`): the
cut at a split op, each patch's window of every value (the receptive field
backwards through the stage, halos included), the MACs with and without the
recomputed halos, and a quick peak estimate that ranks candidates before the
memory model costs the finalists.

Pure geometry over the stage's nodes: the IR was read when the stage was
found, so planning hundreds of grids touches no op but the cut's uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iree.compiler import ir

from serenity_mlir.rewrite.patches import Node, NotPatchable, Region, Stage
from serenity_mlir.rewrite.sites import as_op, static_shape, where


@dataclass
class Plan:
    """The patching of a stage at one split and grid."""

    stage: Stage
    split: int  # index in ``stage.layers``
    grid: tuple[int, int]
    cut: Node  # the node whose result is assembled from the patches
    nodes: list[Node]  # the ops patched (the cut's ancestors in the stage), block order
    # per patch: the region each value must have (node index, -1 the input -> region)
    regions: list[dict[int, Region]] = field(default_factory=list)
    patch_regions: list[Region] = field(default_factory=list)  # each patch's region of the cut value
    macs: int = 0  # MACs of the patched ops, computed once
    patched_macs: int = 0  # MACs of the patched ops over all patches (halos recomputed)

    @property
    def mac_overhead(self) -> float:
        return self.patched_macs / self.macs - 1.0 if self.macs else 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "grid": f"{self.grid[0]}x{self.grid[1]}",
            "split": self.split,
            "split_op": where(self.stage.layers[self.split].op),
            "cut_shape": static_shape(self.cut.result.type),
            "stage_ops": [n.op.name for n in self.nodes],
            "macs": self.macs,
            "patched_macs": self.patched_macs,
            "patch_mac_overhead": round(self.mac_overhead, 6),
        }


def cut_node(stage: Stage, split: int) -> tuple[Node, list[Node]]:
    """The node whose result the patches assemble for layer ``split`` (the
    layer, then the element-wise ops that read it alone), and the stage ops
    it depends on (block order). NotPatchable when a value inside is also
    read outside the patched ops (its full tensor would be needed anyway)."""
    if not 0 <= split < len(stage.layers):
        raise NotPatchable(f"no split op {split}: the stage has {len(stage.layers)} layers")
    if split not in stage.cuts:
        try:
            stage.cuts[split] = _cut(stage, split)
        except NotPatchable as e:
            stage.cuts[split] = str(e)
    cut = stage.cuts[split]
    if isinstance(cut, str):
        raise NotPatchable(cut)
    return cut


def _cut(stage: Stage, split: int) -> tuple[Node, list[Node]]:
    """See :func:`cut_node`. The cut goes on through an element-wise op that
    reads the layer's chain alone, or together with values the patches
    compute anyway (a residual add of the block's input: MobileNetV2)."""
    node = stage.layers[split]
    while True:
        users = [as_op(u.owner) for u in node.result.uses]
        if len(users) != 1 or not users[0].results:
            break
        nxt = next((n for n in stage.nodes[node.index + 1 :] if n.op == users[0]), None)
        if nxt is None or nxt.kind != "elementwise":
            break
        before = _ancestors(stage, node.index)
        if any(i not in before for i in nxt.srcs):
            break
        node = nxt
    chosen = [stage.nodes[i] for i in sorted(_ancestors(stage, node.index)) if i >= 0]
    ops = {n.op for n in chosen}
    for n in chosen:
        if n is node:
            continue
        for u in n.result.uses:
            if as_op(u.owner) not in ops:
                raise NotPatchable(f"{where(n.op)} is also read by {where(as_op(u.owner))}, outside the patches")
    return node, chosen


def _ancestors(stage: Stage, index: int) -> set[int]:
    """The node ``index`` and the stage nodes it depends on (-1: the input)."""
    out = {index}
    todo = [index]
    while todo:
        i = todo.pop()
        if i >= 0:
            for j in stage.nodes[i].srcs:
                if j not in out:
                    out.add(j)
                    todo.append(j)
    return out


def split_extent(size: int, parts: int) -> list[tuple[int, int]]:
    """``[0, size)`` in ``parts`` nearly equal pieces (the first ``size mod
    parts`` one longer)."""
    base, extra = divmod(size, parts)
    out = []
    start = 0
    for i in range(parts):
        n = base + (1 if i < extra else 0)
        out.append((start, start + n))
        start += n
    return out


def plan(stage: Stage, split: int, grid: tuple[int, int]) -> Plan:
    rows, cols = grid
    if rows < 1 or cols < 1:
        raise NotPatchable(f"bad grid {rows}x{cols}")
    cut, nodes = cut_node(stage, split)
    hd, wd = cut.spatial
    shape = static_shape(cut.result.type)
    assert shape is not None
    if rows > shape[hd] or cols > shape[wd]:
        raise NotPatchable(f"grid {rows}x{cols} is finer than the split op's output ({shape[hd]}x{shape[wd]})")
    p = Plan(stage, split, grid, cut, nodes)
    p.macs = sum(n.pixel_macs * _pixels(full_region(n.result, n.spatial)) for n in nodes)
    for r0, r1 in split_extent(shape[hd], rows):
        for c0, c1 in split_extent(shape[wd], cols):
            region = (r0, r1, c0, c1)
            need = _windows(p, region)
            p.regions.append(need)
            p.patch_regions.append(region)
            p.patched_macs += sum(n.pixel_macs * _pixels(need[n.index]) for n in nodes if n.index in need)
    return p


def _pixels(r: Region) -> int:
    return (r[1] - r[0]) * (r[3] - r[2])


def full_region(v: ir.Value, spatial: tuple[int, int]) -> Region:
    s = static_shape(v.type)
    assert s is not None
    return (0, s[spatial[0]], 0, s[spatial[1]])


def _union(a: Region | None, b: Region) -> Region:
    if a is None:
        return b
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def layer_window(window: tuple[list[int], list[int], list[int]], region: Region) -> Region:
    """The window of a layer's (padded) input that ``region`` of its output reads."""
    k, s, d = window
    h0, h1, w0, w1 = region
    return (
        h0 * s[0], (h1 - 1) * s[0] + (k[0] - 1) * d[0] + 1,
        w0 * s[1], (w1 - 1) * s[1] + (k[1] - 1) * d[1] + 1,
    )  # fmt: skip


def _windows(p: Plan, region: Region) -> dict[int, Region]:
    """The window of every value of the patched ops (by node index; -1 the
    input) that the patch ``region`` of the cut value needs."""
    need: dict[int, Region] = {p.cut.index: region}
    for n in reversed(p.nodes):
        if n.index not in need:
            continue
        h0, h1, w0, w1 = need[n.index]
        if n.window is not None:
            src: Region = layer_window(n.window, need[n.index])
        elif n.pad is not None:
            low, _, size = n.pad
            src = (
                max(h0 - low[0], 0), min(h1 - low[0], size[0]),
                max(w0 - low[1], 0), min(w1 - low[1], size[1]),
            )  # fmt: skip
            if src[1] <= src[0] or src[3] <= src[2]:
                raise NotPatchable(f"a patch's window of {where(n.op)} lies wholly in the padding")
        else:
            src = (h0, h1, w0, w1)
        for i in n.srcs:
            need[i] = _union(need.get(i), src)
    return need


def _layer_source(stage: Stage, n: Node) -> int:
    """The node a layer reads (-1: the input), through the pad in front of it."""
    i = n.srcs[0]
    while i >= 0 and stage.nodes[i].kind == "pad":
        i = stage.nodes[i].srcs[0]
    return i


def estimate_peak(p: Plan) -> int:
    """Bytes live at the stage's worst point, roughly as IREE will run it
    (each layer one dispatch with its pad and element-wise ops fused; LRN's
    pooling over channels counts as a layer): the input and the assembled cut
    value throughout, plus the worst layer's input and output windows in any
    patch; or, after the cut, a layer's whole input and output. A ranking for :mod:`serenity_mlir.pipeline.patches`,
    which costs the finalists with the memory model."""
    st = p.stage

    def size(i: int, r: Region) -> int:
        return (st.input_pixel_bytes if i < 0 else st.nodes[i].pixel_bytes) * _pixels(r)

    def full(i: int) -> int:
        return size(i, full_region(st.value(i), st.dims(i)))

    base = full(-1)
    inside = 0
    for need in p.regions:
        for n in p.nodes:
            if n.window is not None or n.kind == "pool_pointwise":
                src = _layer_source(st, n)
                inside = max(inside, size(src, need[src]) + size(n.index, need[n.index]))
    stage = base + (full(p.cut.index) if p.grid != (1, 1) else 0) + inside
    after = 0
    patched = {n.index for n in p.nodes}
    for n in st.nodes:
        if (n.window is not None or n.kind == "pool_pointwise") and n.index not in patched:
            after = max(after, full(_layer_source(st, n)) + full(n.index))
    return max(stage, base + after)
