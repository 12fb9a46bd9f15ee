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
    flow_in: Path, flow_out: Path, scheduler: str, function: str | None, time_limit: float | None
) -> ScheduleOutcome:
    """Schedules ``flow_in`` and writes the scheduled module to ``flow_out``."""
    module = mlir_io.load_module(flow_in, mlir_io.new_context())
    outcome = SerenitySchedule(scheduler=scheduler, function=function, time_limit=time_limit).apply(module)
    atomic_write(flow_out, mlir_io.module_to_text(module))
    return outcome
