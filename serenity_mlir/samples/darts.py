"""DARTS (Liu et al., 2019) evaluation network with the DARTS_V2 genotype.

Mirrors ``NetworkImageNet`` of the reference implementation in inference mode
(no auxiliary head, no drop-path): an ImageNet-style stem, a stack of normal
and reduction cells, global average pooling and a linear classifier.  Nodes are
emitted in the order the PyTorch ``forward`` runs: per cell the two
preprocessing ops, then intermediate node 2's two ops and their Add, node 3's,
... and finally the Concat of nodes 2..5.  That order is what a framework would
execute, so it is the natural baseline for the memory-aware scheduler.
"""

from __future__ import annotations

import onnx

from ._builder import GraphBuilder, pick

Genotype = tuple[tuple[str, int], ...]

DARTS_V2_NORMAL: Genotype = (
    ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
    ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
    ("sep_conv_3x3", 1), ("skip_connect", 0),
    ("skip_connect", 0), ("dil_conv_3x3", 2),
)
DARTS_V2_REDUCE: Genotype = (
    ("max_pool_3x3", 0), ("max_pool_3x3", 1),
    ("skip_connect", 2), ("max_pool_3x3", 1),
    ("max_pool_3x3", 0), ("skip_connect", 2),
    ("skip_connect", 2), ("max_pool_3x3", 1),
)
CONCAT = (2, 3, 4, 5)


def relu_conv_bn(b: GraphBuilder, x: str, c_out: int) -> str:
    """ReLUConvBN(1x1): the cell-input preprocessing."""
    return b.batch_norm(b.conv(b.relu(x), c_out, 1))


