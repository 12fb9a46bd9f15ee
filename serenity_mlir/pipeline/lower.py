"""Step 2, lower: IREE takes the model to the dispatch level (``flow``).

After this phase each ``flow.dispatch`` in the entry body is one real kernel
after fusion, so this is where a schedule is truthful (input-level ops do not
map 1:1 to dispatches). The target flags are given here already: IREE fixes
the device target in the module at this phase.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from serenity_mlir.ir.tools import iree_compile
from serenity_mlir.targets import Target


def lower_to_flow(mlir: str | bytes, target: Target, workdir: Path, extra_flags: list[str] | None = None) -> Path:
    """Writes ``workdir/model.flow.mlir`` and returns its path."""
    suffix = ".mlirbc" if isinstance(mlir, bytes) else ".mlir"
    src = workdir / f"model.input{suffix}"
    src.write_bytes(mlir if isinstance(mlir, bytes) else mlir.encode())
    out = workdir / "model.flow.mlir"
    iree_compile(
        [str(src), "--compile-to=flow", *target.flag_list(), *(extra_flags or []), "-o", str(out)],
        what="lowering to the flow phase (iree-compile --compile-to=flow)",
    )
    return out


def new_workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="serenity-")
