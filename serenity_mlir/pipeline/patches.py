"""Patch-based inference in a compile: choose the split op and the grid, and
write the patched module the rest of the compile builds.

The model is lowered to linalg on tensors (``iree-compile
--compile-to=input``, every frontend ends up there) and its input stage is
patched by the ``serenity-patch`` pass (:mod:`serenity_mlir.rewrite.patches`).

``auto``: every layer of the stage as the split op and every grid from 1x1
to 8x8 is planned (windows and MACs, no IR written); candidates above the
MAC-overhead cap (``overhead``: 0.2 = at most 20% more MACs than the patched
ops computed once) are dropped, the rest ranked by a quick estimate of the
stage's live bytes (:func:`serenity_mlir.rewrite.patch_plan.estimate_peak`).
The best few (``finalists`` - 1) and the unpatched module are then costed
the way :mod:`serenity_mlir.pipeline.rewrite` costs its variants: lowered to
the flow phase, scheduled, their order's slab placed by the placement's
cheap part, plus inputs and outputs (the memory model; nothing is compiled
to a module). The estimate sees the stage only: when the best costed peak
lies ``PATCH_ESTIMATE_SPREAD`` times above a coarser grid's estimate, the
graph peaks outside the stage, and the coarsest such grid is costed too
(AlexNet: 1x3 peaks as low as 7x7, with 3 patches to compile and run
instead of 49). Among the costed within ``PATCH_NEAR_BEST`` of the lowest, the
fewest patches win, if at least ``min_gain`` below the unpatched graph;
otherwise the record says why and the original module stays.

``RxC`` or ``RxC@N``: that grid (at split op N, or the split the quick
estimate prefers) is applied without costing.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from serenity_mlir.analysis import find_body_function
from serenity_mlir.errors import InputError
from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.passes.patch import SerenityPatch, parse_grid
from serenity_mlir.passes.schedule import ScheduleOutcome
from serenity_mlir.pipeline.lower import lower_linalg_to_flow, lower_to_linalg
from serenity_mlir.pipeline.rewrite import Variant
from serenity_mlir.pipeline.schedule import schedule_flow_file
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.rewrite.patch_plan import Plan, estimate_peak, plan
from serenity_mlir.rewrite.patches import NotPatchable, find_stage
from serenity_mlir.settings import (
    PATCH_ESTIMATE_SPREAD,
    PATCH_MIN_GAIN,
    PATCH_NEAR_BEST,
    PATCH_OVERHEAD,
    PATCH_STAGE_SHARE,
    ScheduleSettings,
)
from serenity_mlir.targets import Target

MAX_GRID = 8


@dataclass(frozen=True)
class PatchRecord:
    """What the patch stage chose (``grid`` None: the module is left as it was)."""

    mode: str  # "auto", "RxC" or "RxC@N"
    file: Path  # the linalg module to compile: patched, or the unpatched one
    grid: str | None = None  # "RxC"
    split: int | None = None  # the split op: its index among the stage's layers
    split_op: str | None = None  # its op name and location
    stage_ops: tuple[str, ...] = ()  # the ops patched, block order
    macs: int = 0  # MACs of the patched ops computed once
    patched_macs: int = 0  # over all patches (halos recomputed)
    patch_mac_overhead: float = 0.0  # patched_macs / macs - 1
    predicted_peak_bytes: int | None = None  # the chosen graph, memory model (auto only)
    baseline_predicted_peak_bytes: int | None = None  # the unpatched graph, same model (auto only)
    candidates: int = 0  # (split, grid) pairs planned within the MAC cap
    costed: int = 0  # of those, lowered and scheduled
    reason: str = ""  # why nothing was patched
    seconds: float = 0.0
    flow_file: Path | None = None  # auto: ``file`` lowered to the flow phase (not scheduled)
    # auto, when it scheduled the unpatched graph itself: that schedule and
    # the file it wrote (the same the chain would compute for an unpatched
    # compile, which then takes it instead of scheduling again).
    baseline: tuple[ScheduleOutcome, Path] | None = field(default=None, compare=False, repr=False)

    @property
    def applied(self) -> bool:
        return self.grid is not None

    def report_fields(self) -> dict[str, Any]:
        """The report's ``patches``, ``macs`` and ``patch_mac_overhead``; the
        work folder's files are left out (they are gone after the compile)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("file", "flow_file", "baseline")}
        d["stage_ops"] = list(self.stage_ops)
        d["patch_mac_overhead"] = round(self.patch_mac_overhead, 6)
        d["seconds"] = round(self.seconds, 3)
        return {"patches": d, "macs": self.macs, "patch_mac_overhead": d["patch_mac_overhead"]}


