"""The report of one ``serenity-mlir compile``: every field in one place.

The JSON report is a contract (users and outside checks read its keys), so
its fields are declared here once, in the order they are written, and the
CLI's summary and the tests read them from here. A field left at
:data:`ABSENT` is not written at all (a rewrite field without ``--rewrite``,
the static library's sections on a vmfb target, the measurement with
``--no-measure``); ``None`` is written as ``null`` (e.g. a measured peak on a
target that cannot run here).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from serenity_mlir.pipeline.chain import BuiltModule
    from serenity_mlir.pipeline.importer import Imported
    from serenity_mlir.pipeline.measure import Run
    from serenity_mlir.pipeline.rewrite import RewriteChoice


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final[Any] = _Absent()


@dataclass
class Report:
    # What was compiled, and how.
    model: str
    target: str
    scheduler: str
    entry_function: str
    scheduled_function: str
    num_nodes: int
    memory_model: str
    # The memory model's prediction: IREE's slab for the chosen order (its
    # packer simulated) plus the inputs and results, which live outside the
    # slab for the whole call.
    predicted_peak_bytes: int
    program_order_predicted_peak_bytes: int
    # The slab, and constants IREE copies for the call (a concat into one).
    predicted_transient_bytes: int
    predicted_live_transient_bytes: int
    program_order_predicted_transient_bytes: int
    schedule_peak_bytes: int
    program_order_schedule_peak_bytes: int
    lower_bound_bytes: int
    peak_at: str
    optimal: bool
    schedule_method: str
    schedule_states: int
    # What ended the search early: "work-limit" (repeatable), "time-limit"
    # (the wall-clock backstop: may differ on another machine),
    # "memory-limit"; None when it ran to the end.
    schedule_stopped_by: str | None
    schedule_seconds: float
    compile_seconds: float
    order: list[str]
    notes: list[str]
    output: str
    # What IREE itself computed for the target (scheduling statistics).
    iree_arena_bytes: int | None
    code_size_bytes: int | None
    ram_bytes: int | None
    sram_bytes: int | None
    fits_sram: bool | None
    artifacts: dict[str, str]
    output_kind: str
    inputs: list[str] | None
    outputs: list[str] | None
    input_bytes: int | None
    output_bytes: int | None
    # Each input as it was compiled, e.g. "x: 1x96x96x3xf32 (batch pinned
    # from ?)" (ONNX and TFLite inputs; empty for MLIR files).
    input_shapes: list[str]
    # IREE's memory flags our build used (--memory-flags; none for IREE's
    # default reference build).
    memory_flags: list[str] = ABSENT
    # Who laid out the transient slab ("serenity": pipeline/place.py; "iree"),
    # the slab the module allocates, the most bytes IREE's own slices hold at
    # one time (aligned as IREE aligns them: no layout can do better), and
    # what IREE's own packer gives for the same order.
    placement: str = ABSENT
    slab_bytes: int = ABSENT
    slab_live_bytes: int = ABSENT
    iree_slab_bytes: int = ABSENT
    placement_seconds: float = ABSENT
    placement_methods: list[str] = ABSENT
    model_matches_iree_slices: bool = ABSENT
    # --rewrite (rewrite_fields below)
    rewrite: bool = ABSENT
    rewrite_sites_found: int = ABSENT
    rewrite_sites_rewritable: int = ABSENT
    rewrite_sites_applied: int = ABSENT
    rewrite_predicted_peak_bytes: int = ABSENT
    rewrite_baseline_predicted_peak_bytes: int = ABSENT
    rewrite_decision: str = ABSENT
    rewrite_all_sites_predicted_peak_bytes: int | None = ABSENT
    rewrite_evaluations: int = ABSENT
    rewrite_search_complete: bool = ABSENT
    rewrite_search_seconds: float = ABSENT
    rewrite_sites: list[dict[str, Any]] = ABSENT
    # --patches (pipeline.patches.PatchRecord.report_fields): the grid, split op and stage
    # ops chosen (or why none), the patched ops' MACs computed once, and the
    # MACs the recomputed halos add (0.12: 12% more).
    patches: dict[str, Any] = ABSENT
    macs: int = ABSENT
    patch_mac_overhead: float = ABSENT
    # Static libraries (backend.build.build_for_target)
    sections: dict[str, Any] = ABSENT
    elf: dict[str, Any] = ABSENT
    library_query_symbol: str = ABSENT
    undefined_symbols: list[str] = ABSENT
    # IREE's arena holds the slab and the results.
    iree_transient_bytes: int = ABSENT
    # --compare-tflm on a .tflite model: TFLite Micro's arena for the same
    # file (head: every tensor, input and output included; tail: its
    # persistent structures), to hold beside ram_bytes.
    tflm_arena_bytes: int = ABSENT
    tflm_arena_tail_bytes: int = ABSENT
    # --arena-entry (pipeline.arena.ArenaLayout.to_json): the entry point
    # whose one argument is the arena, its size (arena_bytes, which is then
    # ram_bytes less any transients IREE still allocates outside it), and the
    # offset and size of every input and result inside it.
    arena_entry: dict[str, Any] = ABSENT
    memory_budget_bytes: int = ABSENT
    # The measurement (the module run here; input/output bytes above are
    # then the measured ones).
    measured_peak_bytes: int | None = ABSENT
    constant_bytes: int | None = ABSENT
    transient_bytes: int | None = ABSENT
    measured_non_constant_bytes: int = ABSENT
    predicted_vs_measured_non_constant: float | None = ABSENT
    outputs_sha256: str = ABSENT
    # measured == predicted, byte for byte
    prediction_exact: bool = ABSENT
    # The reference: IREE's default compile of the same model, run on the
    # same inputs.
    reference_measured_peak_bytes: int = ABSENT
    outputs_bit_identical: bool = ABSENT
    outputs_max_rel_error: float = ABSENT
    outputs_within_tolerance: bool = ABSENT
    outputs_rtol: float = ABSENT
    # What the output file holds: "serenity", or "iree-default" when IREE's
    # own build of the model measured a lower peak (it is never worse), and
    # that module's measured peak.
    shipped: str = ABSENT
    shipped_peak_bytes: int = ABSENT
    # The shipped module's measured peak without its inputs (shipped_peak_bytes,
    # or measured_peak_bytes when no reference ran, minus input_bytes): to
    # compare with papers that do not count the input image.
    peak_without_input_bytes: int | None = ABSENT
    # Latency (pipeline.measure.time_latency): seconds per call of the shipped
    # module and of IREE's default build, each timed by iree-benchmark-module
    # on local-sync with the same seeded inputs (under qemu-aarch64 for a
    # Cortex-A target: emulated time). Only the invocation is timed (loading
    # and inputs are not): 5 repetitions per module (fewer when a call is
    # slow, to stay near 2 s) of at least 5 ms of calls each, in two rounds
    # (shipped then reference, reference then shipped; one warm-up call per
    # round), the median of the repetitions' per-call means. latency_ratio =
    # latency_seconds / reference_latency_seconds (below 1: faster than IREE's
    # default; 1 when IREE's default build ships). null when not timed:
    # --no-measure, a target that cannot run here, no reference with
    # --no-verify-outputs (the ratio only), or a failed timing (the notes say why).
    latency_seconds: float | None = None
    reference_latency_seconds: float | None = None
    latency_ratio: float | None = None

    def set(self, **values: Any) -> None:
        """Sets fields by name (an unknown name is a bug, not a new key)."""
        for k, v in values.items():
            if k not in FIELDS:
                raise KeyError(f"unknown report field '{k}'")
            setattr(self, k, v)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not ABSENT}


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Report))

# What ``serenity-mlir compile`` prints on stdout (the rewrite fields only
# with --rewrite).
SUMMARY_FIELDS = (
    "model",
    "target",
    "scheduler",
    "num_nodes",
    "predicted_peak_bytes",
    "program_order_predicted_peak_bytes",
    "measured_peak_bytes",
    "reference_measured_peak_bytes",
    "optimal",
    "outputs_bit_identical",
    "prediction_exact",
    "shipped",
    "latency_ratio",
    "rewrite_sites_found",
    "rewrite_sites_applied",
    "rewrite_predicted_peak_bytes",
    "outputs_max_rel_error",
    "patch_mac_overhead",
    "tflm_arena_bytes",
)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The summary of a report: every summary field, the optional ones
    (rewrite, tolerance) only when present."""
    optional = ("rewrite_", "outputs_max", "prediction_", "shipped", "patch_", "tflm_")
    return {k: report.get(k) for k in SUMMARY_FIELDS if k in report or not k.startswith(optional)}


