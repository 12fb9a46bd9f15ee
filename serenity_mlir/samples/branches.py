"""The tiny multi-branch model used as the scheduler's smoke test.

Four independent bottleneck branches whose wide (64-channel) middle tensors make
the peak memory depend on the execution order: running branch by branch keeps
one 64-channel tensor alive at a time, while breadth-first keeps four.
"""

from __future__ import annotations

import onnx

from ._builder import GraphBuilder


def build_branches(*, channels: int = 8, hidden: int = 64, branches: int = 4,
                   resolution: int = 32, seed: int = 0, paper: bool = False) -> onnx.ModelProto:
    """input -> N x (Conv1x1 C->H, Relu, Conv1x1 H->C) -> one Sum -> output.

    ``paper`` is accepted for a uniform interface and changes nothing: this model
    is a hand-made toy with no paper-sized counterpart.
    """
    del paper
    b = GraphBuilder("branches", (1, channels, resolution, resolution), seed)
    outs = []
    for i in range(branches):  # branch order, as a Python loop over branches would run
        with b.scope(f"b{i}"):
            y = b.conv(b.input_name, hidden, 1, name="conv0")
            y = b.relu(y)
            outs.append(b.conv(y, channels, 1, name="conv1"))
    out = b.sum(outs)
    return b.build(out, doc="Tiny 4-branch model (Conv-Relu-Conv per branch, one Sum).")
