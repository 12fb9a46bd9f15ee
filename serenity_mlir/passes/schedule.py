"""The ``serenity-schedule`` pass: reorder a function body by the schedule.

The block is rebuilt in one sweep: inputs first, then every node in schedule
order, each preceded by the free ops (constants, weight loads, views) it
needs, then the remaining ops (exports) in their old order, and the
terminator last. Operands therefore always dominate their users; the module
is verified after the move anyway. Stream partitioning is made serial
(module attribute) so IREE's stream phase keeps the order instead of
regrouping independent dispatches into concurrent waves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from iree.compiler import ir

from serenity_mlir.analysis.dataflow import INPUT_OPS, BodyGraph, _all_operands, build_body_graph, find_body_function
from serenity_mlir.errors import ScheduleError
from serenity_mlir.ir.mlir import format_location, set_serial_partitioning
from serenity_mlir.ir.reflection import record_signature
from serenity_mlir.memory.slab import improve_packing
from serenity_mlir.scheduler.graph import check_order, peak
from serenity_mlir.scheduler.schedule import ScheduleResult, greedy_order, kahn_order, program_order, schedule


@dataclass(frozen=True)
class SerenitySchedule:
    """Orders the entry function's ops to minimise peak activation memory."""

    name = "serenity-schedule"
    scheduler: str = "serenity"
    function: str | None = None
    time_limit: float | None = 60.0
    serial: bool = True
    model: str = "iree"
    # Local search for an order IREE packs more tightly: candidate orders
    # tried (0: off), and a cap in seconds in case a huge graph makes each
    # try slow. The move budget, not the clock, makes the result repeatable.
    pack_search_moves: int = 3000
    pack_search_seconds: float = 30.0

    def apply(self, module: ir.Operation) -> ScheduleOutcome:
        fname, func = find_body_function(module, self.function)
        body = build_body_graph(func, self.model)
        g = body.graph
        program_peak = peak(g, range(g.num_nodes))
        result = schedule(g, self.scheduler, time_limit=self.time_limit)
        if self.scheduler == "serenity" and self.model == "iree":
            result = choose_by_slab(body, result, self.pack_search_seconds, self.pack_search_moves)
        apply_order(body, result.order)
        if self.serial:
            set_serial_partitioning(module)
        record_signature(module, fname, func)
        try:
            module.verify()
        except ir.MLIRError as e:
            raise ScheduleError(f"the reordered module does not verify: {e}") from None
        return ScheduleOutcome(function=fname, body=body, result=result, program_peak=program_peak, module=module)


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


def choose_by_slab(
    body: BodyGraph, result: ScheduleResult, search_seconds: float = 30.0, search_moves: int = 3000
) -> ScheduleResult:
    """Keeps the order whose packed slab is smallest.

    The scheduler minimises the sum of live bytes; IREE packs the slices
    greedily, so an order that is optimal for the sum can pack worse than
    another (fragmentation). What the device must reserve is the packed slab,
    so the cheap orders are compared by it too, and then a short local search
    (``allocator.improve_packing``) moves nodes while the slab shrinks. An
    order replaces the scheduler's only when its slab is strictly smaller;
    ``optimal`` then stays true only if its live peak is still the optimum."""
    g = body.graph
    slab0 = body.predict(result.order).slab_bytes
    best_order, best_slab, how = list(result.order), slab0, ""
    for name, fn in (("program", program_order), ("greedy", greedy_order), ("kahn", kahn_order)):
        order = fn(g)
        slab = body.predict(order).slab_bytes
        if slab < best_slab:
            best_order, best_slab, how = order, slab, f"the {name} order"
    if search_seconds > 0 and search_moves > 0:
        order = improve_packing(
            g.preds, body.buffers, best_order, time_limit=search_seconds, barriers=body.barriers, max_moves=search_moves
        )
        slab = body.predict(order).slab_bytes
        if slab < best_slab:
            best_order, best_slab = order, slab
            how = f"{how or 'the schedule'} after a packing search"
    if not how:
        return result
    p = peak(g, best_order)
    return replace(
        result,
        order=tuple(best_order),
        peak_bytes=p,
        optimal=result.optimal and p == result.peak_bytes,
        method=f"{result.method}+slab",
        notes=(
            *result.notes,
            f"{how} packs into a smaller slab ({best_slab} B) than the schedule ({slab0} B), "
            f"at {p} live bytes (the schedule: {result.peak_bytes}): kept it",
        ),
    )


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
        for x in _all_operands(op, block):
            dep = defining.get(hash(x))
            if dep is None or _op_key(dep) in emitted:
                continue
            if _op_key(dep) in node_index:
                raise ScheduleError(
                    f"internal error: the order runs {op.name} at {format_location(op.location)} "
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
        raise ScheduleError("internal error: the reordered block lost or duplicated ops")
    for op in sequence:
        op.move_before(terminator)


def _op_key(op: ir.Operation) -> int:
    return hash(op)
