"""Running IREE's command-line tools (and qemu), with reproducible errors.

Every external tool runs through :func:`run_tool`: one place that keeps the
command line and stderr of a failure (``CompilerToolError`` prints a
ready-to-paste reproducer), applies a timeout, and kills the child when the
driver is interrupted (``subprocess.run`` kills its child on any exception,
Ctrl-C and the CLI's SIGTERM handler included). iree-compile runs as a
subprocess rather than in process: each phase gets a clean compiler state and
a failure cannot take the driver down.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
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


def run_tool(
    what: str,
    args: Sequence[str],
    timeout: float | None = None,
    *,
    cwd: str | Path | None = None,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    reproducer: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs ``args``; a non-zero exit (with ``check``) or a timeout raises
    CompilerToolError naming ``what``, with ``reproducer`` (default: ``args``)
    as the command to paste."""
    cmd = list(args)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, input=stdin,
            env=dict(env) if env is not None else None,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else str(e.stderr or "")
        raise CompilerToolError(what + f" (timed out after {timeout} s)", reproducer or cmd, err) from None
    except OSError as e:
        raise CompilerToolError(what + f" (could not start {cmd[0]}: {e.strerror})", reproducer or cmd, "") from None
    if check and proc.returncode != 0:
        raise CompilerToolError(what, reproducer or cmd, proc.stderr)
    return proc


def iree_compile(args: Sequence[str], what: str = "iree-compile") -> subprocess.CompletedProcess[str]:
    return run_tool(what, [tool_path("iree-compile"), *args])
