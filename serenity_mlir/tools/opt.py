"""``serenity-opt``: MLIR in, MLIR out (for lit tests and iree-compile users).

A thin shim over the pass registry, in the style of ``xdsl-opt``:
``serenity-opt in.mlir -p 'serenity-schedule{scheduler=program}' -o out.mlir``.
The flags ``--serenity-schedule``, ``--serenity-rewrite``,
``--serenity-place`` and ``--serenity-print-graph`` add their pass where they stand on the command
line, and ``--scheduler``, ``--function``, ``--time-limit``, ``--work-limit``,
``--memory-limit``, ``--memory-model``, ``--no-serial-partitioning`` and ``--rewrite-sites`` set
that option of every pass that has it (a pass's own ``{option=value}`` wins).
Between ``iree-compile --compile-to=flow`` and ``--compile-from=flow`` the
output carries the serial partitioning attribute, so no extra flag is needed
to keep the order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serenity_mlir.errors import InputError
from serenity_mlir.tools.errors import check_stdout, install_signal_handlers, report_error, write_stdout

if TYPE_CHECKING:
    from serenity_mlir.passes.base import ModulePass

# The tool named in an internal error's line.
PROG = "serenity-opt"

# Legacy flags that name a pass, in the order they appear.
PASS_FLAGS = ("serenity-rewrite", "serenity-schedule", "serenity-print-graph")


class _Step(argparse.Action):
    """Collects passes (``-p`` pipelines and pass flags) in command-line order."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        steps = list(getattr(namespace, "steps", None) or [])
        steps.append(values if self.const is None else self.const)
        namespace.steps = steps


def build_parser() -> argparse.ArgumentParser:
    # Imported here, not at the top: the entry point installs its signal
    # handlers before anything heavy (the passes import IREE's bindings).
    from serenity_mlir.passes import REGISTRY

    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="an MLIR file ('-' for standard input)")
    ap.add_argument("-o", "--output", default="-")
    ap.add_argument(
        "-p", "--passes", action=_Step, dest="steps",
        help="pass pipeline, e.g. 'serenity-schedule{scheduler=program time-limit=5}'; passes: " + ", ".join(REGISTRY),
    )  # fmt: skip
    ap.add_argument(
        "--serenity-schedule", action=_Step, nargs=0, const="serenity-schedule", dest="steps",
        help="reorder the entry body by the schedule",
    )  # fmt: skip
    ap.add_argument(
        "--serenity-rewrite", action=_Step, nargs=0, const="serenity-rewrite", dest="steps",
        help="channel-/kernel-wise partitioning of concat -> convolution (linalg level)",
    )  # fmt: skip
    ap.add_argument(
        "--serenity-place", action=_Step, nargs=0, const="serenity-place", dest="steps",
        help="place the transient slab's slices (stream phase, after iree-stream-schedule-allocation)",
    )  # fmt: skip
    ap.add_argument(
        "--serenity-print-graph", action=_Step, nargs=0, const="serenity-print-graph", dest="steps",
        help="print the dataflow graph as JSON to stderr",
    )  # fmt: skip
    ap.add_argument("--rewrite-sites", help="comma-separated concat site indices to rewrite (default: every one)")
    ap.add_argument("--serenity-print-sites", action="store_true", help="print the rewrite sites as JSON to stderr")
    ap.add_argument("--scheduler")
    ap.add_argument("--function")
    ap.add_argument("--time-limit")
    ap.add_argument("--work-limit", help="sets the scheduler's search may store in all (repeatable results)")
    ap.add_argument("--memory-limit", help="bytes the scheduler's search may keep stored, e.g. 512M")
    ap.add_argument("--memory-model")
    ap.add_argument(
        "--no-serial-partitioning", action="store_true", help="do not add the stream.partitioning attribute"
    )
    ap.add_argument("--mlir-print-debuginfo", action="store_true")
    return ap


