"""``--arena-entry`` end to end, with the real IREE compiler and runtime: the
entry point's one argument is the arena, the input and results live inside
it at the offsets the report gives, and ``ram_bytes`` is the arena.

On the host the arena module runs from Python (``runtime.arena``: a
zero-copy arena, the input written at its offset, the results read at
theirs) and its outputs are compared bit for bit with IREE's default build
of the same model; the peak (arena + what IREE allocates itself) must equal
the prediction. For the Cortex-M7 the static library is built only.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, run_tool

from serenity_mlir import api
from serenity_mlir.errors import InputError
from serenity_mlir.runtime.arena import run_arena

BRANCHES = ROOT / "samples" / "branches.onnx"
MOBILENET_INT8 = ROOT / "samples" / "tflm" / "mobilenet_v2_035.int8.tflite"
FUSE_PADDING = "--iree-dispatch-creation-enable-fuse-padding-into-linalg-consumer-ops"

needs_tflite = pytest.mark.skipif(
    importlib.util.find_spec("tosa_converter_for_tflite") is None,
    reason="the tflite extra (tosa-converter-for-tflite) is not installed",
)


def _check_layout(report: dict[str, Any]) -> dict[str, Any]:
    """The arena layout the report gives: inside the arena, 64-aligned."""
    a = report["arena_entry"]
    total = a["arena_bytes"]
    assert total % 64 == 0 and a["alignment"] == 64
    assert report["ram_bytes"] == total
    for io in a["inputs"] + a["outputs"]:
        assert io["offset"] % 64 == 0
        assert 0 <= io["offset"] and io["offset"] + io["bytes"] <= total
    assert a["lower_bound_bytes"] <= total <= a["iree_greedy_bytes"]
    return a


@pytest.fixture(scope="module")
def branches_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], Path]:
    d = tmp_path_factory.mktemp("arena-branches")
    normal = api.compile_model(BRANCHES, d / "normal.vmfb")
    arena = api.compile_model(BRANCHES, d / "arena.vmfb", arena_entry=True)
    return normal, arena, d / "arena.vmfb"


def test_branches_host(branches_builds: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    normal, arena, _vmfb = branches_builds
    a = _check_layout(arena)
    assert arena["outputs_bit_identical"] is True
    assert arena["prediction_exact"] is True
    assert arena["measured_peak_bytes"] == arena["predicted_peak_bytes"] == a["arena_bytes"]
    assert arena["model_matches_iree_slices"] is True
    # The input (32 KiB) is read for the last time before the result is
    # written: both share the same bytes, and the arena is the normal
    # build's peak less the input.
    (x,), (y,) = a["inputs"], a["outputs"]
    assert x["bytes"] == y["bytes"] == 32768
    assert a["input_last_read_step"][0] < a["output_first_write_step"][0]
    assert arena["ram_bytes"] == normal["ram_bytes"] - 32768 < normal["ram_bytes"]
    assert arena["measured_peak_bytes"] < normal["measured_peak_bytes"]


def test_branches_runner_and_undersized_arena(
    branches_builds: tuple[dict[str, Any], dict[str, Any], Path], tmp_path: Path
) -> None:
    _normal, arena, vmfb = branches_builds
    total = arena["arena_entry"]["arena_bytes"]
    r = run_arena(vmfb, seed=5, save_outputs=tmp_path / "out.npz")
    assert r["arena_bytes"] == total and r["calls"] == 2
    assert r["device_bytes_peak"] == total + r["allocator_peak_bytes"]
    with np.load(tmp_path / "out.npz") as z:
        assert z["arr_0"].shape == (1, 8, 32, 32)
    # The input ends at the arena's end here: one byte less cannot hold it.
    with pytest.raises(InputError, match="cannot hold"):
        run_arena(vmfb, arena_bytes=total - 64)


def test_cli_flag(tmp_path: Path) -> None:
    """The console script's --arena-entry (built, not measured: the figures
    are the same as through the API above)."""
    report = tmp_path / "r.json"
    p = run_tool(
        "serenity-mlir", "compile", str(BRANCHES), "-o", str(tmp_path / "b.vmfb"), "--arena-entry",
        "--target", "cortex-m7", "--no-measure", "-q", "--report", str(report),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(report.read_text())
    a = _check_layout(r)
    assert a["arena_bytes"] == 393_216 and r["fits_sram"] is not None
    assert (tmp_path / "b.o").is_file() and (tmp_path / "b.h").is_file()


def test_not_an_arena_module(branches_builds: tuple[dict[str, Any], dict[str, Any], Path], tmp_path: Path) -> None:
    normal = api.compile_model(BRANCHES, tmp_path / "n.vmfb", measure=False)
    assert "arena_entry" not in normal
    with pytest.raises(InputError, match="not an arena entry point"):
        run_arena(tmp_path / "n.vmfb")


_GENERIC = (
    "linalg.generic {{indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], "
    'iterator_types = ["parallel"]}} ins({src} : tensor<64xf32>) outs(%e : tensor<64xf32>) {{\n'
    "  ^bb0(%i: f32, %o: f32):\n    %m = arith.{op} %i, %i : f32\n    linalg.yield %m : f32\n"
    "  }} -> tensor<64xf32>\n"
)


def _two_step_model(path: Path, second_input: bool) -> Path:
    """x -> a = x*x -> b = a+a (or y+y with a second input y); returns a and b."""
    args = "%x: tensor<64xf32>, %y: tensor<64xf32>" if second_input else "%x: tensor<64xf32>"
    path.write_text(
        f"func.func @main({args}) -> (tensor<64xf32>, tensor<64xf32>) {{\n"
        "  %e = tensor.empty() : tensor<64xf32>\n"
        f"  %a = {_GENERIC.format(src='%x', op='mulf')}"
        f"  %b = {_GENERIC.format(src='%y' if second_input else '%a', op='addf')}"
        "  return %a, %b : tensor<64xf32>, tensor<64xf32>\n}\n"
    )
    return path


def test_several_inputs_are_refused(tmp_path: Path) -> None:
    src = _two_step_model(tmp_path / "two_in.mlir", second_input=True)
    with pytest.raises(InputError, match="one tensor input"):
        api.compile_model(src, tmp_path / "two.vmfb", arena_entry=True, measure=False)


def test_several_outputs(tmp_path: Path) -> None:
    src = _two_step_model(tmp_path / "two_out.mlir", second_input=False)
    r = api.compile_model(src, tmp_path / "two_out.vmfb", arena_entry=True)
    a = _check_layout(r)
    assert len(a["outputs"]) == 2
    assert r["outputs_bit_identical"] is True and r["prediction_exact"] is True


@needs_tflite
def test_mobilenet_int8_host(tmp_path: Path) -> None:
    arena = api.compile_model(MOBILENET_INT8, tmp_path / "arena.vmfb", arena_entry=True)
    a = _check_layout(arena)
    assert arena["outputs_bit_identical"] is True
    assert arena["prediction_exact"] is True
    # The 27,648-byte input is read by the first steps only: its bytes go
    # to later tensors, so the arena is below the normal build's RAM
    # (arena + input).
    assert a["input_last_read_step"][0] < a["steps"] // 2
    normal = api.compile_model(MOBILENET_INT8, tmp_path / "normal.vmfb", measure=False)
    assert arena["ram_bytes"] < normal["ram_bytes"]
    # Inputs and results lie inside the arena: an arena one alignment step
    # short still holds them, and IREE's own range check refuses it.
    total = a["arena_bytes"]
    assert max(io["offset"] + io["bytes"] for io in a["inputs"] + a["outputs"]) <= total - 64
    with pytest.raises(InputError, match="failed in IREE's runtime"):
        run_arena(tmp_path / "arena.vmfb", arena_bytes=total - 64)


@needs_tflite
@pytest.mark.parametrize("precision,tflm_head", [("int8", 138_240), ("f32", 552_960)])
def test_mobilenet_cortex_m7(tmp_path: Path, precision: str, tflm_head: int) -> None:
    """MobileNetV2-0.35 for the Cortex-M7 with the padding flag: the arena
    entry point needs TFLite Micro's head (bench/tflm.json), the normal build
    that plus the input (IREE keeps the caller's input for the whole call)."""
    model = ROOT / "samples" / "tflm" / f"mobilenet_v2_035.{precision}.tflite"
    flags = [FUSE_PADDING]
    arena = api.compile_model(model, tmp_path / "arena.vmfb", target="cortex-m7", extra_flags=flags, arena_entry=True)
    _check_layout(arena)
    for suffix in (".o", ".h", ".vmfb"):
        assert (tmp_path / f"arena{suffix}").is_file()
    assert arena["measured_peak_bytes"] is None  # built only
    normal = api.compile_model(model, tmp_path / "normal.vmfb", target="cortex-m7", extra_flags=flags)
    assert arena["ram_bytes"] < normal["ram_bytes"]
    assert arena["ram_bytes"] <= tflm_head
    tflm = json.loads((ROOT / "bench" / "tflm.json").read_text())
    row = next(r for r in tflm["rows"] if r["model"] == f"mobilenet_v2_035.{precision}")
    assert row["tflm_head_bytes"] == tflm_head
    assert normal["ram_bytes"] - arena["ram_bytes"] >= row["input_bytes"] - 64 * 2

