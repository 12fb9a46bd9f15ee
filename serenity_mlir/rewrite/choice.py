"""Which rewrite sites to keep: all of them, then drop the ones that do not pay.

Pure, over any ``evaluate(sites)`` and ``peak(result)``, so the decision is
tested on synthetic peaks (the pipeline's ``evaluate`` lowers and schedules
a rewritten module: seconds on a sample, tens of seconds at a published
network size). See :mod:`serenity_mlir.pipeline.rewrite` for why the
decision is made this way.

Dropping is a bisection: a block of sites is dropped at once when that does
not raise the peak, and split in halves when it does. The peak is a maximum
over the run, so in a network of repeated cells most sites are not at the
peak of the all-sites graph and go in a few large blocks, while the few that
hold the peak are found in about ``2 k log(n / k)`` evaluations instead of
``n`` (DARTS at its published size: 22 sites, most of them idle). The search
stops at a deadline with the best set found so far, which is never worse than
all sites rewritten. The caller orders the sites (the pipeline: smallest
concat first, the likeliest to be idle).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass
class Choice(Generic[V]):
    """The result of :func:`choose_sites`."""

    baseline: V  # the original graph
    full: V | None  # every site rewritten (None: there is no site)
    best: V  # the winner (``baseline`` unless it beats it strictly)
    without: dict[int, int] = field(default_factory=dict)  # site -> peak when it alone was dropped
    evaluations: int = 0  # graphs evaluated (lowered and scheduled), the baseline not counted
    complete: bool = True  # False: the deadline cut the drops short


def choose_sites(
    applicable: tuple[int, ...],
    evaluate: Callable[[tuple[int, ...]], V],
    peak: Callable[[V], int],
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Choice[V]:
    """The decision of the module doc, over any ``evaluate(sites)``, trying
    the sites in the order given. ``deadline``: a ``clock()`` value no drop
    is started after, nor one the last evaluation's duration says would end
    past it."""
    baseline = evaluate(())
    if not applicable:
        return Choice(baseline, None, baseline)
    full = evaluate(applicable)
    choice = Choice(baseline, full, full, evaluations=1)
    current_sites = applicable
    blocks = [applicable]
    # A failed block's second half, after its first half was dropped whole,
    # drops exactly what the failed block did: that peak is known.
    known: dict[tuple[int, ...], tuple[tuple[int, ...], int]] = {}
    last = 0.0  # how long the last evaluation took: the next one will take about as long
    while blocks:
        block = blocks.pop(0)
        first, union_peak = known.pop(block, ((), 0))
        rest = tuple(j for j in current_sites if j not in block)
        if first and not set(first) & set(current_sites):
            trial, trial_peak = None, union_peak
        elif deadline is not None and clock() + last > deadline:
            choice.complete = False
            break
        elif rest:
            t0 = clock()
            trial = evaluate(rest)
            last = clock() - t0
            choice.evaluations += 1
            trial_peak = peak(trial)
        else:
            trial, trial_peak = baseline, peak(baseline)
        if len(block) == 1:
            choice.without[block[0]] = trial_peak
        if trial is not None and trial_peak <= peak(choice.best):
            choice.best, current_sites = trial, rest
        elif len(block) > 1:
            half = len(block) // 2
            blocks[0:0] = [block[:half], block[half:]]
            known[block[half:]] = (block[:half], trial_peak)
    if peak(choice.best) >= peak(baseline):
        choice.best = baseline
    return choice
