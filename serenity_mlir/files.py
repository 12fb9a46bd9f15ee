"""Reading inputs and writing outputs, with one clear error for each way a
path can be wrong, and never half a file left behind.

Every output is first written to a hidden sibling (``.NAME.XXXXXXXX.tmp``,
its name cut to fit the file system's name limit however long ``NAME`` is)
and renamed over its destination. Inside :func:`output_batch`, the renames
wait for the end of the block: a command with several outputs (a module, its
report, what it prints) leaves all of them or none.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from serenity_mlir.errors import InputError, SerenityError

T = TypeVar("T")


def _why(e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EISDIR:
        return "is a directory, not a file"
    if e.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a directory"
    if e.errno == errno.ENOENT:
        return "no such file"
    if e.errno == errno.ENOSPC:
        return "no space left on the device"
    if e.errno == errno.EROFS:
        return "read-only file system"
    if e.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return e.strerror or str(e)


# The file name limit when the file system cannot be asked (Linux, macOS).
NAME_MAX = 255


def name_max(folder: str | os.PathLike[str]) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or of
    its nearest existing parent) takes."""
    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return int(os.pathconf(p, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def check_name_length(path: str | os.PathLike[str], what: str = "") -> None:
    """InputError when ``path`` has a component longer than its file system
    allows: found before any work, not when the output is written."""
    p = Path(path)
    limit = name_max(p.parent)
    for part in p.parts:
        size = len(os.fsencode(part))
        if size > limit:
            label = f"{what} {p}" if what else str(p)
            short = part if len(part) <= 40 else part[:20] + "..." + part[-12:]
            raise InputError(
                f"{label}: the file name '{short}' is {size} bytes, longer than the file system allows ({limit})"
            )


def _hidden_prefix(dest: Path, reserve: int) -> str:
    """``.NAME.`` for a hidden sibling of ``dest``, ``NAME`` cut so the
    prefix plus ``reserve`` bytes (random part and suffix) fits the name
    limit of ``dest``'s folder."""
    room = name_max(dest.parent) - reserve - 2
    name = dest.name
    while len(os.fsencode(name)) > room:
        name = name[: max(0, min(len(name) - 1, room))]
    return f".{name}."


def hidden_sibling(dest: str | os.PathLike[str], folder: bool = False) -> Path:
    """Creates (and returns) a new hidden file, or folder, beside ``dest``:
    ``.NAME.XXXXXXXX.tmp``, always within the file name limit."""
    d = Path(dest)
    prefix = _hidden_prefix(d, 8 + len(".tmp"))
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=d.parent))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=d.parent)
    os.close(fd)
    return Path(tmp)


class OutputBatch:
    """The outputs at ``paths``, written to their hidden siblings and renamed
    into place together by :meth:`commit` (or removed by :meth:`discard`)."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self.paths = {os.path.abspath(p) for p in paths}
        self.staged: list[tuple[Path, Path]] = []

    def commit(self) -> None:
        # Not cut in half by a signal: the renames run with the tools'
        # signals held (they are delivered when the last one is done).
        held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}
        main = threading.current_thread() is threading.main_thread()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held) if main else None
        try:
            while self.staged:
                tmp, dest = self.staged[0]
                try:
                    os.replace(tmp, dest)
                except OSError as e:
                    self.discard()
                    raise InputError(f"{dest}: cannot be written ({_why(e)})") from None
                self.staged.pop(0)
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def discard(self) -> None:
        for tmp, _ in self.staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.staged.clear()


_BATCHES: list[OutputBatch] = []


@contextlib.contextmanager
def output_batch(paths: Iterable[str | os.PathLike[str]]) -> Iterator[OutputBatch]:
    """Within the block, :func:`atomic_write` and :func:`publish_copy` to
    one of ``paths`` (a command's requested outputs; not its intermediate
    files) leave the output in its hidden sibling; at the end of the block
    they are all renamed into place, or, when the block raises (a failed
    output, a failed write to standard output, an interrupt), all removed."""
    batch = OutputBatch(paths)
    _BATCHES.append(batch)
    try:
        yield batch
    except BaseException:
        batch.discard()
        raise
    finally:
        _BATCHES.remove(batch)
    batch.commit()


def _finish(tmp: Path, dest: Path) -> None:
    """Renames ``tmp`` over ``dest`` now, or at the end of the open batch."""
    if _BATCHES and os.path.abspath(dest) in _BATCHES[-1].paths:
        _BATCHES[-1].staged.append((tmp, dest))
    else:
        os.replace(tmp, dest)


def publish_copy(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Copies ``src`` to a hidden sibling of ``dest`` and renames it over
    ``dest`` (at the end of the open :func:`output_batch`, if any). A copy
    that fails (a full disk) is an InputError naming ``dest``, and leaves
    nothing beside it."""
    _write_beside(Path(dest), lambda tmp: shutil.copyfile(src, tmp))


