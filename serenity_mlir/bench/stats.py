"""Summary statistics shared by the benches.

Every bench quotes ratios (IREE default / ours, TFLM / ours, compile seconds
ours / IREE's) as a geometric mean, because a ratio's average must not
depend on which side of it is the numerator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def geomean(xs: Iterable[float], digits: int | None = None) -> float | None:
    """The geometric mean of positive ratios, rounded to ``digits`` if given;
    None over no values (no models measured is no figure, not 1.0 or NaN)."""
    logs = [math.log(x) for x in xs]
    if not logs:
        return None
    g = math.exp(sum(logs) / len(logs))
    return round(g, digits) if digits is not None else g
