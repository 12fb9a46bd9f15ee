"""The ``serenity-mlir compile`` job: import -> lower -> [rewrite] ->
schedule -> compile -> run and compare, one stage module each.

The driver checks every option and path before any work, keeps the
intermediate files in a typed work folder (:mod:`.workdir`; kept and named in
the error when a step fails, so the reproducer command works), builds the
module inside that folder and measures it there (so a second compile to the
same ``-o`` cannot swap the file under it), and only then moves the module to
the output path and writes the report.

Why one module of about 400 lines: it is the only place that strings the
stages together; every stage it calls lives in its own module beside it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serenity_mlir.backend.build import build_for_target, build_report
from serenity_mlir.backend.compile import BackgroundCompile, artifact_paths
from serenity_mlir.backend.stream import PlacedBuild
from serenity_mlir.errors import CompilerToolError, FunctionChoiceError, InputError, InternalError, SerenityError
from serenity_mlir.files import atomic_write, publish_copy
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.memory.slab import peak_position, slices_for_order
from serenity_mlir.passes.schedule import ScheduleOutcome
from serenity_mlir.pipeline import measure as run_stage
from serenity_mlir.pipeline.importer import import_model, model_files
from serenity_mlir.pipeline.lower import lower
from serenity_mlir.pipeline.paths import check_paths
from serenity_mlir.pipeline.place import place_and_compile
from serenity_mlir.pipeline.report import Report
from serenity_mlir.pipeline.rewrite import Variant, rewrite_then_schedule
from serenity_mlir.pipeline.schedule import ScheduleSettings, schedule_flow_file
from serenity_mlir.pipeline.workdir import WorkFolder, check_keep_temps
from serenity_mlir.runtime.compare import REWRITE_RTOL
from serenity_mlir.scheduler.schedule import SCHEDULERS
from serenity_mlir.targets import Target, get_target
from serenity_mlir.units import check_memory_budget, parse_size


@dataclass
class CompileOptions:
    target: str = "host"
    scheduler: str = "serenity"
    function: str | None = None
    time_limit: float | None = 60.0
    measure: bool = True
    verify_outputs: bool = True
    seed: int = 0
    keep_temps: Path | None = None
    extra_flags: list[str] = field(default_factory=list)
    quiet: bool = False
    memory_budget: str | int | None = None
    # SERENITY's identity graph rewriting, kept per concat site where it
    # lowers the scheduled peak (pipeline/rewrite.py).
    rewrite: bool = False
    # Normwise relative error a rewritten module may show against IREE's
    # default compile (re-associated float32 sums drift with depth).
    rewrite_rtol: float = REWRITE_RTOL
    # Seconds the rewrite search may spend dropping sites that do not pay
    # (None: no limit); past it the best set so far is kept.
    rewrite_time_limit: float | None = 60.0
    # Bytes the scheduler's search may keep stored (None: half the available memory).
    memory_limit: int | None = None
    # Who lays out the transient slab: "serenity" (pipeline/place.py, the
    # default) or "iree" (IREE's greedy best-fit in slice order).
    placement: str = "serenity"

    def check(self) -> int | None:
        """Raises InputError for an option that cannot work; returns the
        memory budget in bytes (None: no budget)."""
        if self.scheduler not in SCHEDULERS:
            raise InputError(f"unknown scheduler '{self.scheduler}' (known: {', '.join(SCHEDULERS)})")
        if self.time_limit is not None and not (math.isfinite(self.time_limit) and self.time_limit >= 0):
            raise InputError(f"--time-limit must be a number of seconds >= 0, got {self.time_limit:g}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"--seed must be an integer >= 0, got {self.seed}")
        if self.memory_limit is not None and self.memory_limit <= 0:
            raise InputError(f"--memory-limit must be a positive size, got {self.memory_limit}")
        if self.placement not in ("serenity", "iree"):
            raise InputError(f"unknown placement '{self.placement}' (known: serenity, iree)")
        if not (math.isfinite(self.rewrite_rtol) and self.rewrite_rtol > 0):
            raise InputError(f"--rewrite-rtol must be a positive tolerance, got {self.rewrite_rtol:g}")
        if self.rewrite_time_limit is not None and not (
            math.isfinite(self.rewrite_time_limit) and self.rewrite_time_limit >= 0
        ):
            raise InputError(f"--rewrite-time-limit must be a number of seconds >= 0, got {self.rewrite_time_limit:g}")
        return parse_size(self.memory_budget) if self.memory_budget is not None else None


class Progress:
    """One line per step on stderr, so long compiles show where they are."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.step = 0
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, what: str) -> None:
        self.step += 1
        if not self.quiet:
            print(
                f"[{self.step}/{self.total}] {what} ({time.perf_counter() - self.t0:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    def detail(self, what: str) -> None:
        """A line inside the current step (long steps say what they are at)."""
        if not self.quiet:
            print(f"      {what}", file=sys.stderr, flush=True)


def compile_model(
    model: str | Path, out: str | Path, options: CompileOptions, report_path: str | Path | None = None
) -> dict[str, Any]:
    """The ``serenity-mlir compile`` job; returns (and writes) the report."""
    model, out = Path(model), Path(out)
    report_file = Path(report_path) if report_path is not None else None
    budget = options.check()
    target = get_target(options.target)
    # A bad output name is an error now, not after minutes of scheduling.
    final = artifact_paths(out, target)
    reads = [("the model", model), *(("a file of the model", p) for p in model_files(model))]
    if Path(options.target).is_file():
        reads.append(("the target file", Path(options.target)))
    writes = [(f"-o ({role})" if role not in ("module", "c_source") else "-o", p) for role, p in final.items()]
    if report_file is not None:
        writes.append(("--report", report_file))
    check_paths(reads, writes)
    if options.keep_temps is not None:
        check_keep_temps(options.keep_temps, reads, writes)
    steps = 4 + int(options.rewrite) + int(options.measure) + 2 * int(options.verify_outputs and options.measure)
    progress = Progress(steps, options.quiet)
    work = WorkFolder.create()
    keep = False
    background: list[BackgroundCompile] = []  # compiles still writing into the work folder
    try:
        report = _compile_model(model, out, target, options, budget, progress, work, background)
        data = report.to_dict()
        if report_file is not None:
            atomic_write(report_file, json.dumps(data, indent=2) + "\n")
        return data
    except SerenityError as e:
        # One line: the problem, and where its files are. The work folder is
        # kept only when a tool failed (its reproducer reads them) or the
        # message points into it; otherwise it goes like on success.
        message = str(e)
        if isinstance(e, FunctionChoiceError):
            message = f"{model}: {message}"
        where = None
        if options.keep_temps is not None:
            where = options.keep_temps
        elif (isinstance(e, CompilerToolError) or str(work.root) in message) and work.holds_files():
            keep = True
            where = work.root
        if isinstance(e, CompilerToolError):
            message = e.summary(where)
        elif where is not None:
            message = f"{message}; intermediate files in {where}"
        e.args = (message,)
        raise
    finally:
        for job in background:
            job.cancel()  # nothing to kill when it has finished
        try:
            if options.keep_temps is not None:
                work.copy_to(options.keep_temps)
        finally:
            if not keep:
                work.remove()


def _publish(built: dict[str, Path], final: dict[str, Path]) -> None:
    """Moves the built files to the output paths: each copied beside its
    destination and renamed over it, sidecars first and the main file last,
    so a reader that sees the new module also sees its new object and header."""
    for role in sorted(built, key=lambda r: r in ("module", "c_source")):
        publish_copy(built[role], final[role])  # a short hidden sibling; one error line on a full disk


def _compile_model(
    model: Path,
    out: Path,
    target: Target,
    options: CompileOptions,
    budget: int | None,
    progress: Progress,
    work: WorkFolder,
    background: list[BackgroundCompile],
) -> Report:
    progress(f"importing {model.name}")
    imported = import_model(model, quiet=options.quiet)
    if imported.kind == "mlir":
        # Parse here so a malformed file is reported with its own location.
        mlir_io.load_module(model, mlir_io.new_context())
    progress(f"lowering to the dispatch level for {target.name}")
    lowered = lower(imported, work, target, options.extra_flags)
    reference = None
    if options.measure and options.verify_outputs and run_stage.runner(target) is not None:
        # IREE's default build of the model, to check the outputs against,
        # needs only the lowered input: it compiles on the other core while
        # this process schedules and places (the caller cancels it when the
        # job ends early).
        progress("compiling the same model without the pass (IREE default) in the background, to compare outputs")
        reference = BackgroundCompile(lowered.input_file, work.reference, target, options.extra_flags)
        background.append(reference)
    progress(f"scheduling with '{options.scheduler}'")
    sched_file = work.scheduled_flow
    placing = options.placement == "serenity"
    # With our placement the order's live bytes are what the slab costs, so
    # the scheduler's order stands; IREE's packer needs the packing search.
    settings = ScheduleSettings(options.scheduler, options.function, options.time_limit, options.memory_limit)
    sched = schedule_flow_file(lowered.flow_file, sched_file, settings, not placing)
    rewrite_fields: dict[str, Any] = {}
    if options.rewrite:
        progress("rewriting concat -> convolution sites and scheduling again")
        # Every graph is costed as it will be built: by the placement's cheap
        # part when SERENITY places the slab, by IREE's packing otherwise.
        choice = rewrite_then_schedule(
            lowered.input_file,
            Variant.of((), sched_file, sched, placing),
            work,
            target,
            settings,
            options.extra_flags,
            log=progress.detail,
            placed=placing,
            time_limit=options.rewrite_time_limit,
        )
        rewrite_fields = {"rewrite": True, **choice.report_fields()}
        if choice.applied:
            # ``choice.best.outcome`` keeps the rewritten module alive for its op handles.
            sched, sched_file = choice.best.outcome, choice.best.flow_file
    g = sched.body.graph
    fixed = sched.body.fixed_bytes
    chosen = sched.body.predict(sched.result.order)
    program = sched.body.predict(range(g.num_nodes))
    if budget is not None:
        # Fail before the long compile when the prediction already says no
        # (IREE's own packing of the order: placement can only do better).
        check_memory_budget(chosen.live_bytes + fixed, budget, _budget_subject(model, target, sched))
    built_out = work.module_dir / out.name
    placed: PlacedBuild | None = None
    if placing:
        progress(f"placing the slab and compiling for {target.name}")
        placed, truth = place_and_compile(
            sched_file, built_out, target, sched.function, "serenity", work.root / "stream", options.extra_flags
        )
        if placed.slab_bytes > placed.slab_live_bytes and not options.rewrite and options.scheduler == "serenity":
            # The placement did not reach this order's live bytes: an order
            # IREE's packer likes may place tighter.
            progress.detail(
                f"placement: {placed.slab_bytes:,} B for {placed.slab_live_bytes:,} live; trying the packing search"
            )
            alt_file = work.variant("packed", "scheduled.flow")
            alt = schedule_flow_file(lowered.flow_file, alt_file, settings)
            alt_out = work.root / "module-packed" / out.name
            alt_placed, alt_truth = place_and_compile(
                alt_file, alt_out, target, alt.function, "serenity", work.root / "stream-packed", options.extra_flags
            )
            if alt_placed.slab_bytes < placed.slab_bytes:
                sched, sched_file, placed, truth, built_out = alt, alt_file, alt_placed, alt_truth, alt_out
                g, chosen = sched.body.graph, sched.body.predict(sched.result.order)
        if not options.quiet:
            for warning in truth.differences:
                print(f"warning: the memory model differs from IREE's slices: {warning}", file=sys.stderr)
        build = build_report(sched_file, placed.build, target)
    else:
        progress(f"compiling for {target.name}")
        build = build_for_target(sched_file, built_out, target, options.extra_flags)
    built = {role: Path(p) for role, p in build["artifacts"].items()}
    final = artifact_paths(out, target)
    report = Report(
        model=str(model),
        target=target.name,
        scheduler=options.scheduler,
        entry_function=sched.function,
        scheduled_function=sched.body.func_name,
        num_nodes=g.num_nodes,
        memory_model=sched.body.model,
        predicted_peak_bytes=(placed.slab_bytes if placed else chosen.slab_bytes) + fixed,
        program_order_predicted_peak_bytes=program.slab_bytes + fixed,
        predicted_transient_bytes=placed.slab_bytes if placed else chosen.slab_bytes,
        predicted_live_transient_bytes=chosen.live_bytes,
        program_order_predicted_transient_bytes=program.slab_bytes,
        schedule_peak_bytes=sched.result.peak_bytes,
        program_order_schedule_peak_bytes=sched.program_peak,
        lower_bound_bytes=sched.result.lower_bound_bytes + fixed,
        peak_at=_peak_site(sched),
        optimal=sched.result.optimal,
        schedule_method=sched.result.method,
        schedule_states=sched.result.states,
        schedule_seconds=round(sched.result.seconds, 6),
        compile_seconds=round(lowered.seconds + build["compile_seconds"], 3),
        order=sched.result.names(g),
        notes=list(imported.notes) + list(sched.result.notes),
        output=str(out),
        iree_arena_bytes=build["arena_bytes"],
        code_size_bytes=build["code_size_bytes"],
        ram_bytes=build["ram_bytes"],
        sram_bytes=build["sram_bytes"],
        fits_sram=build["fits_sram"],
        artifacts={role: str(p) for role, p in final.items()},
        output_kind=build["output_kind"],
        inputs=build["inputs"],
        outputs=build["outputs"],
        input_bytes=build["input_bytes"],
        output_bytes=build["output_bytes"],
    )
    report.set(**rewrite_fields)
    if placed is not None:
        report.set(
            placement="serenity",
            slab_bytes=placed.slab_bytes,
            slab_live_bytes=placed.slab_live_bytes,
            iree_slab_bytes=placed.iree_slab_bytes,
            placement_seconds=round(placed.placement_seconds, 3),
            placement_methods=sorted({p.placement.method if p.placement else "iree" for p in placed.packs}),
            model_matches_iree_slices=truth.ok,
        )
        report.notes.extend(f"memory model vs IREE's slices: {d}" for d in truth.differences)
    else:
        report.set(placement="iree", slab_bytes=chosen.slab_bytes, iree_slab_bytes=chosen.slab_bytes)
    rewritten = bool(rewrite_fields.get("rewrite_sites_applied"))
    report.set(**{k: build[k] for k in ("sections", "elf", "library_query_symbol", "undefined_symbols") if k in build})
    if build["arena_bytes"] is not None and build["output_bytes"] is not None:
        report.iree_transient_bytes = build["arena_bytes"] - build["output_bytes"]
    if budget is not None:
        report.memory_budget_bytes = budget
        if build["ram_bytes"] is not None:
            check_memory_budget(build["ram_bytes"], budget, _budget_subject(model, target, sched))
    run = run_stage.runner(target) if options.measure else None
    if options.measure and run is None:
        report.measured_peak_bytes = None
        report.notes.append(f"target {target.name} cannot run here: not measured")
    if run is not None:
        _measure(report, run, built, model, reference, target, options, progress, work, sched, rewritten)
    _publish(built, final)
    return report


def _measure(
    report: Report,
    run: run_stage.Runner,
    built: dict[str, Path],
    model: Path,
    reference: BackgroundCompile | None,
    target: Target,
    options: CompileOptions,
    progress: Progress,
    work: WorkFolder,
    sched: ScheduleOutcome,
    rewritten: bool,
) -> None:
    """Runs the built module (and, with verify_outputs, IREE's default build
    of the same model) and fills the report's measurement fields."""
    module = built["module"]
    where = "IREE runtime, local-sync" if target.runnable == "local" else target.runnable
    progress(f"measuring {module.name} ({where})")
    by_tolerance = rewritten and target.runnable == "local"
    outputs = work.outputs if by_tolerance else None
    m = run(module, sched.function, None, options.seed, outputs)
    report.set(**run_stage.measured_fields(m, report.predicted_peak_bytes))
    if not options.verify_outputs:
        return
    if reference is None:
        raise InternalError("outputs to verify but IREE's default build was not started")
    reference.result()
    progress("running the reference")
    ref_outputs = work.reference_outputs if by_tolerance else None
    c = run_stage.compare(run, m, work.reference, sched.function, options.seed, outputs, ref_outputs)
    report.reference_measured_peak_bytes = c.reference_peak
    report.outputs_bit_identical = c.bit_identical
    if c.max_rel_error is not None:
        # A rewritten graph sums the partial convolutions in another order:
        # equal within rounding, not bit for bit.
        err = c.max_rel_error
        report.set(outputs_max_rel_error=err, outputs_within_tolerance=err <= options.rewrite_rtol)
        report.outputs_rtol = options.rewrite_rtol
        if err > options.rewrite_rtol:
            raise SerenityError(
                f"the rewritten module's outputs differ from IREE's default compile of {model.name} by a "
                f"relative error of {err:.3g} (tolerance {options.rewrite_rtol:g}, seed {options.seed}); "
                f"the module is kept for inspection as {module}. Partial convolutions sum in another "
                "order: on a deep network float32 drift can exceed the tolerance without a bug (compare "
                "with another runtime, e.g. onnxruntime), and --rewrite-rtol accepts more"
            )
    elif rewritten:
        report.notes.append(f"outputs of the rewritten module not compared on {target.name} (no arrays)")
    elif not c.bit_identical:
        raise SerenityError(
            f"the scheduled module's outputs differ from IREE's default compile of {model.name} "
            f"(seed {options.seed}); the module is kept for inspection as {module}"
        )
    # Never ship a module that measures above IREE's own build of the model.
    report.shipped, report.shipped_peak_bytes = "serenity", m["device_bytes_peak"]
    if c.reference_peak < m["device_bytes_peak"] and target.output == "vmfb":
        built["module"] = work.reference
        report.shipped, report.shipped_peak_bytes = "iree-default", c.reference_peak
        report.notes.append(
            f"IREE's default build measured {c.reference_peak:,} B, below this module's {m['device_bytes_peak']:,} B: "
            f"{report.output} holds IREE's default build"
        )


def _peak_site(sched: ScheduleOutcome) -> str:
    """The dispatch running when the slab's live bytes peak, with its location."""
    order = sched.result.order
    pos = peak_position(slices_for_order(sched.body.buffers, order))
    if pos is None:
        return "none"
    op = sched.body.node_ops[order[pos]]
    return f"{sched.body.graph.labels[order[pos]]} at {mlir_io.format_location(op.location)}"


def _budget_subject(model: Path, target: Target, sched: ScheduleOutcome) -> str:
    return f"{model.name} on {target.name} (peak at dispatch {_peak_site(sched)})"
