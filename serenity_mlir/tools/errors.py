"""How the command-line tools end on an error.

A problem with the user's input (a :class:`SerenityError`) is one line,
``error: ...``, and the error's exit code. A bug (an :class:`InternalError`
or any other exception) keeps its traceback, asks for a report and exits
with 70, so it is never mistaken for bad input. An interrupt exits with 130.
"""

from __future__ import annotations

import sys
import traceback

from serenity_mlir.errors import InternalError, SerenityError

EXIT_INTERNAL = InternalError.exit_code
EXIT_INTERRUPTED = 130


def report_error(e: BaseException) -> int:
    """Prints ``e`` the way the tools do and returns the exit code."""
    if isinstance(e, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    if isinstance(e, SystemExit):
        raise e
    if isinstance(e, SerenityError) and not isinstance(e, InternalError):
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
