"""The ways in besides the CLI: the iree-build action and the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_iree_build_sample(tmp_path: Path) -> None:
    out = tmp_path / "ib"
    r = subprocess.run(
        [sys.executable, "-m", "iree.build", str(ROOT / "samples" / "build_branches.py"), "--output-dir", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("branches", "branches_imported"):
        vmfb = out / "bin" / name / f"{name}.vmfb"
        assert vmfb.stat().st_size > 0
        report = json.loads((out / "bin" / name / f"{name}.report.json").read_text())
        assert report["scheduler"] == "serenity"
        assert report["optimal"] is True
        assert report["predicted_peak_bytes"] < report["program_order_predicted_peak_bytes"]


def test_python_api_step_by_step(branches_onnx: Path, tmp_path: Path) -> None:
    from serenity_mlir import api

    model = api.load_model(branches_onnx)
    flow = api.lower(model, target="host")
    body = api.dataflow_graph(flow)
    assert body.graph.num_nodes == 8
    result = api.schedule_graph(body.graph)
    assert result.optimal
    api.apply_schedule(flow, body, result)
    assert 'stream.partitioning = #stream.partitioning_config<"debug">' in flow.text()
    predicted = api.predict(body, result)
    out = tmp_path / "api.vmfb"
    api.compile_module(flow, out)
    m = api.measure(out)
    assert m["transient_bytes"] == predicted.slab_bytes
    assert m["device_bytes_peak"] == predicted.slab_bytes + body.fixed_bytes


def test_python_api_one_call(branches_onnx: Path, tmp_path: Path) -> None:
    from serenity_mlir import api

    report = api.compile(branches_onnx, tmp_path / "one.vmfb", verify_outputs=False)
    assert report["measured_peak_bytes"] == report["predicted_peak_bytes"]
    assert [t.name for t in api.targets()][0:1] != []