def assemble(
    model: Path,
    out: Path,
    scheduler: str,
    imported: Imported,
    lower_seconds: float,
    module: BuiltModule,
    final: dict[str, Path],
) -> Report:
    """The report of a built module, from the stages' records (the
    measurement is added by :func:`measured_fields`)."""
    sched, built = module.sched, module.built
    g, fixed = sched.body.graph, sched.body.fixed_bytes
    chosen, program = module.prediction, module.program_prediction
    report = Report(
        model=str(model),
        target=built.target,
        scheduler=scheduler,
        entry_function=sched.function,
        scheduled_function=sched.body.func_name,
        num_nodes=g.num_nodes,
        memory_model=sched.body.model,
        predicted_peak_bytes=module.predicted_peak_bytes,
        program_order_predicted_peak_bytes=program.slab_bytes + fixed,
        predicted_transient_bytes=module.predicted_transient_bytes,
        predicted_live_transient_bytes=chosen.live_bytes,
        program_order_predicted_transient_bytes=program.slab_bytes + module.cloned_bytes,
        schedule_peak_bytes=sched.result.peak_bytes,
        program_order_schedule_peak_bytes=sched.program_peak,
        lower_bound_bytes=sched.result.lower_bound_bytes + fixed,
        peak_at=module.peak_site(),
        optimal=sched.result.optimal,
        schedule_method=sched.result.method,
        schedule_states=sched.result.states,
        schedule_stopped_by=sched.result.stopped_by,
        schedule_seconds=round(sched.result.seconds, 6),
        compile_seconds=round(lower_seconds + built.compile_seconds, 3),
        order=sched.result.names(g),
        notes=[*imported.notes, *sched.result.notes],
        output=str(out),
        iree_arena_bytes=built.arena_bytes,
        code_size_bytes=built.code_size_bytes,
        ram_bytes=built.ram_bytes,
        sram_bytes=built.sram_bytes,
        fits_sram=built.fits_sram,
        artifacts={role: str(p) for role, p in final.items()},
        output_kind=built.output_kind,
        inputs=built.inputs,
        outputs=built.outputs,
        input_bytes=built.input_bytes,
        output_bytes=built.output_bytes,
        input_shapes=list(imported.input_shapes),
    )
    if module.rewrite is not None:
        report.set(rewrite=True, **rewrite_fields(module.rewrite))
    placed, truth = module.placed, module.truth
    if placed is not None and truth is not None:
        report.set(
            # An arena entry point is laid out by our placer with any setting (iree: its greedy).
            placement="serenity" if module.arena is None else placed.placement,
            slab_bytes=placed.slab_bytes,
            slab_live_bytes=placed.slab_live_bytes,
            iree_slab_bytes=placed.iree_slab_bytes,
            placement_seconds=round(placed.placement_seconds, 3),
            placement_methods=placed.methods,
            model_matches_iree_slices=truth.ok,
        )
        report.notes.extend(f"memory model vs IREE's slices: {d}" for d in truth.differences)
    else:
        report.set(placement="iree", slab_bytes=chosen.slab_bytes, iree_slab_bytes=chosen.slab_bytes)
    report.set(**built.library_fields())
    if module.arena is not None:
        # IREE's statistics leave the emplaced arena out: no transients of theirs to report.
        report.arena_entry = module.arena.to_json()
    elif built.transient_bytes is not None:
        report.iree_transient_bytes = built.transient_bytes
    return report


