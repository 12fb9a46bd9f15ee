"""``python -m serenity_mlir.tools.deploy``: the build-and-inspect commands
CMake and the target lit tests use.

``build`` is ``serenity-mlir compile --no-measure`` with a one-line summary
(code size, arena, RAM) for build logs; ``run-emulated`` runs an aarch64
module under qemu; ``fetch-runtime`` fetches the aarch64 runtime;
``inspect`` reads an object file's sizes and symbols.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from serenity_mlir.backend.elf import ELF_TYPES, read_elf
from serenity_mlir.files import atomic_write
from serenity_mlir.pipeline.driver import compile_model
from serenity_mlir.pipeline.paths import check_paths
from serenity_mlir.runtime.qemu import ensure_aarch64_runtime, run_emulated
from serenity_mlir.settings import TIME_LIMIT, CompileSettings
from serenity_mlir.tools.errors import install_signal_handlers, report_error
from serenity_mlir.units import nonneg_int_arg, seconds_arg


def _summary_line(r: dict[str, Any]) -> str:
    def kib(n: int | None) -> str:
        return "?" if n is None else f"{n / 1024:.1f} KiB"

    fit = {True: "fits", False: "does NOT fit", None: ""}[r.get("fits_sram")]
    sram = f" ({fit} {kib(r['sram_bytes'])} SRAM)" if r.get("sram_bytes") else ""
    return (
        f"{Path(r['model']).name} -> {r['target']}: code {kib(r['code_size_bytes'])}, "
        f"arena {kib(r['arena_bytes'])}, RAM {kib(r['ram_bytes'])}{sram}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serenity_mlir.tools.deploy", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile a model for a target and report code size and arena")
    b.add_argument("model")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--target", required=True)
    b.add_argument("--scheduler", default="serenity")
    b.add_argument("--function")
    b.add_argument("--time-limit", type=seconds_arg, default=TIME_LIMIT)
    b.add_argument("--memory-budget", help="fail if the RAM need exceeds this, e.g. 256K")
    b.add_argument("--report", help="write the JSON report here")
    b.add_argument("--keep-temps", type=Path)
    b.add_argument("--iree-flag", action="append", default=[])
    b.add_argument("-q", "--quiet", action="store_true", help="print a one-line summary instead of the report")
    r = sub.add_parser("run-emulated", help="run an aarch64 module under qemu-aarch64")
    r.add_argument("vmfb")
    r.add_argument("--target", required=True)
    r.add_argument("--function")
    r.add_argument("--input", action="append")
    r.add_argument("--seed", type=nonneg_int_arg, default=0)
    sub.add_parser("fetch-runtime", help="download the aarch64 iree-run-module; print its path")
    i = sub.add_parser("inspect", help="sizes and symbols of an object file")
    i.add_argument("object")
    a = ap.parse_args(argv)
    try:
        if a.command == "build":
            if a.report:
                # Checked now, not after the compile.
                reads = [("the model", Path(a.model))]
                check_paths(reads, [("-o", Path(a.output)), ("--report", Path(a.report))])
            options = CompileSettings.from_options(
                target=a.target,
                scheduler=a.scheduler,
                function=a.function,
                time_limit=a.time_limit,
                measure=False,
                verify_outputs=False,
                keep_temps=a.keep_temps,
                extra_flags=list(a.iree_flag),
                quiet=True,
                memory_budget=a.memory_budget,
            )
            out = compile_model(a.model, a.output, options)
            # The build-only view CMake and the summary line read.
            out["arena_bytes"] = out["iree_arena_bytes"]
            if a.report:
                atomic_write(a.report, json.dumps(out, indent=2) + "\n")
            if a.quiet:
                print(_summary_line(out))
                return 0
        elif a.command == "run-emulated":
            out = run_emulated(a.vmfb, a.target, a.function, a.input, a.seed)
        elif a.command == "fetch-runtime":
            print(ensure_aarch64_runtime())
            return 0
        else:
            elf = read_elf(a.object)
            out = {
                "bits": elf.bits,
                "machine": elf.machine_name,
                "type": ELF_TYPES.get(elf.file_type),
                "code_size_bytes": elf.code_size_bytes,
                "sections": elf.size_summary(),
                "library_query_symbols": sorted(s for s in elf.defined_globals() if s.endswith("_library_query")),
            }
    except BaseException as e:  # noqa: BLE001 - every failure ends in one reported line
        return report_error(e)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    install_signal_handlers()
    sys.exit(main())
