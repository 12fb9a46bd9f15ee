"""The global limits of one ``schedule(g, "serenity")`` call, shared by
every search it runs: a work budget (sets stored, the deterministic limit),
a deadline (the wall-clock backstop) and a byte limit on the search's stored
state (``--memory-limit``).

The work budget is what makes the output a function of the input and the
flags alone: the same graph with the same ``work_limit`` gives the same
order on a quiet machine and on a loaded one. The deadline only ends a
search that the work budget did not end in time (a slow machine, or a
``--time-limit`` the user set low); the result then says so
(``stopped_by="time-limit"``) and may differ from run to run."""

from __future__ import annotations

import os
import time

# The default work budget of one ``schedule()`` call: sets stored by all its
# searches together, each weighted by :func:`work_weight` (``work_limit``,
# ``--work-limit``); the segments' max-flow lower bounds get
# ``engine.BOUND_WORK_PER_SET`` times as much. The bundled samples need at
# most 42,525 sets (randwire_cifar100) and WS(64) 493,628 to prove their
# optimum; the zoo's PC-DARTS needs 537,672 sets of weight 2 and NASNet-A's
# proof needs its bounds' share of a budget above 1,000,000 (the former
# default, under which both stopped at the right peak without the proof).
# 2,000,000 proves every zoo model (about 1.3 s each here) and is about
# 20-30 s of search on a hard graph on a quiet machine (WS(128):
# 70,000-110,000 sets a second); on a loaded one the 60 s wall-clock
# default may end a 1,000-node search first, and says so.
DEFAULT_WORK_LIMIT = 2_000_000

# What ended a search early (``ScheduleResult.stopped_by``).
WORK_LIMIT = "work-limit"
TIME_LIMIT = "time-limit"
MEMORY_LIMIT = "memory-limit"

# Share of the machine's available memory the search may hold by default.
DEFAULT_MEMORY_SHARE = 0.5
# When the machine's memory cannot be read.
FALLBACK_MEMORY_LIMIT = 2 << 30


class OutOfBudget(Exception):
    """The global work, time or memory limit is spent: ``args[0]`` is
    :data:`WORK_LIMIT`, :data:`TIME_LIMIT` or :data:`MEMORY_LIMIT`."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux: MemAvailable),
    or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def default_memory_limit() -> int:
    """The default byte limit: a share of the machine's available memory."""
    avail = available_memory()
    return int(avail * DEFAULT_MEMORY_SHARE) if avail else FALLBACK_MEMORY_LIMIT


def bytes_per_state(n: int) -> int:
    """What one stored set costs a search on ``n`` nodes (its key and ready
    mask as ``n``-bit ints, the entry in the level and parent dicts, the
    divers' share), measured on WS graphs of 300 and 900 nodes (505 and
    701 B), with a margin for the bounds and the beam search."""
    return 512 + 2 * n // 3


def work_weight(n: int) -> int:
    """What one stored set costs the work budget on ``n`` nodes: 1 below
    128 nodes, one more per 64 nodes above: larger graphs' sets (``n``-bit
    masks, longer ready sets, dives through more nodes) cost time in
    proportion, so the default budget ends a 1,200-node search (weight 18)
    before the 60 s backstop (WS(1200): 56 s here at a load average of 14
    on two cores with the former 1,000,000 budget; 11.1 s at a load
    average of 2-3 with 1,000,000 and with 2,000,000 alike, its bounds
    taking the time)."""
    return max(1, n // 64)


class Budget:
    """A work limit (sets stored), a deadline (a ``time.perf_counter``
    value) and a byte limit on stored state, the sets stored so far by every
    search, and which limit ended the work early (``stopped``)."""

    def __init__(self, deadline: float | None, work_limit: int | None, memory_limit: int | None = None) -> None:
        self.deadline = deadline
        self.work_limit = work_limit
        self.memory_limit = memory_limit
        self.states = 0  # sets stored by every search
        self.work = 0  # the same, each weighted by the cost of a set (work_weight)
        self.stopped: str | None = None

    def expired(self) -> bool:
        """Past the deadline (recorded: a step skipped for time makes the
        result depend on the machine's speed, and the result says so)."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.stopped = self.stopped or TIME_LIMIT
            return True
        return False

    def max_stored(self, n: int) -> int | None:
        """Sets one search on ``n`` nodes may hold at once under the byte limit."""
        if self.memory_limit is None:
            return None
        return max(1, self.memory_limit // bytes_per_state(n))

    def stop(self, why: str) -> OutOfBudget:
        """Records ``why`` (the first limit reached wins) and returns the exception to raise."""
        self.stopped = self.stopped or why
        return OutOfBudget(why)

    def charge(self, sets: int, n: int) -> None:
        """Counts ``sets`` stored by a search on ``n`` nodes."""
        self.states += sets
        self.work += sets * work_weight(n)

    def over(self, sets: int, n: int) -> bool:
        """Whether ``sets`` more (on ``n`` nodes) would pass the work limit."""
        return self.work_limit is not None and self.work + sets * work_weight(n) > self.work_limit

    def check(self) -> None:
        if self.work_limit is not None and self.work > self.work_limit:
            raise self.stop(WORK_LIMIT)
        if self.expired():
            raise self.stop(TIME_LIMIT)
