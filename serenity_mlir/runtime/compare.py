"""Comparing the outputs of two runs."""

from __future__ import annotations

from pathlib import Path

from serenity_mlir.errors import InputError
from serenity_mlir.settings import REWRITE_RTOL

# REWRITE_RTOL: the tolerance of a rewritten (re-associated) float32 graph
# against the original (a setting; named here for the comparisons' callers).
__all__ = ["REWRITE_RTOL", "max_relative_error"]


def max_relative_error(outputs: str | Path, reference: str | Path) -> float:
    """The largest normwise relative error over the outputs saved by two
    ``measure(save_outputs=...)`` runs: max |a - b| / max |b| per output.

    Normwise rather than element-wise: an element that should be 0 comes out
    as 1e-9 after a different summation order, which is no error at all,
    while an element-wise ratio would call it infinite."""
    import numpy as np

    a = np.load(outputs)
    b = np.load(reference)
    if sorted(a.files) != sorted(b.files):
        raise InputError(f"{outputs} and {reference} hold different outputs")
    worst = 0.0
    for k in b.files:
        x, y = a[k].astype(np.float64), b[k].astype(np.float64)
        if x.shape != y.shape:
            raise InputError(f"output {k}: shape {x.shape} differs from the reference's {y.shape}")
        scale = float(np.max(np.abs(y))) if y.size else 0.0
        diff = float(np.max(np.abs(x - y))) if y.size else 0.0
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst
