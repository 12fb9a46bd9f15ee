"""The driver: import -> lower -> schedule -> compile -> measure.

Each step lives in its own module; this one strings them together, keeps the
intermediate files in a work directory (kept, and named in the error, when a
step fails, so the reproducer command works), and writes the report.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serenity_mlir.analysis.dataflow import find_body_function
from serenity_mlir.backend.build import build_for_target
from serenity_mlir.backend.compile import artifact_paths, compile_input
from serenity_mlir.errors import InputError, SerenityError
from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.memory.slab import peak_position, slices_for_order
from serenity_mlir.passes.schedule import ScheduleOutcome, SerenitySchedule
from serenity_mlir.pipeline.importer import import_model
from serenity_mlir.pipeline.lower import lower_to_flow
from serenity_mlir.pipeline.rewrite import rewrite_then_schedule
from serenity_mlir.runtime.compare import REWRITE_RTOL, max_relative_error
from serenity_mlir.runtime.local import measure
from serenity_mlir.runtime.qemu import run_emulated
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
    # lowers the scheduled peak (rewrite_schedule.py).
    rewrite: bool = False
    # Normwise relative error a rewritten module may show against IREE's
    # default compile (re-associated float32 sums drift with depth).
    rewrite_rtol: float = REWRITE_RTOL


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


def schedule_flow_file(
    flow_in: Path, flow_out: Path, scheduler: str, function: str | None, time_limit: float | None
) -> ScheduleOutcome:
    """Runs the serenity-schedule pass on a flow-level file and writes the
    result (with serial partitioning and the signature the runtime needs)."""
    module = mlir_io.load_module(flow_in, mlir_io.new_context())
    outcome = SerenitySchedule(scheduler=scheduler, function=function, time_limit=time_limit).apply(module)
    atomic_write(flow_out, mlir_io.module_to_text(module))
    return outcome


def compile_model(
    model: str | Path, out: str | Path, options: CompileOptions, report_path: str | Path | None = None
) -> dict[str, Any]:
    """The ``serenity-mlir compile`` job; returns (and writes) the report."""
    model = Path(model)
    out = Path(out)
    if out.resolve() == model.resolve():
        raise InputError(f"{out}: the output would overwrite the input model")
    target = get_target(options.target)
    # A bad output name is an error now, not after minutes of scheduling.
    artifact_paths(out, target)
    if not options.rewrite_rtol > 0:
        raise InputError(f"--rewrite-rtol must be a positive tolerance, got {options.rewrite_rtol:g}")
    steps = 4 + int(options.rewrite) + int(options.measure) + 2 * int(options.verify_outputs and options.measure)
    progress = Progress(steps, options.quiet)
    workdir = Path(tempfile.mkdtemp(prefix="serenity-"))
    ok = False
    try:
        report = _compile_model(model, out, target, options, progress, workdir)
        if report_path is not None:
            atomic_write(report_path, json.dumps(report, indent=2) + "\n")
        ok = True
        return report
    except SerenityError as e:
        e.args = (f"{e.args[0]}\n(intermediate files kept in {workdir})",) if e.args else e.args
        raise
    finally:
        if options.keep_temps is not None:
            shutil.copytree(workdir, options.keep_temps, dirs_exist_ok=True)
        if ok or options.keep_temps is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _compile_model(
    model: Path, out: Path, target: Target, options: CompileOptions, progress: Progress, workdir: Path
) -> dict[str, Any]:
    progress(f"importing {model.name}")
    imported = import_model(model, quiet=options.quiet)
    if imported.kind == "mlir":
        # Parse here so a malformed file is reported with its own location.
        mod = mlir_io.load_module(model, mlir_io.new_context())
        find_body_function(mod, options.function)
    progress(f"lowering to the dispatch level for {target.name}")
    t0 = time.perf_counter()
    flow = lower_to_flow(imported.mlir, target, workdir, options.extra_flags)
    lower_seconds = time.perf_counter() - t0
    progress(f"scheduling with '{options.scheduler}'")
    sched_file = workdir / "model.scheduled.flow.mlir"
    sched = schedule_flow_file(flow, sched_file, options.scheduler, options.function, options.time_limit)
    rewrite_fields: dict[str, Any] = {}
    if options.rewrite:
        progress("rewriting concat -> convolution sites and scheduling again")
        input_file = next(workdir.glob("model.input.*"))
        choice = rewrite_then_schedule(
            input_file,
            target,
            workdir,
            options.scheduler,
            options.function,
            options.time_limit,
            options.extra_flags,
            log=progress.detail,
        )
        rewrite_fields = choice.report_fields()
        if choice.applied:
            # ``choice`` keeps the rewritten module alive for ``sched``'s op handles.
            sched, sched_file = choice.best.outcome, choice.best.flow_file
    g = sched.body.graph
    fixed = sched.body.fixed_bytes
    chosen = sched.body.predict(sched.result.order)
    program = sched.body.predict(range(g.num_nodes))
    budget = parse_size(options.memory_budget) if options.memory_budget is not None else None
    if budget is not None:
        # Fail before the long compile when the prediction already says no.
        check_memory_budget(chosen.slab_bytes + fixed, budget, _budget_subject(model, target, sched))
    progress(f"compiling for {target.name}")
    build = build_for_target(sched_file, out, target, options.extra_flags)
    report: dict[str, Any] = {
        "model": str(model),
        "target": target.name,
        "scheduler": options.scheduler,
        "entry_function": sched.function,
        "scheduled_function": sched.body.func_name,
        "num_nodes": g.num_nodes,
        "memory_model": sched.body.model,
        # IREE's slab for the chosen order (its packer simulated) plus the
        # inputs and results, which live outside the slab for the whole call.
        "predicted_peak_bytes": chosen.slab_bytes + fixed,
        "program_order_predicted_peak_bytes": program.slab_bytes + fixed,
        "predicted_transient_bytes": chosen.slab_bytes,
        "predicted_live_transient_bytes": chosen.live_bytes,
        "program_order_predicted_transient_bytes": program.slab_bytes,
        "schedule_peak_bytes": sched.result.peak_bytes,
        "program_order_schedule_peak_bytes": sched.program_peak,
        "lower_bound_bytes": sched.result.lower_bound_bytes + fixed,
        "peak_at": _peak_site(sched),
        "optimal": sched.result.optimal,
        "schedule_method": sched.result.method,
        "schedule_states": sched.result.states,
        "schedule_seconds": round(sched.result.seconds, 6),
        "compile_seconds": round(lower_seconds + build["compile_seconds"], 3),
        "order": sched.result.names(g),
        "notes": list(imported.notes) + list(sched.result.notes),
        "output": str(out),
        # What IREE itself computed for the target (scheduling statistics).
        "iree_arena_bytes": build["arena_bytes"],
        "code_size_bytes": build["code_size_bytes"],
        "ram_bytes": build["ram_bytes"],
        "sram_bytes": build["sram_bytes"],
        "fits_sram": build["fits_sram"],
        "artifacts": build["artifacts"],
        "output_kind": build["output_kind"],
        "inputs": build["inputs"],
        "outputs": build["outputs"],
        "input_bytes": build["input_bytes"],
        "output_bytes": build["output_bytes"],
    }
    if options.rewrite:
        report["rewrite"] = True
        report.update(rewrite_fields)
    rewritten = bool(rewrite_fields.get("rewrite_sites_applied"))
    for key in ("sections", "elf", "library_query_symbol", "undefined_symbols"):
        if key in build:
            report[key] = build[key]
    if build["arena_bytes"] is not None and build["output_bytes"] is not None:
        # IREE's arena holds the slab and the results.
        report["iree_transient_bytes"] = build["arena_bytes"] - build["output_bytes"]
    if budget is not None:
        report["memory_budget_bytes"] = budget
        if build["ram_bytes"] is not None:
            check_memory_budget(build["ram_bytes"], budget, _budget_subject(model, target, sched))
    if not options.measure:
        return report
    run = _runner(target)
    if run is None:
        report["measured_peak_bytes"] = None
        report["notes"].append(f"target {target.name} cannot run here: not measured")
        return report
    progress(f"measuring {out.name} ({'IREE runtime, local-sync' if target.runnable == 'local' else target.runnable})")
    compare_by_tolerance = rewritten and target.runnable == "local"
    outputs_npz = workdir / "outputs.npz"
    if compare_by_tolerance:
        m = measure(out, sched.function, seed=options.seed, save_outputs=outputs_npz)
    else:
        m = run(out, sched.function, None, options.seed)
    report.update(_measured_fields(m, report["predicted_peak_bytes"]))
    if options.verify_outputs:
        progress("compiling the same model without the pass (IREE default) to compare outputs")
        ref = workdir / "reference.vmfb"
        compile_input(
            workdir / f"model.input{'.mlirbc' if isinstance(imported.mlir, bytes) else '.mlir'}",
            ref,
            target,
            options.extra_flags,
        )
        progress("running the reference")
        ref_npz = workdir / "reference_outputs.npz"
        if compare_by_tolerance:
            r = measure(ref, sched.function, inputs=m["inputs"], seed=options.seed, save_outputs=ref_npz)
        else:
            r = run(ref, sched.function, m["inputs"], options.seed)
        report["reference_measured_peak_bytes"] = r["device_bytes_peak"]
        report["outputs_bit_identical"] = r["outputs_sha256"] == m["outputs_sha256"]
        if compare_by_tolerance:
            # A rewritten graph sums the partial convolutions in another
            # order: equal within rounding, not bit for bit.
            err = max_relative_error(outputs_npz, ref_npz)
            report["outputs_max_rel_error"] = err
            report["outputs_within_tolerance"] = err <= options.rewrite_rtol
            report["outputs_rtol"] = options.rewrite_rtol
            if err > options.rewrite_rtol:
                raise SerenityError(
                    f"the rewritten module's outputs differ from IREE's default compile of {model.name} by a "
                    f"relative error of {err:.3g} (tolerance {options.rewrite_rtol:g}, seed {options.seed}); "
                    f"the output file was written to {out} for inspection. Partial convolutions sum in another "
                    "order: on a deep network float32 drift can exceed the tolerance without a bug (compare "
                    "with another runtime, e.g. onnxruntime), and --rewrite-rtol accepts more"
                )
        elif rewritten:
            report["notes"].append(f"outputs of the rewritten module not compared on {target.name} (no arrays)")
        elif not report["outputs_bit_identical"]:
            raise SerenityError(
                f"the scheduled module's outputs differ from IREE's default compile of {model.name} "
                f"(seed {options.seed}); the output file was written to {out} for inspection"
            )
    return report


Runner = Callable[[Path, str, "list[str] | None", int], dict[str, Any]]


def _runner(target: Target) -> Runner | None:
    """How a module for ``target`` runs here, each run in a fresh process."""
    if target.runnable == "local":
        return lambda vmfb, fn, inputs, seed: measure(vmfb, fn, inputs=inputs, seed=seed)
    if target.runnable == "qemu-aarch64":
        return lambda vmfb, fn, inputs, seed: run_emulated(vmfb, target, fn, inputs, seed)
    return None


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


def _measured_fields(m: dict[str, Any], predicted_total: int) -> dict[str, Any]:
    non_constant = m["device_bytes_peak"] - m["constant_bytes"]
    return {
        "measured_peak_bytes": m["device_bytes_peak"],
        "constant_bytes": m["constant_bytes"],
        "input_bytes": m["input_bytes"],
        "output_bytes": m["output_bytes"],
        "transient_bytes": m["transient_bytes"],
        "measured_non_constant_bytes": non_constant,
        "predicted_vs_measured_non_constant": round(predicted_total / non_constant, 4) if non_constant else None,
        "outputs_sha256": m["outputs_sha256"],
    }
