"""TFLite models in (Arm's TOSA converter, the 'tflite' extra), and the
picture of a compile (``compile --plot``), with the real IREE compiler and
runtime.

``samples/branches.tflite`` is the README's multi-branch sample made with
TensorFlow's own converter (``samples/make_tflite.py``): 4 branches of 1x1
conv 8->64, ReLU, 1x1 conv 64->8, summed; float32, NHWC 1x32x32x8.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_tool

SAMPLE = ROOT / "samples" / "branches.tflite"
INSTALL = "pip install 'serenity-mlir[tflite]'"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _need_converter() -> None:
    pytest.importorskip(
        "tosa_converter_for_tflite",
        reason=f"the 'tflite' extra is not installed ({INSTALL}): .tflite models cannot be read",
    )


def _without(module: str, *cli_args: str) -> subprocess.CompletedProcess[str]:
    """Runs the CLI in a fresh interpreter in which ``module`` cannot be imported."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from serenity_mlir.tools.cli import main\n"
        f"sys.exit(main({list(cli_args)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.fixture(scope="module")
def host_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    _need_converter()
    d = tmp_path_factory.mktemp("tflite")
    r = run_tool(
        "serenity-mlir", "compile", str(SAMPLE), "-o", str(d / "m.vmfb"),
        "--report", str(d / "r.json"), "--plot", str(d / "m.png"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads((d / "r.json").read_text()), d


def test_tflite_compiles_below_iree_default(host_run: tuple[dict, Path]) -> None:
    report, d = host_run
    assert (d / "m.vmfb").stat().st_size > 0
    assert report["num_nodes"] == 8
    assert report["inputs"] == ["1x32x32x8xf32"]
    assert report["optimal"] is True
    # The same numbers as the ONNX sample: 425,984 B vs IREE's default 1,146,880 B.
    assert report["measured_peak_bytes"] == report["predicted_peak_bytes"] == 425_984
    assert report["reference_measured_peak_bytes"] == 1_146_880
    assert report["measured_peak_bytes"] < report["reference_measured_peak_bytes"]
    assert report["predicted_peak_bytes"] < report["program_order_predicted_peak_bytes"] == 688_128
    assert report["outputs_bit_identical"] is True


def test_plot_is_written(host_run: tuple[dict, Path]) -> None:
    _, d = host_run
    data = (d / "m.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


def test_tflite_cortex_m7(tmp_path: Path) -> None:
    _need_converter()
    r = run_tool(
        "serenity-mlir", "compile", str(SAMPLE), "--target", "cortex-m7", "-o", str(tmp_path / "m7.vmfb"),
        "--report", str(tmp_path / "m7.json"), "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "m7.json").read_text())
    assert report["output_kind"] == "static-library"
    for suffix in (".o", ".h", ".vmfb"):
        assert (tmp_path / f"m7{suffix}").stat().st_size > 0
    assert report["code_size_bytes"] > 0
    assert report["fits_sram"] is True
    # IREE's own arena (results included) for the SERENITY order: 384 KiB
    # (the imported order needs 640 KiB, as for the ONNX sample).
    assert report["iree_arena_bytes"] == 384 * 1024
    assert report["iree_arena_bytes"] < report["program_order_predicted_peak_bytes"] - report["input_bytes"]


def test_tflite_without_the_extra_names_the_install(tmp_path: Path) -> None:
    r = _without("tosa_converter_for_tflite", "compile", str(SAMPLE), "-o", str(tmp_path / "m.vmfb"))
    assert r.returncode == 1, r.stderr
    assert INSTALL in r.stderr
    assert not (tmp_path / "m.vmfb").exists()


def test_not_a_tflite_file(tmp_path: Path) -> None:
    _need_converter()
    from serenity_mlir.errors import InputError
    from serenity_mlir.pipeline.importer import import_model

    for name, data, says in (
        ("junk.tflite", b"not a model", "not a TFLite flatbuffer"),
        ("bad.tflite", b"\0\0\0\0TFL3" + b"\0" * 24, "the TFLite model has no subgraph"),
    ):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(InputError, match=f"{p}: {says}"):
            import_model(p, quiet=True)


# --plot: checked with the other paths before any work, and needs the 'plots' extra.


@pytest.mark.parametrize(
    "plot_as, says",
    [
        pytest.param(lambda m, d: m, "give a .png", id="the-model"),
        pytest.param(lambda m, d: d / "m.png", "is also -o", id="the-output"),
        pytest.param(lambda m, d: d / "r.png", "is also --report", id="the-report"),
    ],
)
def test_plot_path_checked_first(  # type: ignore[no-untyped-def]
    plot_as, says: str, branches_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serenity_mlir.tools.cli import main

    plot = plot_as(branches_onnx, tmp_path)
    args = ["compile", str(branches_onnx), "-o", str(tmp_path / "m.png"), "--report", str(tmp_path / "r.png")]
    assert main([*args, "--plot", str(plot)]) == 1
    err = capsys.readouterr().err
    assert f"--plot {plot}" in err and says in err, err
    assert "[1/" not in err  # before the first step
    assert not (tmp_path / "m.png").exists()


def test_plot_needs_matplotlib(branches_onnx: Path, tmp_path: Path) -> None:
    r = _without("matplotlib", "compile", str(branches_onnx), "-o", str(tmp_path / "m.vmfb"),
                 "--plot", str(tmp_path / "p.png"))  # fmt: skip
    assert r.returncode == 1
    assert "pip install 'serenity-mlir[plots]'" in r.stderr
    assert not (tmp_path / "m.vmfb").exists()
