"""The memory model of concats whose fresh buffer CSE shared between them."""

from __future__ import annotations

from serenity_mlir.analysis import BodyGraph, build_body_graph, find_body_function
from serenity_mlir.ir.mlir import new_context, parse_module

# Two concats of the same type: IREE's flow phase CSEs their
# `flow.tensor.empty` into one value that both update chains start from.
# The stream phase clones it for each chain (copy-on-write of a fresh value:
# a fresh allocation), and each writer whose result only feeds its update is
# then written straight into its own concat's buffer.
SHARED_EMPTY = """
flow.executable private @ex {
  flow.executable.export public @a
  flow.executable.export public @b
  flow.executable.export public @r
  flow.executable.export public @c
  flow.executable.export public @d
  flow.executable.export public @e
  flow.executable.export public @s
}
util.func public @two(%arg0: tensor<1024xf32>) -> tensor<1024xf32> {
  %c0 = arith.constant 0 : index
  %c1024 = arith.constant 1024 : index
  %buf = flow.tensor.empty : tensor<2048xf32>
  %a = flow.dispatch @ex::@a(%arg0) : (tensor<1024xf32>) -> tensor<1024xf32>
  %b = flow.dispatch @ex::@b(%arg0) : (tensor<1024xf32>) -> tensor<1024xf32>
  %u0 = flow.tensor.update %a, %buf[%c0] : tensor<1024xf32> -> %buf as tensor<2048xf32>
  %u1 = flow.tensor.update %b, %u0[%c1024] : tensor<1024xf32> -> %u0 as tensor<2048xf32>
  %v = flow.tensor.reshape %u1 : tensor<2048xf32> -> tensor<2x1024xf32>
  %r = flow.dispatch @ex::@r(%v) : (tensor<2x1024xf32>) -> tensor<1024xf32>
  %c = flow.dispatch @ex::@c(%r) : (tensor<1024xf32>) -> tensor<1024xf32>
  %d = flow.dispatch @ex::@d(%r) : (tensor<1024xf32>) -> tensor<1024xf32>
  %e = flow.dispatch @ex::@e(%c) : (tensor<1024xf32>) -> tensor<1024xf32>
  %w0 = flow.tensor.update %c, %buf[%c0] : tensor<1024xf32> -> %buf as tensor<2048xf32>
  %w1 = flow.tensor.update %d, %w0[%c1024] : tensor<1024xf32> -> %w0 as tensor<2048xf32>
  %v2 = flow.tensor.reshape %w1 : tensor<2048xf32> -> tensor<2x1024xf32>
  %s = flow.dispatch @ex::@s(%v2, %e) : (tensor<2x1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  util.return %s : tensor<1024xf32>
}
"""


def _body(text: str) -> BodyGraph:
    ctx = new_context()
    module = parse_module(text, "test.mlir", ctx)
    _, func = find_body_function(module, None)
    return build_body_graph(func)


def test_concats_sharing_an_empty_get_a_buffer_each() -> None:
    body = _body(SHARED_EMPTY)
    g = body.graph
    label = list(g.labels)
    assert label == ["a", "b", "r", "c", "e", "flow.tensor.update", "d", "s"]
    a, b, _r, _c, _e, copy, d, _s = range(g.num_nodes)
    bufs = {(label[x.alloc], x.size, frozenset(label[u] for u in x.users)) for x in body.buffers if not x.output}
    assert bufs == {
        # First concat: %a allocates it and writes its half in place, %b
        # writes the other half (so runs after %a), %r reads it.
        ("a", 8192, frozenset({"b", "r"})),
        # Second concat: %c is also read by %e, so it keeps its own buffer and
        # the update copies it into the concat buffer, which that update
        # allocates; %d (used once) writes into it in place after the copy.
        ("flow.tensor.update", 8192, frozenset({"d", "s"})),
        ("r", 4096, frozenset({"c", "d"})),
        ("c", 4096, frozenset({"e", "flow.tensor.update"})),
        ("e", 4096, frozenset({"s"})),
    }
    # No buffer for %b and %d: they write into the concats.
    assert g.sizes[b] == g.sizes[d] == 0
    # Writers run in update-chain order.
    assert a in g.preds[b] and copy in g.preds[d]
    # At the copy: %r, %c, %e and the second concat.
    assert body.predict(range(g.num_nodes)).live_bytes == 4096 * 3 + 8192


def test_concats_sharing_an_empty_have_distinct_buffer_names() -> None:
    """Reports and the joint order+offset solver key buffers by name."""
    body = _body(SHARED_EMPTY)
    names = [b.name for b in body.buffers]
    assert len(set(names)) == len(names), names
