"""bench-tflm's arena-entry table, its summary and the flag-study carry-over,
on synthetic rows (no compile, no TFLite Micro)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serenity_mlir.backend.flags import CANDIDATE_FLAGS
from serenity_mlir.bench.tflm import (
    CARRIED,
    arena_summary,
    arena_table,
    carry_flag_study,
    previous_rows,
    report_text,
)


def _row(model: str, head: int, ours: int, arena: int, patched: int | None, **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "model": model,
        "target": "cortex-m7",
        "tflm_head_bytes": head,
        "tflm_tail_bytes": 1_000,
        "ram_bytes": ours,
        "ram_bytes_memory_flags": ours,
        "ram_bytes_no_memory_flags": ours,
        "iree_default_ram_bytes": ours * 2,
        "iree_memory_flags_ram_bytes": ours * 2,
        "input_bytes": 100,
        "output_bytes": 10,
        "i32_results": 0,
        "i32_largest_bytes": 0,
        "outputs_match": True,
        "outputs_max_lsb": 0,
        "outputs_differing": 0,
        "compile_seconds": 10.0,
        "iree_compile_seconds": 4.0,
        "compile_over_iree": 2.5,
        "tflm_over_ours": round(head / ours, 3),
        "ram_bytes_arena_entry": arena,
        "compile_seconds_arena_entry": 11.0,
        "arena_entry_bit_identical": True,
        "patches": {"mode": "auto", "grid": None, "candidates": 0, "reason": "no spatial stage"},
        "patch_mac_overhead": 0.0,
    }
    if patched is not None:
        r["ram_bytes_arena_entry_patches"] = patched
    r.update(extra)
    return r


ROWS = [
    # at TFLM's head with the arena entry; a 2x2 grid halves it
    _row(
        "a.f32",
        1_000,
        1_200,
        1_000,
        500,
        patches={"mode": "auto", "grid": "2x2", "split": 3, "candidates": 40},
        patch_mac_overhead=0.125,
    ),
    # below TFLM's head; patches chose none
    _row("b.int8", 400, 500, 200, 200, compile_over_iree=8.0, compile_seconds=40.0, iree_compile_seconds=5.0),
    # above TFLM's head even with the arena entry; the patched build failed
    _row("c.f32", 100, 300, 125, None, arena_entry_bit_identical=False, arena_entry_patches_error="boom", patches=None),
]


def test_arena_table_rows() -> None:
    md = arena_table(ROWS)
    lines = md.splitlines()
    assert lines[0].startswith("| model | TFLM head | ours (`ram_bytes`) | ours `--arena-entry` |")
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") == 12
    assert (
        "| a.f32 | 1,000 | 1,200 | 1,000 | 1.00x | 500 | 2.00x | 2x2 at split 3 (+12% MACs) | bit-identical "
        "| 10.0 / 11.0 / 4.0 | 2.50x |"
    ) in lines
    assert "| b.int8 | 400 | 500 | 200 | 2.00x | 200 | 2.00x | none (no stage) |" in md
    assert "| c.f32 | 100 | 300 | 125 | 0.80x | n/a | n/a | error | DIFFER |" in md


def test_arena_summary_geomeans_counts_and_seconds() -> None:
    s = arena_summary(ROWS)
    # arena entry: ratios 1.0, 2.0, 0.8 -> geomean 1.6 ** (1/3) = 1.170; a and b at most TFLM's head
    assert "With `--arena-entry`: geomean TFLM head / ours 1.170x over 3 models, ours <= TFLM's head on 2 of 3." in s
    # with patches: only a and b built (2.0, 2.0)
    assert "With `--arena-entry --patches auto`: geomean TFLM head / ours 2.000x over 2 models" in s
    assert "on 2 of 2." in s
    # b: no stage (no candidates); c: its build failed
    assert "Patches applied on 1 of 3 (no patchable stage at the input on 1; the build failed on 1)." in s
    assert "bit-identical with our plain host build on 2 of 3." in s
    # f32: a and c (10 + 10 s vs 4 + 4 s, 2.5x each); int8: b alone
    assert "f32 20.0 s vs 8.0 s over 2 models (geomean 2.50x)" in s
    assert "int8 40.0 s vs 5.0 s over 1 models (geomean 8.00x)" in s


def test_report_has_both_tables_and_skips_failed_rows() -> None:
    rows = [*ROWS, {"model": "d.f32", "target": "cortex-m7", "error": "IREE failed"}]
    text = report_text(rows)
    assert text.count("| model | TFLM head |") == 2
    assert "| d.f32 | error: IREE failed |" in text
    assert "| d.f32 | 1" not in text  # not in the arena table
    assert CARRIED not in text
    assert arena_table([rows[-1]]) == ""


def test_flag_study_carried_from_the_previous_run(tmp_path: Path) -> None:
    study = {**{f: 10 for f in CANDIDATE_FLAGS}, "default": 12}
    old = tmp_path / "tflm.json"
    old.write_text(json.dumps({"rows": [{"model": "a.f32", "flag_study": study}, {"model": "b.int8"}]}))
    previous = previous_rows(old)
    assert set(previous) == {"a.f32", "b.int8"}
    assert previous_rows(tmp_path / "missing.json") == {}
    row: dict[str, Any] = {"model": "a.f32"}
    carry_flag_study(row, previous)
    assert row["flag_study"] == study and row["flag_study_from_previous_run"] is True
    # nothing to carry: no study before, no row before, or a study measured now
    for r in ({"model": "b.int8"}, {"model": "new.f32"}):
        carry_flag_study(r, previous)
        assert "flag_study" not in r
    fresh: dict[str, Any] = {"model": "a.f32", "flag_study": {"default": 9}}
    carry_flag_study(fresh, previous)
    assert fresh["flag_study"] == {"default": 9} and "flag_study_from_previous_run" not in fresh
    del row["model"]
    assert CARRIED in report_text([_row("a.f32", 1_000, 1_200, 1_000, 500, **row)])
