"""Rewrite-then-schedule: keep a graph rewrite only where it lowers the peak.

A partitioned convolution frees the concat's inputs early, but its
accumulator lives from the first partial convolution to the last, and IREE's
fusion decides what the dispatches finally are. Whether a site pays off is
therefore measured on the real thing: the linalg module (after IREE's
``input`` phase) is rewritten (to a fixed point: concats a rewrite produces
are rewritten in turn), lowered to the flow phase, scheduled, and costed the
way it will be built: its order's live bytes when SERENITY places the slab
(the default), IREE's packing of the order otherwise; plus inputs and outputs.

Sites are decided together, then in blocks. The peak is a maximum over the
whole run, so one site alone often cannot lower it: a network of repeated
cells peaks in every cell alike, and only rewriting all of them helps. So the
driver schedules the original graph and the graph with every rewritable site
rewritten, then drops blocks of sites from the full set (all of them, then
halves of a block whose removal raised the predicted peak, down to single
sites: :mod:`serenity_mlir.rewrite.choice`), keeping a block out whenever
its removal does not raise the predicted peak (fewer rewrites for the same
peak). The result is kept only when it beats the original graph strictly
(ties keep the original). Sites that share ops (a common split) are one unit.
``--rewrite-time-limit`` bounds the dropping; the best set so far is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.memory.placement import place
from serenity_mlir.memory.slab import slices_for_order
from serenity_mlir.passes.rewrite import SerenityRewrite, find_module_sites
from serenity_mlir.passes.schedule import ScheduleOutcome
from serenity_mlir.pipeline.lower import lower_linalg_to_flow, lower_to_linalg
from serenity_mlir.pipeline.schedule import schedule_flow_file
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.rewrite.choice import choose_sites
from serenity_mlir.rewrite.sites import SiteInfo
from serenity_mlir.settings import CompileSettings, ScheduleSettings
from serenity_mlir.targets import Target


@dataclass
class Variant:
    """One rewritten (or original) graph, lowered and scheduled."""

    sites: tuple[int, ...]
    flow_file: Path  # the scheduled flow-level file
    outcome: ScheduleOutcome  # keeps the scheduled module alive for its op handles
    predicted_peak_bytes: int
    # site -> concats its kernel-wise rewrite produced and the pass rewrote in turn
    second_round: dict[int, int] = field(default_factory=dict)

    @staticmethod
    def of(sites: tuple[int, ...], flow_file: Path, outcome: ScheduleOutcome, placed: bool) -> Variant:
        """``placed``: the slab will be laid out by SERENITY's placement, so
        the variant costs what the placement's cheap part (best-fit orderings
        and the local search, seconds even at 500 slices) gets for the
        order's slices: the placement stage can only do better (it adds
        CP-SAT). The order's live bytes alone are not enough: at DARTS'
        published size a variant with 1,327,104 live bytes placed into
        1,422,144 B, another with the same live bytes into 1,365,120 B.
        Otherwise IREE packs the slab, and its packing of the order is the cost."""
        body, order = outcome.body, outcome.result.order
        slab = body.predict(order)
        if not placed:
            cost = slab.slab_bytes
        elif body.barriers:
            cost = slab.live_bytes  # several regions: the stage places each one's pack
        else:
            cost = place(slices_for_order(body.buffers, order), placement="heuristic").total
        return Variant(sites, flow_file, outcome, cost + body.fixed_bytes)


@dataclass
class RewriteChoice:
    """The variant kept, the baseline, and the verdict per site."""

    best: Variant
    baseline: Variant
    sites: list[SiteInfo] = field(default_factory=list)
    all_sites: Variant | None = None  # every rewritable site rewritten (None: there is none)
    evaluations: int = 0  # rewritten graphs lowered and scheduled
    complete: bool = True  # False: the time limit cut the search short
    seconds: float = 0.0

    @property
    def applied(self) -> tuple[int, ...]:
        return self.best.sites


def evaluate_variant(
    linalg: Path,
    chosen: tuple[int, ...],
    work: WorkFolder,
    target: Target,
    settings: ScheduleSettings,
    placed: bool = True,
) -> Variant:
    """Rewrites ``chosen`` sites of the linalg module, lowers it to flow and
    schedules it (one evaluation of the search); ``placed`` as in
    :meth:`Variant.of`, and the order is searched the same way the pipeline
    searches the original's."""
    tag = "rw" + "_".join(map(str, chosen))
    module = mlir_io.load_module(linalg, mlir_io.new_context())
    rewritten = SerenityRewrite(sites=chosen).apply(module)
    src = work.variant(tag, "linalg")
    atomic_write(src, mlir_io.module_to_text(module, debuginfo=True))
    what = f"lowering the rewritten module (sites {list(chosen)}) to the flow phase"
    flow = lower_linalg_to_flow(src, work.variant(tag, "flow"), target, what=what)
    sched_file = work.variant(tag, "scheduled.flow")
    outcome = schedule_flow_file(flow, sched_file, settings, pack_search=not placed)
    variant = Variant.of(chosen, sched_file, outcome, placed)
    variant.second_round = {
        d.index: d.second_round_rewrites for d in rewritten.sites if d.second_round_rewrites is not None
    }
    return variant


