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


# A ViT's class token: the patch embeddings are written into a constant (the
# token and zeros, hoisted into one global). IREE clones the constant before
# the update (copy-on-write), in an execution region of its own ahead of the
# call's main one, and never frees the clone before the call ends; the patch
# dispatch writes its rows straight into the clone.
CONSTANT_TARGET = """
flow.executable private @ex {
  flow.executable.export public @p
  flow.executable.export public @q
  flow.executable.export public @r
}
util.global private @cls : tensor<1088xf32>
util.func public @vit(%arg0: tensor<1024xf32>) -> tensor<1024xf32> {
  %c64 = arith.constant 64 : index
  %k = util.global.load immutable @cls : tensor<1088xf32>
  %p = flow.dispatch @ex::@p(%arg0) : (tensor<1024xf32>) -> tensor<1024xf32>
  %u = flow.tensor.update %p, %k[%c64] : tensor<1024xf32> -> %k as tensor<1088xf32>
  %q = flow.dispatch @ex::@q(%u) : (tensor<1088xf32>) -> tensor<1024xf32>
  %r = flow.dispatch @ex::@r(%q, %k) : (tensor<1024xf32>, tensor<1088xf32>) -> tensor<1024xf32>
  util.return %r : tensor<1024xf32>
}
"""


def test_an_update_into_a_constant_writes_into_a_clone_for_the_whole_call() -> None:
    body = _body(CONSTANT_TARGET)
    g = body.graph
    assert list(g.labels) == ["p", "q", "r"]
    # The clone lives outside the slab for the whole call; %p has no buffer.
    assert body.cloned_bytes == 1088 * 4
    assert body.fixed_bytes == 1024 * 4 + 1024 * 4 + 1088 * 4  # input, result, clone
    assert g.sizes[0] == 0
    transient = {(g.labels[x.alloc], x.size) for x in body.buffers if not x.output}
    assert transient == {("q", 4096)}
    # The constant itself (read again by %r) is still a constant, not the clone.
    assert body.predict(range(g.num_nodes)).slab_bytes == 4096


def test_a_copied_update_into_a_constant_copies_into_the_clone() -> None:
    """%p is read again after the update: it keeps its buffer and the
    update copies it into the clone (a node that allocates nothing)."""
    r_before = "%r = flow.dispatch @ex::@r(%q, %k) : (tensor<1024xf32>, tensor<1088xf32>)"
    r_after = "%r = flow.dispatch @ex::@r(%q, %p) : (tensor<1024xf32>, tensor<1024xf32>)"
    assert r_before in CONSTANT_TARGET
    text = CONSTANT_TARGET.replace(r_before, r_after)
    body = _body(text)
    g = body.graph
    assert list(g.labels) == ["p", "flow.tensor.update", "q", "r"]
    assert body.cloned_bytes == 1088 * 4
    assert g.sizes[1] == 0
    transient = {(g.labels[x.alloc], x.size) for x in body.buffers if not x.output}
    assert transient == {("p", 4096), ("q", 4096)}
