"""An arena entry point in IREE's IR: the input and results inside the arena.

``--arena-entry`` (README.md, "Arena entry point") builds the entry function
so that its only argument is the arena: one caller-owned buffer that holds
the input, the results and IREE's transient slab. The caller writes the
input at an offset the build reports and reads the results at theirs, and
the input's bytes are reused once it is read, as TFLite Micro reuses them.
IREE 3.13 has every piece; only the offsets are ours. Two steps:

1. flow phase (:func:`make_arena_entry`): the entry's ``!hal.buffer_view``
   argument becomes the arena. The input is imported from
   ``hal.buffer.subspan`` of it, each result is ``hal.tensor.alias``-ed to
   another subspan, and IREE's transients are emplaced
   (``hal.tensor.transients``) in a third, ``[0, TOTAL]``: that range check
   turns a too-small arena into a clean ``OUT_OF_RANGE`` instead of writes
   past its end. Offsets and TOTAL are placeholders, distinct per subspan
   (equal subspans would be merged by CSE) and unusual enough to be found
   again;
2. stream phase (:func:`arena_region` then :func:`write_arena_layout`),
   after ``STREAM_PIPELINE_ALLOCATE``: the emplaced slab is still the
   execution region's ``stream.resource.pack``, carved from the arena. The
   steps of the region that read the input and write the results give
   their pseudo-slices (``memory.arena``); the pack, its clones (the entry's
   size computation and ``<fn>_transients_size``) and the placeholders are
   rewritten with the arena layout.

One execution region (the serial partitioning the scheduler sets gives
one unless the model has a ``util.optimization_barrier``), one input,
static shapes; anything else is an :class:`InputError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from iree.compiler import ir

from serenity_mlir.backend.packs import PACK_OP, read_pack, set_pack_offsets
from serenity_mlir.errors import InputError, InternalError
from serenity_mlir.ir.entry import tensor_spec
from serenity_mlir.ir.tensors import TensorSpec
from serenity_mlir.memory.arena import step_bounds

# Placeholders written at the flow phase and replaced at the stream phase.
# Multiples of 64 below 2**31 (a 32-bit VM index holds them), and far from
# any offset or size a microcontroller model has.
INPUT_PLACEHOLDER = 0x3D000000
OUTPUT_PLACEHOLDER = 0x3E000000
TOTAL_PLACEHOLDER = 0x3F000000
_STRIDE = 64

# The functions' reflection key of the arena's layout, as JSON (the report's
# arena_entry; runtime/arena.py reads it: same name there, the layers are apart).
ARENA_REFLECTION = "serenity.arena_entry"


@dataclass(frozen=True)
class IoTensor:
    """An input or a result of the arena entry point."""

    name: str
    spec: str  # e.g. 1x8x32x32xf32

    @property
    def nbytes(self) -> int:
        return TensorSpec.parse(self.spec).nbytes


@dataclass(frozen=True)
class ArenaEntry:
    """What :func:`make_arena_entry` did to the flow module."""

    function: str  # the public function the caller calls
    rewritten: str  # the function whose body was rewritten ($async, or itself)
    inputs: tuple[IoTensor, ...]
    outputs: tuple[IoTensor, ...]


def _walk(op: ir.Operation) -> Iterator[ir.Operation]:
    for region in op.regions:
        for block in region.blocks:
            for child in block.operations:
                yield child.operation
                yield from _walk(child.operation)


def _functions(module: ir.Operation) -> dict[str, ir.Operation]:
    out = {}
    for child in module.regions[0].blocks[0].operations:
        o = child.operation
        if o.name in ("util.func", "func.func") and "sym_name" in o.attributes:
            out[ir.StringAttr(o.attributes["sym_name"]).value] = o
    return out


def _index(v: int) -> ir.Value:
    """An ``arith.constant`` index at the current insertion point."""
    index = ir.IndexType.get()
    c = ir.Operation.create("arith.constant", results=[index], attributes={"value": ir.IntegerAttr.get(index, v)})
    return c.results[0]


def _constant(v: ir.Value) -> int | None:
    owner = v.owner
    op = getattr(owner, "operation", owner)
    if not isinstance(op, ir.Operation) or op.name != "arith.constant":
        return None
    try:
        return int(ir.IntegerAttr(op.attributes["value"]).value)
    except (ValueError, KeyError):
        return None


def _static_spec(t: ir.Type, what: str) -> str:
    spec = tensor_spec(t)
    if spec is None:
        raise InputError(f"--arena-entry needs static shapes; {what} is {t}")
    return spec


def _name(op: ir.Operation, default: str) -> str:
    if "name" in op.attributes:
        return ir.StringAttr(op.attributes["name"]).value
    return default


def make_arena_entry(module: ir.Operation, function: str) -> ArenaEntry:
    """Rewrites ``function`` of a flow-phase module (IREE's coarse-fences
    ``function$async`` when there is one, the function itself otherwise)
    so that its ``!hal.buffer_view`` argument is the arena (module
    docstring, step 1). The function keeps its signature; it still returns
    a view of each result, which now lies in the arena."""
    funcs = _functions(module)
    name = f"{function}$async" if f"{function}$async" in funcs else function
    if name not in funcs:
        raise InternalError(f"--arena-entry: no function {function} in the flow module")
    fn = funcs[name]
    block = fn.regions[0].blocks[0]
    views = [a for a in block.arguments if str(a.type) == "!hal.buffer_view"]
    imports = [o.operation for o in block.operations if o.operation.name == "hal.tensor.import"]
    exports = [o.operation for o in block.operations if o.operation.name == "hal.tensor.export"]
    if len(views) != 1 or len(imports) != 1 or imports[0].operands[0] != views[0]:
        raise InputError(
            f"--arena-entry supports an entry point that reads one tensor input; {function} takes "
            f"{len(views)} buffer view argument(s) and reads {len(imports)}"
        )
    if not exports:
        raise InputError(f"--arena-entry needs at least one result; {function} returns none")
    imp = imports[0]
    in_spec = _static_spec(imp.results[0].type, f"the input of {function}")
    inputs = (IoTensor(_name(imp, "input0"), in_spec),)
    arena = views[0]
    ctx = module.context
    # The values each export returns, found through IREE's barrier (the
    # coarse-fences ABI joins the results before exporting them).
    sources: list[tuple[ir.Operation, int, str]] = []  # (op to rewrite, operand index, spec)
    outputs = []
    for k, ex in enumerate(exports):
        src = ex.operands[0]
        owner = getattr(src.owner, "operation", src.owner)
        if isinstance(owner, ir.Operation) and owner.name == "hal.tensor.barrier":
            idx = next(i for i, r in enumerate(owner.results) if r == src)
            target, operand = owner, idx
            value = owner.operands[idx]
        else:
            target, operand, value = ex, 0, src
        if value == imp.results[0]:
            raise InputError(f"--arena-entry: {function} returns its input as it is; nothing to place")
        if any(target.operands[operand] == value for target, operand, _ in sources):
            raise InputError(f"--arena-entry: {function} returns the same tensor twice; not supported")
        spec = _static_spec(value.type, f"result {k} of {function}")
        sources.append((target, operand, spec))
        outputs.append(IoTensor(_name(ex, f"output{k}"), spec))
    wait = [v for v in imp.operands[1:] if str(v.type) == "!hal.fence"]
    first = block.operations[0]
    with ctx, fn.location:
        buffer_t = ir.Type.parse("!hal.buffer")
        with ir.InsertionPoint(first):
            buf = ir.Operation.create("hal.buffer_view.buffer", results=[buffer_t], operands=[arena]).results[0]

            def subspan(offset: int, length: int) -> ir.Value:
                return ir.Operation.create(
                    "hal.buffer.subspan", results=[buffer_t], operands=[buf, _index(offset), _index(length)]
                ).results[0]

            in_span = subspan(INPUT_PLACEHOLDER, inputs[0].nbytes)
            out_spans = [subspan(OUTPUT_PLACEHOLDER + _STRIDE * k, o.nbytes) for k, o in enumerate(outputs)]
            slab = subspan(0, TOTAL_PLACEHOLDER)
        imp.operands[0] = in_span
        for (target, operand, _spec), span in zip(sources, out_spans, strict=True):
            value = target.operands[operand]
            with ir.InsertionPoint(target):
                alias = ir.Operation.create(
                    "hal.tensor.alias",
                    results=[value.type],
                    operands=[value, span, *wait],
                    attributes={"operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 0, 1, len(wait)])},
                )
                emplaced = ir.Operation.create(
                    "hal.tensor.transients", results=[value.type], operands=[alias.results[0], slab]
                )
            target.operands[operand] = emplaced.results[0]
    try:
        module.verify()
    except ir.MLIRError as e:
        raise InternalError(f"--arena-entry: the rewritten entry point does not verify: {e}") from None
    return ArenaEntry(function, name, inputs, tuple(outputs))


# --- the stream phase -------------------------------------------------------


@dataclass
class ArenaRegion:
    """The arena entry's execution region at the stream phase, before
    placement: the slab's pack (and its clones), the steps, and the
    subspans to rewrite."""

    function: ir.Operation
    pack: ir.Operation | None  # None: the region has no transients (the arena is the inputs and results)
    clones: list[ir.Operation]
    steps: int  # top-level ops (commands) of the stream.cmd.execute region
    last_index: int  # the last lifetime index of the pack (IREE's async ops; >= steps - 1)
    input_last_read: list[int | None]
    output_first_write: list[int | None]
    input_spans: list[ir.Operation]
    output_spans: list[ir.Operation]
    slab_span: ir.Operation


def _pack_key(op: ir.Operation) -> tuple[tuple[int, int, int], ...]:
    return tuple((s.start, s.end, s.size) for s in read_pack(op)[0])


def arena_region(module: ir.Operation, entry: ArenaEntry) -> ArenaRegion:
    """Finds what :func:`write_arena_layout` rewrites in a stream-phase
    module (after ``STREAM_PIPELINE_ALLOCATE``) built from a flow module that
    :func:`make_arena_entry` rewrote, and the steps of the execution region
    that read the input and first write each result."""
    funcs = _functions(module)
    fn = funcs.get(entry.rewritten)
    if fn is None:
        raise InternalError(f"--arena-entry: {entry.rewritten} is gone at the stream phase")
    ops = list(_walk(fn))
    spans: dict[str, ir.Operation] = {}
    for o in ops:
        if o.name != "hal.buffer.subspan":
            continue
        offset, length = _constant(o.operands[1]), _constant(o.operands[2])
        if length == TOTAL_PLACEHOLDER:
            spans["slab"] = o
        elif offset == INPUT_PLACEHOLDER:
            spans["in0"] = o
        elif offset is not None and OUTPUT_PLACEHOLDER <= offset < OUTPUT_PLACEHOLDER + _STRIDE * len(entry.outputs):
            spans[f"out{(offset - OUTPUT_PLACEHOLDER) // _STRIDE}"] = o
    want = ["in0", *(f"out{k}" for k in range(len(entry.outputs))), "slab"]
    missing = [w for w in want if w not in spans]
    if missing:
        raise InternalError(f"--arena-entry: the arena's subspans {missing} are gone at the stream phase")
    executes = [o for o in ops if o.name == "stream.cmd.execute"]
    if len(executes) != 1:
        raise InputError(
            f"--arena-entry supports one execution region; {entry.function} has {len(executes)} "
            "(a util.optimization_barrier in the model splits it)"
        )
    ex = executes[0]
    body = ex.regions[0].blocks[0]
    captured = dict(zip(list(ex.operands)[: len(body.arguments)], body.arguments, strict=False))
    # The resource each subspan is imported as, and its name inside the region.
    arg_of: dict[str, ir.Value] = {}
    for o in ops:
        if o.name == "stream.tensor.import":
            src = getattr(o.operands[0].owner, "operation", o.operands[0].owner)
            for key in want[:-1]:
                if src == spans[key] and o.results[0] in captured:
                    arg_of[key] = captured[o.results[0]]
    steps = [c.operation for c in body.operations if c.operation.name != "stream.yield"]
    # The slab's pack: the one whose offsets the region's commands use.
    region_packs = []
    for o in ops:
        if o.name == PACK_OP and any(
            any(u.owner.operation.name.startswith("stream.cmd") for u in r.uses) for r in list(o.results)[1:]
        ):
            region_packs.append(o)
    if len(region_packs) > 1:
        raise InputError(f"--arena-entry: expected one transient pack for the region, found {len(region_packs)}")
    pack = region_packs[0] if region_packs else None
    clones = []
    slices = []
    slice_of: dict[ir.Value, int] = {}
    if pack is not None:
        pack_key = _pack_key(pack)
        clones = [
            o
            for f in funcs.values()
            for o in _walk(f)
            if o.name == PACK_OP and o != pack and read_pack(o)[1] and _pack_key(o) == pack_key
        ]
        slices = read_pack(pack)[0]
        slice_of = {r: i for i, r in enumerate(list(pack.results)[1:])}
    # What each command touches: the arena's resources, and slices (by the
    # pack offsets its operands use, directly or through an addition).
    uses: list[set[ir.Value]] = []
    touched: list[set[int]] = []
    for step in steps:
        used: set[ir.Value] = set()
        for o in [step, *_walk(step)]:
            used.update(o.operands)
        for v in list(used):
            owner = getattr(v.owner, "operation", v.owner)
            if isinstance(owner, ir.Operation) and owner.name == "arith.addi":
                used.update(owner.operands)
        uses.append(used)
        touched.append({slice_of[v] for v in used if v in slice_of})
    last = max([len(steps) - 1, *(s.end for s in slices)])
    lower, upper = step_bounds(touched, slices, last)

    def steps_using(key: str) -> list[int]:
        if key not in arg_of:
            return []
        return [i for i, used in enumerate(uses) if arg_of[key] in used]

    reads = steps_using("in0")
    writes = [steps_using(f"out{k}") for k in range(len(entry.outputs))]
    return ArenaRegion(
        function=fn,
        pack=pack,
        clones=clones,
        steps=len(steps),
        last_index=last,
        input_last_read=[upper[max(reads)] if reads else None],
        output_first_write=[lower[min(w)] if w else None for w in writes],
        input_spans=[spans["in0"]],
        output_spans=[spans[f"out{k}"] for k in range(len(entry.outputs))],
        slab_span=spans["slab"],
    )


def write_arena_layout(
    module: ir.Operation,
    region: ArenaRegion,
    slab_offsets: list[int],
    input_offsets: list[int],
    output_offsets: list[int],
    total: int,
    layout: dict[str, object],
) -> None:
    """Writes the arena layout in: the pack and its clones become constants
    (``total``, ``slab_offsets``), the subspans get their offsets and the
    slab's range ``[0, total]``, and every function that records the entry
    signature records ``layout`` too (JSON, :data:`ARENA_REFLECTION`), so a
    runner finds the offsets in the module itself."""
    for op in [region.pack, *region.clones] if region.pack is not None else []:
        set_pack_offsets(op, total, slab_offsets)
    with module.context, region.function.location:
        for span, offset in [
            *zip(region.input_spans, input_offsets, strict=True),
            *zip(region.output_spans, output_offsets, strict=True),
        ]:
            with ir.InsertionPoint(span):
                span.operands[1] = _index(offset)
        with ir.InsertionPoint(region.slab_span):
            region.slab_span.operands[2] = _index(total)
    placeholders = {INPUT_PLACEHOLDER, TOTAL_PLACEHOLDER}
    placeholders.update(OUTPUT_PLACEHOLDER + _STRIDE * k for k in range(len(output_offsets)))
    for o in _walk(region.function):
        if o.name == "arith.constant" and _constant(o.results[0]) in placeholders and list(o.results[0].uses):
            raise InternalError(f"--arena-entry: a placeholder ({_constant(o.results[0])}) is still used: {o}")
    text = json.dumps(layout, separators=(",", ":"))
    for f in _functions(module).values():
        if "iree.reflection" not in f.attributes:
            continue
        with module.context:
            old = ir.DictAttr(f.attributes["iree.reflection"])
            entries = {old[i].name: old[i].attr for i in range(len(old))}
            if "serenity.entry_inputs" not in entries and "serenity.inputs" not in entries:
                continue
            entries[ARENA_REFLECTION] = ir.StringAttr.get(text)
            f.attributes["iree.reflection"] = ir.DictAttr.get(entries)
    try:
        module.verify()
    except ir.MLIRError as e:
        raise InternalError(f"--arena-entry: the placed module does not verify: {e}") from None
