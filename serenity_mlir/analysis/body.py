"""From an MLIR function body to the scheduler's :class:`Graph`.

Nodes are the ops of the body that do work (at the flow level: each
``flow.dispatch`` is one real kernel after fusion). The memory model follows
what IREE allocates (README.md, "How it works"):

- views (reshapes, bitcasts, barriers, casts) alias their source: no memory,
  and a use of the view keeps the source alive;
- ``flow.tensor.update`` writes into its target in place, and a dispatch
  result tied to an operand reuses that operand's buffer; a buffer that starts
  as ``flow.tensor.empty`` is allocated by its first writer, so a concat
  buffer is live from its first writer to its last reader;
- a dispatch result whose only use (through views) is the source of such a
  ``flow.tensor.update`` is written straight into the concat buffer, as
  IREE's stream phase does (``iree-stream-emplace-allocations``, see
  :mod:`.concat`): no buffer of its own, and the writers of one concat run in
  the order of the update chain, the first one allocating the buffer; concats
  of one type whose ``flow.tensor.empty`` CSE merged get a buffer each (IREE
  clones it per chain before emplacing);
- weights and constants (``util.global.load``, constants) are not activations;
  a constant that an update chain writes into is cloned for the call (its
  copy lives outside the slab for the whole call; dispatches that feed the
  chain write into the copy);
- function inputs (``hal.tensor.import``, or block arguments at the input
  level) are live from the start until their last use; exported results and
  returned values live to the end.

Ops that only compute indices or constants are not nodes: the pass places
them right before their first user. Ops whose side effects we do not know
keep their relative order (chained), so reordering never changes behaviour.

The builder walks the block once (:meth:`_Builder.walk`), tracking one
:class:`_Buf` record per buffer and which node produced each value, then
adds the order constraints of emplaced concats and lazily allocated buffers
(:meth:`_Builder.constrain`) and renumbers the nodes in IREE's run order.

Why one module of about 450 lines: it is one algorithm, a single walk over
the block whose steps share the builder's state; the op tables, the concat
chains and the tensor sizes it reads live in ops.py, concat.py and types.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from iree.compiler import ir

from serenity_mlir.analysis.concat import CONSTANT_ROOT_OP, Link, emplaced_chains, update_source
from serenity_mlir.analysis.functions import func_name
from serenity_mlir.analysis.ops import (
    CONTROL_FLOW_PREFIXES,
    EXPORT_OPS,
    FREE_OPS,
    INPUT_OPS,
    JOIN_OPS,
    LAZY_BUFFER_OPS,
    REGION_BARRIER_OPS,
    VIEW_OPS,
    all_operands,
    defining_op,
    dispatch_arguments,
    is_pure,
    label,
    op_key,
    single_use,
    tied_operands,
    value_key,
    where,
)
from serenity_mlir.analysis.types import DynamicShape, tensor_bytes, tensor_bytes_or_error
from serenity_mlir.errors import ControlFlowError, InputError
from serenity_mlir.ir.entry import ENTRY_INPUTS, recorded_entry
from serenity_mlir.ir.tensors import TensorSpec
from serenity_mlir.memory.slab import ALIGNMENT, SlabPrediction, align, predict_slab
from serenity_mlir.scheduler.graph import Buffer, Graph, stable_topological_order

MODELS = ("iree", "paper")


@dataclass
class BodyGraph:
    """The graph of one function body and the ops behind its nodes."""

    func_name: str
    graph: Graph
    node_ops: list[ir.Operation]
    block: ir.Block
    model: str = "iree"
    input_bytes: int = 0
    output_bytes: int = 0
    # Every buffer a node allocates (results included): what IREE turns into
    # a slab slice (or, for results, an external allocation).
    buffers: tuple[Buffer, ...] = ()
    # Nodes that end an execution region (``REGION_BARRIER_OPS``).
    barriers: frozenset[int] = frozenset()
    # Globals IREE allocates and fills when the module is initialised
    # (splat-initialised ``util.global``s, e.g. a hoisted 1/sqrt(var + eps)
    # of a batch norm with default statistics) and constants a result
    # exports: live for the whole call.
    constant_bytes: int = 0
    # Constants cloned as a concat's target (.concat): IREE copies them in an
    # execution region of their own ahead of the main one, live for the whole
    # call; an arena entry point runs one region, where the copy is a slice of
    # the arena instead.
    cloned_bytes: int = 0

    def predict(self, order: Sequence[int]) -> SlabPrediction:
        """What IREE allocates for ``order``: its slabs and the buffers that
        cross execution regions (``memory.slab.predict_slab``)."""
        return predict_slab(self.buffers, order, barriers=self.barriers)

    @property
    def fixed_bytes(self) -> int:
        """Bytes outside the graph that are live for the whole call."""
        if self.model != "iree":
            return 0
        return self.input_bytes + self.output_bytes + self.constant_bytes + self.cloned_bytes


def splat_global_bytes(module: ir.Operation) -> int:
    """Bytes IREE allocates at module initialisation for the module's
    splat-initialised ``util.global``s: a dense constant is mapped from the
    module's data, a splat is not stored but filled into an allocation (one
    for all of them, :func:`packed_allocation_bytes`). Measured, equal to the
    runtime's counter after initialisation: DenseNet 25 globals, 5,356 B
    packed into 6,272 B; DenseNet-121 67,200 B; light_resnet50 15,872 B; one
    160 B global: 160 B."""
    sizes = []
    for op in module.regions[0].blocks[0].operations:
        o = op.operation
        if o.name != "util.global" or "initial_value" not in o.attributes:
            continue
        attr = o.attributes["initial_value"]
        if isinstance(attr, ir.DenseElementsAttr) and attr.is_splat:
            size = tensor_bytes(attr.type)
            if size:
                sizes.append(size)
    return packed_allocation_bytes(sizes)


def packed_allocation_bytes(sizes: Sequence[int]) -> int:
    """Bytes of one ``stream.resource.alloc`` of ``sizes``: one resource is
    allocated as it is; several are packed into one slab with overlapping
    lifetimes by ``iree-stream-pack-allocations`` (PackAllocations.cpp),
    each slice 64-byte aligned (two 16 B results: 128 B; one 160 B splat
    global: 160 B)."""
    if len(sizes) <= 1:
        return sum(sizes)
    return sum(align(s, ALIGNMENT) for s in sizes)


@dataclass
class _Buf:
    """One buffer while the graph is built (aliases share one)."""

    name: str
    size: int
    alloc: int | None  # the allocating node; None: an input, or not yet allocated
    is_input: bool = False
    lazy: bool = False  # allocated by its first in-place writer
    # A constant cloned for the call (an update chain into it, see .concat):
    # outside the slab, live for the whole call.
    whole_call: bool = False
    users: set[int] = field(default_factory=set)


@dataclass
class _Node:
    op: ir.Operation
    name: str
    label: str
    preds: set[int] = field(default_factory=set)


class _Builder:
    def __init__(self, func_op: ir.Operation, block: ir.Block) -> None:
        self.func_op = func_op
        self.name = func_name(func_op)
        self.block = block
        self.bufs: list[_Buf] = []
        self.buffer_of: dict[int, int] = {}  # value -> buffer id
        self.outputs: set[int] = set()  # buffer ids
        self.nodes: list[_Node] = []
        self.producer: dict[int, int] = {}  # value -> node that (last) defined it
        self.last_effect: int | None = None
        # Emplaced concats (see .concat)
        self.emplaced_into: dict[int, int] = {}  # dispatch result -> concat buffer
        self.emplaced_updates: set[int] = set()
        self.chain_buffer: dict[int, int] = {}  # update of an emplaced chain -> its concat buffer
        self.chain_buffers: list[tuple[int, list[Link]]] = []
        self.exported_constant_bytes = 0  # results that are constants
        # One naming state for the whole walk: ``Value.get_name()`` without
        # one numbers the whole module again on every call (quadratic).
        self.asm = ir.AsmState(_top_level(func_op))

    def value_name(self, v: ir.Value) -> str:
        """``v``'s name as the module prints it (``%12``, ``%arg0``)."""
        return v.get_name(self.asm)

    def new_buffer(
        self,
        size: int,
        alloc: int | None,
        name: str,
        is_input: bool = False,
        lazy: bool = False,
        whole_call: bool = False,
    ) -> int:
        self.bufs.append(_Buf(name, size, alloc, is_input, lazy, whole_call=whole_call))
        return len(self.bufs) - 1

    def size_of(self, v: ir.Value, op: ir.Operation) -> int | None:
        try:
            return tensor_bytes(v.type)
        except DynamicShape as e:
            raise InputError(
                f"{where(op)}: dynamic shapes are not supported: {self.value_name(v)} has type {e}"
            ) from None

    def alias(self, r: ir.Value, src: ir.Value) -> None:
        """``r`` is a view of ``src``: same buffer, same producer."""
        self.buffer_of[value_key(r)] = self.buffer_of[value_key(src)]
        if value_key(src) in self.producer:
            self.producer[value_key(r)] = self.producer[value_key(src)]

    # -- the walk ---------------------------------------------------------

    def arguments(self) -> None:
        for arg in self.block.arguments:
            size = tensor_bytes_or_error(arg, self.func_op, self.name)
            if size is not None:
                self.buffer_of[value_key(arg)] = self.new_buffer(size, None, self.value_name(arg), is_input=True)

    def concats(self, body_ops: list[ir.Operation]) -> None:
        for root, links in emplaced_chains(body_ops):
            size = self.size_of(root, defining_op(root))
            if size is None:
                continue
            # A fresh value that CSE shared between several concats is cloned
            # for each (copy-on-write of an empty or splat value: a fresh
            # buffer), so every chain gets a buffer of its own, named after the
            # concat's first update (reports and joint.py key buffers by name).
            shared = not single_use(root)
            root_name = self.value_name(root)
            name = f"{root_name}->{self.value_name(links[0][0].results[0])}" if shared else root_name
            if defining_op(root).name == CONSTANT_ROOT_OP:
                # The constant's clone; the constant itself stays a constant.
                b = self.new_buffer(size, None, f"clone of {name}", whole_call=True)
            else:
                b = self.new_buffer(size, None, name, lazy=True)
                if not shared:
                    self.buffer_of[value_key(root)] = b
            self.chain_buffers.append((b, links))
            for update, source in links:
                self.chain_buffer[op_key(update)] = b
                if source is not None:
                    self.emplaced_into[value_key(source)] = b
                    self.emplaced_updates.add(op_key(update))

    def walk(self, body_ops: list[ir.Operation]) -> None:
        for op in body_ops:
            oname = op.name
            if any(oname.startswith(p) for p in CONTROL_FLOW_PREFIXES):
                raise ControlFlowError(
                    f"{where(op)}: control flow ('{oname}') in the body of '{self.name}' is not supported"
                )
            operands = list(all_operands(op, self.block))
            if not self.not_a_node(op, operands):
                self.node(op, operands)

    def not_a_node(self, op: ir.Operation, operands: list[ir.Value]) -> bool:
        """Handles an op that allocates nothing of its own (free ops, inputs,
        views, exports, emplaced updates); False when ``op`` is a node."""
        oname = op.name
        if oname in FREE_OPS:
            for r in op.results:
                size = self.size_of(r, op)
                if oname in LAZY_BUFFER_OPS and size is not None and value_key(r) not in self.buffer_of:
                    self.buffer_of[value_key(r)] = self.new_buffer(size, None, self.value_name(r), lazy=True)
            return True
        if oname in INPUT_OPS:
            for r in op.results:
                size = self.size_of(r, op)
                if size is not None:
                    self.buffer_of[value_key(r)] = self.new_buffer(size, None, self.value_name(r), is_input=True)
            return True
        if op_key(op) in self.emplaced_updates:
            # The writer already wrote its slice in place: the update is a
            # view of the concat buffer, produced by that writer.
            src = update_source(op)
            assert src is not None
            self.buffer_of[value_key(op.results[0])] = self.chain_buffer[op_key(op)]
            if value_key(src) in self.producer:
                self.producer[value_key(op.results[0])] = self.producer[value_key(src)]
            return True
        if oname in VIEW_OPS or oname in EXPORT_OPS:
            srcs = list(op.operands)[: len(op.results)] if oname in JOIN_OPS else operands[:1] * len(op.results)
            pairs = [(s, r) for s, r in zip(srcs, op.results, strict=False) if value_key(s) in self.buffer_of]
            if pairs:
                for src, r in pairs:
                    self.alias(r, src)
                    if oname in EXPORT_OPS:
                        self.outputs.add(self.buffer_of[value_key(src)])
                return True
            # A view of a constant is free; an export of one is a node, and
            # IREE copies the constant into a staging buffer at the call's
            # start, then into the result at its end (both its size).
            if oname in EXPORT_OPS:
                self.exported_constant_bytes += self.size_of(op.operands[0], op) or 0
            return oname in VIEW_OPS
        return False

    def node(self, op: ir.Operation, operands: list[ir.Value]) -> None:
        v = len(self.nodes)
        names = ", ".join(self.value_name(r) for r in op.results) or op.name
        node = _Node(op, names, label(op))
        self.nodes.append(node)
        for x in operands:
            k = value_key(x)
            if k in self.producer:
                node.preds.add(self.producer[k])
            if k in self.buffer_of:
                self.bufs[self.buffer_of[k]].users.add(v)
        if not is_pure(op.name):
            if self.last_effect is not None:
                node.preds.add(self.last_effect)
            self.last_effect = v
        for i, r in enumerate(op.results):
            self.result(op, v, i, r)

    def result(self, op: ir.Operation, v: int, i: int, r: ir.Value) -> None:
        """The buffer of result ``i`` of node ``v``."""
        key = value_key(r)
        self.producer[key] = v
        size = self.size_of(r, op)
        if size is None:
            return
        into = self.emplaced_into.get(key)
        if into is None and op.name in REGION_BARRIER_OPS and value_key(op.operands[i]) in self.buffer_of:
            self.buffer_of[key] = self.buffer_of[value_key(op.operands[i])]
            return
        if into is None:
            # A copying link of an emplaced concat writes into the chain's buffer.
            into = self.chain_buffer.get(op_key(op))
        if into is not None:
            self.buffer_of[key] = into
            self.bufs[into].users.add(v)
            return
        target = self.in_place_target(op, i)
        if target is not None and value_key(target) in self.buffer_of and single_use(target):
            # Written in place: the result is the target's buffer (a fresh
            # empty/splat buffer gets its memory from this writer).
            b = self.buffer_of[value_key(target)]
            if self.bufs[b].lazy and self.bufs[b].alloc is None:
                self.bufs[b].alloc = v
            self.buffer_of[key] = b
        else:
            self.buffer_of[key] = self.new_buffer(size, v, self.value_name(r))

    @staticmethod
    def in_place_target(op: ir.Operation, i: int) -> ir.Value | None:
        """The operand result ``i`` is written into, if any."""
        if op.name == "flow.tensor.update":
            return op.operands[0]  # ODS order: target, target_dims, ..., update
        tied = tied_operands(op)
        if tied is not None and i < len(tied) and tied[i] >= 0:
            return dispatch_arguments(op)[tied[i]]
        return None

    def returned(self, terminator: ir.Operation) -> None:
        """Values returned by the terminator are outputs."""
        for x in terminator.operands:
            if value_key(x) in self.buffer_of:
                self.outputs.add(self.buffer_of[value_key(x)])

    # -- order constraints and numbering ------------------------------------

    def constrain(self) -> None:
        # The writers of an emplaced concat run in update-chain order (each
        # one writes into the previous one's result); the first one allocates it.
        node_of = {op_key(n.op): i for i, n in enumerate(self.nodes)}
        for b, links in self.chain_buffers:
            writers = [node_of[op_key(defining_op(src) if src is not None else upd)] for upd, src in links]
            if not self.bufs[b].whole_call:
                self.bufs[b].alloc = writers[0]
            self.bufs[b].users.update(writers)
            for prev, nxt in zip(writers, writers[1:], strict=False):
                if prev != nxt:
                    self.nodes[nxt].preds.add(prev)
        # A lazily allocated buffer must be allocated by its first user:
        # every other user waits for that one.
        for buf in self.bufs:
            if buf.lazy and buf.alloc is not None:
                for u in buf.users:
                    if u != buf.alloc:
                        self.nodes[u].preds.add(buf.alloc)

    def renumber(self) -> None:
        """IREE moves a concat's earlier link before an emplaced writer when
        the block has it later (the chain edges above): number the nodes in
        the topological order closest to the block's, so that index order
        stays the program order IREE runs."""
        perm = stable_topological_order(len(self.nodes), [n.preds for n in self.nodes])
        if perm == list(range(len(self.nodes))):
            return
        new_index = {old: i for i, old in enumerate(perm)}
        self.nodes = [self.nodes[o] for o in perm]
        for n in self.nodes:
            n.preds = {new_index[p] for p in n.preds}
        for buf in self.bufs:
            buf.alloc = None if buf.alloc is None else new_index[buf.alloc]
            buf.users = {new_index[u] for u in buf.users}

    # -- the result ------------------------------------------------------------

    def body_graph(self, model: str) -> BodyGraph:
        n = len(self.nodes)
        users: list[set[int]] = [set() for _ in range(n)]
        node_size = [0] * n
        extra: list[Buffer] = []  # Graph.buffers: inputs and further buffers of a node
        out_nodes: set[int] = set()
        input_bytes = output_bytes = cloned_bytes = 0
        buffers: list[Buffer] = []
        node_buffers: dict[int, list[int]] = {}
        # The results the call allocates: one execution region's results
        # are one allocation, packed when there are several.
        allocated = [self.bufs[b].size for b in self.outputs if self.bufs[b].alloc is not None]
        output_bytes += packed_allocation_bytes(allocated) - sum(allocated)
        for b, buf in enumerate(self.bufs):
            a = buf.alloc
            if b in self.outputs and not buf.is_input:
                # (an input returned as it is is the caller's own buffer)
                output_bytes += buf.size
            if a is None:
                if buf.whole_call and b not in self.outputs:
                    cloned_bytes += buf.size
                if buf.is_input:
                    input_bytes += buf.size
                    if model == "paper":
                        extra.append(Buffer(buf.name, buf.size, frozenset(buf.users)))
                continue
            buffers.append(Buffer(buf.name, buf.size, frozenset(buf.users - {a}), alloc=a, output=b in self.outputs))
            if b in self.outputs:
                out_nodes.add(a)
                if model == "iree":
                    continue  # a result: outside the slab
            node_buffers.setdefault(a, []).append(b)
        for a, bs in node_buffers.items():
            # A node's own buffer is its result (or, in the paper model, its
            # outputs); every further buffer it allocates (a second result,
            # the concat it starts) lives on its own, freed after its own last
            # user: giving the node their union of users would keep them all
            # alive too long.
            own = [b for b in bs if b in self.outputs] or bs[:1]
            for b in bs:
                buf = self.bufs[b]
                if b in own:
                    node_size[a] += buf.size
                    users[a] |= buf.users - {a}
                else:
                    extra.append(Buffer(buf.name, buf.size, frozenset(buf.users - {a}), alloc=a))
        entry = recorded_entry(self.func_op, ENTRY_INPUTS)
        if entry is not None and model == "iree":
            # The caller passes every input the model declares, those the
            # body never reads (IREE drops their import) included.
            input_bytes = sum(TensorSpec.parse(t).nbytes for t in entry)
        graph = Graph(
            names=tuple(nd.name for nd in self.nodes),
            sizes=tuple(node_size),
            preds=tuple(frozenset(nd.preds) for nd in self.nodes),
            users=tuple(frozenset(u) for u in users),
            outputs=frozenset(out_nodes) if model == "paper" else frozenset(),
            buffers=tuple(extra),
            labels=tuple(nd.label for nd in self.nodes),
        )
        node_ops = [nd.op for nd in self.nodes]
        return BodyGraph(
            func_name=self.name,
            graph=graph,
            node_ops=node_ops,
            block=self.block,
            model=model,
            input_bytes=input_bytes,
            output_bytes=output_bytes + self.exported_constant_bytes,
            cloned_bytes=cloned_bytes,
            constant_bytes=self.exported_constant_bytes
            + (splat_global_bytes(self.func_op.parent) if self.func_op.parent is not None else 0),
            buffers=tuple(buffers),
            barriers=frozenset(v for v, op in enumerate(node_ops) if op.name in REGION_BARRIER_OPS),
        )


