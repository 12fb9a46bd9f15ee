"""Running IREE's command-line tools, with reproducible errors.

iree-compile runs as a subprocess rather than in process: each phase gets a
clean compiler state, a failure cannot take the driver down, and every
failure comes with the exact command line to paste (CompilerToolError).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from serenity_mlir.errors import CompilerToolError, InputError


def tool_path(name: str) -> str:
    """Locates a tool shipped with the iree-base-* wheels."""
    from iree.compiler.tools import binaries

    try:
        return binaries.find_tool(name)
    except Exception:  # noqa: BLE001 - the wheel's lookup raises its own type
        pass
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise InputError(f"cannot find the IREE tool '{name}' (is iree-base-compiler installed?)")


def run_tool(what: str, args: Sequence[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise CompilerToolError(what + f" (timed out after {timeout} s)", args, str(e.stderr or "")) from None
    if proc.returncode != 0:
        raise CompilerToolError(what, args, proc.stderr)
    return proc


def iree_compile(args: Sequence[str], what: str = "iree-compile") -> subprocess.CompletedProcess[str]:
    return run_tool(what, [tool_path("iree-compile"), *args])
