"""``--memory-flags``: IREE's memory flags (fused convolution padding) go into
our build of channels-last TFLite models by default, never into ONNX builds
(IREE's code generation fails with them on padded NCHW depthwise
convolutions), and a build that fails with them is rebuilt without them. With
the real importers and IREE."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

from serenity_mlir import api
from serenity_mlir.backend.flags import MEMORY_FLAGS, memory_flags_for
from serenity_mlir.errors import CompilerToolError, InputError
from serenity_mlir.pipeline import driver

TFLITE = ROOT / "samples" / "tflm" / "resnet_small.int8.tflite"
# Its depthwise convolutions are padded and channels-first: IREE's CPU code
# generation fails on them with the padding flag.
ONNX_DEPTHWISE = ROOT / "samples" / "mobilenetv2.onnx"


def test_auto_means_tflite_only() -> None:
    assert memory_flags_for("auto", "tflite") == MEMORY_FLAGS
    assert memory_flags_for("auto", "onnx") == ()
    assert memory_flags_for("auto", "mlir") == ()
    assert memory_flags_for("on", "onnx") == MEMORY_FLAGS
    assert memory_flags_for("off", "tflite") == ()


def test_tflite_default_uses_the_flags_and_lowers_the_arena(tmp_path: Path) -> None:
    """Measured in bench/tflm.md: the flags take ResNet int8's arena from
    218,186 B to 211,978 B on Cortex-M7; the default must be the lower."""
    auto = api.compile_model(TFLITE, tmp_path / "auto", target="cortex-m7", measure=False)
    off = api.compile_model(TFLITE, tmp_path / "off", target="cortex-m7", measure=False, memory_flags="off")
    assert auto["memory_flags"] == list(MEMORY_FLAGS)
    assert off["memory_flags"] == []
    assert auto["ram_bytes"] < off["ram_bytes"]


def test_onnx_default_has_no_flags(tmp_path: Path) -> None:
    r = api.compile_model(ROOT / "samples" / "branches.onnx", tmp_path / "m.vmfb", measure=False)
    assert r["memory_flags"] == []


def test_on_fails_where_iree_fails(tmp_path: Path) -> None:
    with pytest.raises(CompilerToolError, match="failed"):
        api.compile_model(ONNX_DEPTHWISE, tmp_path / "m.vmfb", measure=False, memory_flags="on")
    assert not (tmp_path / "m.vmfb").exists()


def test_auto_rebuilds_without_the_flags_when_iree_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An auto choice that IREE cannot compile costs a rebuild, not the job:
    the model is taken for one the flags suit, IREE really fails, and the
    module is built and checked without them, saying so."""
    monkeypatch.setattr(driver, "memory_flags_for", lambda mode, kind: MEMORY_FLAGS)
    r = api.compile_model(ONNX_DEPTHWISE, tmp_path / "m.vmfb")
    assert r["memory_flags"] == []
    assert any("IREE failed with the memory flags" in n for n in r["notes"])
    assert r["outputs_bit_identical"] is True
    assert r["prediction_exact"] is True
    assert (tmp_path / "m.vmfb").is_file()


def test_bad_mode_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--memory-flags must be one of auto, on, off"):
        api.compile_model(TFLITE, tmp_path / "m", target="cortex-m7", memory_flags="yes")
