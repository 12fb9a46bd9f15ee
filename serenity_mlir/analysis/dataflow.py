"""From an MLIR function body to the scheduler's :class:`Graph`.

Nodes are the ops of the body that do work (at the flow level: each
``flow.dispatch`` is one real kernel after fusion). The memory model follows
what IREE allocates (DESIGN.md):

- views (reshapes, bitcasts, barriers, casts) alias their source: no memory,
  and a use of the view keeps the source alive;
- ``flow.tensor.update`` writes into its target in place, and a dispatch
  result tied to an operand reuses that operand's buffer; a buffer that starts
  as ``flow.tensor.empty`` is allocated by its first writer, so a concat
  buffer is live from its first writer to its last reader;
- a dispatch result whose only use (through views) is the source of such a
  ``flow.tensor.update`` is written straight into the concat buffer, as
  IREE's stream phase does (``iree-stream-emplace-allocations``): no buffer
  of its own, and the writers of one concat run in the order of the update
  chain, the first one allocating the buffer; concats of one type whose
  ``flow.tensor.empty`` CSE merged get a buffer each (IREE clones it per
  chain before emplacing);
- weights and constants (``util.global.load``, constants) are not activations;
- function inputs (``hal.tensor.import``, or block arguments at the input
  level) are live from the start until their last use; exported results and
  returned values live to the end.

Ops that only compute indices or constants are not nodes: the pass places
them right before their first user. Ops whose side effects we do not know
keep their relative order (chained), so reordering never changes behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from iree.compiler import ir

from serenity_mlir.errors import InputError
from serenity_mlir.ir.mlir import format_location
from serenity_mlir.memory.slab import SlabPrediction, predict_slab
from serenity_mlir.scheduler.graph import Graph, InputBuffer, stable_topological_order

# Ops whose results alias operand 0 (no new memory).
VIEW_OPS = frozenset(
    {
        "flow.tensor.reshape",
        "flow.tensor.bitcast",
        "flow.tensor.tie_shape",
        "hal.tensor.barrier",
        "hal.tensor.alias",
        "tensor.collapse_shape",
        "tensor.expand_shape",
        "tensor.cast",
        "tensor.reshape",
        "tosa.reshape",
        "stablehlo.reshape",
        "torch_c.from_builtin_tensor",
        "torch_c.to_builtin_tensor",
    }
)
# Ops that hold no activation memory: weights, constants, fresh uninitialised
# buffers (allocated by their first in-place writer).
FREE_OPS = frozenset(
    {
        "util.global.load",
        "arith.constant",
        "flow.tensor.constant",
        "stablehlo.constant",
        "tosa.const",
        "torch.constant.none",
        "torch.constant.int",
        "torch.constant.float",
        "torch.constant.bool",
        "torch.constant.str",
        "torch.vtensor.literal",
        "tensor.empty",
        "flow.tensor.empty",
        "flow.tensor.splat",
        "util.null",
    }
)
# Buffers created by these ops get their memory from their first writer.
# A splat becomes a fill command right before its writer, and a splat value
# that CSE shared between several in-place writers is cloned for each of them
# (copy-on-write): like an empty buffer, its memory comes from the writer.
LAZY_BUFFER_OPS = frozenset({"flow.tensor.empty", "flow.tensor.splat"})
INPUT_OPS = frozenset({"hal.tensor.import"})
# Host-side ops that end IREE's current execution region: a node of its own
# (so the schedule places it) whose results alias its operands.
REGION_BARRIER_OPS = frozenset({"util.optimization_barrier"})
EXPORT_OPS = frozenset({"hal.tensor.export"})
CONTROL_FLOW_PREFIXES = (
    "scf.",
    "cf.",
    "affine.for",
    "affine.if",
    "stablehlo.while",
    "stablehlo.if",
    "tosa.cond_if",
    "tosa.while_loop",
)
# Dialects whose ops are free of side effects (safe to reorder by data flow).
PURE_DIALECTS = (
    "arith.",
    "math.",
    "tensor.",
    "linalg.",
    "tosa.",
    "stablehlo.",
    "chlo.",
    "torch.",
    "torch_c.",
    "flow.",
    "iree_tensor_ext.",
)
PURE_OPS = frozenset({"util.global.load", "util.null", "util.optimization_barrier"})


def tensor_bytes(t: ir.Type) -> int | None:
    """Byte size of a statically shaped tensor type; None for non-tensors."""
    shaped: ir.ShapedType | None = None
    if isinstance(t, ir.RankedTensorType):
        shaped = t
    elif str(t).startswith("!torch.vtensor<["):
        return _torch_vtensor_bytes(str(t))
    if shaped is None:
        return None
    if not shaped.has_static_shape:
        raise _DynamicShape(str(t))
    n = 1
    for d in shaped.shape:
        n *= d
    return n * _element_bits(shaped.element_type) // 8 + (1 if (n * _element_bits(shaped.element_type)) % 8 else 0)


class _DynamicShape(Exception):
    pass


def _element_bits(t: ir.Type) -> int:
    if isinstance(t, ir.IntegerType):
        return max(8, t.width) if t.width == 1 else t.width
    if isinstance(t, ir.IndexType):
        return 64
    if isinstance(t, ir.ComplexType):
        return 2 * _element_bits(t.element_type)
    width = getattr(t, "width", None)
    if isinstance(width, int):
        return width
    raise InputError(f"unsupported element type {t}")


_TORCH_BITS = {
    "f64": 64,
    "f32": 32,
    "f16": 16,
    "bf16": 16,
    "si64": 64,
    "si32": 32,
    "si16": 16,
    "si8": 8,
    "ui8": 8,
    "i1": 8,
}


def _torch_vtensor_bytes(text: str) -> int:
    inner = text[len("!torch.vtensor<[") :]
    dims, _, rest = inner.partition("]")
    if "?" in dims:
        raise _DynamicShape(text)
    n = 1
    for d in dims.split(","):
        if d.strip():
            n *= int(d)
    elem = rest.strip(",> ")
    return n * _TORCH_BITS.get(elem, 32) // 8


@dataclass(frozen=True)
class Buffer:
    """One buffer a node allocates: what IREE turns into a slab slice (or,
    for results, an external allocation)."""

    name: str
    size: int
    alloc: int  # the node that allocates it
    users: frozenset[int]  # nodes that read or write it (through any alias)
    output: bool


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
    buffers: tuple[Buffer, ...] = ()
    # Nodes that end an execution region (``REGION_BARRIER_OPS``).
    barriers: frozenset[int] = frozenset()

    def predict(self, order: Sequence[int]) -> SlabPrediction:
        """What IREE allocates for ``order``: its slabs and the buffers that
        cross execution regions (``allocator.predict_slab``)."""
        return predict_slab(self.buffers, order, barriers=self.barriers)

    @property
    def fixed_bytes(self) -> int:
        """Bytes outside the graph that are live for the whole call."""
        return self.input_bytes + self.output_bytes if self.model == "iree" else 0


def _value_key(v: ir.Value) -> int:
    return hash(v)


def _where(op: ir.Operation) -> str:
    return format_location(op.location)


def _func_name(op: ir.Operation) -> str:
    return ir.StringAttr(op.attributes["sym_name"]).value


def _is_public(op: ir.Operation) -> bool:
    if "sym_visibility" not in op.attributes:
        return True
    return ir.StringAttr(op.attributes["sym_visibility"]).value == "public"


FUNC_OPS = ("func.func", "util.func")


def public_functions(module: ir.Operation) -> list[str]:
    """User-facing public functions (IREE's ``$async`` twins are folded into
    the name the user calls)."""
    names = []
    for op in module.regions[0].blocks[0].operations:
        o = op.operation
        if o.name in FUNC_OPS and _is_public(o) and len(o.regions[0].blocks) > 0:
            name = _func_name(o)
            if not name.endswith("$async") and not name.startswith("__"):
                names.append(name)
    return names


def find_body_function(module: ir.Operation, function: str | None) -> tuple[str, ir.Operation]:
    """Returns (user-facing name, the function op whose body runs the model).

    At the flow level IREE wraps ``@f`` around ``@f$async``, which holds the
    dispatches; that is the body to schedule.
    """
    funcs: dict[str, ir.Operation] = {}
    for op in module.regions[0].blocks[0].operations:
        o = op.operation
        if o.name in FUNC_OPS:
            funcs[_func_name(o)] = o
    public = public_functions(module)
    if function is None:
        if not public:
            raise InputError("the module has no public function to schedule")
        if len(public) > 1:
            raise InputError(
                f"the module has {len(public)} public functions ({', '.join(public)}): pick one with --function"
            )
        function = public[0]
    elif function not in public:
        raise InputError(f"no public function '{function}' in the module (it has: {', '.join(public) or 'none'})")
    body = funcs.get(function + "$async", funcs[function])
    return function, body


MODELS = ("iree", "paper")


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
    name = _func_name(func_op)
    region = func_op.regions[0]
    blocks = list(region.blocks)
    if len(blocks) != 1:
        raise InputError(
            f"{_where(func_op)}: function '{name}' has {len(blocks)} blocks; "
            "only single-block bodies (no control flow) can be scheduled"
        )
    block = blocks[0]
    ops = [op.operation for op in block.operations]
    body_ops = ops[:-1]  # the terminator stays last

    # Buffer identity per SSA value (aliases share one buffer id).
    buffer_of: dict[int, int] = {}
    buffer_size: list[int] = []
    buffer_alloc: list[int | None] = []  # allocating node, None = input
    buffer_users: list[set[int]] = []
    buffer_is_input: list[bool] = []
    buffer_name: list[str] = []
    buffer_lazy: list[bool] = []
    outputs: set[int] = set()  # buffer ids

    def new_buffer(size: int, alloc: int | None, label: str, is_input: bool = False, lazy: bool = False) -> int:
        buffer_size.append(size)
        buffer_alloc.append(alloc)
        buffer_users.append(set())
        buffer_is_input.append(is_input)
        buffer_name.append(label)
        buffer_lazy.append(lazy)
        return len(buffer_size) - 1

    def size_of(v: ir.Value, op: ir.Operation) -> int | None:
        try:
            return tensor_bytes(v.type)
        except _DynamicShape as e:
            raise InputError(f"{_where(op)}: dynamic shapes are not supported: {v.get_name()} has type {e}") from None

    for arg in block.arguments:
        size = tensor_bytes_or_error(arg, func_op, name)
        if size is not None:
            buffer_of[_value_key(arg)] = new_buffer(size, None, arg.get_name(), is_input=True)

    chains = _emplaced_chains(body_ops)
    emplaced_into: dict[int, int] = {}  # dispatch result -> concat buffer
    emplaced_updates: set[int] = set()
    chain_buffer: dict[int, int] = {}  # update of an emplaced chain -> its concat buffer
    chain_buffers: list[tuple[int, list[tuple[ir.Operation, ir.Value | None]]]] = []
    for root, links in chains:
        size = size_of(root, _defining_op(root))
        if size is None:
            continue
        # A fresh value that CSE shared between several concats is cloned for
        # each (copy-on-write of an empty or splat value: a fresh buffer), so
        # every chain gets a buffer of its own, named after the concat's first
        # update (reports and joint.py key buffers by name).
        shared = not _single_use(root)
        label = f"{root.get_name()}->{links[0][0].results[0].get_name()}" if shared else root.get_name()
        b = new_buffer(size, None, label, lazy=True)
        if not shared:
            buffer_of[_value_key(root)] = b
        chain_buffers.append((b, links))
        for update, source in links:
            chain_buffer[_op_key(update)] = b
            if source is not None:
                emplaced_into[_value_key(source)] = b
                emplaced_updates.add(_op_key(update))

    node_ops: list[ir.Operation] = []
    node_names: list[str] = []
    node_labels: list[str] = []
    node_preds: list[set[int]] = []
    producer: dict[int, int] = {}  # value -> node that (last) defined it
    last_effect: int | None = None

    for op in body_ops:
        oname = op.name
        if any(oname.startswith(p) for p in CONTROL_FLOW_PREFIXES):
            raise InputError(f"{_where(op)}: control flow ('{oname}') in the body of '{name}' is not supported")
        operands = list(_all_operands(op, block))
        if oname in FREE_OPS:
            for r in op.results:
                size = size_of(r, op)
                if oname in LAZY_BUFFER_OPS and size is not None and _value_key(r) not in buffer_of:
                    buffer_of[_value_key(r)] = new_buffer(size, None, r.get_name(), lazy=True)
            continue
        if oname in INPUT_OPS:
            for r in op.results:
                size = size_of(r, op)
                if size is not None:
                    buffer_of[_value_key(r)] = new_buffer(size, None, r.get_name(), is_input=True)
            continue
        if _op_key(op) in emplaced_updates:
            # The writer already wrote its slice in place: the update is a
            # view of the concat buffer, produced by that writer.
            src = _update_source(op)
            assert src is not None
            buffer_of[_value_key(op.results[0])] = chain_buffer[_op_key(op)]
            if _value_key(src) in producer:
                producer[_value_key(op.results[0])] = producer[_value_key(src)]
            continue
        if oname in VIEW_OPS or oname in EXPORT_OPS:
            src = operands[0] if operands else None
            if src is not None and _value_key(src) in buffer_of:
                b = buffer_of[_value_key(src)]
                for r in op.results:
                    buffer_of[_value_key(r)] = b
                if oname in EXPORT_OPS:
                    outputs.add(b)
                # A view of a node result is produced by that node.
                if _value_key(src) in producer:
                    for r in op.results:
                        producer[_value_key(r)] = producer[_value_key(src)]
                continue
            if oname in VIEW_OPS:
                # A view of a constant: free.
                continue
        # A node.
        v = len(node_ops)
        node_ops.append(op)
        res_names = ", ".join(r.get_name() for r in op.results) or oname
        node_names.append(res_names)
        node_labels.append(_label(op))
        preds: set[int] = set()
        for x in operands:
            k = _value_key(x)
            if k in producer:
                preds.add(producer[k])
            if k in buffer_of:
                b = buffer_of[k]
                buffer_users[b].add(v)
        if not _is_pure(oname):
            if last_effect is not None:
                preds.add(last_effect)
            last_effect = v
        tied = _tied_operands(op)
        for i, r in enumerate(op.results):
            size = size_of(r, op)
            if size is None:
                producer[_value_key(r)] = v
                continue
            if _value_key(r) in emplaced_into:
                b = emplaced_into[_value_key(r)]
                buffer_of[_value_key(r)] = b
                buffer_users[b].add(v)
                producer[_value_key(r)] = v
                continue
            if oname in REGION_BARRIER_OPS and _value_key(op.operands[i]) in buffer_of:
                buffer_of[_value_key(r)] = buffer_of[_value_key(op.operands[i])]
                producer[_value_key(r)] = v
                continue
            if _op_key(op) in chain_buffer:
                # A copying link of an emplaced concat: into the chain's buffer.
                b = chain_buffer[_op_key(op)]
                buffer_users[b].add(v)
                buffer_of[_value_key(r)] = b
                producer[_value_key(r)] = v
                continue
            target: ir.Value | None = None
            if oname == "flow.tensor.update":
                target = op.operands[0]  # ODS order: target, target_dims, ..., update
            elif tied is not None and i < len(tied) and tied[i] >= 0:
                target = _dispatch_arguments(op)[tied[i]]
            if target is not None and _value_key(target) in buffer_of and _single_use(target):
                # Written in place: the result is the target's buffer (a
                # fresh empty/splat buffer gets its memory from this writer).
                b = buffer_of[_value_key(target)]
                if buffer_lazy[b] and buffer_alloc[b] is None:
                    buffer_alloc[b] = v
                buffer_of[_value_key(r)] = b
            else:
                buffer_of[_value_key(r)] = new_buffer(size, v, r.get_name())
            producer[_value_key(r)] = v
        node_preds.append(preds)

    # Values returned by the terminator are outputs.
    for x in ops[-1].operands:
        k = _value_key(x)
        if k in buffer_of:
            outputs.add(buffer_of[k])

    n = len(node_ops)
    # The writers of an emplaced concat run in update-chain order (each one
    # writes into the previous one's result); the first one allocates it.
    node_of = {_op_key(op): i for i, op in enumerate(node_ops)}
    for b, links in chain_buffers:
        writers = [node_of[_op_key(_defining_op(src) if src is not None else upd)] for upd, src in links]
        buffer_alloc[b] = writers[0]
        for w in writers:
            buffer_users[b].add(w)
        for prev, nxt in zip(writers, writers[1:], strict=False):
            if prev != nxt:
                node_preds[nxt].add(prev)
    # A lazily allocated buffer must be allocated by its first user: every
    # other user waits for that one.
    for b in range(len(buffer_size)):
        a = buffer_alloc[b]
        if buffer_lazy[b] and a is not None:
            for u in buffer_users[b]:
                if u != a:
                    node_preds[u].add(a)
    # IREE moves a concat's earlier link before an emplaced writer when the
    # block has it later (the chain edges above): number the nodes in the
    # topological order closest to the block's, so that index order stays
    # the program order IREE runs.
    perm = stable_topological_order(n, node_preds)
    if perm != list(range(n)):
        new_index = {old: i for i, old in enumerate(perm)}
        node_ops = [node_ops[o] for o in perm]
        node_names = [node_names[o] for o in perm]
        node_labels = [node_labels[o] for o in perm]
        node_preds = [{new_index[p] for p in node_preds[o]} for o in perm]
        buffer_alloc = [None if a is None else new_index[a] for a in buffer_alloc]
        buffer_users = [{new_index[u] for u in us} for us in buffer_users]
    users: list[set[int]] = [set() for _ in range(n)]
    node_size = [0] * n
    inputs: list[InputBuffer] = []
    out_nodes: set[int] = set()
    input_bytes = output_bytes = 0
    buffers: list[Buffer] = []
    node_buffers: dict[int, list[int]] = {}
    for b in range(len(buffer_size)):
        a = buffer_alloc[b]
        if b in outputs:
            output_bytes += buffer_size[b]
        if a is None:
            if buffer_is_input[b]:
                input_bytes += buffer_size[b]
                if model == "paper":
                    inputs.append(InputBuffer(buffer_name[b], buffer_size[b], frozenset(buffer_users[b])))
            continue
        buffers.append(Buffer(buffer_name[b], buffer_size[b], a, frozenset(buffer_users[b] - {a}), b in outputs))
        if b in outputs:
            out_nodes.add(a)
            if model == "iree":
                continue  # a result: outside the slab
        node_buffers.setdefault(a, []).append(b)
    for a, bs in node_buffers.items():
        # A node's own buffer is its result (or, in the paper model, its
        # outputs); every further buffer it allocates (a second result, the
        # concat it starts) lives on its own, freed after its own last user:
        # giving the node their union of users would keep them all alive too long.
        own = [b for b in bs if b in outputs] or bs[:1]
        for b in bs:
            if b in own:
                node_size[a] += buffer_size[b]
                users[a] |= buffer_users[b] - {a}
            else:
                inputs.append(InputBuffer(buffer_name[b], buffer_size[b], frozenset(buffer_users[b] - {a}), alloc=a))
    graph = Graph(
        names=tuple(node_names),
        sizes=tuple(node_size),
        preds=tuple(frozenset(p) for p in node_preds),
        users=tuple(frozenset(u) for u in users),
        outputs=frozenset(out_nodes) if model == "paper" else frozenset(),
        inputs=tuple(inputs),
        labels=tuple(node_labels),
    )
    return BodyGraph(
        func_name=name,
        graph=graph,
        node_ops=node_ops,
        block=block,
        model=model,
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        buffers=tuple(buffers),
        barriers=frozenset(v for v, op in enumerate(node_ops) if op.name in REGION_BARRIER_OPS),
    )


def tensor_bytes_or_error(arg: ir.Value, func_op: ir.Operation, name: str) -> int | None:
    try:
        return tensor_bytes(arg.type)
    except _DynamicShape as e:
        raise InputError(
            f"{_where(func_op)}: dynamic shapes are not supported: argument {arg.get_name()} of '{name}' has type {e}"
        ) from None


def _single_use(v: ir.Value) -> bool:
    """True when one op uses ``v``: an in-place write needs no copy. With
    more users IREE copies the value first (copy-on-write)."""
    owners = {hash(use.owner) for use in v.uses}
    return len(owners) <= 1


def _op_key(op: ir.Operation) -> int:
    return hash(op)


def _defining_op(v: ir.Value) -> ir.Operation:
    owner = v.owner
    return owner.operation if hasattr(owner, "operation") else owner


def _update_source(op: ir.Operation) -> ir.Value | None:
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
        op = _defining_op(v)
        if op.name in VIEW_OPS:
            v = op.operands[0]
            continue
        if op.name != "flow.dispatch":
            return None
        tied = _tied_operands(op) or []
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
        if user_op.name == "flow.tensor.update" and _update_source(user_op) == r:
            return user_op
        return None


def _emplaced_chains(body_ops: list[ir.Operation]) -> list[tuple[ir.Value, list[tuple[ir.Operation, ir.Value | None]]]]:
    """Concats built by a chain of ``flow.tensor.update`` ops into a fresh
    (empty or splat) buffer, each link used once: (the fresh value, the
    links in chain order as (update, the dispatch result written in place or
    None when the update copies)). A fresh value that CSE shared between
    several concats starts one chain per concat (IREE clones it for each).
    Only chains with at least one emplaced link are returned: the others
    keep the plain in-place update model."""
    chains = []
    position = {_op_key(op): i for i, op in enumerate(body_ops)}
    for op in body_ops:
        if op.name not in LAZY_BUFFER_OPS:
            continue
        for root in op.results:
            # In block order (a use list runs newest first).
            for first in sorted(_updates_into(root), key=lambda u: position.get(_op_key(u), -1)):
                links: list[tuple[ir.Operation, ir.Value | None]] = []
                upd: ir.Operation | None = first
                while upd is not None:
                    src = _update_source(upd)
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
        if op.name == "flow.tensor.update" and use.operand_number == 0 and _update_source(op) is not None:
            out.append(op)
    return out


def _is_pure(name: str) -> bool:
    return name in PURE_OPS or name.startswith(PURE_DIALECTS) and name not in ("flow.tensor.trace",)


def _label(op: ir.Operation) -> str:
    if op.name == "flow.dispatch" and "entry_points" in op.attributes:
        text = str(op.attributes["entry_points"])
        return text.strip("[]@").split("::@")[-1]
    return op.name


def _tied_operands(op: ir.Operation) -> list[int] | None:
    if "tied_operands" not in op.attributes:
        return None
    arr = ir.ArrayAttr(op.attributes["tied_operands"])
    return [ir.IntegerAttr(a).value for a in arr]


def _segments(op: ir.Operation) -> list[int] | None:
    if "operandSegmentSizes" not in op.attributes:
        return None
    return list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))


def _dispatch_arguments(op: ir.Operation) -> list[ir.Value]:
    """The ``arguments`` operand segment of a flow.dispatch (after the
    workload), which ``tied_operands`` indexes."""
    seg = _segments(op)
    operands = list(op.operands)
    if seg is None or len(seg) < 2:
        return operands
    return operands[seg[0] : seg[0] + seg[1]]


def _all_operands(op: ir.Operation, block: ir.Block) -> Iterable[ir.Value]:
    """Operands, plus values from the body used inside the op's regions (they
    must dominate the op wherever it moves)."""
    yield from op.operands
    if len(op.regions) == 0:
        return
    seen: set[int] = set()
    for region in op.regions:
        for inner_block in region.blocks:
            for inner in inner_block.operations:
                yield from _captured(inner.operation, block, seen)


def _captured(op: ir.Operation, block: ir.Block, seen: set[int]) -> Iterable[ir.Value]:
    for x in op.operands:
        owner = _owner_block(x)
        if owner is not None and owner == block and hash(x) not in seen:
            seen.add(hash(x))
            yield x
    for region in op.regions:
        for b in region.blocks:
            for inner in b.operations:
                yield from _captured(inner.operation, block, seen)


def _owner_block(v: ir.Value) -> ir.Block | None:
    owner = v.owner
    if isinstance(owner, ir.Block):
        return owner
    op = owner.operation if hasattr(owner, "operation") else owner
    return op.block if op.parent is not None else None
