"""The compile report's latency and input-free peak fields (issue 23): the
shipped module and IREE's default build timed by iree-benchmark-module on the
same inputs, and the shipped peak without its inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_tool

from serenity_mlir.errors import CompilerToolError
from serenity_mlir.pipeline import measure as ms
from serenity_mlir.runtime.run_module import parse_benchmark

LATENCY_FIELDS = ("latency_seconds", "reference_latency_seconds", "latency_ratio")


@pytest.fixture(scope="module")
def report(branches_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("latency")
    r = run_tool("serenity-mlir", "compile", str(branches_onnx), "-o", str(d / "m.vmfb"), "--report", str(d / "r.json"))
    assert r.returncode == 0, r.stderr
    assert "latency_ratio" in json.loads(r.stdout)  # the summary shows it
    return json.loads((d / "r.json").read_text())


def test_latency_fields_are_positive_and_consistent(report: dict) -> None:
    for k in LATENCY_FIELDS:
        assert isinstance(report[k], float) and report[k] > 0, (k, report[k])
    # A call of this sample takes well under a second, far over a nanosecond.
    assert 1e-7 < report["latency_seconds"] < 1 and 1e-7 < report["reference_latency_seconds"] < 1
    ratio = report["latency_seconds"] / report["reference_latency_seconds"]
    assert report["latency_ratio"] == pytest.approx(ratio, abs=1e-4)


def test_peak_without_input(report: dict) -> None:
    assert report["input_bytes"] == 32768
    assert report["shipped"] == "serenity"
    assert report["peak_without_input_bytes"] == report["shipped_peak_bytes"] - report["input_bytes"]
    assert report["peak_without_input_bytes"] == report["measured_peak_bytes"] - report["input_bytes"] > 0


def test_not_measured_means_null(branches_onnx: Path, tmp_path: Path) -> None:
    r = run_tool(
        "serenity-mlir", "compile", str(branches_onnx), "-o", str(tmp_path / "m.vmfb"),
        "--report", str(tmp_path / "r.json"), "-q", "--no-measure",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert all(data[k] is None for k in LATENCY_FIELDS)
    assert "peak_without_input_bytes" not in data  # like measured_peak_bytes


# time_latency with a stand-in clock: no modules run.


def _run() -> ms.Run:
    return ms.Run("f", 100, 0, 10, 10, 80, "sha", ["1x8xf32"], call_seconds=0.001)


def test_time_latency_times_both_with_the_same_repetitions() -> None:
    calls: list[tuple[str, int]] = []

    def clock(vmfb: Path, fn: str, inputs: list[str], seed: int, reps: int) -> list[float]:
        assert (fn, inputs, seed) == ("f", ["1x8xf32"], 3)
        calls.append((vmfb.name, reps))
        return [{"m.vmfb": 0.002, "ref.vmfb": 0.004}[vmfb.name]] * reps

    lat = ms.time_latency(clock, Path("m.vmfb"), Path("ref.vmfb"), "f", _run(), 3, 0.001)
    # Two rounds in opposite orders, 5 repetitions per module in all.
    assert calls == [("m.vmfb", 3), ("ref.vmfb", 3), ("ref.vmfb", 2), ("m.vmfb", 2)]
    assert lat.report_fields() == {"latency_seconds": 0.002, "reference_latency_seconds": 0.004, "latency_ratio": 0.5}
    assert lat.reason is None


def test_time_latency_shipped_reference_and_no_reference() -> None:
    calls: list[Path] = []

    def clock(vmfb: Path, fn: str, inputs: list[str], seed: int, reps: int) -> list[float]:
        calls.append(vmfb)
        return [0.25, 0.5, 0.25][:reps]

    same = ms.time_latency(clock, Path("ref.vmfb"), Path("ref.vmfb"), "f", _run(), 0, None)
    assert len(calls) == 1 and same.report_fields()["latency_ratio"] == 1.0
    alone = ms.time_latency(clock, Path("m.vmfb"), None, "f", _run(), 0, None)
    assert alone.report_fields() == {"latency_seconds": 0.25, "reference_latency_seconds": None, "latency_ratio": None}
    assert alone.reason is not None and "--no-verify-outputs" in alone.reason


def test_a_failed_timing_is_a_note() -> None:
    def clock(vmfb: Path, fn: str, inputs: list[str], seed: int, reps: int) -> list[float]:
        raise CompilerToolError("timing m.vmfb with iree-benchmark-module", ["iree-benchmark-module"], "boom")

    lat = ms.time_latency(clock, Path("m.vmfb"), Path("ref.vmfb"), "f", _run(), 0, None)
    assert all(v is None for v in lat.report_fields().values())
    assert lat.reason is not None and lat.reason.startswith("latency not timed: ")


def test_repetitions_are_capped_by_time() -> None:
    assert ms.repetitions(None) == ms.repetitions(0.0001) == ms.LATENCY_REPETITIONS == 5
    assert ms.repetitions(0.5) == 2  # a warm-up call per round + 2 calls: 2 s
    assert ms.repetitions(10.0) == 1


def test_parse_benchmark() -> None:
    rows = [
        {"run_type": "iteration", "real_time": 250.0, "time_unit": "us"},
        {"run_type": "iteration", "real_time": 0.5, "time_unit": "ms"},
        {"run_type": "aggregate", "aggregate_name": "median", "real_time": 1.0, "time_unit": "s"},
    ]
    assert parse_benchmark(json.dumps({"benchmarks": rows})) == pytest.approx([250e-6, 0.5e-3])
    assert parse_benchmark("not json") == []