def factorized_reduce(b: GraphBuilder, x: str, c_out: int) -> str:
    """Stride-2 'skip': two 1x1/2 convs on ReLU(x) and ReLU(x)[:, :, 1:, 1:], concat, BN."""
    if c_out % 2:
        raise ValueError("FactorizedReduce needs an even channel count")
    _, _, h, w = b.shape(x)
    if h % 2 or w % 2:
        raise ValueError(f"FactorizedReduce needs even spatial sizes, got {h}x{w}")
    x = b.relu(x)
    y1 = b.conv(x, c_out // 2, 1, stride=2, padding=0, name="conv_1")
    y2 = b.conv(b.shift_hw(x), c_out // 2, 1, stride=2, padding=0, name="conv_2")
    return b.batch_norm(b.concat([y1, y2]))


def sep_conv(b: GraphBuilder, x: str, c_out: int, stride: int) -> str:
    """SepConv 3x3: (ReLU, depthwise 3x3, pointwise 1x1, BN) twice."""
    c_in = b.channels(x)
    for i, s in enumerate((stride, 1)):
        x = b.relu(x)
        x = b.conv(x, c_in, 3, stride=s, groups=c_in, name=f"dw{i}")
        x = b.conv(x, c_in if i == 0 else c_out, 1, gain=1.0, name=f"pw{i}")
        x = b.batch_norm(x)
    return x


def dil_conv(b: GraphBuilder, x: str, c_out: int, stride: int) -> str:
    """DilConv 3x3: ReLU, depthwise 3x3 dilation 2 (pad 2), pointwise 1x1, BN."""
    c_in = b.channels(x)
    x = b.relu(x)
    x = b.conv(x, c_in, 3, stride=stride, padding=2, dilation=2, groups=c_in, name="dw")
    return b.batch_norm(b.conv(x, c_out, 1, gain=1.0, name="pw"))


def apply_op(b: GraphBuilder, op: str, x: str, c: int, stride: int) -> str:
    if op == "sep_conv_3x3":
        return sep_conv(b, x, c, stride)
    if op == "dil_conv_3x3":
        return dil_conv(b, x, c, stride)
    if op == "max_pool_3x3":
        return b.max_pool(x, 3, stride, 1)
    if op == "skip_connect":  # identity emits no node, as in a traced PyTorch model
        return x if stride == 1 else factorized_reduce(b, x, c)
    raise ValueError(f"unknown DARTS op {op!r}")


def cell(b: GraphBuilder, s0: str, s1: str, c: int, reduction: bool, reduction_prev: bool) -> str:
    """One DARTS cell; returns the Concat of its intermediate nodes (4*c channels)."""
    with b.scope("preprocess0"):
        s0 = factorized_reduce(b, s0, c) if reduction_prev else relu_conv_bn(b, s0, c)
    with b.scope("preprocess1"):
        s1 = relu_conv_bn(b, s1, c)
    genotype = DARTS_V2_REDUCE if reduction else DARTS_V2_NORMAL
    states = [s0, s1]
    for step in range(len(genotype) // 2):
        hs = []
        for j in range(2):
            op, idx = genotype[2 * step + j]
            stride = 2 if reduction and idx < 2 else 1
            with b.scope(f"ops.{2 * step + j}"):
                hs.append(apply_op(b, op, states[idx], c, stride))
        states.append(b.add(hs[0], hs[1], name=f"node{step + 2}"))
    return b.concat([states[i] for i in CONCAT])


def stack_cells(b: GraphBuilder, s0: str, s1: str, c: int, layers: int, reductions: set[int],
                reduction_prev: bool) -> str:
    """``layers`` cells, each reading the outputs of the two before it; a
    reduction cell doubles the channels. Returns the last cell's output."""
    c_curr = c
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c_curr *= 2
        with b.scope(f"cells.{i}"):
            out = cell(b, s0, s1, c_curr, reduction, reduction_prev)
        s0, s1, reduction_prev = s1, out, reduction
    return s1


def reduction_cells(layers: int) -> set[int]:
    """DARTS puts reductions at layers//3 and 2*layers//3; tiny stacks get one in the middle."""
    if layers >= 6:
        return {layers // 3, 2 * layers // 3}
    return {layers // 2}


def build_darts(*, channels: int | None = None, layers: int | None = None,
                resolution: int | None = None, classes: int | None = None, seed: int = 0,
                paper: bool = False) -> onnx.ModelProto:
    """DARTS_V2 ImageNet-style network.

    Small default: 64x64 input, C=16, 3 cells (normal, reduction, normal), 10
    classes.  ``paper=True``: the DARTS ImageNet setting (224x224, C=48, 14 cells,
    1000 classes).
    """
    c = pick(channels, 16, 48, paper)
    layers = pick(layers, 3, 14, paper)
    res = pick(resolution, 64, 224, paper)
    classes = pick(classes, 10, 1000, paper)
    b = GraphBuilder("darts", (1, 3, res, res), seed)
    with b.scope("stem0"):
        x = b.batch_norm(b.conv(b.input_name, c // 2, 3, stride=2, gain=1.0))
        x = b.batch_norm(b.conv(b.relu(x), c, 3, stride=2))
    s0 = x
    with b.scope("stem1"):
        s1 = b.batch_norm(b.conv(b.relu(s0), c, 3, stride=2))
    # stem1 halves the resolution of s0: the first cell reduces it (FactorizedReduce).
    s1 = stack_cells(b, s0, s1, c, layers, reduction_cells(layers), reduction_prev=True)
    logits = b.classifier(s1, classes)
    return b.build(logits, doc=f"DARTS_V2 network: C={c}, {layers} cells, {res}x{res} input.")


def build_darts_cifar(*, channels: int | None = None, layers: int | None = None,
                      resolution: int | None = None, classes: int | None = None, seed: int = 0,
                      paper: bool = False) -> onnx.ModelProto:
    """DARTS_V2 CIFAR-10 network (``NetworkCIFAR`` of the reference code).

    Unlike the ImageNet network, the stem keeps the full resolution (one 3x3
    conv to 3*C channels and BN), so the cells, not the stem, hold the
    largest activations: every cell's output is a 4*C-channel Concat that
    the next two cells read through ReLU -> 1x1 conv (or FactorizedReduce).
    Those concat -> convolution pairs are what identity graph rewriting
    targets.  Small default: the DARTS search-phase size (32x32, C=16, 8
    cells), 10 classes; ``paper=True``: the published evaluation network
    (C=36, 20 cells).
    """
    c = pick(channels, 16, 36, paper)
    layers = pick(layers, 8, 20, paper)
    res = pick(resolution, 32, 32, paper)
    classes = pick(classes, 10, 10, paper)
    b = GraphBuilder("darts_cifar", (1, 3, res, res), seed)
    with b.scope("stem"):
        stem = b.batch_norm(b.conv(b.input_name, 3 * c, 3, gain=1.0))
    s1 = stack_cells(b, stem, stem, c, layers, {layers // 3, 2 * layers // 3}, reduction_prev=False)
    logits = b.classifier(s1, classes)
    return b.build(logits, doc=f"DARTS_V2 CIFAR network: C={c}, {layers} cells, {res}x{res} input.")
