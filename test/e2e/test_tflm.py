"""TFLite Micro's own arena and outputs (``serenity_mlir.runtime.tflm``), with
the real ``tflite-micro`` interpreter; skipped without the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from serenity_mlir.errors import InputError

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install tflite-micro)")

from serenity_mlir.runtime.tflm import run_tflm, seeded_inputs  # noqa: E402

BRANCHES = ROOT / "samples" / "branches.tflite"


def _branches_reference(x: np.ndarray) -> np.ndarray:
    """samples/make_tflite.py's network in numpy, from the same seeded weights."""
    rng = np.random.default_rng(0)

    def w(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)

    params = [(w(1, 1, 8, 64), w(64), w(1, 1, 64, 8), w(8)) for _ in range(4)]
    out = np.zeros((1, 32, 32, 8), np.float64)
    for w1, b1, w2, b2 in params:
        h = np.maximum(x.astype(np.float64) @ w1[0, 0] + b1, 0.0)
        out += h @ w2[0, 0] + b2
    return out


def test_branches_arena_and_outputs() -> None:
    r = run_tflm(BRANCHES, seed=3)
    # The planner's head: the 1x32x32x8 input and output (32 KiB each) and two
    # branches' 1x32x32x64 intermediates (256 KiB) live together, plus ...
    assert r.arena_head_bytes == 393_216
    assert r.arena_tail_bytes > 0
    assert r.arena_total_bytes == r.arena_head_bytes + r.arena_tail_bytes
    assert sum(n for _, n in r.tail_parts) <= r.arena_tail_bytes
    assert len(r.inputs) == 1 and r.inputs[0].shape == (1, 32, 32, 8)
    assert float(r.inputs[0].min()) >= -1.0 and float(r.inputs[0].max()) <= 1.0
    (out,) = r.outputs
    assert out.shape == (1, 32, 32, 8) and out.dtype == np.float32
    ref = _branches_reference(r.inputs[0])
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-5


def test_given_inputs_are_used_and_seeds_differ() -> None:
    a = run_tflm(BRANCHES, seed=0)
    b = run_tflm(BRANCHES, inputs=[a.inputs[0]])
    assert np.array_equal(a.outputs[0], b.outputs[0])
    c = run_tflm(BRANCHES, seed=1)
    assert not np.array_equal(a.outputs[0], c.outputs[0])


def test_int8_inputs_cover_the_type() -> None:
    (x,) = seeded_inputs([{"dtype": np.int8, "shape": np.array([1, 64, 64, 3])}], seed=0)
    assert x.dtype == np.int8 and int(x.min()) == -128 and int(x.max()) == 127


def test_int8_model_runs() -> None:
    model = ROOT / "samples" / "tflm" / "mobilenet_v2_035.int8.tflite"
    r = run_tflm(model)
    assert r.inputs[0].dtype == np.int8 and r.outputs[0].dtype == np.int8
    # An int8 model's activations take a byte each: its head is a quarter of
    # the float model's or less (the same network, the same plan).
    f = run_tflm(model.with_name("mobilenet_v2_035.f32.tflite"))
    assert r.arena_head_bytes * 4 <= f.arena_head_bytes * 1.01


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        run_tflm(tmp_path / "missing.tflite")
    with pytest.raises(InputError, match="takes 1 inputs, 2 given"):
        run_tflm(BRANCHES, inputs=[np.zeros((1, 32, 32, 8), np.float32)] * 2)
    with pytest.raises(InputError, match="cannot load|failed to run"):
        run_tflm(BRANCHES, arena_size=1000)


def test_compare_outputs_counts_lsb_and_relative_error() -> None:
    from serenity_mlir.bench.tflm import compare_outputs

    a = np.array([[1, -128, 127, 5]], np.int8)
    b = np.array([[1, -127, 127, 3]], np.int8)
    r = compare_outputs([a], [b])
    assert r == {"outputs_max_lsb": 2, "outputs_differing": 2, "outputs_match": False}
    assert compare_outputs([a], [a])["outputs_match"] is True
    x = np.ones((4,), np.float32)
    r = compare_outputs([x * np.float32(1 + 2e-6)], [x])
    assert r["outputs_match"] is True and 1e-6 < r["outputs_max_rel_error"] < 3e-6
    assert compare_outputs([x * 1.001], [x])["outputs_match"] is False
    assert compare_outputs([x, x], [x])["outputs_match"] is False


def test_bench_tflm_on_the_sample(tmp_path: Path) -> None:
    """bench-tflm end to end on the small sample: TFLM's head, our Cortex-M7
    RAM counted alike, IREE's builds, outputs against TFLM."""
    import json

    from serenity_mlir.backend.flags import MEMORY_FLAGS
    from serenity_mlir.bench.tflm import main

    assert main([str(BRANCHES), "--out", str(tmp_path), "-q"]) == 0
    (row,) = json.loads((tmp_path / "tflm.json").read_text())["rows"]
    assert row["tflm_head_bytes"] == 393_216
    assert row["input_bytes"] == 32 * 32 * 8 * 4
    # ours counted as TFLM's head is: the arena (results included) + the input
    assert row["ram_bytes"] == row["iree_arena_bytes"] + row["input_bytes"]
    assert row["ram_bytes"] <= row["iree_default_ram_bytes"]
    assert row["outputs_match"] is True and row["outputs_max_rel_error"] <= 1e-5
    assert row["i32_results"] == 0
    assert row["memory_flags_bit_identical_ours"] is True
    # Our defaults add the memory flags to a TFLite model, and are never
    # above either IREE baseline or our own build without the flags.
    assert row["memory_flags"] == list(MEMORY_FLAGS)
    assert row["ram_bytes"] == row["ram_bytes_memory_flags"]
    assert row["ram_bytes"] <= row["ram_bytes_no_memory_flags"]
    assert row["ram_bytes"] <= row["iree_memory_flags_ram_bytes"]
    # With the arena entry the input's bytes are reused once read: TFLM's
    # head exactly, at the layout's lower bound, outputs as the plain build's.
    assert row["ram_bytes_arena_entry"] == row["arena_lower_bound_bytes"] == 393_216
    assert row["ram_bytes_arena_entry"] < row["ram_bytes"]
    assert row["tflm_over_ours_arena_entry"] == 1.0
    assert row["arena_entry_bit_identical"] is True
    # --patches auto on top: what the stage chose is recorded (a grid, or why
    # none); with none the build is the arena entry's
    assert row["patches"]["mode"] == "auto" and (row["patches"]["grid"] or row["patches"]["reason"])
    if not row["patches"]["grid"]:
        assert row["ram_bytes_arena_entry_patches"] == row["ram_bytes_arena_entry"]
    assert row["iree_compile_seconds"] > 0 and row["compile_over_iree"] > 0
    md = (tmp_path / "tflm.md").read_text()
    assert f"| branches | 393,216 | {row['tflm_tail_bytes']:,} | {row['ram_bytes']:,} |" in md
    assert f"| branches | 393,216 | {row['ram_bytes']:,} | 393,216 | 1.00x |" in md
