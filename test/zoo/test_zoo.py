"""The zoo (samples/zoo/*.onnx): every model compiles with the defaults, its
outputs equal IREE's default build bit for bit, what ships measures at or
below IREE's default build, and the prediction equals the measurement (the
total and the transient slab).

Run as a user would, through the CLI. The scheduler's time limit is 10 s
instead of 60 to keep CI short: the checks hold for any order the scheduler
returns (the largest models, NASNet-A and PNASNet-5, finish in a few seconds
anyway). `serenity-mlir bench-zoo` runs the same checks with the full
defaults and writes the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_tool

ZOO = sorted((ROOT / "samples" / "zoo").glob("*.onnx"))


def test_zoo_is_there() -> None:
    # 16 exported architectures and the onnx package's 9 light models.
    assert len(ZOO) == 25, [p.name for p in ZOO]


@pytest.mark.parametrize("model", ZOO, ids=[p.stem for p in ZOO])
def test_zoo_model(model: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    res = run_tool(
        "serenity-mlir",
        "compile",
        str(model),
        "-o",
        str(tmp_path / "m.vmfb"),
        "--report",
        str(report),
        "--time-limit",
        "10",
        "-q",
    )
    assert res.returncode == 0, res.stderr
    r = json.loads(report.read_text())
    assert r["outputs_bit_identical"] is True
    assert r["shipped_peak_bytes"] <= r["reference_measured_peak_bytes"], (r["shipped"], r.get("notes"))
    assert r["prediction_exact"] is True, (r["predicted_peak_bytes"], r["measured_peak_bytes"])
    assert r["predicted_transient_bytes"] == r["transient_bytes"]
