"""Errors that the tools turn into one clear line and a non-zero exit.

Every error names what is wrong and where (a file, an MLIR location, a node),
so that a user can act on it without reading a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence


class SerenityError(Exception):
    """Base of all errors the CLI reports as ``error: ...`` with exit code 1."""

    exit_code = 1


class InputError(SerenityError):
    """The user's input (model file, flags) cannot be used."""


class ControlFlowError(InputError):
    """The function body holds control flow (a loop or branch: what ONNX's
    recurrent layers and Loop/Scan/If lower to); only straight-line bodies
    are scheduled. The driver names the model's nodes behind it."""


class GraphError(SerenityError):
    """A graph or schedule is malformed (bad JSON, unknown name, cycle)."""

    exit_code = 2


class ScheduleError(SerenityError):
    """A schedule could not be made or applied (never silently skipped)."""


class BudgetError(SerenityError):
    """The schedule's memory need exceeds the user's budget."""


class InternalError(SerenityError):
    """A bug in serenity-mlir, not a problem with the user's input.

    The CLI prints it with its traceback and asks for a report, and exits
    with its own code, so it is never mistaken for bad input."""

    exit_code = 70  # EX_SOFTWARE


class FunctionChoiceError(InputError):
    """The module has no public function, several, or not the one asked
    for. Raised where only the module is known (a flow file in the work
    folder): the driver and serenity-opt put the user's file in front."""


class CompilerToolError(SerenityError):
    """An external tool (iree-compile, the runtime) failed.

    ``str(e)`` is one line: what failed and the tool's first error. The tail
    of the tool's stderr and a ready-to-paste reproducer (as IREE's own
    Python ``CompilerToolError`` gives) are in :attr:`details`, which the
    CLI prints on the lines before that one line.
    """

    def __init__(self, what: str, command: Sequence[str], stderr: str) -> None:
        self.what = what
        self.command = list(command)
        self.stderr = stderr
        # Where in the user's model the failure is, when the caller knows
        # (e.g. the ONNX nodes of an op IREE cannot lower).
        self.hint: str | None = None
        super().__init__(self.summary())

    def first_error(self) -> str:
        """The first cause the tool gave, for the one-line message: a line
        that names a known cause (LLVM's unknown CPU or feature, a temporary
        file that could not be made), else its first error line, else its
        first line. LLVM's last words ("LLVM ERROR: 64-bit code requested on
        a subtarget that doesn't support it!") follow the cause, they are
        not it."""
        lines = [ln.strip() for ln in _without_tracebacks(self.stderr.splitlines()) if ln.strip()]
        for ln in lines:
            m = _CAUSE.search(ln)
            if m:
                return _shorten(m.group(0).strip())
        for ln in lines:
            if re.search(r"\berror\b", ln, re.IGNORECASE):
                return _shorten(ln)
        return _shorten(lines[0]) if lines else ""

    def summary(self, kept: str | os.PathLike[str] | None = None) -> str:
        """The one line; ``kept``: the folder that holds the reproducer's files."""
        text = f"{self.what} failed"
        first = self.first_error()
        if first:
            text += f": {first}"
        if self.hint:
            text += f"; {self.hint}"
        if kept is not None:
            text += f"; files kept in {kept}"
        return text + " (reproduce with the command above)"

    @property
    def details(self) -> str:
        """The tool's stderr tail (indented; Python tracebacks cut to their
        last line) and the reproducer command."""
        tail = [ln for ln in _without_tracebacks(self.stderr.strip().splitlines()) if ln.strip()][-15:]
        lines = [f"  {ln}" for ln in tail]
        return "\n".join([*lines, "reproduce with:", f"  {shlex.join(self.command)}"])


# Lines that say why a tool failed, where its error line does not.
_CAUSE = re.compile(
    r"'[^']*' is not a recognized (?:processor|feature) for this target"
    r"|failed to generate temporary file: .*?(?=Please report|$)"
)


def _without_tracebacks(lines: Sequence[str]) -> list[str]:
    """Drops the frames of Python tracebacks (a child's), keeps the exception line."""
    out: list[str] = []
    in_tb = False
    for ln in lines:
        if ln.startswith("Traceback (most recent call last)"):
            in_tb = True
            continue
        if in_tb and (ln.startswith((" ", "\t")) or not ln.strip()):
            continue
        in_tb = False
        out.append(ln)
    return out


def _shorten(line: str, limit: int = 300) -> str:
    return line if len(line) <= limit else line[: limit - 3] + "..."
