"""The global limits of one ``schedule(g, "serenity")`` call, shared by
every search it runs."""

from __future__ import annotations

import time


class OutOfBudget(Exception):
    """The global time or state limit is spent."""


class Budget:
    """A deadline (a ``time.perf_counter`` value) and a state limit, and the
    sets stored so far by every search."""

    def __init__(self, deadline: float | None, state_limit: int | None) -> None:
        self.deadline = deadline
        self.state_limit = state_limit
        self.states = 0

    def expired(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def check(self) -> None:
        if self.expired():
            raise OutOfBudget("time")
        if self.state_limit is not None and self.states > self.state_limit:
            raise OutOfBudget("states")
