"""Every path a compile reads and writes, checked before any work.

No output may be an input (the model, its external weights, a target file)
or another output, and every output must be writable where it is asked for:
a compile that would lose a user's file, or find out after minutes of work
that it cannot write its report, stops at once with the path named.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from serenity_mlir.errors import InputError


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        try:
            return os.path.samefile(a, b)
        except OSError:
            return False
    return a.resolve() == b.resolve()


def check_writable(path: Path, what: str, devices: bool = False) -> None:
    """``path`` can be created or replaced as a file (with ``devices``: or
    is a device or pipe that can be written through, e.g. ``/dev/null``)."""
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder, not a file")
    if devices and path.exists() and not path.is_file():
        if not os.access(path, os.W_OK):
            raise InputError(f"{what} {path}: not writable (permission denied)")
        return
    if path.exists() and not path.is_file():
        kind = "a character device" if path.is_char_device() else "a block device" if path.is_block_device() else (
            "a pipe" if path.is_fifo() else "a socket" if path.is_socket() else "not a file"
        )
        raise InputError(f"{what} {path}: is {kind}, not a regular file (it is not replaced)")
    parent = path.parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{what} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: the folder {probe} is not writable")
    if path.exists() and not os.access(path, os.W_OK) and not os.access(parent, os.W_OK):
        raise InputError(f"{what} {path}: not writable")


def check_out_folder(folder: Path, names: Iterable[str], what: str = "--out") -> None:
    """A bench's ``--out``: a folder (made if missing) that will hold the
    files ``names``; raises InputError before any work when it cannot (a
    file in its place, a read-only parent, a name taken by a folder)."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{what} {folder}: is a file, not a folder")
    for name in names:
        check_writable(folder / name, what)


def check_paths(reads: Iterable[tuple[str, Path]], writes: Iterable[tuple[str, Path]]) -> None:
    """Raises InputError when an output is an input or another output, or
    cannot be written. Each path comes with what it is (``-o``, ``--report``,
    ``the model`` ...), for the message."""
    reads = list(reads)
    writes = list(writes)
    for i, (what, w) in enumerate(writes):
        for rwhat, r in reads:
            if _same(w, r):
                raise InputError(f"{what} {w} is {rwhat}: the output would overwrite the input")
        for owhat, o in writes[:i]:
            if _same(w, o):
                raise InputError(f"{what} {w} is also {owhat}: give them different paths")
        check_writable(w, what)
