"""Errors that the tools turn into one clear line and a non-zero exit.

Every error names what is wrong and where (a file, an MLIR location, a node),
so that a user can act on it without reading a traceback.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class SerenityError(Exception):
    """Base of all errors the CLI reports as ``error: ...`` with exit code 1."""

    exit_code = 1


class InputError(SerenityError):
    """The user's input (model file, flags) cannot be used."""


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


class CompilerToolError(SerenityError):
    """An external tool (iree-compile, the runtime) failed.

    Keeps the command line and stderr, and prints a ready-to-paste reproducer,
    as IREE's own Python ``CompilerToolError`` does.
    """

    def __init__(self, what: str, command: Sequence[str], stderr: str) -> None:
        self.what = what
        self.command = list(command)
        self.stderr = stderr
        super().__init__(self._message())

    def _message(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-15:])
        return f"{self.what} failed\n{tail}\nreproduce with:\n  {shlex.join(self.command)}"
