"""The whole pipeline with the real IREE compiler and runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_tool

# The report's contract fields on a measured host build, by JSON type (a
# count is an int, never a bool or a float; seconds may be written as 0).
REPORT_FIELDS: dict[type, tuple[str, ...]] = {
    str: ("model", "target", "scheduler", "entry_function"),
    bool: ("optimal",),
    int: (
        "num_nodes",
        "predicted_peak_bytes",
        "program_order_predicted_peak_bytes",
        "measured_peak_bytes",
        "constant_bytes",
        "input_bytes",
        "output_bytes",
        "transient_bytes",
    ),
    float: ("schedule_seconds", "compile_seconds"),
}


@pytest.fixture(scope="module")
def serenity_report(branches_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("serenity")
    r = run_tool("serenity-mlir", "compile", str(branches_onnx), "-o", str(d / "m.vmfb"), "--report", str(d / "r.json"))
    assert r.returncode == 0, r.stderr
    assert (d / "m.vmfb").stat().st_size > 0
    return json.loads((d / "r.json").read_text())


def test_report_has_contract_fields(serenity_report: dict) -> None:
    for kind, names in REPORT_FIELDS.items():
        for k in names:
            assert k in serenity_report, k
            v = serenity_report[k]
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) if kind is float else type(v) is kind
            assert ok, f"{k}: {v!r} is not a JSON {kind.__name__}"
    assert serenity_report["entry_function"] == "branches"
    assert serenity_report["optimal"] is True


def test_serenity_halves_iree_default_peak(serenity_report: dict) -> None:
    # IREE's default compile of the same ONNX file is measured in the same run.
    assert serenity_report["measured_peak_bytes"] * 2 <= serenity_report["reference_measured_peak_bytes"]


def test_outputs_bit_identical(serenity_report: dict) -> None:
    assert serenity_report["outputs_bit_identical"] is True


def test_prediction_equals_measurement(serenity_report: dict, branches_onnx: Path) -> None:
    """The memory model's figures against the runtime's, each from its own source."""
    import onnx

    model = onnx.load(str(branches_onnx))

    def tensor_bytes(vi: onnx.ValueInfoProto) -> int:
        n = 4  # float32
        for d in vi.type.tensor_type.shape.dim:
            n *= d.dim_value
        return n

    # Inputs and results: from the ONNX file's own shapes vs what the runtime placed.
    assert serenity_report["input_bytes"] == sum(tensor_bytes(i) for i in model.graph.input) == 32768
    assert serenity_report["output_bytes"] == sum(tensor_bytes(o) for o in model.graph.output) == 32768
    # The slab: IREE's packer simulated on the order vs the runtime's counters.
    assert serenity_report["transient_bytes"] == serenity_report["predicted_transient_bytes"]
    measured = serenity_report["measured_peak_bytes"] - serenity_report["constant_bytes"]
    assert serenity_report["predicted_peak_bytes"] == measured
    assert serenity_report["prediction_exact"] is True


def test_program_order_is_worse_than_serenity(branches_onnx: Path, tmp_path: Path, serenity_report: dict) -> None:
    r = run_tool(
        "serenity-mlir",
        "compile",
        str(branches_onnx),
        "-o",
        str(tmp_path / "p.vmfb"),
        "--scheduler",
        "program",
        "--report",
        str(tmp_path / "p.json"),
        "--no-verify-outputs",
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["measured_peak_bytes"] > serenity_report["measured_peak_bytes"]
    assert rep["predicted_peak_bytes"] == serenity_report["program_order_predicted_peak_bytes"]


def test_measure_command(serenity_report: dict) -> None:
    r = run_tool("serenity-mlir", "measure", serenity_report["output"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["device_bytes_peak"] == serenity_report["measured_peak_bytes"]
    assert out["function"] == "branches"


def test_mlir_input_linalg(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parent.parent / "lit" / "transforms" / "schedule-linalg.mlir"
    r = run_tool(
        "serenity-mlir", "compile", str(src), "-o", str(tmp_path / "l.vmfb"), "--report", str(tmp_path / "l.json")
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "l.json").read_text())
    assert rep["outputs_bit_identical"] is True
    assert rep["measured_peak_bytes"] <= rep["reference_measured_peak_bytes"]


def test_old_opset_is_upgraded(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32) * 0.1, "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    wi = helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    # Old style: the weight is also listed as a graph input.
    g = helper.make_graph(nodes, "old", [x, wi], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)])
    m.ir_version = 4
    p = tmp_path / "old.onnx"
    onnx.save(m, p)
    r = run_tool(
        "serenity-mlir", "compile", str(p), "-o", str(tmp_path / "o.vmfb"), "--report", str(tmp_path / "o.json")
    )
    assert r.returncode == 0, r.stderr
    assert "upgraded old.onnx from ONNX opset 9 to 17" in r.stderr
    rep = json.loads((tmp_path / "o.json").read_text())
    assert rep["outputs_bit_identical"] is True