def parse_mode(text: str) -> tuple[tuple[int, int] | None, str]:
    """``auto`` -> (None, "auto"); ``RxC`` -> ((R, C), "auto"); ``RxC@N`` -> ((R, C), "N")."""
    if text == "auto":
        return None, "auto"
    grid_text, at, split = text.partition("@")
    grid = parse_grid(grid_text)
    if at and not split.isdigit():
        raise InputError(f"--patches {text}: the split op after '@' must be a layer number")
    return grid, split if at else "auto"


def patch_stage(
    input_file: Path,
    work: WorkFolder,
    target: Target,
    settings: ScheduleSettings,
    mode: str = "auto",
    overhead: float = PATCH_OVERHEAD,
    extra_flags: list[str] | None = None,
    log: Callable[[str], None] | None = None,
    finalists: int = 3,
    function: str | None = None,
    baseline_peak: int | None = None,
    baseline_flow: Path | None = None,
    min_gain: float = PATCH_MIN_GAIN,
) -> PatchRecord:
    """Lowers ``input_file`` (the imported model) to linalg and patches its
    input stage as ``mode`` says (see the module doc); returns the record,
    whose ``file`` is what the compile continues with (a linalg module after
    IREE's input phase: ``iree-compile --compile-from=input`` reads it) and,
    for ``auto``, ``flow_file`` the same module already lowered to the flow
    phase. ``baseline_peak``: the unpatched graph's predicted peak when the
    compile has scheduled and placed it already (it is not costed again; a
    placed peak is at most the cost used here, so the comparison only
    favours the unpatched graph); ``baseline_flow``: the unpatched model
    already lowered to the flow phase (the compile's own), costed instead
    of lowering it again. A patching is taken only when its peak is at
    least ``min_gain`` below the unpatched one; among the costed ones within
    ``PATCH_NEAR_BEST`` of the lowest, the fewest patches win (each patch
    is dispatches to compile and to run)."""
    start = time.monotonic()
    grid, split = parse_mode(mode)
    if not (overhead >= 0 and overhead < float("inf")):
        raise InputError(f"--patch-overhead must be a fraction >= 0, got {overhead:g}")
    # its own file (the rewrite search writes work.linalg), with the model's
    # locations (ONNX node names), which name the split op in the record
    flags = [*(extra_flags or []), "--mlir-print-debuginfo"]
    linalg = lower_to_linalg(input_file, work.variant("patch_input", "linalg"), target, flags)
    if grid is not None:
        return _fixed(linalg, work, mode, grid, split, function, start)
    module = mlir_io.load_module(linalg, mlir_io.new_context())
    _, func = find_body_function(module, function)
    try:
        stage = find_stage(func)
    except NotPatchable as e:
        return PatchRecord(mode, linalg, reason=str(e), seconds=time.monotonic() - start)
    ranked = _candidates(stage, overhead)
    if not ranked:
        return PatchRecord(mode, linalg, reason=f"no split and grid within {overhead:.0%} more MACs",
                           seconds=time.monotonic() - start)  # fmt: skip
    picked: list[tuple[int, tuple[int, int]]] = []  # (split, grid)
    seen: set[int] = set()
    for est, p in ranked:
        if est in seen:  # another grid with the same estimate: the cheapest in MACs came first
            continue
        seen.add(est)
        picked.append((p.split, p.grid))
        if len(picked) >= max(1, finalists - 1):  # the last place is kept for a coarser grid (below)
            break
    plans = {(s, g): p.describe() | {"estimate": est} for est, p in ranked for s, g in [(p.split, p.grid)]}
    stage_peak = _stage_estimate(stage)
    # (patches, estimate, MACs, split, grid): what the coarser round below chooses from
    light = [(p.grid[0] * p.grid[1], est, p.patched_macs, p.split, p.grid) for est, p in ranked]
    del module, func, stage, ranked

    baseline: tuple[ScheduleOutcome, Path] | None = None
    if baseline_peak is None:
        if baseline_flow is not None:
            v0 = _cost_flow(baseline_flow, work, settings, "patch_none")
            baseline, baseline_peak = (v0.outcome, v0.flow_file), v0.predicted_peak_bytes
        else:
            baseline_peak = _cost(linalg, work, target, settings, extra_flags, "patch_none").predicted_peak_bytes
        if log is not None:
            log(f"patches: unpatched graph {baseline_peak:,} B predicted")
    if stage_peak < baseline_peak * PATCH_STAGE_SHARE:
        # Patches only lower what the stage holds; the rest of the graph
        # keeps its peak. (The estimate runs low, never this far: on the zoo
        # it is 0.55-1.5x the graph's peak where the stage holds it.)
        return PatchRecord(
            mode, linalg, candidates=len(plans), baseline_predicted_peak_bytes=baseline_peak,
            reason=f"the peak is past the input stage (the stage holds about {stage_peak:,} B of the unpatched "
            f"graph's {baseline_peak:,} B)",
            seconds=time.monotonic() - start, baseline=baseline,
        )  # fmt: skip
    costed = _cost_plans(picked, linalg, work, target, settings, extra_flags, function, log)
    # A coarser grid, when the best costed peak lies well above its estimate
    # (the peak is outside the stage, where patches change nothing): fewer
    # patches for the same peak.
    lowest = min(c[0] for c in costed)
    fewest = min(c[1] for c in costed)
    coarser = [c for c in light if c[0] < fewest and c[1] * PATCH_ESTIMATE_SPREAD <= lowest]
    if coarser:
        _, _, _, split_c, grid_c = min(coarser, key=lambda c: c[:3])
        picked.append((split_c, grid_c))
        costed += _cost_plans([(split_c, grid_c)], linalg, work, target, settings, extra_flags, function, log)
    lowest = min(c[0] for c in costed)
    # Fewest patches among the near-best (then the lowest peak, then the estimate's rank).
    best = min((c for c in costed if c[0] <= lowest * (1 + PATCH_NEAR_BEST)), key=lambda c: (c[1], c[0]))
    seconds = time.monotonic() - start
    if best[0] >= baseline_peak:
        return PatchRecord(
            mode, linalg, candidates=len(plans), costed=len(picked), baseline_predicted_peak_bytes=baseline_peak,
            reason=f"no patching costed below the unpatched graph ({best[0]:,} B >= {baseline_peak:,} B)",
            seconds=seconds, baseline=baseline,
        )  # fmt: skip
    if best[0] > baseline_peak * (1 - min_gain):
        return PatchRecord(
            mode, linalg, candidates=len(plans), costed=len(picked), baseline_predicted_peak_bytes=baseline_peak,
            predicted_peak_bytes=best[0],
            reason=f"the best patching ({best[0]:,} B) is less than {min_gain:.0%} below the unpatched graph "
            f"({baseline_peak:,} B): not worth its extra dispatches",
            seconds=seconds, baseline=baseline,
        )  # fmt: skip
    peak, _, src, key, flow = best
    d = plans[key]
    return PatchRecord(
        mode, src, grid=d["grid"], split=d["split"], split_op=d["split_op"], stage_ops=tuple(d["stage_ops"]),
        macs=d["macs"], patched_macs=d["patched_macs"], patch_mac_overhead=d["patch_mac_overhead"],
        predicted_peak_bytes=peak, baseline_predicted_peak_bytes=baseline_peak,
        candidates=len(plans), costed=len(picked), seconds=seconds, flow_file=flow,
    )  # fmt: skip