def _top_level(op: ir.Operation) -> ir.Operation:
    """The outermost op around ``op``: value names are numbered from there,
    as ``Value.get_name()`` numbers them."""
    while op.parent is not None:
        op = op.parent
    return op


def build_body_graph(func_op: ir.Operation, model: str = "iree") -> BodyGraph:
    """Builds the scheduling graph of a single-block function body.

    ``model="paper"`` is SERENITY's model: inputs live from the start until
    their last use, outputs from their producer to the end. ``model="iree"``
    is what IREE allocates: the caller's inputs and the result buffers exist
    for the whole call outside the transient slab, so they are left out and
    the graph's peak is the slab IREE packs (before alignment and
    fragmentation); ``BodyGraph.fixed_bytes`` holds their sum.
    """
    if model not in MODELS:
        raise InputError(f"unknown memory model '{model}' (known: {', '.join(MODELS)})")
    blocks = list(func_op.regions[0].blocks)
    if len(blocks) != 1:
        raise InputError(
            f"{where(func_op)}: function '{func_name(func_op)}' has {len(blocks)} blocks; "
            "only single-block bodies (no control flow) can be scheduled"
        )
    ops = [op.operation for op in blocks[0].operations]
    body_ops = ops[:-1]  # the terminator stays last
    builder = _Builder(func_op, blocks[0])
    builder.arguments()
    builder.concats(body_ops)
    builder.walk(body_ops)
    builder.returned(ops[-1])
    builder.constrain()
    builder.renumber()
    return builder.body_graph(model)
