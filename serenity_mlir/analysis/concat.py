"""Concats that IREE builds in place: update chains and emplaced writers.

A concat at the flow phase is a chain of ``flow.tensor.update`` ops into a
fresh (empty or splat) buffer, or into a constant (a ``util.global.load``:
a ViT's class token concatenated with the patch embeddings, hoisted with
its zero padding into one global). IREE clones a constant target before
the first update (copy-on-write): a transient of its own, allocated and
copied in an execution region ahead of the call's main one and never freed
before the call ends. IREE's ``iree-stream-emplace-allocations``
lets a dispatch whose result only feeds such an update (through single-use
views) write straight into the concat buffer. This module finds those chains
and writers; :mod:`.body` turns them into buffers and order constraints.
"""

from __future__ import annotations

from iree.compiler import ir

from serenity_mlir.analysis.ops import LAZY_BUFFER_OPS, VIEW_OPS, defining_op, op_key, tied_operands, value_key

Link = tuple[ir.Operation, "ir.Value | None"]

# An update chain into a constant: the constant is cloned for the call.
CONSTANT_ROOT_OP = "util.global.load"


def update_source(op: ir.Operation) -> ir.Value | None:
    """The value a ``flow.tensor.update`` writes (ODS: target, target dims,
    start indices, update, update dims): its one tensor operand after the
    target."""
    tensors = [x for x in list(op.operands)[1:] if isinstance(x.type, ir.RankedTensorType)]
    return tensors[0] if len(tensors) == 1 else None


def _emplaceable_source(v: ir.Value, blocked: frozenset[int] = frozenset()) -> ir.Value | None:
    """The dispatch result IREE writes in place into an update's target
    when ``v`` (the update's source) reaches it only through single-use
    views: that result's one use, once views fold away, is the update.

    IREE 3.13's ``iree-stream-emplace-allocations`` (EmplaceAllocations.cpp,
    ``tryEmplaceDispatchOp``) skips a dispatch that has any tied result, and
    otherwise places every result whose one use is an update, each on its
    own (a result it cannot place keeps an allocation of its own; the older
    pass stopped at the first such result). ``blocked``: results whose
    chain IREE cannot move above their dispatch (:func:`_unmovable_links`)."""
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
        if any(t >= 0 for t in tied_operands(op) or []):
            return None
        if value_key(v) in blocked:
            return None
        return v


def emplaced_chains(body_ops: list[ir.Operation]) -> list[tuple[ir.Value, list[tuple[ir.Operation, ir.Value | None]]]]:
    """Concats built by a chain of ``flow.tensor.update`` ops into a fresh
    (empty or splat) buffer, each link used once: (the fresh value, the
    links in chain order as (update, the dispatch result written in place or
    None when the update copies)). A fresh value that CSE shared between
    several concats starts one chain per concat (IREE clones it for each).
    Only chains into a constant or with at least one emplaced link are
    returned: the others keep the plain in-place update model.

    IREE emplaces a dispatch result into link k only if it can move the
    chain so far (link k-1 and what it depends on) above the dispatch
    (``Util::tryMoveProducerBefore``), which fails when link k-1 depends on
    the dispatch itself, unless link k-1 is that dispatch's own result
    (NASNet-A: one dispatch writes links 0 and 2 of a concat, another one
    link 1). Such a result keeps its own buffer and its update copies it;
    without this the chain-order edges contradict the data edges (a cycle)."""
    position = {op_key(op): i for i, op in enumerate(body_ops)}
    blocked: set[int] = set()
    while True:
        chains = _collect_chains(body_ops, position, frozenset(blocked))
        unmovable = _unmovable_links(chains, position) - blocked
        if not unmovable:
            return chains
        blocked |= unmovable


def _unmovable_links(chains: list[tuple[ir.Value, list[Link]]], position: dict[int, int]) -> set[int]:
    """The emplaced sources whose previous chain link depends on their own
    dispatch (IREE cannot move that link above the dispatch)."""
    out: set[int] = set()
    for _, links in chains:
        for (prev_update, prev_src), (_, src) in zip(links, links[1:], strict=False):
            if src is None:
                continue
            dispatch = defining_op(src)
            if prev_src is not None and op_key(defining_op(prev_src)) == op_key(dispatch):
                continue  # the link before is the dispatch's own result: IREE ties both
            if _depends_on(prev_update.results[0], dispatch, position):
                out.add(value_key(src))
    return out


def _depends_on(v: ir.Value, op: ir.Operation, position: dict[int, int]) -> bool:
    """True when ``v`` is computed from a result of ``op`` (ops before ``op``
    in the block cannot be)."""
    target = op_key(op)
    limit = position.get(target, -1)
    seen: set[int] = set()
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x.owner, ir.Block):
            continue
        d = defining_op(x)
        k = op_key(d)
        if k == target:
            return True
        if k in seen or position.get(k, -1) < limit:
            continue
        seen.add(k)
        stack.extend(d.operands)
    return False


def _collect_chains(
    body_ops: list[ir.Operation], position: dict[int, int], blocked: frozenset[int]
) -> list[tuple[ir.Value, list[Link]]]:
    chains = []
    for op in body_ops:
        if op.name not in LAZY_BUFFER_OPS and op.name != CONSTANT_ROOT_OP:
            continue
        for root in op.results:
            # In block order (a use list runs newest first).
            for first in sorted(_updates_into(root), key=lambda u: position.get(op_key(u), -1)):
                links: list[tuple[ir.Operation, ir.Value | None]] = []
                upd: ir.Operation | None = first
                while upd is not None:
                    src = update_source(upd)
                    assert src is not None
                    links.append((upd, _emplaceable_source(src, blocked)))
                    cur = upd.results[0]
                    nxt = _updates_into(cur)
                    upd = nxt[0] if len(nxt) == 1 and len(list(cur.uses)) == 1 else None
                if op.name == CONSTANT_ROOT_OP or any(src is not None for _, src in links):
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
