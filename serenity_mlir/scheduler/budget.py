"""The global limits of one ``schedule(g, "serenity")`` call, shared by
every search it runs: a deadline, a state count and a byte limit on the
search's stored state (``--memory-limit``)."""

from __future__ import annotations

import os
import time

# Share of the machine's available memory the search may hold by default.
DEFAULT_MEMORY_SHARE = 0.5
# When the machine's memory cannot be read.
FALLBACK_MEMORY_LIMIT = 2 << 30


class OutOfBudget(Exception):
    """The global time, state or memory limit is spent."""


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


class Budget:
    """A deadline (a ``time.perf_counter`` value), a state limit and a byte
    limit on stored state, and the sets stored so far by every search."""

    def __init__(self, deadline: float | None, state_limit: int | None, memory_limit: int | None = None) -> None:
        self.deadline = deadline
        self.state_limit = state_limit
        self.memory_limit = memory_limit
        self.states = 0

    def expired(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def max_stored(self, n: int) -> int | None:
        """Sets one search on ``n`` nodes may hold at once under the byte limit."""
        if self.memory_limit is None:
            return None
        return max(1, self.memory_limit // bytes_per_state(n))

    def check(self) -> None:
        if self.expired():
            raise OutOfBudget("time")
        if self.state_limit is not None and self.states > self.state_limit:
            raise OutOfBudget("states")
