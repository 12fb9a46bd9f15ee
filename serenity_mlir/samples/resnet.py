"""ResNet with basic blocks (He et al., 2016): a *regular* reference network.

Like MobileNetV2 its only branches are residual shortcuts, so it is a control
for the scheduler.  Node order follows torchvision's ``BasicBlock.forward``:
conv1, bn1, relu, conv2, bn2, then the downsample shortcut (if any), Add, ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from ._builder import GraphBuilder, pick


def basic_block(b: GraphBuilder, x: str, c_out: int, stride: int) -> str:
    y = b.relu(b.batch_norm(b.conv(x, c_out, 3, stride=stride, name="conv1"), name="bn1"))
    y = b.batch_norm(b.conv(y, c_out, 3, name="conv2"), name="bn2")
    identity = x
    if stride != 1 or b.channels(x) != c_out:
        with b.scope("downsample"):
            identity = b.batch_norm(b.conv(x, c_out, 1, stride=stride, padding=0))
    return b.relu(b.add(y, identity))


def build_resnet(*, widths: Sequence[int] | None = None, blocks: Sequence[int] | None = None,
                 resolution: int | None = None, classes: int | None = None, seed: int = 3,
                 paper: bool = False) -> onnx.ModelProto:
    """ImageNet-style ResNet: conv7x7/2, BN, ReLU, maxpool/2, stages, GAP, FC.

    Small default: 64x64, widths (16, 32, 64), 2 blocks per stage, 10 classes.
    ``paper=True``: ResNet-18 (widths 64..512, 2 blocks x 4 stages, 224x224, 1000).
    """
    widths = tuple(widths) if widths is not None else (
        (64, 128, 256, 512) if paper else (16, 32, 64))
    blocks = tuple(blocks) if blocks is not None else (2,) * len(widths)
    if len(blocks) != len(widths):
        raise ValueError("widths and blocks must have the same length")
    res = pick(resolution, 64, 224, paper)
    classes = pick(classes, 10, 1000, paper)
    b = GraphBuilder("resnet", (1, 3, res, res), seed)
    x = b.conv(b.input_name, widths[0], 7, stride=2, gain=1.0, name="conv1")
    x = b.max_pool(b.relu(b.batch_norm(x, name="bn1")), 3, 2, 1)
    for s, (c, n) in enumerate(zip(widths, blocks, strict=True)):
        for i in range(n):
            with b.scope(f"layer{s + 1}.{i}"):
                x = basic_block(b, x, c, 2 if i == 0 and s > 0 else 1)
    logits = b.classifier(x, classes)
    return b.build(logits, doc=f"ResNet basic blocks {blocks}, widths {widths}, {res}x{res}.")
