"""The bytes outside the slab for degenerate entry signatures (issue 24):
an input no op reads, an input returned as it is, a constant returned.

Each figure here was measured in IREE's runtime on an ONNX model of the same
shape (test/faults/test_degenerate.py compiles and measures them).
"""

from __future__ import annotations

from serenity_mlir.analysis import build_body_graph, find_body_function
from serenity_mlir.ir.entry import ENTRY_INPUTS, ENTRY_OUTPUTS, record_entry_signature, tensor_spec
from serenity_mlir.ir.mlir import new_context, parse_module

HEADER = """
flow.executable private @ex {
  flow.executable.export public @relu
}
util.global private @cst = dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]> : tensor<2x4xf32>
"""

# An input the body never reads: IREE drops its import, the caller still
# passes it (1,024 B), and the import recorded it.
UNUSED = (
    HEADER
    + """
util.func public @main(%arg0: !hal.buffer_view, %arg1: !hal.buffer_view) -> !hal.buffer_view
    attributes {iree.reflection = {serenity.entry_inputs = "256xf32,256xf32", serenity.entry_outputs = "256xf32"}} {
  %0 = hal.tensor.import %arg0 : !hal.buffer_view -> tensor<256xf32>
  %1 = flow.dispatch @ex::@relu(%0) : (tensor<256xf32>) -> tensor<256xf32>
  %2 = hal.tensor.export %1 : tensor<256xf32> -> !hal.buffer_view
  util.return %2 : !hal.buffer_view
}
"""
)

# The input returned beside a result: the caller's buffer comes back as it
# is, so only the dispatch's result is allocated (measured 2,048 B in all).
RETURNED = (
    HEADER
    + """
util.func public @main(%arg0: !hal.buffer_view) -> (!hal.buffer_view, !hal.buffer_view) {
  %0 = hal.tensor.import %arg0 : !hal.buffer_view -> tensor<256xf32>
  %1 = flow.dispatch @ex::@relu(%0) : (tensor<256xf32>) -> tensor<256xf32>
  %2 = hal.tensor.export %1 : tensor<256xf32> -> !hal.buffer_view
  %3 = hal.tensor.export %0 : tensor<256xf32> -> !hal.buffer_view
  util.return %2, %3 : !hal.buffer_view, !hal.buffer_view
}
"""
)

# A constant returned: IREE copies it into a staging buffer at the start of
# the call and into the result at its end (32 B each; measured 64 B).
CONSTANT = (
    HEADER
    + """
util.func public @main() -> !hal.buffer_view {
  %0 = util.global.load @cst : tensor<2x4xf32>
  %1 = hal.tensor.export %0 : tensor<2x4xf32> -> !hal.buffer_view
  util.return %1 : !hal.buffer_view
}
"""
)


def _body(text: str):  # type: ignore[no-untyped-def]
    module = parse_module(text, "entry.mlir", new_context())
    _, func = find_body_function(module, None)
    return build_body_graph(func)


def test_an_unused_input_counts() -> None:
    body = _body(UNUSED)
    assert body.input_bytes == 2048
    assert body.output_bytes == 1024


def test_without_the_record_only_the_imports_count() -> None:
    body = _body(UNUSED.replace('serenity.entry_inputs = "256xf32,256xf32", ', ""))
    assert body.input_bytes == 1024


def test_a_returned_input_is_not_allocated_again() -> None:
    body = _body(RETURNED)
    assert (body.input_bytes, body.output_bytes) == (1024, 1024)
    assert body.fixed_bytes == 2048


def test_a_returned_constant_is_staged_and_copied() -> None:
    body = _body(CONSTANT)
    assert body.output_bytes == 32
    assert body.fixed_bytes == 64


def test_import_records_every_input_and_output() -> None:
    module = parse_module(
        """
func.func @main(%a: !torch.vtensor<[1,4,8,8],f32>, %b: !torch.vtensor<[3],si64>, %c: tensor<2x2xf16>)
    -> (!torch.vtensor<[],f32>) {
  %0 = torch.vtensor.literal(dense<0.0> : tensor<f32>) : !torch.vtensor<[],f32>
  return %0 : !torch.vtensor<[],f32>
}
func.func @dynamic(%a: !torch.vtensor<[?,4],f32>) -> !torch.vtensor<[?,4],f32> {
  return %a : !torch.vtensor<[?,4],f32>
}
""",
        "in.mlir",
        new_context(),
    )
    assert record_entry_signature(module) == 1  # the dynamic one is left alone
    main = next(op.operation for op in module.regions[0].blocks[0].operations)
    reflection = str(main.attributes["iree.reflection"])
    assert f'{ENTRY_INPUTS} = "1x4x8x8xf32,3xi64,2x2xf16"' in reflection
    assert f'{ENTRY_OUTPUTS} = "f32"' in reflection


def test_tensor_spec_of_types() -> None:
    ctx = new_context()
    from iree.compiler import ir

    with ctx:
        assert tensor_spec(ir.Type.parse("tensor<1x8xf32>")) == "1x8xf32"
        assert tensor_spec(ir.Type.parse("tensor<?x8xf32>")) is None
        assert tensor_spec(ir.Type.parse("i32")) is None