def rewrite_then_schedule(
    input_file: Path,
    baseline: Variant,
    work: WorkFolder,
    target: Target,
    settings: CompileSettings,
    log: Callable[[str], None] | None = None,
) -> RewriteChoice:
    """Decides the sites against ``baseline`` (the original graph, already
    lowered and scheduled by the pipeline); see the module doc. Every variant
    is scheduled with ``settings.schedule`` and costed as
    ``settings.placement`` will build it. ``log`` gets a line per graph
    evaluated (this takes a lowering and a schedule each, minutes on a large
    network). Past ``settings.rewrite.time_limit`` seconds no more sites are
    dropped (the best set so far is kept)."""
    placed = settings.placement.placed
    time_limit = settings.rewrite.time_limit
    start = time.monotonic()
    linalg = lower_to_linalg(input_file, work.linalg, target)
    # The module must outlive the sites: their op handles point into it.
    module = mlir_io.load_module(linalg, mlir_io.new_context())
    sites = [s.describe() for s in find_module_sites(module)]
    del module

    def evaluate(chosen: tuple[int, ...]) -> Variant:
        chosen = tuple(sorted(chosen))
        if not chosen:
            variant = baseline
        else:
            variant = evaluate_variant(linalg, chosen, work, target, settings.schedule, placed)
        if log is not None:
            what = f"sites {list(chosen)}" if chosen else "the original graph"
            log(f"rewrite: {what}: {variant.predicted_peak_bytes:,} B predicted")
        return variant

    # A group of sites (a shared split) is one unit, named by its first member.
    # Smallest concats first: a rewrite saves at most its concat's bytes, so
    # the small ones are the likeliest to be idle and go in the first blocks.
    units = [s for s in sites if s.applicable and s.unit == s.index]
    units.sort(key=lambda s: (s.elements, s.index))
    applicable = tuple(s.index for s in units)
    deadline = None if time_limit is None else time.monotonic() + time_limit
    choice = choose_sites(applicable, evaluate, lambda v: v.predicted_peak_bytes, deadline)
    for s in sites:
        if s.unit in choice.without:
            s.predicted_peak_bytes_without = choice.without[s.unit]
        s.accepted = s.unit in choice.best.sites
        if s.index in choice.best.second_round:
            s.second_round_rewrites = choice.best.second_round[s.index]
    return RewriteChoice(
        best=choice.best,
        baseline=choice.baseline,
        sites=sites,
        all_sites=choice.full,
        evaluations=choice.evaluations,
        complete=choice.complete,
        seconds=time.monotonic() - start,
    )
