"""Order and offsets chosen together: the slab no packer can beat.

SERENITY picks an order by the sum of live bytes and IREE then packs the
slices greedily, so the slab can exceed the live-bytes peak (fragmentation).
Later work (OLLA, MODeL) solves order and placement as one problem. This
module does that exactly for small graphs with a constraint solver (OR-Tools
CP-SAT, the optional ``exact`` extra):

- ``pos[v]``: the position of node ``v``; all different, after its
  predecessors;
- each slab slice lives from its allocating node's position to its last
  user's (inclusive, as IREE's lifetimes are) and sits at an offset aligned
  like IREE's; slices alive together may not overlap in the address space
  (a 2-D no-overlap of lifetime x address intervals);
- minimise the slab top.

The solver starts from a given order and its greedy packing (a hint), and
the slab is capped by that packing, so the answer is never worse. The
result says how much the joint optimum gains over order-then-pack, and how
IREE's own packer does on the joint order (IREE places the slices itself, so
only an order can be handed to it).

Pure functions over a :class:`~serenity_mlir.scheduler.graph.Graph` and slab buffers;
no MLIR import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serenity_mlir.errors import InternalError, ScheduleError
from serenity_mlir.memory.slab import ALIGNMENT, align, pack_slab, slices_for_order
from serenity_mlir.scheduler.graph import Graph, check_order


@dataclass(frozen=True)
class JointResult:
    """The jointly optimised order and placement of one graph's slab."""

    order: tuple[int, ...]
    offsets: dict[str, int]  # slice name -> offset in the slab
    slab_bytes: int  # with the solver's placement
    optimal: bool  # proven by the solver
    bound_bytes: int  # the solver's proven lower bound on any slab
    hint_slab_bytes: int  # the order it started from, packed like IREE
    iree_packed_slab_bytes: int  # the joint order packed like IREE
    seconds: float
    status: str


def available() -> bool:
    try:
        import ortools.sat.python.cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def joint_optimum(
    g: Graph,
    buffers: Sequence[Any],
    hint: Sequence[int],
    time_limit: float = 10.0,
    alignment: int = ALIGNMENT,
    workers: int = 2,
) -> JointResult:
    """Solves order + offsets for the slab slices of ``buffers`` (objects
    with ``name``, ``size``, ``alloc``, ``users``, ``output``, as
    :class:`~serenity_mlir.scheduler.graph.Buffer`), starting from ``hint``."""
    try:
        from ortools.sat.python import cp_model
    except ImportError:
        raise ScheduleError(
            "joint order+offset optimisation needs OR-Tools: pip install 'serenity-mlir[exact]'"
        ) from None
    check_order(g, hint)
    t0 = time.perf_counter()
    n = g.num_nodes
    hint_slices = slices_for_order(buffers, hint)
    hint_slab, hint_offsets = pack_slab(hint_slices, alignment)
    slab = [b for b in buffers if not b.output and b.size > 0]
    if len({b.name for b in slab}) != len(slab):
        raise InternalError("slab buffers need distinct names for the joint placement")
    if not slab:
        return JointResult(tuple(hint), {}, 0, True, 0, 0, 0, 0.0, "empty")
    unit = alignment
    cap = hint_slab // unit  # never worse than the hint

    m = cp_model.CpModel()
    pos = [m.new_int_var(0, n - 1, f"pos{v}") for v in range(n)]
    m.add_all_different(pos)
    for v in range(n):
        for p in g.preds[v]:
            m.add(pos[p] < pos[v])
    x_iv, y_iv, tops = [], [], []
    offs = {}
    for i, b in enumerate(slab):
        h = align(b.size, alignment) // unit
        start = pos[b.alloc]
        end = m.new_int_var(0, n - 1, f"end{i}")
        m.add_max_equality(end, [start, *(pos[u] for u in b.users)])
        length = m.new_int_var(1, n, f"len{i}")
        stop = m.new_int_var(1, n, f"stop{i}")
        m.add(stop == end + 1)
        x_iv.append(m.new_interval_var(start, length, stop, f"life{i}"))
        off = m.new_int_var(0, max(0, cap - h), f"off{i}")
        offs[b.name] = off
        y_iv.append(m.new_fixed_size_interval_var(off, h, f"addr{i}"))
        tops.append((off, h))
    m.add_no_overlap_2d(x_iv, y_iv)
    top = m.new_int_var(0, cap, "top")
    for off, h in tops:
        m.add(top >= off + h)
    m.minimize(top)
    # Start from the hint: its order and IREE's packing of it.
    where = {v: i for i, v in enumerate(hint)}
    for v in range(n):
        m.add_hint(pos[v], where[v])
    hint_off = {s.name: o for s, o in zip(hint_slices, hint_offsets, strict=True)}
    for name, off in offs.items():
        if name in hint_off:
            m.add_hint(off, hint_off[name] // unit)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_search_workers = workers
    status = solver.solve(m)
    status_name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # No solution in time (the hint may not have been completed): the
        # hint itself is the answer, unproven.
        return JointResult(
            tuple(hint), hint_off, hint_slab, False, 0, hint_slab, hint_slab,
            time.perf_counter() - t0, status_name,
        )  # fmt: skip
    order = tuple(sorted(range(n), key=lambda v: solver.value(pos[v])))
    check_order(g, order)
    offsets = {name: solver.value(off) * unit for name, off in offs.items()}
    slab_bytes = solver.value(top) * unit
    _check_placement(buffers, order, offsets, alignment)
    iree_packed = pack_slab(slices_for_order(buffers, order), alignment)[0]
    return JointResult(
        order=order,
        offsets=offsets,
        slab_bytes=slab_bytes,
        optimal=status == cp_model.OPTIMAL,
        bound_bytes=int(solver.best_objective_bound) * unit,
        hint_slab_bytes=hint_slab,
        iree_packed_slab_bytes=iree_packed,
        seconds=time.perf_counter() - t0,
        status=status_name,
    )


def _check_placement(buffers: Sequence[Any], order: Sequence[int], offsets: dict[str, int], alignment: int) -> None:
    """The solver's placement, checked independently: no two slices alive
    at the same position share an address."""
    slices = slices_for_order(buffers, order)
    for i, a in enumerate(slices):
        for b in slices[i + 1 :]:
            if a.end < b.start or b.end < a.start:
                continue
            oa, ob = offsets[a.name], offsets[b.name]
            if oa < ob + align(b.size, alignment) and ob < oa + align(a.size, alignment):
                raise InternalError(f"the joint placement overlaps slices {a.name} and {b.name}")
