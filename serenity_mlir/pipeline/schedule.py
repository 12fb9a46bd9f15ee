"""Step 4, schedule: the serenity-schedule pass on a flow-level file.

The scheduled module is written with serial stream partitioning and the
entry signature recorded (see :mod:`serenity_mlir.passes.schedule`).
"""

from __future__ import annotations

from pathlib import Path

from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.passes.schedule import ScheduleOutcome, SerenitySchedule


def schedule_flow_file(
    flow_in: Path,
    flow_out: Path,
    scheduler: str,
    function: str | None,
    time_limit: float | None,
    pack_search: bool = True,
) -> ScheduleOutcome:
    """Schedules ``flow_in`` and writes the scheduled module to ``flow_out``.
    ``pack_search``: prefer an order IREE's own packer fragments less (when
    IREE places the slab); off, the order is the scheduler's (when the
    placement stage places it: the live bytes are then what counts)."""
    module = mlir_io.load_module(flow_in, mlir_io.new_context())
    moves = SerenitySchedule.pack_search_moves if pack_search else 0
    outcome = SerenitySchedule(
        scheduler=scheduler, function=function, time_limit=time_limit, pack_search_moves=moves
    ).apply(module)
    atomic_write(flow_out, mlir_io.module_to_text(module))
    return outcome
