"""The level-by-level dynamic program over sets of scheduled nodes: the
paper's exact method, its beam-search variant, and an anytime stop.

Two partial schedules that have run the same *set* of nodes leave the same
buffers alive, so the set is a signature and only the lowest-peak partial
schedule per set is kept. The DP advances one level (one more node
scheduled) at a time, so every level is a complete frontier of the search
and a run stopped at a limit still holds partial schedules to complete.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

from serenity_mlir.scheduler.budget import TIME_LIMIT, Budget
from serenity_mlir.scheduler.problem import Problem


@dataclass
class LevelRun:
    """Where one run of :func:`level_dp` got to."""

    states: int  # sets stored (the empty set not counted)
    # Per level k: set of k+1 nodes -> the node run last on its best path.
    parents: list[dict[int, int]]
    # The last level reached (partial when stopped within it):
    # set -> (peak so far, live bytes, ready nodes).
    frontier: dict[int, tuple[int, int, int]]
    stopped: str | None = None  # "states" or "time" when a limit ended the run

    def best(self) -> tuple[int, list[int]]:
        """(peak, order) of the full set; only for a run that finished."""
        assert self.stopped is None
        ((done, (pk, _, _)),) = self.frontier.items()
        return pk, backtrack(self.parents, done)


def level_dp(
    prob: Problem,
    *,
    width: int | None = None,
    max_states: int | None = None,
    deadline: float | None = None,
) -> LevelRun:
    """The level-by-level DP over down-closed sets, keeping the lowest peak
    per set. Exact with no ``width``; with one, a beam search that keeps the
    ``width`` best sets of each level (lowest peak so far, then lowest live
    bytes): a good upper bound.

    Stops early (``stopped``) once more than ``max_states`` sets are stored
    or past ``deadline`` (a ``time.perf_counter`` value, checked before each
    level and every 256 sets expanded)."""
    size, rd, selffree, pred, succ_list = prob.size, prob.rd, prob.selffree, prob.pred, prob.succ_list
    ready0 = 0
    for v in range(prob.n):
        if not pred[v]:
            ready0 |= 1 << v
    level: dict[int, tuple[int, int, int]] = {0: (prob.live0, prob.live0, ready0)}
    parents: list[dict[int, int]] = []
    states = 0
    for _ in range(prob.n):
        if deadline is not None and time.perf_counter() > deadline:
            return LevelRun(states, parents, level, "time")
        nxt: dict[int, tuple[int, int, int]] = {}
        par: dict[int, int] = {}
        count = 0
        for d, (pk, live, ready) in level.items():
            x = ready
            while x:
                low = x & -x
                x ^= low
                v = low.bit_length() - 1
                st = live + size[v]
                p2 = pk if pk >= st else st
                d2 = d | low
                old = nxt.get(d2)
                if old is not None:
                    # Same set, same live bytes and ready nodes: keep the lower peak.
                    if old[0] > p2:
                        nxt[d2] = (p2, old[1], old[2])
                        par[d2] = v
                    continue
                f = selffree[v]
                for um, sz in rd[v]:
                    if not um & ~d2:
                        f += sz
                r2 = ready & ~low
                for s2 in succ_list[v]:
                    if not pred[s2] & ~d2:
                        r2 |= 1 << s2
                nxt[d2] = (p2, st - f, r2)
                par[d2] = v
            count += 1
            over = max_states is not None and states + len(nxt) > max_states
            if over or (deadline is not None and not count & 255 and time.perf_counter() > deadline):
                parents.append(par)
                return LevelRun(states + len(nxt), parents, nxt, "states" if over else "time")
        if width is not None and len(nxt) > width:
            nxt = dict(heapq.nsmallest(width, nxt.items(), key=lambda kv: (kv[1][0], kv[1][1])))
        states += len(nxt)
        parents.append(par)
        level = nxt
    return LevelRun(states, parents, level)


def backtrack(parents: list[dict[int, int]], done: int) -> list[int]:
    """The best order found for the set ``done`` (a set of ``level_dp``)."""
    order: list[int] = []
    k = done.bit_count()
    while k > 0:
        v = parents[k - 1][done]
        order.append(v)
        done ^= 1 << v
        k -= 1
    order.reverse()
    return order


def beam_search(prob: Problem, width: int, budget: Budget) -> tuple[int, list[int]]:
    """``level_dp`` keeping the ``width`` best sets per level: (peak, order).
    Raises ``OutOfBudget`` past the budget's deadline."""
    run = level_dp(prob, width=width, deadline=budget.deadline)
    budget.charge(run.states, prob.n)
    if run.stopped is not None:
        raise budget.stop(TIME_LIMIT)
    return run.best()
