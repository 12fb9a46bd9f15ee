"""Which rewrite sites to keep: all of them, then drop each one that does not pay.

Pure, over any ``evaluate(sites)`` and ``peak(result)``, so the decision is
tested on synthetic peaks (the pipeline's ``evaluate`` lowers and schedules
a rewritten module, minutes on a large network). See
:mod:`serenity_mlir.pipeline.rewrite` for why the decision is made this way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

V = TypeVar("V")


def choose_sites(
    applicable: tuple[int, ...], evaluate: Callable[[tuple[int, ...]], V], peak: Callable[[V], int]
) -> tuple[V, V | None, V, dict[int, int]]:
    """The decision of the module doc, over any ``evaluate(sites)``: returns
    (the original graph, all sites rewritten or None, the winner, each
    site's peak when dropped from the set it was tried in). Pure, so it is
    tested on synthetic peaks."""
    baseline = evaluate(())
    if not applicable:
        return baseline, None, baseline, {}
    full = evaluate(applicable)
    current, current_sites = full, applicable
    without: dict[int, int] = {}
    for i in applicable:
        rest = tuple(j for j in current_sites if j != i)
        trial = evaluate(rest) if rest else baseline
        without[i] = peak(trial)
        if peak(trial) <= peak(current):
            current, current_sites = trial, rest
    if peak(current) < peak(baseline):
        return baseline, full, current, without
    return baseline, full, baseline, without
