"""Step 4, schedule: the serenity-schedule pass on a flow-level file.

The scheduled module is written with serial stream partitioning and the
entry signature recorded (see :mod:`serenity_mlir.passes.schedule`).
"""

from __future__ import annotations

from pathlib import Path

from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.passes.schedule import ScheduleOutcome, SerenitySchedule
from serenity_mlir.settings import ScheduleSettings


def schedule_flow_file(
    flow_in: Path, flow_out: Path, settings: ScheduleSettings, pack_search: bool = True
) -> ScheduleOutcome:
    """Schedules ``flow_in`` and writes the scheduled module to ``flow_out``.
    ``pack_search``: prefer an order IREE's own packer fragments less (when
    IREE places the slab); off, the order is the scheduler's (when the
    placement stage places it: the live bytes are then what counts)."""
    module = mlir_io.load_module(flow_in, mlir_io.new_context())
    overrides = {} if pack_search else {"pack_search_moves": 0}
    outcome = SerenitySchedule.of(settings, **overrides).apply(module)
    atomic_write(flow_out, mlir_io.module_to_text(module))
    return outcome
