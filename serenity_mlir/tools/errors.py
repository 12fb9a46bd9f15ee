"""How the command-line tools end on an error.

A problem with the user's input (a :class:`SerenityError`) is one line,
``error: ...``, and the error's exit code (1 bad input, 2 bad graph); a
failed tool (:class:`CompilerToolError`) prints its stderr tail and the
reproducer command on the lines before that one line. A bug (an :class:`InternalError`
or any other exception) keeps its traceback, asks for a report and exits
with 70, so it is never mistaken for bad input. An interrupt (SIGINT, SIGTERM,
SIGHUP, SIGQUIT) exits with 130.

Standard output: a closed pipe (``| head -0``) ends the tool quietly, as it
ends the usual Unix tools (exit 141, 128 + SIGPIPE, no message); a device
that cannot take the output (``> /dev/full``) is one error line, exit 1.

This module is imported before anything heavy (the console entry points
install the signal handlers first), so it imports nothing but the errors.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import stat
import sys
from types import FrameType

from serenity_mlir.errors import CompilerToolError, InputError, InternalError, SerenityError

EXIT_INTERNAL = InternalError.exit_code
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE
# Handled like SIGTERM: Ctrl-C, kill, the terminal closed (ssh dropped), Ctrl-backslash.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class StdoutClosed(Exception):
    """Standard output is a pipe nobody reads any more: a quiet end."""


def _silence_stdout() -> None:
    """After a failed write: later flushes (at exit too) go nowhere, so no
    second error or "Exception ignored" line follows the first."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def _stdout_error(e: OSError) -> BaseException:
    if e.errno == errno.EPIPE:
        return StdoutClosed()
    why = "no space left on the device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    return InputError(f"standard output: cannot be written ({why})")


def write_stdout(text: str) -> None:
    """Writes ``text`` to standard output and flushes it: a closed pipe
    raises :class:`StdoutClosed`, any other failure (a full disk or device)
    an InputError naming standard output."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as e:
        _silence_stdout()
        raise _stdout_error(e) from None


def check_stdout() -> None:
    """Before any work: standard output a pipe whose reader is gone raises
    :class:`StdoutClosed`; a device that refuses writes (``/dev/full``) an
    InputError. (A disk that fills later is found when the output is
    written.)"""
    try:
        fd = sys.stdout.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        return
    if stat.S_ISFIFO(mode):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if any(ev & select.POLLERR for _, ev in poller.poll(0)):
            _silence_stdout()
            raise StdoutClosed()
    elif stat.S_ISCHR(mode):
        try:
            os.write(fd, b"")
        except OSError as e:
            _silence_stdout()
            raise _stdout_error(e) from None


class Terminated(KeyboardInterrupt):
    """The first of SIGINT, SIGTERM, SIGHUP or SIGQUIT, raised where the
    tool happens to be, so every ``finally`` runs: ``run_tool`` kills its
    child, the work folder and any half-written output are removed."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Further signals would interrupt the clean-up itself (and print a
    # traceback from wherever it is): the first one wins.
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    """For the console entry points (the main thread of a CLI process),
    before their heavy imports: a signal while Python still imports ends the
    run like one during the work, with one line and exit 130."""
    for sig in SIGNALS:
        signal.signal(sig, _on_signal)


def one_line(text: str) -> str:
    """``text`` on one line: a message that quotes a tool's or a library's
    lines (ONNX's shape inference, IREE's runtime with its VM stack) keeps
    every line, joined, so the error is still the one last line."""
    return " ".join(ln.strip() for ln in str(text).splitlines() if ln.strip())


def _signal_behind(e: BaseException) -> BaseException:
    """The signal's :class:`Terminated` when ``e`` only wraps it: a signal
    that lands while Python runs a hook of its own is re-raised wrapped (a
    class body's ``__set_name__`` during an import gives a RuntimeError
    whose cause is the signal), or a clean-up it interrupted failed on top
    of it. Else ``e``."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, Terminated):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return e


def report_error(e: BaseException, prog: str = "serenity-mlir") -> int:
    """Prints ``e`` the way the tools do and returns the exit code
    (``prog``: the tool named in an internal error's line)."""
    if isinstance(e, (StdoutClosed, BrokenPipeError)):
        _silence_stdout()
        return EXIT_CLOSED_PIPE
    e = _signal_behind(e)
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
        print(f"error: {one_line(str(e))}", file=sys.stderr, flush=True)
        return e.exit_code
    import traceback

    traceback.print_exception(e, file=sys.stderr)
    print(
        f"error: internal error in {prog} ({type(e).__name__}: {one_line(str(e))}); please report it with the "
        "command line and the traceback above",
        file=sys.stderr,
        flush=True,
    )
    return EXIT_INTERNAL
