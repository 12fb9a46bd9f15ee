"""The entry signature as the model declares it, recorded at import.

At IREE's flow phase an entry function's arguments are ``!hal.buffer_view``:
their shapes survive only in the ``hal.tensor.import`` of each argument the
body reads, so an input that no op uses (IREE drops its import) has no
shape left, and a model with no inputs or no outputs records nothing there
(:func:`serenity_mlir.ir.reflection.record_signature`). The imported module
still has every argument's and result's type, so the import records them in
the entry function's ``iree.reflection`` (``serenity.entry_inputs`` /
``serenity.entry_outputs``), which IREE carries to the compiled module's
function, IREE's own default build of the same input included. Running a
module (``runtime.modules.input_specs``) and sizing its inputs
(``analysis``) read these first.
"""

from __future__ import annotations

import re

from iree.compiler import ir

ENTRY_INPUTS = "serenity.entry_inputs"
ENTRY_OUTPUTS = "serenity.entry_outputs"
FUNC_OPS = ("func.func", "util.func")

_VTENSOR = re.compile(r"^!torch\.vtensor<\[([0-9,\s]*)\],\s*([a-z0-9]+)>$")
# torch's signed integer types are the builtin signless ones after lowering.
_TORCH_ELEMENTS = {"si64": "i64", "si32": "i32", "si16": "i16", "si8": "i8"}


def tensor_spec(t: ir.Type) -> str | None:
    """``1x8x32x32xf32`` for a statically shaped builtin tensor or torch
    value tensor; None for anything else (dynamic, unranked, not a tensor)."""
    if isinstance(t, ir.RankedTensorType):
        if not t.has_static_shape:
            return None
        return "x".join([*map(str, t.shape), str(t.element_type)])
    m = _VTENSOR.match(str(t))
    if m is None:
        return None
    dims = [d.strip() for d in m.group(1).split(",") if d.strip()]
    elem = _TORCH_ELEMENTS.get(m.group(2), m.group(2))
    return "x".join([*dims, elem])


def _is_public(op: ir.Operation) -> bool:
    return "sym_visibility" not in op.attributes or ir.StringAttr(op.attributes["sym_visibility"]).value == "public"


def record_entry_signature(module: ir.Operation) -> int:
    """Records every public function's input and result specs in its
    ``iree.reflection`` (an input-phase module: its functions still have
    tensor types). A function with an argument or result that is not a
    static tensor is left alone. Returns how many functions were recorded."""
    recorded = 0
    for op in module.regions[0].blocks[0].operations:
        o = op.operation
        if o.name not in FUNC_OPS or not _is_public(o) or "function_type" not in o.attributes:
            continue
        ftype = ir.FunctionType(ir.TypeAttr(o.attributes["function_type"]).value)
        ins = [tensor_spec(t) for t in ftype.inputs]
        outs = [tensor_spec(t) for t in ftype.results]
        if any(s is None for s in [*ins, *outs]):
            continue
        with module.context:
            entries: dict[str, ir.Attribute] = {}
            if "iree.reflection" in o.attributes:
                old = ir.DictAttr(o.attributes["iree.reflection"])
                for i in range(len(old)):
                    entries[old[i].name] = old[i].attr
            entries[ENTRY_INPUTS] = ir.StringAttr.get(",".join(s for s in ins if s))
            entries[ENTRY_OUTPUTS] = ir.StringAttr.get(",".join(s for s in outs if s))
            o.attributes["iree.reflection"] = ir.DictAttr.get(entries)
        recorded += 1
    return recorded


def recorded_entry(func_op: ir.Operation, key: str) -> list[str] | None:
    """One role's specs recorded on ``func_op`` at import, or None."""
    if "iree.reflection" not in func_op.attributes:
        return None
    refl = ir.DictAttr(func_op.attributes["iree.reflection"])
    if key not in refl:
        return None
    return [t for t in ir.StringAttr(refl[key]).value.split(",") if t]
