"""The ``serenity-mlir compile`` job: import -> lower -> the chain (schedule
-> [rewrite] -> place -> compile, :mod:`.chain`) -> run and compare, one
stage module each, all read from one :class:`CompileSettings` tree.

The driver checks every option and path before any work, keeps the
intermediate files in a typed work folder (:mod:`.workdir`; kept and named in
the error when a step fails, so the reproducer command works), builds the
module inside that folder and measures it there (so a second compile to the
same ``-o`` cannot swap the file under it), and only then moves the module to
the output path and writes the report.

The chain after lowering is shared with the bench (each of its
configurations is a settings tree run through the same chain); this module
adds what only the compile job does: the background reference build, the
measurement against it, the never-worse-than-IREE rule and publishing.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from serenity_mlir.backend.compile import BackgroundCompile, artifact_paths
from serenity_mlir.backend.flags import memory_flags_for
from serenity_mlir.errors import (
    CompilerToolError,
    ControlFlowError,
    FunctionChoiceError,
    InputError,
    InternalError,
    SerenityError,
)
from serenity_mlir.files import atomic_write, publish_copy
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.pipeline import measure as run_stage
from serenity_mlir.pipeline.arena import run_arena_module
from serenity_mlir.pipeline.chain import BuiltModule, patch_then_build
from serenity_mlir.pipeline.importer import Imported, import_model, model_files
from serenity_mlir.pipeline.lower import Lowered, lower_input, write_input
from serenity_mlir.pipeline.paths import check_paths
from serenity_mlir.pipeline.report import Report, assemble, measured_fields
from serenity_mlir.pipeline.workdir import WorkFolder, check_keep_temps
from serenity_mlir.runtime.tflm import require_tflm, run_tflm
from serenity_mlir.settings import CompileSettings
from serenity_mlir.targets import Target, get_target
from serenity_mlir.units import check_memory_budget

# Memory-model warnings printed on stderr; the rest are counted.
MAX_WARNINGS = 3


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
    model: str | Path, out: str | Path, settings: CompileSettings, report_path: str | Path | None = None
) -> dict[str, Any]:
    """The ``serenity-mlir compile`` job; returns (and writes) the report."""
    model, out = Path(model), Path(out)
    report_file = Path(report_path) if report_path is not None else None
    settings.check()
    # The compile's --iree-flag go with the target into every IREE step.
    target = get_target(settings.target).with_flags(settings.iree_flags)
    # A bad output name is an error now, not after minutes of scheduling.
    final = artifact_paths(out, target)
    reads = [("the model", model), *(("a file of the model", p) for p in model_files(model))]
    if Path(settings.target).is_file():
        reads.append(("the target file", Path(settings.target)))
    writes = [(f"-o ({role})" if role not in ("module", "c_source") else "-o", p) for role, p in final.items()]
    if report_file is not None:
        writes.append(("--report", report_file))
    check_paths(reads, writes)
    if settings.keep_temps is not None:
        check_keep_temps(settings.keep_temps, reads, writes)
    if settings.measure.compare_tflm:
        if model.suffix.lower() != ".tflite":
            raise InputError(f"--compare-tflm runs TFLite Micro on a .tflite model; {model} is not one")
        require_tflm()
    measuring = settings.measure.enabled
    steps = (
        4
        + int(settings.rewrite.enabled)
        + int(settings.patches.enabled)
        + int(measuring)
        + 2 * int(settings.measure.verify_outputs and measuring)
    )
    progress = Progress(steps, settings.quiet)
    work = WorkFolder.create()
    keep = False
    background: list[BackgroundCompile] = []  # compiles still writing into the work folder
    try:
        report = _compile_model(model, out, target, settings, progress, work, background)
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
        if settings.keep_temps is not None:
            where = settings.keep_temps
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
            if settings.keep_temps is not None:
                work.copy_to(settings.keep_temps)
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
    settings: CompileSettings,
    progress: Progress,
    work: WorkFolder,
    background: list[BackgroundCompile],
) -> Report:
    progress(f"importing {model.name}")
    imported = import_model(model, quiet=settings.quiet, input_shapes=dict(settings.input_shapes) or None)
    if imported.kind == "mlir":
        # Parse here so a malformed file is reported with its own location.
        mlir_io.load_module(model, mlir_io.new_context())
    elif settings.arena_entry and len(imported.input_shapes) != 1:
        # Known from the import: refused now, not after lowering and scheduling.
        names = ", ".join(line.split(":")[0] for line in imported.input_shapes) or "none"
        raise InputError(
            f"{model.name}: --arena-entry supports a model with one tensor input; this one has "
            f"{len(imported.input_shapes)} ({names})"
        )
    # Our build gets IREE's memory flags where they compile (--memory-flags);
    # the reference stays IREE's default build.
    memory_flags = memory_flags_for(settings.memory_flags, imported.kind)
    progress(f"lowering to the dispatch level for {target.name}")
    notes: list[str] = []
    src = write_input(imported, work)
    try:
        lowered = _lower(src, work, target.with_flags(memory_flags), imported)
    except CompilerToolError as e:
        memory_flags = _drop_memory_flags(e, memory_flags, settings, notes, progress)
        lowered = _lower(src, work, target, imported)
    reference = None
    run = run_stage.runner(target) if settings.measure.enabled else None
    if run is not None and settings.measure.verify_outputs:
        # IREE's default build of the model, to check the outputs against,
        # needs only the lowered input: it compiles on the other core while
        # this process schedules and places (the caller cancels it when the
        # job ends early).
        progress("compiling the same model without the pass (IREE default) in the background, to compare outputs")
        reference = BackgroundCompile(lowered.input_file, work.reference, target)
        background.append(reference)
    try:
        lowered, patch, module = patch_then_build(
            lowered, target.with_flags(memory_flags), settings, work, out.name, model.name, progress, progress.detail
        )
    except ControlFlowError as e:
        nodes = imported.control_flow_hint()
        if nodes is None:
            raise
        raise ControlFlowError(
            f"{model.name}: {nodes} lower(s) to a loop or branch, and only straight-line function bodies are "
            f"scheduled; iree-compile builds this model without scheduling ({e})"
        ) from None
    except CompilerToolError as e:
        memory_flags = _drop_memory_flags(e, memory_flags, settings, notes, progress)
        lowered = _lower(src, work, target, imported)  # the reference may still be reading src
        lowered, patch, module = patch_then_build(
            lowered, target, settings, work, out.name, model.name, progress, progress.detail
        )
    if not settings.quiet and module.truth is not None:
        # A patched graph can differ on dozens of small buffers: a few lines
        # name the kind, the report's notes hold every one.
        diffs = module.truth.differences
        for warning in diffs[:MAX_WARNINGS]:
            print(f"warning: the memory model differs from IREE's slices: {warning}", file=sys.stderr)
        if len(diffs) > MAX_WARNINGS:
            more = len(diffs) - MAX_WARNINGS
            print(f"warning: ... and {more} more such differences (--report FILE lists them all)", file=sys.stderr)
    final = artifact_paths(out, target)
    report = assemble(model, out, settings.schedule.scheduler, imported, lowered.seconds, module, final)
    report.memory_flags = list(memory_flags)
    report.notes.extend(notes)
    if patch is not None:
        report.set(**patch.report_fields())
    built = dict(module.built.artifacts)
    if settings.memory_budget is not None:
        report.memory_budget_bytes = settings.memory_budget
        if module.built.ram_bytes is not None:
            subject = f"{model.name} on {target.name} (peak at dispatch {module.peak_site()})"
            check_memory_budget(module.built.ram_bytes, settings.memory_budget, subject)
    if settings.measure.enabled and run is None:
        report.measured_peak_bytes = report.peak_without_input_bytes = None
        report.notes.append(f"target {target.name} cannot run here: not measured, latency not timed")
    if settings.measure.compare_tflm:
        progress.detail("running the same .tflite file in TFLite Micro")
        tflm = run_tflm(model, seed=settings.measure.seed)
        report.set(tflm_arena_bytes=tflm.arena_head_bytes, tflm_arena_tail_bytes=tflm.arena_tail_bytes)
    if run is not None and module.arena is not None and target.runnable != "local":
        run = None  # the arena runner is the host's (runtime/arena.py)
        report.measured_peak_bytes = None
        report.notes.append(f"arena entry point on {target.name}: measured on the host only")
    if run is not None:
        patched = patch is not None and patch.applied
        _measure(report, run, built, model, reference, target, settings, progress, work, module, patched)
    _publish(built, final)
    return report


def _lower(src: Path, work: WorkFolder, target: Target, imported: Imported) -> Lowered:
    """:func:`lower_input`; a failure to lower an ONNX op names the model's
    nodes of that op (IREE's message names a line of the imported MLIR)."""
    try:
        return lower_input(src, work, target)
    except CompilerToolError as e:
        e.hint = imported.unlowered_op_hint(e.stderr, src)
        raise


def _drop_memory_flags(
    e: CompilerToolError, memory_flags: tuple[str, ...], settings: CompileSettings, notes: list[str], progress: Progress
) -> tuple[str, ...]:
    """After IREE failed with ``memory_flags``: re-raises unless ``auto``
    added them (the user's ``on`` is kept, and a failure without them is not
    theirs); else notes why the model is built without them (one more
    lowering and build) and returns the flags to build with: none."""
    if not memory_flags or settings.memory_flags != "auto":
        raise e
    flags = " ".join(memory_flags)
    notes.append(f"IREE failed with the memory flags ({flags}): built without them ({e.first_error()})")
    progress.detail(notes[-1])
    return ()


def _measure(
    report: Report,
    run: run_stage.Runner,
    built: dict[str, Path],
    model: Path,
    reference: BackgroundCompile | None,
    target: Target,
    settings: CompileSettings,
    progress: Progress,
    work: WorkFolder,
    module: BuiltModule,
    patched: bool,
) -> None:
    """Runs the built module (and, with verify_outputs, IREE's default build
    of the same model) and fills the report's measurement fields."""
    vmfb = built["module"]
    where = "IREE runtime, local-sync" if target.runnable == "local" else target.runnable
    progress(f"measuring {vmfb.name} ({where})")
    function = module.sched.function
    seed, rtol = settings.measure.seed, settings.rewrite.rtol
    # A rewritten graph sums partial convolutions in another order, and a
    # patched one vectorises other tile sizes: equal within rounding.
    by_tolerance = (module.rewritten or patched) and target.runnable == "local"
    what = "patched" if patched else "rewritten"
    outputs = work.outputs if by_tolerance else None
    # An arena entry point takes the arena, not the inputs: its own runner.
    m = (run_arena_module if module.arena is not None else run)(vmfb, function, None, seed, outputs)
    report.set(**measured_fields(m, report.predicted_peak_bytes))
    report.peak_without_input_bytes = m.peak_bytes - m.input_bytes
    if not settings.measure.verify_outputs:
        _time_latency(report, target, vmfb, None, function, m, seed, m.call_seconds, progress, module)
        return
    if reference is None:
        raise InternalError("outputs to verify but IREE's default build was not started")
    reference.result()
    progress("running the reference")
    ref_outputs = work.reference_outputs if by_tolerance else None
    c = run_stage.compare(run, m, work.reference, function, seed, outputs, ref_outputs)
    report.reference_measured_peak_bytes = c.reference_peak
    report.outputs_bit_identical = c.bit_identical
    if c.max_rel_error is not None:
        # A rewritten graph sums the partial convolutions in another order:
        # equal within rounding, not bit for bit.
        err = c.max_rel_error
        report.set(outputs_max_rel_error=err, outputs_within_tolerance=err <= rtol, outputs_rtol=rtol)
        if err > rtol:
            raise SerenityError(
                f"the {what} module's outputs differ from IREE's default compile of {model.name} by a "
                f"relative error of {err:.3g} (tolerance {rtol:g}, seed {seed}); "
                f"the module is kept for inspection as {vmfb}. Partial convolutions sum in another "
                "order: on a deep network float32 drift can exceed the tolerance without a bug (compare "
                "with another runtime, e.g. onnxruntime), and --rewrite-rtol accepts more"
            )
    elif module.rewritten or patched:
        report.notes.append(f"outputs of the {what} module not compared on {target.name} (no arrays)")
    elif not c.bit_identical:
        raise SerenityError(
            f"the scheduled module's outputs differ from IREE's default compile of {model.name} "
            f"(seed {seed}); the module is kept for inspection as {vmfb}"
        )
    # Never ship a module that measures above IREE's own build of the model.
    report.shipped, report.shipped_peak_bytes = "serenity", m.peak_bytes
    # (An arena entry point is a different calling convention: never swapped.)
    if c.reference_peak < m.peak_bytes and target.output == "vmfb" and module.arena is None:
        built["module"] = work.reference
        report.shipped, report.shipped_peak_bytes = "iree-default", c.reference_peak
        report.notes.append(
            f"IREE's default build measured {c.reference_peak:,} B, below this module's {m.peak_bytes:,} B: "
            f"{report.output} holds IREE's default build"
        )
    # The same inputs in both runs: the shipped module's peak less those bytes.
    report.peak_without_input_bytes = report.shipped_peak_bytes - m.input_bytes
    estimates = [s for s in (m.call_seconds, c.reference_call_seconds) if s is not None]
    call_seconds = max(estimates) if estimates else None
    _time_latency(report, target, built["module"], work.reference, function, m, seed, call_seconds, progress, module)


def _time_latency(
    report: Report,
    target: Target,
    shipped: Path,
    reference: Path | None,
    function: str,
    m: run_stage.Run,
    seed: int,
    call_seconds: float | None,
    progress: Progress,
    module: BuiltModule,
) -> None:
    """Times the shipped module against IREE's default build (``reference``;
    None when it was not built) and fills the latency fields."""
    if module.arena is not None:
        # iree-benchmark-module passes the inputs as arguments; an arena entry point takes the arena.
        report.notes.append("latency not timed: an arena entry point (iree-benchmark-module calls normal ones)")
        return
    clock = run_stage.timer(target)
    if clock is None:
        report.notes.append(f"target {target.name}: no way to time it here, latency not timed")
        return
    both = " and IREE's default build" if reference is not None and reference != shipped else ""
    progress.detail(f"timing {shipped.name}{both} with iree-benchmark-module")
    latency = run_stage.time_latency(clock, shipped, reference, function, m, seed, call_seconds)
    report.set(**latency.report_fields())
    if latency.reason is not None:
        report.notes.append(latency.reason)
