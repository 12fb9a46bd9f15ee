"""MobileNetV2 (Sandler et al., 2018): a *regular* (chain-like) reference network.

Inverted residual blocks (1x1 expand, depthwise 3x3, 1x1 linear projection, Add
when input and output shapes match).  Its only branching is the residual skip,
so a memory-aware scheduler should gain little over the framework order --
a useful control next to the irregular networks.  Nodes follow the PyTorch
``forward`` order of torchvision's implementation.
"""

from __future__ import annotations

import onnx

from ._builder import GraphBuilder, pick

# (expansion t, output channels c, repeats n, first stride s), as in the paper.
SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without losing more than 10%."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def inverted_residual(b: GraphBuilder, x: str, c_out: int, stride: int, t: int) -> str:
    c_in = b.channels(x)
    hidden = c_in * t
    y = x
    if t != 1:
        with b.scope("expand"):
            y = b.relu6(b.batch_norm(b.conv(y, hidden, 1)))
    with b.scope("dw"):
        y = b.relu6(b.batch_norm(b.conv(y, hidden, 3, stride=stride, groups=hidden)))
    with b.scope("project"):
        y = b.batch_norm(b.conv(y, c_out, 1))
    return b.add(x, y) if stride == 1 and c_in == c_out else y


def build_mobilenetv2(*, width: float | None = None, blocks: int | None = None,
                      resolution: int | None = None, classes: int | None = None,
                      last_channels: int | None = None, seed: int = 2,
                      paper: bool = False) -> onnx.ModelProto:
    """MobileNetV2 truncated to its first ``blocks`` inverted-residual blocks.

    Small default: 64x64, width 0.35, 8 blocks, 256-wide last conv, 10 classes.
    ``paper=True``: the full 1.0x network (17 blocks, 1280, 224x224, 1000 classes).
    """
    width = width if width is not None else (1.0 if paper else 0.35)
    n_blocks = pick(blocks, 8, sum(s[2] for s in SETTINGS), paper)
    res = pick(resolution, 64, 224, paper)
    classes = pick(classes, 10, 1000, paper)
    last = pick(last_channels, 256, 1280, paper)
    b = GraphBuilder("mobilenetv2", (1, 3, res, res), seed)
    with b.scope("features.0"):
        x = b.relu6(b.batch_norm(b.conv(b.input_name, make_divisible(32 * width), 3, stride=2,
                                        gain=1.0)))
    idx = 0
    for t, c, n, s in SETTINGS:
        for i in range(n):
            if idx == n_blocks:
                break
            idx += 1
            with b.scope(f"features.{idx}"):
                x = inverted_residual(b, x, make_divisible(c * width), s if i == 0 else 1, t)
    with b.scope(f"features.{idx + 1}"):
        x = b.relu6(b.batch_norm(b.conv(x, last, 1)))
    logits = b.classifier(x, classes)
    return b.build(logits, doc=f"MobileNetV2 x{width}, {idx} blocks, {res}x{res} input.")