_Costed = tuple[int, int, Path, tuple[int, tuple[int, int]], Path]  # peak, patches, linalg, (split, grid), flow


def _cost_plans(
    plans: list[tuple[int, tuple[int, int]]],
    linalg: Path,
    work: WorkFolder,
    target: Target,
    settings: ScheduleSettings,
    extra_flags: list[str] | None,
    function: str | None,
    log: Callable[[str], None] | None,
) -> list[_Costed]:
    """Writes each (split, grid)'s patched module, lowers them to the flow phase side
    by side (separate iree-compile processes; if this thread is interrupted,
    the processes already started are killed, so the pool's threads end at
    once), then costs each with the memory model in this process."""
    tags = {(s, g): f"patch_s{s}_{g[0]}x{g[1]}" for s, g in plans}
    srcs = {
        k: _write_patched(linalg, work.variant(tag, "linalg"), k[1], str(k[0]), function) for k, tag in tags.items()
    }
    procs: list[subprocess.Popen[str]] = []
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(plans), os.cpu_count() or 1)))
    try:
        futures = {
            k: pool.submit(_lower, srcs[k], work, tag, target, extra_flags, procs.append) for k, tag in tags.items()
        }
        flows = {k: f.result() for k, f in futures.items()}
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.kill()
        raise
    finally:
        pool.shutdown(wait=True)
    costed: list[_Costed] = []
    for (s, g), tag in tags.items():
        v = _cost_flow(flows[s, g], work, settings, tag)
        if log is not None:
            log(f"patches: split {s}, grid {g[0]}x{g[1]}: {v.predicted_peak_bytes:,} B predicted")
        costed.append((v.predicted_peak_bytes, g[0] * g[1], srcs[s, g], (s, g), flows[s, g]))
    return costed


