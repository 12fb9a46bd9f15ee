"""schedule-graph's contract and the CLI's errors: one line, non-zero exit,
no partial output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_tool

GRAPH = {
    "nodes": [
        {"name": "a", "bytes": 100},
        {"name": "b", "bytes": 50},
        {"name": "c", "bytes": 70},
        {"name": "z", "bytes": 10},
    ],
    "edges": [["a", "b"], ["a", "c"], ["b", "z"], ["c", "z"]],
    "outputs": ["z"],
}


def test_schedule_graph_prints_contract(tmp_path: Path) -> None:
    f = tmp_path / "g.json"
    f.write_text(json.dumps(GRAPH))
    r = run_tool("serenity-mlir", "schedule-graph", str(f))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["order"][0] == "a" and out["order"][-1] == "z"
    # a(100) alive with b(50) and c(70): 220 whichever branch runs first.
    assert out["peak_bytes"] == 220
    assert out["optimal"] is True
    assert isinstance(out["seconds"], float)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"nodes": [{"name": "a", "bytes": 1}], "edges": [["a", "q"]]}), "unknown node 'q'"),
        (
            json.dumps(
                {"nodes": [{"name": "a", "bytes": 1}, {"name": "b", "bytes": 1}], "edges": [["a", "b"], ["b", "a"]]}
            ),
            "cycle",
        ),
        (json.dumps({"nodes": [{"name": "a", "bytes": -1}]}), "non-negative integer 'bytes'"),
        (json.dumps({"nodes": [{"name": "a", "bytes": 1}], "outputs": ["x"]}), "unknown node 'x'"),
    ],
)
def test_schedule_graph_bad_input_exit_2(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "g.json"
    f.write_text(text)
    r = run_tool("serenity-mlir", "schedule-graph", str(f))
    assert r.returncode == 2
    assert message in r.stderr
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1


def test_schedule_graph_missing_file(tmp_path: Path) -> None:
    r = run_tool("serenity-mlir", "schedule-graph", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_compile_missing_model(tmp_path: Path) -> None:
    out = tmp_path / "out.vmfb"
    r = run_tool("serenity-mlir", "compile", str(tmp_path / "missing.onnx"), "-o", str(out))
    assert r.returncode != 0
    assert "missing.onnx: no such file" in r.stderr
    assert not out.exists()


def test_compile_rejects_broken_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    out = tmp_path / "out.vmfb"
    r = run_tool("serenity-mlir", "compile", str(bad), "-o", str(out))
    assert r.returncode != 0 and "bad.onnx" in r.stderr
    assert not out.exists()


def test_compile_rejects_onnx_failing_checker(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    # Relu reads a tensor nobody defines.
    g = helper.make_graph([helper.make_node("Relu", ["undefined"], ["y"])], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    bad = tmp_path / "checker.onnx"
    onnx.save(m, bad)
    out = tmp_path / "out.vmfb"
    r = run_tool("serenity-mlir", "compile", str(bad), "-o", str(out))
    assert r.returncode != 0
    assert "the ONNX checker rejects the model" in r.stderr
    assert not out.exists()


def test_compile_rejects_dynamic_onnx(tmp_path: Path) -> None:
    """A dynamic batch is pinned to 1 (the import's rule); any other dynamic
    dimension is one error line naming it."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "width"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "width"])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    p = tmp_path / "dyn.onnx"
    onnx.save(m, p)
    r = run_tool("serenity-mlir", "compile", str(p), "-o", str(tmp_path / "o.vmfb"))
    assert r.returncode != 0
    assert "dynamic shapes are not supported: 'x' has a dynamic dimension 1 ('width')" in r.stderr


def test_compile_never_overwrites_input(tmp_path: Path) -> None:
    p = tmp_path / "m.mlir"
    p.write_text("func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> { return %a : tensor<4xf32> }\n")
    before = p.read_bytes()
    r = run_tool("serenity-mlir", "compile", str(p), "-o", str(p))
    assert r.returncode != 0 and "overwrite the input" in r.stderr
    assert p.read_bytes() == before


def test_compile_rejects_a_static_library_name_before_any_work(tmp_path: Path) -> None:
    """A Cortex-M build writes OUT.o and OUT.h beside OUT: an output named
    .o would be overwritten by its own object. Said at once (not after the
    schedule and the rewrite search), and nothing is written."""
    p = tmp_path / "m.mlir"
    p.write_text("func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> { return %a : tensor<4xf32> }\n")
    out = tmp_path / "build" / "m.o"
    r = run_tool("serenity-mlir", "compile", str(p), "--target", "cortex-m7", "-o", str(out), "--rewrite")
    assert r.returncode != 0 and "suffix is not .o or .h" in r.stderr
    assert "[1/" not in r.stderr  # no step started
    assert not out.parent.exists()


def test_compile_rejects_a_negative_rewrite_tolerance(tmp_path: Path) -> None:
    p = tmp_path / "m.mlir"
    p.write_text("func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> { return %a : tensor<4xf32> }\n")
    out = tmp_path / "m.vmfb"
    r = run_tool("serenity-mlir", "compile", str(p), "-o", str(out), "--rewrite", "--rewrite-rtol", "-1")
    assert r.returncode != 0 and "--rewrite-rtol must be a positive tolerance, got -1" in r.stderr
    assert not out.exists()


def test_measure_foreign_module_needs_shapes(tmp_path: Path) -> None:
    r = run_tool("serenity-mlir", "measure", str(tmp_path / "none.vmfb"))
    assert r.returncode != 0 and "no such file" in r.stderr


@pytest.mark.parametrize("command", ["bench", "bench-targets"])
@pytest.mark.parametrize(
    ("model", "message"),
    [("missing.onnx", "missing.onnx: no such file"), ("nosuchnet", "'nosuchnet' is neither a model file nor a sample")],
)
def test_bench_commands_reject_bad_models(command: str, model: str, message: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_tool("serenity-mlir", command, model, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: {message}")
    assert "intermediate files kept" not in r.stderr
    assert not out.exists()
