"""Step 2, lower: IREE takes the model to the dispatch level (``flow``).

After this phase each ``flow.dispatch`` in the entry body is one real kernel
after fusion, so this is where a schedule is truthful (input-level ops do not
map 1:1 to dispatches). The target flags are given here already: IREE fixes
the device target in the module at this phase.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serenity_mlir.ir.tools import iree_compile
from serenity_mlir.pipeline.importer import Imported
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.targets import Target


@dataclass(frozen=True)
class Lowered:
    input_file: Path  # the imported model as IREE reads it
    flow_file: Path
    seconds: float


def write_input(imported: Imported, work: WorkFolder) -> Path:
    """Writes the imported model where IREE (and a reproducer) reads it."""
    binary = isinstance(imported.mlir, bytes)
    src = work.model_input(binary)
    src.write_bytes(imported.mlir if isinstance(imported.mlir, bytes) else imported.mlir.encode())
    return src


def lower_to_flow(input_file: Path, out: Path, target: Target) -> float:
    """``iree-compile --compile-to=flow`` of ``input_file`` into ``out``; returns seconds."""
    t0 = time.perf_counter()
    iree_compile(
        [str(input_file), "--compile-to=flow", *target.flag_list(), "-o", str(out)],
        what="lowering to the flow phase (iree-compile --compile-to=flow)",
    )
    return time.perf_counter() - t0


def lower(imported: Imported, work: WorkFolder, target: Target) -> Lowered:
    return lower_input(write_input(imported, work), work, target)


def lower_input(src: Path, work: WorkFolder, target: Target) -> Lowered:
    """The imported module already in the work folder, lowered to the flow
    phase again (e.g. with other flags): the input file is not rewritten, so
    a compile still reading it (the background reference) is undisturbed."""
    return Lowered(src, work.flow, lower_to_flow(src, work.flow, target))


def lower_to_linalg(input_file: Path, out: Path, target: Target, extra_flags: list[str] | None = None) -> Path:
    """``iree-compile --compile-to=input``: the linalg-on-tensors module the
    rewrite works on (every frontend ends up here). ``extra_flags``: flags
    for this step only (e.g. ``--mlir-print-debuginfo``); the build's own are
    the target's."""
    iree_compile(
        [str(input_file), "--compile-to=input", *target.flag_list(), *(extra_flags or []), "-o", str(out)],
        what="lowering to linalg (iree-compile --compile-to=input)",
    )
    return out


def lower_linalg_to_flow(
    src: Path,
    out: Path,
    target: Target,
    *,
    what: str,
    extra_flags: list[str] | None = None,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Path:
    """``iree-compile --compile-from=input --compile-to=flow`` (a rewritten
    module); ``started`` gets the process (to kill it from another thread)."""
    flags = [*target.flag_list(), *(extra_flags or [])]
    iree_compile([str(src), "--compile-from=input", "--compile-to=flow", *flags, "-o", str(out)], what, started)
    return out
