"""``serenity-mlir``: the command-line driver (a thin layer over the API).

Start-up is cheap: this module imports only what every command needs, and
each command imports its own modules (IREE, ONNX, numpy, the benches) inside
its function, so ``--help`` and ``targets`` answer at once, and the signal
handlers (installed first) cover the heavy imports too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from serenity_mlir.errors import GraphError, InputError, SerenityError
from serenity_mlir.scheduler.budget import DEFAULT_WORK_LIMIT
from serenity_mlir.scheduler.schedule import SCHEDULERS
from serenity_mlir.settings import (
    PATCH_MIN_GAIN,
    PATCH_OVERHEAD,
    REWRITE_RTOL,
    REWRITE_TIME_LIMIT,
    TIME_LIMIT,
    CompileSettings,
)
from serenity_mlir.tools.errors import check_stdout, install_signal_handlers, report_error, write_stdout
from serenity_mlir.units import input_shape_arg, nonneg_int_arg, seconds_arg, size_arg


def _add_compile(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compile", help="import, schedule and compile a model; measure its peak memory")
    p.add_argument("model", help="an .onnx, .tflite, .mlir or .mlirbc file (.tflite: the 'tflite' extra)")
    p.add_argument("-o", "--output", required=True, help="the .vmfb to write")
    p.add_argument(
        "--target", default="host", help="a target name (see `serenity-mlir targets`) or a target .toml file"
    )
    p.add_argument(
        "--scheduler",
        default="serenity",
        choices=SCHEDULERS,
        help="serenity: the memory-optimal order; program: keep the imported order (serial partitioning)",
    )
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--function", help="the public function to schedule (when the model has several)")
    p.add_argument(
        "--time-limit", type=float, default=TIME_LIMIT, help=f"scheduler time limit in seconds (default {TIME_LIMIT:g})"
    )
    p.add_argument(
        "--patches",
        default="off",
        metavar="off|auto|RxC[@N]",
        help="patch-based inference of the input stage: auto picks the split op and the grid (up to 8x8) with the "
        "lowest predicted peak within --patch-overhead more MACs (see --patch-min-gain); RxC[@N] forces a grid "
        "(at split op N); "
        "default off",
    )
    p.add_argument(
        "--patch-overhead",
        type=float,
        default=PATCH_OVERHEAD,
        help=f"with --patches auto: at most this fraction more MACs from recomputed halos (default {PATCH_OVERHEAD:g})",
    )
    p.add_argument(
        "--patch-min-gain",
        type=float,
        default=PATCH_MIN_GAIN,
        help="with --patches auto: patch only when the predicted peak drops by at least this fraction "
        f"(default {PATCH_MIN_GAIN:g}: 5%%); among candidates within 2%% of the lowest, the fewest patches win",
    )
    p.add_argument(
        "--compare-tflm",
        action="store_true",
        help="on a .tflite model, also run it in TFLite Micro and report its arena (tflm_arena_bytes) beside "
        "ram_bytes; needs the tflite-micro package",
    )
    p.add_argument(
        "--arena-entry",
        action="store_true",
        help="an entry point whose one argument is the arena: the caller writes the input and reads the results "
        "at the offsets the report gives (arena_entry), and the input's bytes are reused once it is read",
    )
    p.add_argument(
        "--input-shape",
        type=input_shape_arg,
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="the shape of an input with dynamic dimensions, e.g. input=1x3x224x224 (repeatable); a dynamic "
        "batch is pinned to 1 without it, other dynamic dimensions need it",
    )
    p.add_argument(
        "--work-limit",
        type=nonneg_int_arg,
        default=DEFAULT_WORK_LIMIT,
        help="sets the scheduler's search may store in all before it keeps its best order (optimal: false, "
        f"schedule_stopped_by: work-limit): the same model and flags build the same module on any machine "
        f"(default {DEFAULT_WORK_LIMIT:,}; 0: no limit)",
    )
    p.add_argument("--no-measure", action="store_true", help="do not run the module")
    p.add_argument(
        "--no-verify-outputs",
        action="store_true",
        help="do not compare outputs with IREE's default compile of the same model",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--keep-temps", type=Path, help="copy the intermediate files (flow IR, scheduled IR) here")
    p.add_argument("--iree-flag", action="append", default=[], help="extra iree-compile flag (repeatable)")
    p.add_argument(
        "--memory-flags",
        choices=("auto", "on", "off"),
        default="auto",
        help="IREE's memory flags for this build (fused convolution padding): auto adds them for channels-last "
        "TFLite models, where they compile, and rebuilds without them if IREE fails (default: auto)",
    )
    p.add_argument(
        "--memory-budget",
        help="fail (naming the need and the dispatch at the peak) when the model needs more RAM than this, e.g. 256K",
    )
    p.add_argument(
        "--rewrite",
        action="store_true",
        help="identity graph rewriting (channel-/kernel-wise partitioning of concat -> convolution), "
        "kept per site where it lowers the scheduled peak",
    )
    p.add_argument(
        "--rewrite-rtol",
        type=float,
        default=REWRITE_RTOL,
        help="normwise relative error the rewritten module's outputs may show against IREE's default compile "
        f"(default {REWRITE_RTOL:g})",
    )
    p.add_argument(
        "--rewrite-time-limit",
        type=float,
        default=REWRITE_TIME_LIMIT,
        help="seconds the rewrite search may spend dropping sites that do not lower the peak; past it the best "
        f"set found so far is kept (default {REWRITE_TIME_LIMIT:g})",
    )
    p.add_argument(
        "--plot",
        type=Path,
        metavar="OUT.png",
        help="draw live bytes over the schedule (imported and chosen order, the predicted slab, the lower bound, "
        "the dispatch at the peak) into this PNG (or .svg, .pdf); needs the 'plots' extra",
    )
    p.add_argument(
        "--memory-limit",
        type=size_arg,
        help="bytes the scheduler's search may keep stored, e.g. 512M (default: half the available memory); "
        "past it the best order found is used, with optimal: false",
    )
    p.add_argument(
        "--placement",
        default="serenity",
        choices=("serenity", "iree"),
        help="who lays out the transient slab: serenity (reaches the order's live bytes where it can; never worse "
        "than IREE's) or iree (IREE's greedy best-fit)",
    )
    p.add_argument("-q", "--quiet", action="store_true")


def _run_compile(a: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from serenity_mlir.backend.compile import artifact_paths, check_output_name
    from serenity_mlir.bench import plots
    from serenity_mlir.files import check_name_length, output_batch
    from serenity_mlir.pipeline.driver import compile_model
    from serenity_mlir.pipeline.importer import model_files
    from serenity_mlir.pipeline.paths import check_paths
    from serenity_mlir.pipeline.report import summary
    from serenity_mlir.targets import get_target

    # Names too long for the file system: refused now, not after the compile.
    for what, path in (("-o", a.output), ("--report", a.report), ("--plot", a.plot), ("--keep-temps", a.keep_temps)):
        if path is not None:
            check_name_length(path, what)
    target = get_target(a.target)
    check_output_name(Path(a.output), target)
    outputs = list(artifact_paths(Path(a.output), target).items())
    for role, path in outputs:
        check_name_length(path, "-o" if role in ("module", "c_source") else f"-o ({role})")
    temps = a.keep_temps
    own_temps = None
    if a.plot is not None:
        if a.plot.suffix.lower() not in plots.PLOT_SUFFIXES:
            raise InputError(f"--plot {a.plot}: give a {', '.join(plots.PLOT_SUFFIXES)} file")
        plots.require_matplotlib("--plot")
        # The plot checked with every other path, before any work.
        model = Path(a.model)
        reads = [("the model", model), *(("a file of the model", p) for p in model_files(model))]
        writes = [("-o", p) for p in artifact_paths(Path(a.output), get_target(a.target)).values()]
        if a.report:
            writes.append(("--report", Path(a.report)))
        writes.append(("--plot", a.plot))
        check_paths(reads, writes)
        if temps is None:
            # The plot reads the flow-level modules: keep the intermediate files until it is drawn.
            own_temps = Path(tempfile.mkdtemp(prefix="serenity-plot-"))
            temps = own_temps / "temps"
    opts = CompileSettings.from_options(
        target=a.target,
        scheduler=a.scheduler,
        function=a.function,
        time_limit=a.time_limit,
        work_limit=a.work_limit or None,
        input_shapes=tuple(a.input_shape),
        compare_tflm=a.compare_tflm,
        arena_entry=a.arena_entry,
        patches=a.patches,
        patch_overhead=a.patch_overhead,
        patch_min_gain=a.patch_min_gain,
        measure=not a.no_measure,
        verify_outputs=not a.no_verify_outputs,
        seed=a.seed,
        keep_temps=temps,
        extra_flags=a.iree_flag,
        memory_flags=a.memory_flags,
        quiet=a.quiet,
        memory_budget=a.memory_budget,
        rewrite=a.rewrite,
        rewrite_rtol=a.rewrite_rtol,
        rewrite_time_limit=a.rewrite_time_limit,
        placement=a.placement,
        memory_limit=a.memory_limit,
    )
    # Every requested output or none: the module, its report and the summary
    # on standard output are renamed into place together, once all of them
    # were written (output_batch); a full disk or a closed standard output
    # leaves none of them.
    with output_batch([p for _, p in outputs] + ([a.report] if a.report else [])):
        try:
            report = compile_model(a.model, a.output, opts, a.report)
        except BaseException as e:
            # A failed compile names the kept files in its message (a SerenityError); else they go.
            if own_temps is not None and not isinstance(e, SerenityError):
                shutil.rmtree(own_temps, ignore_errors=True)
            raise
        if a.plot is not None:
            try:
                plots.compile_plot(report, temps, a.plot)
            finally:
                if own_temps is not None:
                    shutil.rmtree(own_temps, ignore_errors=True)
            if not a.quiet:
                print(f"wrote {a.plot}", file=sys.stderr)
        write_stdout(json.dumps(summary(report), indent=2) + "\n")
    return 0


def _add_measure(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("measure", help="run a .vmfb on seeded random inputs and print its peak memory")
    p.add_argument("vmfb")
    p.add_argument("--function")
    p.add_argument(
        "--input", action="append", help="input tensor type, e.g. 1x8x32x32xf32 (for modules not built here)"
    )
    p.add_argument("--seed", type=nonneg_int_arg, default=0)
    p.add_argument("--repeat", type=nonneg_int_arg, default=0, help="also time this many calls (median latency)")


def _run_measure(a: argparse.Namespace) -> int:
    from serenity_mlir.runtime.local import measure

    write_stdout(json.dumps(measure(a.vmfb, a.function, a.input, a.seed, a.repeat), indent=2) + "\n")
    return 0


def _add_schedule_graph(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schedule-graph", help="schedule a plain graph given as JSON")
    p.add_argument("graph", help="GRAPH.json ('-' for standard input)")
    p.add_argument(
        "--work-limit",
        type=nonneg_int_arg,
        default=DEFAULT_WORK_LIMIT,
        help="sets the search may store in all before it answers with its best order (optimal: false, "
        f"stopped_by: work-limit); the same graph and limit give the same order on any machine "
        f"(default {DEFAULT_WORK_LIMIT:,}; 0: no limit)",
    )
    p.add_argument(
        "--time-limit",
        type=seconds_arg,
        default=TIME_LIMIT,
        help="seconds for the whole call, a backstop: a result it ended says stopped_by: time-limit and may "
        f"differ on another machine (default {TIME_LIMIT:g})",
    )
    p.add_argument(
        "--memory-limit",
        type=size_arg,
        help="bytes the search may keep stored, e.g. 512M (default: half the machine's available memory); "
        "reached, the search ends like at the time limit, with the best valid order and optimal: false",
    )
    p.add_argument("--scheduler", default="serenity", choices=SCHEDULERS)


def _run_schedule_graph(a: argparse.Namespace) -> int:
    from serenity_mlir.files import read_text
    from serenity_mlir.scheduler.graph import load_graph_json
    from serenity_mlir.scheduler.schedule import schedule

    if a.graph == "-":
        data = sys.stdin.buffer.read()
        try:
            text, source = data.decode("utf-8"), "<stdin>"
        except UnicodeDecodeError as e:
            raise GraphError(f"<stdin>: not a text file (not UTF-8 at byte {e.start})") from None
    else:
        text, source = read_text(a.graph, error=GraphError), a.graph
    g = load_graph_json(text, source)
    res = schedule(
        g, a.scheduler, time_limit=a.time_limit, work_limit=a.work_limit or None, memory_limit=a.memory_limit
    )
    out = {
        "order": res.names(g),
        "peak_bytes": res.peak_bytes,
        "optimal": res.optimal,
        "seconds": round(res.seconds, 6),
        "lower_bound_bytes": res.lower_bound_bytes,
        "states": res.states,
        "method": res.method,
        "tau_bytes": res.tau_bytes,
        "stopped_by": res.stopped_by,
    }
    write_stdout(json.dumps(out) + "\n")
    return 0


def _add_targets(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("targets", help="list the compilation targets")


def _run_targets(a: argparse.Namespace) -> int:
    from serenity_mlir.targets import available_targets

    lines = [f"{t.name:14} {t.triple:34} {t.output:15} {t.description}\n" for t in available_targets()]
    write_stdout("".join(lines))
    return 0


def _passthrough(name: str, module: str, help_text: str):  # type: ignore[no-untyped-def]
    """A subcommand whose options belong to the ``main`` of ``module``
    (imported when the subcommand runs)."""

    def add(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        sub.add_parser(name, help=help_text, add_help=False)

    def run(a: argparse.Namespace) -> int:
        import importlib

        main: Callable[[list[str]], int] = importlib.import_module(module).main
        return main(a.rest)

    return add, run


COMMANDS = {
    "compile": (_add_compile, _run_compile),
    "measure": (_add_measure, _run_measure),
    "schedule-graph": (_add_schedule_graph, _run_schedule_graph),
    "targets": (_add_targets, _run_targets),
    "bench": _passthrough(
        "bench",
        "serenity_mlir.bench.results",
        "compile and measure models under every baseline; write the results table",
    ),
    "bench-scheduler": _passthrough(
        "bench-scheduler", "serenity_mlir.bench.scheduler", "benchmark the scheduler on random and sample graphs"
    ),
    "bench-targets": _passthrough(
        "bench-targets", "serenity_mlir.bench.targets", "build models for every target: code size, arena, emulated runs"
    ),
    "bench-zoo": _passthrough(
        "bench-zoo",
        "serenity_mlir.bench.zoo",
        "compile every zoo model with the defaults and check it; write the zoo table",
    ),
    "bench-tflm": _passthrough(
        "bench-tflm",
        "serenity_mlir.bench.tflm",
        "TFLite Micro's arena beside ours for a microcontroller target, per .tflite model; write the table",
    ),
}


PASSTHROUGH = ("bench", "bench-scheduler", "bench-targets", "bench-zoo", "bench-tflm")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="serenity-mlir", description="Memory-aware scheduling of neural networks with IREE."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return ap


# Commands that need no temporary files (the others check $TMPDIR first).
NO_TEMP_FILES = ("schedule-graph", "targets")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        check_stdout()
        if args and args[0] in PASSTHROUGH:
            # These subcommands own their options (and their --help).
            a = argparse.Namespace(command=args[0], rest=args[1:])
        else:
            a = build_parser().parse_args(args)
        if a.command not in NO_TEMP_FILES:
            from serenity_mlir.files import check_temp_dir

            check_temp_dir()
        code = COMMANDS[a.command][1](a)
        write_stdout("")  # what a command printed is flushed here, its failure reported like any other
        return code
    except SystemExit as e:
        # argparse's own exit (--help, a bad option): its output may meet a closed stdout too.
        try:
            write_stdout("")
        except BaseException as flush_error:  # noqa: BLE001 - reported as one line
            return report_error(flush_error)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except BaseException as e:  # noqa: BLE001 - every failure ends in one reported line
        return report_error(e)


def entry() -> None:
    install_signal_handlers()
    sys.exit(main())


if __name__ == "__main__":
    entry()
