"""Reading inputs and writing outputs, with one clear error for each way a
path can be wrong, and never half a file left behind."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from serenity_mlir.errors import InputError, SerenityError


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
    return e.strerror or str(e)


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
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a file")
    if p.exists() and not p.is_file():
        # A device or a pipe (``-o /dev/null``): written through, never
        # replaced by a file.
        try:
            with open(p, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
        except OSError as e:
            raise InputError(f"{p}: cannot be written ({_why(e)})") from None
        return
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    except OSError as e:
        raise InputError(f"{p}: cannot be written ({_why(e)})") from None
    try:
        # mkstemp creates 0600; an output gets the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, p)
    except OSError as e:
        raise InputError(f"{p}: cannot be written ({_why(e)})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