def _shared_options(a: argparse.Namespace) -> dict[str, str]:
    """The global flags as option strings, by option name."""
    shared = {
        "scheduler": a.scheduler,
        "function": a.function,
        "time-limit": a.time_limit,
        "work-limit": a.work_limit,
        "memory-limit": a.memory_limit,
        "memory-model": a.memory_model,
        "sites": a.rewrite_sites,
        "serial": "false" if a.no_serial_partitioning else None,
    }
    return {k: v for k, v in shared.items() if v is not None}


def make_passes(a: argparse.Namespace) -> list[ModulePass]:
    from serenity_mlir.passes import REGISTRY
    from serenity_mlir.passes.base import make_pass, options_of, parse_pipeline

    shared = _shared_options(a)
    passes = []
    for step in a.steps or []:
        for cls, own in parse_pipeline(step, REGISTRY):
            opts = {k: v for k, v in shared.items() if k in options_of(cls)}
            opts.update(own)
            where = f"pass {cls.name}"  # type: ignore[attr-defined]
            passes.append(make_pass(cls, opts, where))
    return passes


def _read_stdin() -> str:
    """Standard input as MLIR text (one error line, naming it, when it is not)."""
    data = sys.stdin.buffer.read()
    if data.startswith(b"ML\xefR"):
        raise InputError("<stdin>: MLIR bytecode on standard input: give it as a file name")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"<stdin>: not MLIR text (not UTF-8 at byte {e.start})") from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if not any(t in ("-o", "--output") or t.startswith(("--output=", "-o")) for t in args):
            check_stdout()  # the module goes to standard output: usable?
        a = build_parser().parse_args(args)
    except SystemExit as e:
        # argparse's own exit (--help, a bad option): its output may meet a closed stdout too.
        try:
            write_stdout("")
        except BaseException as flush_error:  # noqa: BLE001 - reported as one line
            return report_error(flush_error, PROG)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except BaseException as e:  # noqa: BLE001 - every failure ends in one reported line
        return report_error(e, PROG)
    try:
        from serenity_mlir.files import atomic_write, check_name_length
        from serenity_mlir.ir import mlir as mlir_io
        from serenity_mlir.passes import SerenityPatch, SerenityRewrite
        from serenity_mlir.pipeline.paths import check_writable

        passes = make_passes(a)
        if a.output != "-":
            # Found now, not after the passes ran.
            check_name_length(a.output, "-o")
            check_writable(Path(a.output), "-o", devices=True)
        ctx = mlir_io.new_context()
        if a.input == "-":
            module = mlir_io.parse_module(_read_stdin(), "<stdin>", ctx)
        else:
            module = mlir_io.load_module(a.input, ctx)
        for p in passes:
            try:
                outcome = p.apply(module)
            except InputError as e:
                # The pass knows the module, not the file: name it (unless
                # the message is located in it already).
                source = "<stdin>" if a.input == "-" else a.input
                if e.args and source not in str(e):
                    e.args = (f"{source}: {e}",)
                raise
            if isinstance(p, SerenityPatch) and not outcome.applied:  # type: ignore[attr-defined]
                # Left alone by design (a stage that cannot take the grid), but said:
                # the output is the input module, not what was asked for.
                source = "<stdin>" if a.input == "-" else a.input
                print(f"note: serenity-patch left {source} as it was: {outcome.reason}", file=sys.stderr)  # type: ignore[attr-defined]
            if isinstance(p, SerenityRewrite) and a.serenity_print_sites:
                sites = [s.to_json() for s in outcome.sites]  # type: ignore[attr-defined]
                print(json.dumps({"sites": sites, "applied": list(outcome.applied)}), file=sys.stderr)  # type: ignore[attr-defined]
        text = mlir_io.module_to_text(module, debuginfo=a.mlir_print_debuginfo)
        if a.output == "-":
            write_stdout(text)
        else:
            atomic_write(a.output, text)
    except BaseException as e:  # noqa: BLE001 - every failure ends in one reported line
        return report_error(e, PROG)
    return 0


def entry() -> None:
    install_signal_handlers()
    sys.exit(main())


if __name__ == "__main__":
    entry()
