"""Rewrite-then-schedule: keep a graph rewrite only where it lowers the peak.

A partitioned convolution frees the concat's inputs early, but its
accumulator lives from the first partial convolution to the last, and IREE's
fusion decides what the dispatches finally are. Whether a site pays off is
therefore measured on the real thing: the linalg module (after IREE's
``input`` phase) is rewritten, lowered to the flow phase, scheduled, and its
predicted peak (IREE's slab packer simulated on the optimal order, plus
inputs and outputs) compared with the best so far.

Sites are decided together, then one at a time. The peak is a maximum over
the whole run, so one site alone often cannot lower it: a network of repeated
cells peaks in every cell alike, and only rewriting all of them helps. So the
driver schedules the original graph and the graph with every rewritable site
rewritten, then drops the sites one by one (in program order) from the full
set, keeping a site out whenever its removal does not raise the predicted
peak (fewer rewrites for the same peak). A site is applied when it survives
that; the result is kept only when it beats the original graph strictly
(ties keep the original). That is at most ``n + 2`` lowerings and schedules for ``n``
rewritable sites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.ir.tools import iree_compile
from serenity_mlir.passes.rewrite import SerenityRewrite, find_module_sites
from serenity_mlir.passes.schedule import ScheduleOutcome, SerenitySchedule
from serenity_mlir.targets import Target


@dataclass
class Variant:
    """One rewritten (or original) graph, lowered and scheduled."""

    sites: tuple[int, ...]
    flow_file: Path  # the scheduled flow-level file
    outcome: ScheduleOutcome
    predicted_peak_bytes: int
    # The scheduled module: ``outcome.body`` holds handles to its ops, which
    # must not outlive it (the bindings do not keep it alive for them).
    module: Any = None


@dataclass
class RewriteChoice:
    """The variant kept, the baseline, and the verdict per site."""

    best: Variant
    baseline: Variant
    sites: list[dict[str, Any]] = field(default_factory=list)
    all_sites: Variant | None = None  # every rewritable site rewritten (None: there is none)

    @property
    def applied(self) -> tuple[int, ...]:
        return self.best.sites

    def report_fields(self) -> dict[str, Any]:
        return {
            "rewrite_sites_found": len(self.sites),
            "rewrite_sites_rewritable": sum(1 for s in self.sites if s["applicable"]),
            "rewrite_sites_applied": len(self.best.sites),
            "rewrite_predicted_peak_bytes": self.best.predicted_peak_bytes,
            "rewrite_baseline_predicted_peak_bytes": self.baseline.predicted_peak_bytes,
            "rewrite_decision": "all rewritable sites, then each site dropped unless that raises the peak",
            "rewrite_all_sites_predicted_peak_bytes": self.all_sites.predicted_peak_bytes if self.all_sites else None,
            "rewrite_sites": self.sites,
        }


def to_linalg(input_file: Path, target: Target, workdir: Path, extra_flags: list[str] | None = None) -> Path:
    """``iree-compile --compile-to=input``: the linalg-on-tensors module the
    rewrite works on (every frontend ends up here)."""
    out = workdir / "model.linalg.mlir"
    iree_compile(
        [str(input_file), "--compile-to=input", *target.flag_list(), *(extra_flags or []), "-o", str(out)],
        what="lowering to linalg (iree-compile --compile-to=input)",
    )
    return out


def rewrite_then_schedule(
    input_file: Path,
    target: Target,
    workdir: Path,
    scheduler: str,
    function: str | None,
    time_limit: float | None,
    extra_flags: list[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> RewriteChoice:
    """Schedules the original and the rewritten graphs; see the module doc.
    ``log`` gets a line per graph evaluated (this takes a lowering and a
    schedule each, minutes on a large network)."""
    linalg = to_linalg(input_file, target, workdir, extra_flags)
    sites = [s.describe() for s in find_module_sites(mlir_io.load_module(linalg, mlir_io.new_context()))]

    def evaluate(chosen: tuple[int, ...]) -> Variant:
        tag = "rw" + "_".join(map(str, chosen)) if chosen else "rw-none"
        src = linalg
        if chosen:
            module = mlir_io.load_module(linalg, mlir_io.new_context())
            SerenityRewrite(sites=chosen).apply(module)
            src = workdir / f"model.{tag}.linalg.mlir"
            atomic_write(src, mlir_io.module_to_text(module, debuginfo=True))
        flow = workdir / f"model.{tag}.flow.mlir"
        iree_compile(
            [
                str(src),
                "--compile-from=input",
                "--compile-to=flow",
                *target.flag_list(),
                *(extra_flags or []),
                "-o",
                str(flow),
            ],
            what=f"lowering the rewritten module (sites {list(chosen)}) to the flow phase",
        )
        sched_file = workdir / f"model.{tag}.scheduled.flow.mlir"
        scheduled = mlir_io.load_module(flow, mlir_io.new_context())
        outcome = SerenitySchedule(scheduler=scheduler, function=function, time_limit=time_limit).apply(scheduled)
        atomic_write(sched_file, mlir_io.module_to_text(scheduled))
        slab = outcome.body.predict(outcome.result.order)
        variant = Variant(chosen, sched_file, outcome, slab.slab_bytes + outcome.body.fixed_bytes, scheduled)
        if log is not None:
            what = f"sites {list(chosen)}" if chosen else "the original graph"
            log(f"rewrite: {what}: {variant.predicted_peak_bytes:,} B predicted")
        return variant

    applicable = tuple(s["index"] for s in sites if s["applicable"])
    baseline, full, best, without = choose_sites(applicable, evaluate, lambda v: v.predicted_peak_bytes)
    for s in sites:
        if s["index"] in without:
            s["predicted_peak_bytes_without"] = without[s["index"]]
        s["accepted"] = s["index"] in best.sites
    return RewriteChoice(best=best, baseline=baseline, sites=sites, all_sites=full)


V = TypeVar("V")


def choose_sites(
    applicable: tuple[int, ...], evaluate: Callable[[tuple[int, ...]], V], peak: Callable[[V], int]
) -> tuple[V, V | None, V, dict[int, int]]:
    """The decision of the module doc, over any ``evaluate(sites)``: returns
    (the original graph, all sites rewritten or None, the winner, each
    site's peak when dropped from the set it was tried in). Pure, so it is
    tested on synthetic peaks."""
    baseline = evaluate(())
    if not applicable:
        return baseline, None, baseline, {}
    full = evaluate(applicable)
    current, current_sites = full, applicable
    without: dict[int, int] = {}
    for i in applicable:
        rest = tuple(j for j in current_sites if j != i)
        trial = evaluate(rest) if rest else baseline
        without[i] = peak(trial)
        if peak(trial) <= peak(current):
            current, current_sites = trial, rest
    if peak(current) < peak(baseline):
        return baseline, full, current, without
    return baseline, full, baseline, without
