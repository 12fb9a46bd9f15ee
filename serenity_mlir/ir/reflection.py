"""The entry signature the pipeline records in a module's reflection.

``serenity.inputs`` / ``serenity.outputs`` (comma-separated tensor specs) are
written on the entry function at the flow phase, where IREE has made the ABI
explicit (``hal.tensor.import`` / ``hal.tensor.export``). IREE carries
``iree.reflection`` into the compiled module, so ``measure`` can make inputs
for any module we built and the build report can size them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from iree.compiler import ir

from serenity_mlir.errors import InputError

SIGNATURE_INPUTS = "serenity.inputs"
SIGNATURE_OUTPUTS = "serenity.outputs"
FUNC_OPS = ("func.func", "util.func")

_SIGNATURE = re.compile(r'serenity\.(inputs|outputs)\s*=\s*"([^"]*)"')


def _spec(t: Any) -> str:
    text = str(t)
    if not text.startswith("tensor<"):
        raise InputError(f"unsupported entry argument type {text}")
    return text[len("tensor<") : -1]


def record_signature(module: ir.Operation, function: str, body: ir.Operation) -> None:
    """Stores the entry's input/output tensor types on ``function`` (whose
    body, or the body of the function it calls, is ``body``)."""
    ins: list[str] = []
    outs: list[str] = []
    for op in body.regions[0].blocks[0].operations:
        o = op.operation
        if o.name == "hal.tensor.import":
            ins.append(_spec(o.results[0].type))
        elif o.name == "hal.tensor.export":
            outs.append(_spec(o.operands[0].type))
    if not ins and not outs:
        return  # not at IREE's flow phase: the ABI is not materialised yet
    for op in module.regions[0].blocks[0].operations:
        o = op.operation
        if o.name in FUNC_OPS and ir.StringAttr(o.attributes["sym_name"]).value == function:
            with module.context:
                entries = {}
                if "iree.reflection" in o.attributes:
                    old = ir.DictAttr(o.attributes["iree.reflection"])
                    for i in range(len(old)):
                        na = old[i]
                        entries[na.name] = na.attr
                entries[SIGNATURE_INPUTS] = ir.StringAttr.get(",".join(ins))
                entries[SIGNATURE_OUTPUTS] = ir.StringAttr.get(",".join(outs))
                o.attributes["iree.reflection"] = ir.DictAttr.get(entries)


def read_signature(flow_file: Path) -> dict[str, list[str]]:
    """The tensor specs recorded in a (scheduled) flow file, by role."""
    try:
        text = flow_file.read_text(errors="replace")
    except OSError:
        return {}
    return {k: [t for t in v.split(",") if t] for k, v in _SIGNATURE.findall(text)}


def recorded_specs(reflection: dict[str, str], key: str) -> list[str] | None:
    """One role's specs from a compiled function's reflection, or None."""
    return [t for t in reflection[key].split(",") if t] if key in reflection else None
