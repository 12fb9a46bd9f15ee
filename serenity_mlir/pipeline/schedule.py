"""Step 4, schedule: the serenity-schedule pass on a flow-level file.

The scheduled module is written with serial stream partitioning and the
entry signature recorded (see :mod:`serenity_mlir.passes.schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.passes.schedule import ScheduleOutcome, SerenitySchedule


@dataclass(frozen=True)
class ScheduleSettings:
    """How every graph of one compile is scheduled (the original, each
    rewrite variant): the same settings for all, so they compare fairly."""

    scheduler: str = "serenity"
    function: str | None = None
    time_limit: float | None = 60.0
    # Bytes the search may keep stored (None: half the available memory).
    memory_limit: int | None = None


def schedule_flow_file(
    flow_in: Path, flow_out: Path, settings: ScheduleSettings, pack_search: bool = True
) -> ScheduleOutcome:
    """Schedules ``flow_in`` and writes the scheduled module to ``flow_out``.
    ``pack_search``: prefer an order IREE's own packer fragments less (when
    IREE places the slab); off, the order is the scheduler's (when the
    placement stage places it: the live bytes are then what counts)."""
    module = mlir_io.load_module(flow_in, mlir_io.new_context())
    moves = SerenitySchedule.pack_search_moves if pack_search else 0
    outcome = SerenitySchedule(
        scheduler=settings.scheduler,
        function=settings.function,
        time_limit=settings.time_limit,
        memory_limit=None if settings.memory_limit is None else str(settings.memory_limit),
        pack_search_moves=moves,
    ).apply(module)
    atomic_write(flow_out, mlir_io.module_to_text(module))
    return outcome