def _write_beside(dest: Path, fill: Callable[[Path], object]) -> None:
    """``fill`` writes a hidden sibling of ``dest``, which is then renamed
    over it (at the end of the open :func:`output_batch`, if any). On any
    failure the sibling goes; an OSError is an InputError naming ``dest``."""
    tmp: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = hidden_sibling(dest)
        _set_output_mode(tmp)
        fill(tmp)
        _finish(tmp, dest)
    except BaseException as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise InputError(f"{dest}: cannot be written ({_why(e)})") from None
        raise


def _set_output_mode(path: Path) -> None:
    """mkstemp creates 0600; an output gets the mode a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def check_temp_dir() -> None:
    """Before any work: ``$TMPDIR``, when set, must be a folder this process
    can create files in. (Python would fall back to /tmp in silence, and the
    IREE tools, which use ``$TMPDIR`` themselves, then fail with an unrelated
    "IO failure on output stream".)"""
    value = os.environ.get("TMPDIR")
    if not value:
        return
    p = Path(value)
    fix = "set TMPDIR to a writable folder, or unset it"
    try:
        if not p.exists():
            raise InputError(f"TMPDIR={value}: no such folder ({fix})")
        if not p.is_dir():
            raise InputError(f"TMPDIR={value}: not a folder ({fix})")
        probe = tempfile.mkdtemp(prefix="serenity-probe-", dir=p)
        os.rmdir(probe)
    except OSError as e:
        raise InputError(f"TMPDIR={value}: cannot create files there ({_why(e)}; {fix})") from None


def read_bytes(path: str | os.PathLike[str], what: str = "", error: type[SerenityError] = InputError) -> bytes:
    """The bytes of an input file, or ``error`` naming the path and the
    problem (no such file, a directory, permission denied)."""
    p = Path(path)
    label = f"{what} {p}" if what else str(p)
    if p.is_dir():
        raise error(f"{label}: is a directory, not a file")
    if not p.exists():
        raise error(f"{label}: no such file")
    try:
        return p.read_bytes()
    except OSError as e:
        raise error(f"{label}: cannot be read ({_why(e)})") from None


def read_text(path: str | os.PathLike[str], what: str = "", error: type[SerenityError] = InputError) -> str:
    """An input file as UTF-8 text (see :func:`read_bytes`); binary content
    is an error naming the first byte that is not UTF-8."""
    data = read_bytes(path, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        label = f"{what} {path}" if what else str(path)
        raise error(f"{label}: not a text file (not UTF-8 at byte {e.start})") from None


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Writes through a temporary file in the same directory and renames it,
    so a failure never leaves a half-written output behind. A path that
    cannot be written is an InputError naming it. An existing device or
    pipe is written through, never replaced."""
    p = Path(path)
    try:
        is_dir, is_special = p.is_dir(), p.exists() and not p.is_file()
    except OSError as e:
        raise InputError(f"{p}: cannot be written ({_why(e)})") from None
    if is_dir:
        raise InputError(f"{p}: is a directory, not a file")
    if is_special:
        # A device or a pipe (``-o /dev/null``): written through, never
        # replaced by a file.
        try:
            with open(p, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
        except OSError as e:
            raise InputError(f"{p}: cannot be written ({_why(e)})") from None
        return
    _write_beside(p, lambda tmp: tmp.write_bytes(data.encode() if isinstance(data, str) else data))


def captured_stderr(run: Callable[[], T]) -> tuple[T | Exception, str]:
    """Runs ``run()`` with file descriptor 2 sent to a temporary file (C++
    libraries such as the TOSA converter and TFLite Micro print their
    diagnostics there, not to ``sys.stderr``); returns ``(result or the
    exception it raised, the text)``, for the caller to report as one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            try:
                result: T | Exception = run()
            except Exception as e:  # noqa: BLE001 - returned with the text, raised by the caller
                result = e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        return result, f.read().decode("utf-8", "replace")
