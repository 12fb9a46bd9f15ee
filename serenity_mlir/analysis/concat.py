"""Concats that IREE builds in place: update chains and emplaced writers.

A concat at the flow phase is a chain of ``flow.tensor.update`` ops into a
fresh (empty or splat) buffer. IREE's ``iree-stream-emplace-allocations``
lets a dispatch whose result only feeds such an update (through single-use
views) write straight into the concat buffer. This module finds those chains
and writers; :mod:`.body` turns them into buffers and order constraints.
"""

from __future__ import annotations

from iree.compiler import ir

from serenity_mlir.analysis.ops import LAZY_BUFFER_OPS, VIEW_OPS, defining_op, op_key, tied_operands

Link = tuple[ir.Operation, "ir.Value | None"]

def update_source(op: ir.Operation) -> ir.Value | None:
    """The value a ``flow.tensor.update`` writes (ODS: target, target dims,
    start indices, update, update dims): its one tensor operand after the
    target."""
    tensors = [x for x in list(op.operands)[1:] if isinstance(x.type, ir.RankedTensorType)]
    return tensors[0] if len(tensors) == 1 else None


def _emplaceable_source(v: ir.Value) -> ir.Value | None:
    """The dispatch result IREE writes in place into an update's target
    when ``v`` (the update's source) reaches it only through single-use
    views: that result's one use, once views fold away, is the update. Only
    untied results from the first one on qualify, as in IREE's pass."""
    while True:
        if len(list(v.uses)) != 1:
            return None
        if isinstance(v.owner, ir.Block):
            return None  # a function argument
        op = defining_op(v)
        if op.name in VIEW_OPS:
            v = op.operands[0]
            continue
        if op.name != "flow.dispatch":
            return None
        tied = tied_operands(op) or []
        results = list(op.results)
        for i, r in enumerate(results):
            if i < len(tied) and tied[i] >= 0:
                return None
            if r == v:
                return v
            # An earlier result that is not emplaced stops IREE's walk.
            if _emplaceable_source_use(r) is None:
                return None
        return None


def _emplaceable_source_use(r: ir.Value) -> ir.Operation | None:
    """The update that ``r`` flows into through single-use views, if any."""
    while True:
        uses = list(r.uses)
        if len(uses) != 1:
            return None
        user = uses[0].owner
        user_op = user.operation if hasattr(user, "operation") else user
        if user_op.name in VIEW_OPS:
            r = user_op.results[0]
            continue
        if user_op.name == "flow.tensor.update" and update_source(user_op) == r:
            return user_op
        return None


def emplaced_chains(body_ops: list[ir.Operation]) -> list[tuple[ir.Value, list[tuple[ir.Operation, ir.Value | None]]]]:
    """Concats built by a chain of ``flow.tensor.update`` ops into a fresh
    (empty or splat) buffer, each link used once: (the fresh value, the
    links in chain order as (update, the dispatch result written in place or
    None when the update copies)). A fresh value that CSE shared between
    several concats starts one chain per concat (IREE clones it for each).
    Only chains with at least one emplaced link are returned: the others
    keep the plain in-place update model."""
    chains = []
    position = {op_key(op): i for i, op in enumerate(body_ops)}
    for op in body_ops:
        if op.name not in LAZY_BUFFER_OPS:
            continue
        for root in op.results:
            # In block order (a use list runs newest first).
            for first in sorted(_updates_into(root), key=lambda u: position.get(op_key(u), -1)):
                links: list[tuple[ir.Operation, ir.Value | None]] = []
                upd: ir.Operation | None = first
                while upd is not None:
                    src = update_source(upd)
                    assert src is not None
                    links.append((upd, _emplaceable_source(src)))
                    cur = upd.results[0]
                    nxt = _updates_into(cur)
                    upd = nxt[0] if len(nxt) == 1 and len(list(cur.uses)) == 1 else None
                if any(src is not None for _, src in links):
                    chains.append((root, links))
    return chains


def _updates_into(v: ir.Value) -> list[ir.Operation]:
    """The ``flow.tensor.update`` ops that write into ``v`` (as their target)."""
    out: list[ir.Operation] = []
    for use in v.uses:
        user = use.owner
        op = user.operation if hasattr(user, "operation") else user
        if op.name == "flow.tensor.update" and use.operand_number == 0 and update_source(op) is not None:
            out.append(op)
    return out
