"""Step 5, compile: finish compiling a (scheduled) flow-level module.

``--compile-from=flow`` with the target's flags; the output is written to a
temporary file beside the destination and renamed, so a failed compile never
leaves a half-written module.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from serenity_mlir.iree_tools import iree_compile
from serenity_mlir.targets import Target


def compile_flow(flow_file: Path, out: Path, target: Target, extra_flags: list[str] | None = None) -> float:
    """Compiles ``flow_file`` into ``out``; returns the seconds it took."""
    return _compile([str(flow_file), "--compile-from=flow"], out, target, extra_flags, "compiling from the flow phase")


def compile_input(input_file: Path, out: Path, target: Target, extra_flags: list[str] | None = None) -> float:
    """IREE's own full compile of an input-level module (the baselines)."""
    return _compile([str(input_file)], out, target, extra_flags, "compiling with IREE")


def _compile(head: list[str], out: Path, target: Target, extra: list[str] | None, what: str) -> float:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    t0 = time.perf_counter()
    try:
        iree_compile([*head, *target.flag_list(), *(extra or []), "-o", str(tmp)], what=what)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return time.perf_counter() - t0
