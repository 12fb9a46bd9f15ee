"""Names in the body graph are the module's value names, as the printed
module shows them (reports, warnings and joint.py key buffers by name).

The builder names every value through one ``AsmState`` for the whole walk;
these checks hold it to what ``Value.get_name()`` (which numbers the whole
module again on each call) gives for the same values, in a module with a
second function before the body (names restart per function) and values
whose source names the printer does not keep (``%x`` prints as ``%0``).
"""

from __future__ import annotations

from serenity_mlir.analysis import build_body_graph, find_body_function
from serenity_mlir.ir.mlir import new_context, parse_module

MODULE = """
flow.executable private @ex {
  flow.executable.export public @a
  flow.executable.export public @b
  flow.executable.export public @two
}
util.func private @other(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = flow.dispatch @ex::@a(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = flow.dispatch @ex::@a(%0) : (tensor<4xf32>) -> tensor<4xf32>
  util.return %1 : tensor<4xf32>
}
util.func public @main(%arg0: tensor<256xf32>, %arg1: tensor<256xf32>) -> (tensor<256xf32>, tensor<256xf32>) {
  %x = flow.dispatch @ex::@a(%arg0) : (tensor<256xf32>) -> tensor<256xf32>
  %0 = flow.dispatch @ex::@b(%arg1) : (tensor<256xf32>) -> tensor<256xf32>
  %1:2 = flow.dispatch @ex::@two(%x, %0) : (tensor<256xf32>, tensor<256xf32>) -> (tensor<256xf32>, tensor<256xf32>)
  %2 = flow.dispatch @ex::@b(%1#1) : (tensor<256xf32>) -> tensor<256xf32>
  util.return %1#0, %2 : tensor<256xf32>, tensor<256xf32>
}
"""


def test_names_are_the_printed_value_names() -> None:
    module = parse_module(MODULE, "names.mlir", new_context())
    _, func = find_body_function(module, "main")
    for model in ("iree", "paper"):
        body = build_body_graph(func, model)
        expected = [", ".join(r.get_name() for r in op.results) for op in body.node_ops]
        assert list(body.graph.names) == expected
        assert list(body.graph.names) == ["%0", "%1", "%2#0, %2#1", "%3"]
    # The buffers (the second result of @two is a buffer of its own) too.
    body = build_body_graph(func, "iree")
    assert sorted(b.name for b in body.buffers) == ["%0", "%1", "%2#0", "%2#1", "%3"]
    paper = build_body_graph(func, "paper")
    assert sorted(b.name for b in paper.graph.buffers if b.alloc is None) == ["%arg0", "%arg1"]
