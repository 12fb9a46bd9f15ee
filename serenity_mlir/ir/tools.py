"""Running IREE's command-line tools (and qemu), with reproducible errors.

Every external tool runs through :func:`run_tool`: one place that keeps the
command line and stderr of a failure (``CompilerToolError`` prints a
ready-to-paste reproducer), turns a tool that cannot start into that same
error, applies a timeout, and kills the child when the driver is interrupted
(any exception in the waiting thread, Ctrl-C and the CLI's signal handlers
included) or when another thread cancels it (``started``). iree-compile runs as a
subprocess rather than in process: each phase gets a clean compiler state and
a failure cannot take the driver down.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
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
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs ``args``; a non-zero exit (with ``check``), a timeout or a tool
    that cannot start raises CompilerToolError naming ``what``, with
    ``reproducer`` (default: ``args``) as the command to paste.

    The child is killed (and reaped) whenever this call does not return
    normally: a timeout, Ctrl-C or the CLI's signal handlers in this thread.
    ``started`` gets the process as soon as it runs, so another thread can
    kill it (a background compile cancelled when its job ends); a tool
    killed that way ends like any failed tool. Its output is decoded as
    UTF-8, undecodable bytes replaced."""
    cmd = list(args)
    try:
        p = subprocess.Popen(
            cmd, cwd=cwd, stdin=subprocess.PIPE if stdin is not None else None,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace",
            env=dict(env) if env is not None else None,
        )  # fmt: skip
    except OSError as e:
        why = e.strerror or str(e)
        raise CompilerToolError(what + f" (could not start {cmd[0]}: {why})", reproducer or cmd, "") from None
    with p:
        try:
            if started is not None:
                started(p)
            out, err = p.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            raise CompilerToolError(what + f" (timed out after {timeout:g} s)", reproducer or cmd, err or "") from None
        except BaseException:
            p.kill()
            p.wait()
            raise
    proc = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    if check and proc.returncode != 0:
        raise CompilerToolError(what, reproducer or cmd, proc.stderr)
    return proc


def iree_compile(
    args: Sequence[str],
    what: str = "iree-compile",
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    return run_tool(what, [tool_path("iree-compile"), *args], started=started)