def rewrite_fields(choice: RewriteChoice) -> dict[str, Any]:
    """The ``rewrite_*`` fields of a rewrite search."""
    return {
        "rewrite_sites_found": len(choice.sites),
        "rewrite_sites_rewritable": sum(1 for s in choice.sites if s.applicable),
        "rewrite_sites_applied": len(choice.best.sites),
        "rewrite_predicted_peak_bytes": choice.best.predicted_peak_bytes,
        "rewrite_baseline_predicted_peak_bytes": choice.baseline.predicted_peak_bytes,
        "rewrite_decision": "all rewritable sites, then blocks of sites dropped (halved when that raises the peak)",
        "rewrite_evaluations": choice.evaluations,
        "rewrite_search_complete": choice.complete,
        "rewrite_search_seconds": round(choice.seconds, 3),
        "rewrite_all_sites_predicted_peak_bytes": choice.all_sites.predicted_peak_bytes if choice.all_sites else None,
        "rewrite_sites": [s.to_json() for s in choice.sites],
    }


def measured_fields(run: Run, predicted_total: int) -> dict[str, Any]:
    """The report fields of a run of the built module."""
    non_constant = run.non_constant_bytes
    return {
        "measured_peak_bytes": run.peak_bytes,
        "constant_bytes": run.constant_bytes,
        "input_bytes": run.input_bytes,
        "output_bytes": run.output_bytes,
        "transient_bytes": run.transient_bytes,
        "measured_non_constant_bytes": non_constant,
        "predicted_vs_measured_non_constant": round(predicted_total / non_constant, 4) if non_constant else None,
        "outputs_sha256": run.outputs_sha256,
        # The prediction holds the inputs, results, slab and the globals IREE
        # fills at initialisation (analysis.body.splat_global_bytes).
        # (iree-run-module, under qemu, also copies the weights in: not counted.)
        "prediction_exact": predicted_total == run.peak_without_staged_weights,
    }
