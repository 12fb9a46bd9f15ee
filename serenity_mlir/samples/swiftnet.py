"""SwiftNet-style Visual Wake Words network (in the spirit of arXiv 1906.08305).

SwiftNet's searched cells are multi-branch: several parallel paths with
different receptive fields are merged by concatenation and addition.  The exact
searched cells are not published in machine-readable form, so this is a faithful
*kind* of network rather than a replica:

* normal cell (C -> C): a shared 1x1 bottleneck feeding a 3x3 and a 5x5
  separable branch, a plain 1x1 branch and an avg-pool + 1x1 branch; the four
  C/4-channel results are concatenated and added to the cell input (residual).
* reduction cell (C -> 2C, stride 2): max-pool, 1x1 + separable 3x3/2 and
  separable 5x5/2 branches, concatenated.

The graph is emitted branch by branch, as the forward method would be written.
"""

from __future__ import annotations

import onnx

from ._builder import GraphBuilder, pick


def conv_bn_relu(b: GraphBuilder, x: str, c_out: int, kernel: int = 1, stride: int = 1) -> str:
    return b.relu(b.batch_norm(b.conv(x, c_out, kernel, stride=stride)))


def sep_bn_relu(b: GraphBuilder, x: str, c_out: int, kernel: int, stride: int = 1) -> str:
    """Depthwise kxk + pointwise 1x1 + BN + ReLU (MobileNet-style separable conv)."""
    c_in = b.channels(x)
    x = b.conv(x, c_in, kernel, stride=stride, groups=c_in, name="dw")
    return b.relu(b.batch_norm(b.conv(x, c_out, 1, gain=1.0, name="pw")))


def normal_cell(b: GraphBuilder, x: str) -> str:
    c = b.channels(x)
    if c % 4:
        raise ValueError("SwiftNet normal cells need channels divisible by 4")
    q = c // 4
    with b.scope("branch0"):
        b0 = conv_bn_relu(b, x, q)
    with b.scope("bottleneck"):
        t = conv_bn_relu(b, x, 2 * q)
    with b.scope("branch1"):
        b1 = sep_bn_relu(b, t, q, 3)
    with b.scope("branch2"):
        b2 = sep_bn_relu(b, t, q, 5)
    with b.scope("branch3"):
        b3 = conv_bn_relu(b, b.avg_pool(x, 3, 1, 1), q)
    y = b.concat([b0, b1, b2, b3])
    return b.relu(b.add(y, x))


def reduction_cell(b: GraphBuilder, x: str) -> str:
    c = b.channels(x)
    if c % 2:
        raise ValueError("SwiftNet reduction cells need even channels")
    with b.scope("branch0"):
        r0 = b.max_pool(x, 3, 2, 1)
    with b.scope("branch1"):
        r1 = sep_bn_relu(b, conv_bn_relu(b, x, c // 2), c // 2, 3, stride=2)
    with b.scope("branch2"):
        r2 = sep_bn_relu(b, x, c // 2, 5, stride=2)
    return b.concat([r0, r1, r2])


def build_swiftnet(*, channels: int | None = None, stages: int | None = None,
                   cells_per_stage: int | None = None, resolution: int | None = None,
                   classes: int = 2, seed: int = 1, paper: bool = False) -> onnx.ModelProto:
    """Stem conv3x3/2, then ``stages`` x (normal cells, reduction cell), a final
    normal cell and a 2-class (person / no person) classifier.

    Small default: 96x96 input, C=16, 3 stages of 1 normal cell.  ``paper=True``:
    128x128 input, C=32, 3 stages of 2 normal cells.
    """
    c = pick(channels, 16, 32, paper)
    stages = pick(stages, 3, 3, paper)
    per_stage = pick(cells_per_stage, 1, 2, paper)
    res = pick(resolution, 96, 128, paper)
    b = GraphBuilder("swiftnet", (1, 3, res, res), seed)
    with b.scope("stem"):
        x = b.relu(b.batch_norm(b.conv(b.input_name, c, 3, stride=2, gain=1.0)))
    for s in range(stages):
        for i in range(per_stage):
            with b.scope(f"stage{s}.normal{i}"):
                x = normal_cell(b, x)
        with b.scope(f"stage{s}.reduce"):
            x = reduction_cell(b, x)
    with b.scope("final"):
        x = normal_cell(b, x)
    logits = b.classifier(x, classes)
    return b.build(logits, doc=f"SwiftNet-style VWW network: C={c}, {stages} stages, {res}x{res}.")