def _lower(
    src: Path,
    work: WorkFolder,
    tag: str,
    target: Target,
    extra_flags: list[str] | None,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Path:
    """A patched (or the unpatched) linalg module lowered to the flow phase
    in the work folder, under ``tag``."""
    what = f"lowering {tag} to the flow phase"
    out = work.variant(tag, "flow")
    return lower_linalg_to_flow(src, out, target, what=what, extra_flags=extra_flags, started=started)


def _stage_estimate(stage: Any) -> int:
    """The unpatched stage's worst point (the estimate of a 1x1 grid at its
    deepest split: every layer whole)."""
    peak = 0
    for split in range(len(stage.layers)):
        try:
            peak = max(peak, estimate_peak(plan(stage, split, (1, 1))))
        except NotPatchable:
            continue
    return peak


def _candidates(stage: Any, overhead: float) -> list[tuple[int, Plan]]:
    """(estimate, plan) of every split and grid 1x1..8x8 within the MAC cap,
    lowest estimate first (then fewest MACs, then fewest patches); 1x1 is
    the unpatched stage and is not a candidate."""
    out = []
    for split in range(len(stage.layers)):
        for rows in range(1, MAX_GRID + 1):
            for cols in range(1, MAX_GRID + 1):
                if rows == cols == 1:
                    continue
                try:
                    p = plan(stage, split, (rows, cols))
                except NotPatchable:
                    continue
                if p.mac_overhead > overhead + 1e-12:
                    continue
                out.append((estimate_peak(p), p))
    out.sort(key=lambda e: (e[0], e[1].patched_macs, e[1].grid[0] * e[1].grid[1], e[1].split))
    return out


def _write_patched(linalg: Path, out: Path, grid: tuple[int, int], split: str, function: str | None) -> Path:
    module = mlir_io.load_module(linalg, mlir_io.new_context())
    outcome = SerenityPatch(grid=f"{grid[0]}x{grid[1]}", split=split, function=function).apply(module)
    if not outcome.applied:
        raise NotPatchable(outcome.reason)
    atomic_write(out, mlir_io.module_to_text(module, debuginfo=True))
    return out


def _fixed(
    linalg: Path, work: WorkFolder, mode: str, grid: tuple[int, int], split: str, function: str | None, start: float
) -> PatchRecord:
    tag = f"patch_{grid[0]}x{grid[1]}"
    module = mlir_io.load_module(linalg, mlir_io.new_context())
    outcome = SerenityPatch(grid=f"{grid[0]}x{grid[1]}", split=split, function=function).apply(module)
    if not outcome.applied:
        return PatchRecord(mode, linalg, reason=outcome.reason, seconds=time.monotonic() - start)
    out = work.variant(tag, "linalg")
    atomic_write(out, mlir_io.module_to_text(module, debuginfo=True))
    d = outcome.description
    return PatchRecord(
        mode, out, grid=d["grid"], split=d["split"], split_op=d["split_op"], stage_ops=tuple(d["stage_ops"]),
        macs=d["macs"], patched_macs=d["patched_macs"], patch_mac_overhead=d["patch_mac_overhead"],
        seconds=time.monotonic() - start,
    )  # fmt: skip


def _cost_flow(flow: Path, work: WorkFolder, settings: ScheduleSettings, tag: str) -> Variant:
    """The memory model's cost of a flow module: scheduled, placed by the
    placement's cheap part (as the rewrite search)."""
    sched = work.variant(tag, "scheduled.flow")
    outcome = schedule_flow_file(flow, sched, settings, pack_search=False)
    return Variant.of((), sched, outcome, placed=True)


def _cost(
    src: Path, work: WorkFolder, target: Target, settings: ScheduleSettings, extra_flags: list[str] | None, tag: str
) -> Variant:
    """The memory model's cost of a linalg module: lowered to flow, then :func:`_cost_flow`."""
    return _cost_flow(_lower(src, work, tag, target, extra_flags), work, settings, tag)
