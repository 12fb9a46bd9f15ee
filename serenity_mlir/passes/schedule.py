"""The ``serenity-schedule`` pass: reorder a function body by the schedule.

The pass strings small steps together: build the body's dataflow graph
(:mod:`serenity_mlir.analysis`), schedule it (:mod:`serenity_mlir.scheduler`),
prefer an order IREE packs more tightly (:mod:`serenity_mlir.memory.packing`),
move the ops (:func:`apply_order`), make stream partitioning serial, record
the entry signature, and verify.

The block is rebuilt in one sweep: inputs first, then every node in schedule
order, each preceded by the free ops (constants, weight loads, views) it
needs, then the remaining ops (exports) in their old order, and the
terminator last. Operands therefore always dominate their users; the module
is verified after the move anyway. Stream partitioning is made serial
(module attribute) so IREE's stream phase keeps the order instead of
regrouping independent dispatches into concurrent waves.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from iree.compiler import ir

from serenity_mlir.analysis import INPUT_OPS, BodyGraph, all_operands, build_body_graph, find_body_function
from serenity_mlir.errors import InputError, InternalError
from serenity_mlir.ir.mlir import format_location, set_serial_partitioning
from serenity_mlir.ir.phases import detect_phase
from serenity_mlir.ir.reflection import record_signature
from serenity_mlir.memory.packing import choose_by_slab
from serenity_mlir.scheduler.graph import check_order, peak
from serenity_mlir.scheduler.schedule import ScheduleResult, schedule
from serenity_mlir.settings import ScheduleSettings


@dataclass(frozen=True)
class SerenitySchedule(ScheduleSettings):
    """Orders the entry function's ops to minimise peak activation memory.

    Its options are :class:`ScheduleSettings`' fields (the compile job builds
    the pass from the same record), plus ``serial``."""

    name: ClassVar[str] = "serenity-schedule"
    serial: bool = True

    @staticmethod
    def of(settings: ScheduleSettings, **overrides: Any) -> SerenitySchedule:
        """The pass for a settings record (``overrides``: fields to change)."""
        values = {f.name: getattr(settings, f.name) for f in fields(ScheduleSettings)}
        return SerenitySchedule(**{**values, **overrides})

    def apply(self, module: ir.Operation) -> ScheduleOutcome:
        self.check()
        if self.memory_model == "iree":
            phase = detect_phase(module)
            if phase not in ("flow", "unknown"):
                raise InputError(
                    f"serenity-schedule works on IREE's flow phase (iree-compile --compile-to=flow), "
                    f"but this module is at the {phase} phase"
                    + ("" if phase in ("stream", "hal", "vm") else "; --memory-model paper schedules any body")
                )
        fname, func = find_body_function(module, self.function)
        body = build_body_graph(func, self.memory_model)
        result = self.schedule(body)
        apply_order(body, result.order)
        if self.serial:
            set_serial_partitioning(module)
        record_signature(module, fname, func)
        try:
            module.verify()
        except ir.MLIRError as e:
            raise InternalError(f"the reordered module does not verify: {e}") from None
        program_peak = peak(body.graph, range(body.graph.num_nodes))
        return ScheduleOutcome(function=fname, body=body, result=result, program_peak=program_peak, module=module)

    def schedule(self, body: BodyGraph) -> ScheduleResult:
        """The order for ``body``: the scheduler's, or an equally valid one
        that IREE packs into a smaller slab."""
        result = schedule(
            body.graph,
            self.scheduler,
            time_limit=self.time_limit,
            work_limit=self.work_limit,
            memory_limit=self.memory_limit,
        )
        if self.scheduler == "serenity" and self.memory_model == "iree" and self.pack_search_moves > 0:
            result = choose_by_slab(
                body.graph, body.buffers, body.barriers, result, self.pack_search_seconds, self.pack_search_moves
            )
        return result


@dataclass
class ScheduleOutcome:
    """What the pass did: the user-facing function, the graph it scheduled,
    the schedule, and the peak of the order it replaced."""

    function: str
    body: BodyGraph
    result: ScheduleResult
    program_peak: int
    # The scheduled module. ``body`` holds handles to its ops, and the
    # bindings do not keep a module alive for handles to its nested ops: a
    # caller that dropped the module and then read an op's location read
    # freed memory (seen as a segfault once several modules were in flight).
    module: Any = None


def apply_order(body: BodyGraph, order: tuple[int, ...] | list[int]) -> None:
    """Moves the body's ops into ``order`` (node indices of ``body.graph``)."""
    check_order(body.graph, order)
    block = body.block
    ops = [op.operation for op in block.operations]
    terminator = ops[-1]
    node_index = {_op_key(op): i for i, op in enumerate(body.node_ops)}
    emitted: set[int] = set()
    sequence: list[ir.Operation] = []
    defining: dict[int, ir.Operation] = {}
    for op in ops[:-1]:
        for r in op.results:
            defining[hash(r)] = op

    def emit(op: ir.Operation) -> None:
        key = _op_key(op)
        if key in emitted:
            return
        for x in all_operands(op, block):
            dep = defining.get(hash(x))
            if dep is None or _op_key(dep) in emitted:
                continue
            if _op_key(dep) in node_index:
                raise InternalError(
                    f"the order runs {op.name} at {format_location(op.location)} "
                    "before the op that defines its operand"
                )
            emit(dep)
        emitted.add(key)
        sequence.append(op)

    for op in ops[:-1]:
        if op.name in INPUT_OPS:
            emit(op)
    for v in order:
        emit(body.node_ops[v])
    for op in ops[:-1]:
        emit(op)
    if len(sequence) != len(ops) - 1:
        raise InternalError("the reordered block lost or duplicated ops")
    for op in sequence:
        op.move_before(terminator)


def _op_key(op: ir.Operation) -> int:
    return hash(op)
