"""``serenity-opt``: MLIR in, MLIR out (for lit tests and iree-compile users).

A thin shim over the passes, in the style of ``xdsl-opt``:
``serenity-opt in.mlir --serenity-schedule [--scheduler program] -o out.mlir``
or ``-p serenity-schedule``; ``--serenity-rewrite`` (``-p serenity-rewrite``)
runs the identity graph rewriting on a linalg-level module (after
``iree-compile --compile-to=input``). Between ``iree-compile --compile-to=flow`` and
``--compile-from=flow`` the output carries the serial partitioning attribute,
so no extra flag is needed to keep the order.
"""

from __future__ import annotations

import argparse
import json
import sys

from serenity_mlir.errors import InputError, SerenityError
from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.scheduler.schedule import SCHEDULERS

PASSES = ("serenity-rewrite", "serenity-schedule", "serenity-print-graph")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="serenity-opt")
    ap.add_argument("input", help="an MLIR file ('-' for standard input)")
    ap.add_argument("-o", "--output", default="-")
    ap.add_argument("-p", "--passes", default="", help="comma-separated passes: " + ", ".join(PASSES))
    ap.add_argument("--serenity-schedule", action="store_true", help="reorder the entry body by the schedule")
    ap.add_argument(
        "--serenity-rewrite",
        action="store_true",
        help="channel-/kernel-wise partitioning of concat -> convolution (linalg level)",
    )
    ap.add_argument(
        "--rewrite-sites",
        help="comma-separated concat site indices to rewrite (default: every applicable one)",
    )
    ap.add_argument("--serenity-print-sites", action="store_true", help="print the rewrite sites as JSON to stderr")
    ap.add_argument("--serenity-print-graph", action="store_true", help="print the dataflow graph as JSON to stderr")
    ap.add_argument("--scheduler", default="serenity", choices=SCHEDULERS)
    ap.add_argument("--function")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--memory-model", default="iree", choices=("iree", "paper"))
    ap.add_argument(
        "--no-serial-partitioning", action="store_true", help="do not add the stream.partitioning attribute"
    )
    ap.add_argument("--mlir-print-debuginfo", action="store_true")
    a = ap.parse_args(argv)
    passes = [p for p in a.passes.split(",") if p]
    if a.serenity_rewrite:
        passes.append("serenity-rewrite")
    if a.serenity_schedule:
        passes.append("serenity-schedule")
    if a.serenity_print_graph:
        passes.insert(0, "serenity-print-graph")
    try:
        for p in passes:
            if p not in PASSES:
                raise InputError(f"unknown pass '{p}' (known: {', '.join(PASSES)})")
        ctx = mlir_io.new_context()
        if a.input == "-":
            module = mlir_io.parse_module(sys.stdin.read(), "<stdin>", ctx)
        else:
            module = mlir_io.load_module(a.input, ctx)
        for p in passes:
            _run_pass(p, module, a)
        text = mlir_io.module_to_text(module, debuginfo=a.mlir_print_debuginfo)
        if a.output == "-":
            sys.stdout.write(text)
        else:
            atomic_write(a.output, text)
    except SerenityError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _run_pass(name: str, module: object, a: argparse.Namespace) -> None:
    from serenity_mlir.analysis.dataflow import build_body_graph, find_body_function
    from serenity_mlir.passes.schedule import SerenitySchedule
    from serenity_mlir.scheduler.graph import to_json

    if name == "serenity-print-graph":
        _, func = find_body_function(module, a.function)  # type: ignore[arg-type]
        body = build_body_graph(func, a.memory_model)
        print(json.dumps(to_json(body.graph)), file=sys.stderr)
    elif name == "serenity-rewrite":
        from serenity_mlir.passes.rewrite import SerenityRewrite

        sites = None
        if a.rewrite_sites is not None:
            try:
                sites = tuple(int(x) for x in a.rewrite_sites.split(",") if x.strip())
            except ValueError:
                raise InputError(
                    f"--rewrite-sites: expected comma-separated integers, got '{a.rewrite_sites}'"
                ) from None
        outcome = SerenityRewrite(function=a.function, sites=sites).apply(module)  # type: ignore[arg-type]
        if a.serenity_print_sites:
            print(json.dumps({"sites": outcome.sites, "applied": list(outcome.applied)}), file=sys.stderr)
    elif name == "serenity-schedule":
        SerenitySchedule(
            scheduler=a.scheduler,
            function=a.function,
            time_limit=a.time_limit,
            serial=not a.no_serial_partitioning,
            model=a.memory_model,
        ).apply(module)  # type: ignore[arg-type]


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
