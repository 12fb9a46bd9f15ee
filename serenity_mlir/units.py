"""Sizes as people write them (``256K``, ``1.5MiB``) and as reports print them.

A base module: it imports nothing of the package but its errors, so targets,
the pipeline and the tools can all read a size the same way.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import NewType

from serenity_mlir.errors import BudgetError, InputError

# A number of bytes that people may write as ``256K``: settings fields of this
# type take such text as a pass option (``memory-limit=512M``).
ByteSize = NewType("ByteSize", int)

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_SIZE_RE = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([kmg]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes from ``256K``, ``256KiB``, ``256KB``, ``1.5M``, ``2MiB``, ``65536``.

    K, M and G are binary (1024-based), as memory sizes in MCU datasheets are.
    """
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise InputError(f"bad size {text!r}: expected a number of bytes or e.g. 256K")
    if isinstance(text, int):
        if text < 0:
            raise InputError(f"bad size {text}: must not be negative")
        return text
    m = _SIZE_RE.match(text)
    if not m or (m.group(3).lower() == "i" or (m.group(3).lower() == "ib" and not m.group(2))):
        raise InputError(f"bad size '{text}': expected bytes or a number with K, M or G (KiB, MiB, GiB), e.g. 256K")
    number, unit = m.group(1).replace("_", ""), m.group(2).lower()
    value = float(number) * _UNITS[unit] if "." in number else int(number) * _UNITS[unit]
    if value != int(value):
        raise InputError(f"bad size '{text}': not a whole number of bytes")
    return int(value)


def format_size(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def check_memory_budget(need_bytes: int, budget: str | int, what: str = "the model") -> None:
    """Raises BudgetError when ``need_bytes`` exceeds ``budget`` (e.g. ``256K``)."""
    limit = parse_size(budget)
    if need_bytes > limit:
        raise BudgetError(
            f"{what} needs {format_size(need_bytes)} of RAM, over the memory budget of {format_size(limit)} "
            f"by {need_bytes - limit:,} B"
        )


# ---------------------------------------------------------------- command-line values
# ``type=`` functions for argparse, shared by every command, so a bad value is
# rejected before any work, with the option named (argparse adds
# ``argument --time-limit: ``).


def seconds_arg(text: str) -> float:
    """A time limit: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got '{text}'")
    return value


def nonneg_int_arg(text: str) -> int:
    """A count or a seed: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got '{text}'")
    return value


def size_arg(text: str) -> int:
    """A size in bytes as :func:`parse_size` reads it (``256K``, ``1.5G``)."""
    try:
        return parse_size(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# The largest tensor dimension (ONNX and MLIR keep them as signed 64-bit integers).
MAX_DIM = 2**63 - 1


def input_shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=1x3x224x224``: an input's shape, for ``--input-shape``."""
    name, eq, dims = text.partition("=")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x")) if eq and dims else ()
    except ValueError:
        shape = ()
    if not name.strip() or not shape or any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(
            f"expected NAME=DIMS with positive dimensions, e.g. input=1x3x224x224; got '{text}'"
        )
    if any(d > MAX_DIM for d in shape):
        raise argparse.ArgumentTypeError(f"a dimension of '{text}' is larger than {MAX_DIM:,} (a 64-bit size)")
    return name.strip(), shape
