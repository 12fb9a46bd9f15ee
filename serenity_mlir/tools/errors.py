"""How the command-line tools end on an error.

A problem with the user's input (a :class:`SerenityError`) is one line,
``error: ...``, and the error's exit code (1 bad input, 2 bad graph); a
failed tool (:class:`CompilerToolError`) prints its stderr tail and the
reproducer command on the lines before that one line. A bug (an :class:`InternalError`
or any other exception) keeps its traceback, asks for a report and exits
with 70, so it is never mistaken for bad input. An interrupt exits with 130.
"""

from __future__ import annotations

import signal
import sys
import traceback
from types import FrameType

from serenity_mlir.errors import CompilerToolError, InternalError, SerenityError

EXIT_INTERNAL = InternalError.exit_code
EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM (or a first SIGINT), raised where the tool happens to be, so
    every ``finally`` runs: ``subprocess.run`` kills its child, the work
    folder and any half-written output are removed."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Further signals would interrupt the clean-up itself (and print a
    # traceback from wherever it is): the first one wins.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    """For the console entry points (the main thread of a CLI process)."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def report_error(e: BaseException) -> int:
    """Prints ``e`` the way the tools do and returns the exit code."""
    if isinstance(e, KeyboardInterrupt):
        why = f" by {e.args[0]}" if isinstance(e, Terminated) and e.args else ""
        print(f"error: interrupted{why}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    if isinstance(e, SystemExit):
        raise e
    if isinstance(e, SerenityError) and not isinstance(e, InternalError):
        if isinstance(e, CompilerToolError):
            # The tool's stderr tail and the reproducer first: the error
            # itself is the last line.
            print(e.details, file=sys.stderr, flush=True)
        print(f"error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    traceback.print_exception(e, file=sys.stderr)
    print(
        f"error: internal error in serenity-mlir ({type(e).__name__}: {e}); please report it with the command line "
        "and the traceback above",
        file=sys.stderr,
        flush=True,
    )
    return EXIT_INTERNAL
