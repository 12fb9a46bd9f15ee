"""Which of IREE's phases a module is at, read from the ops it holds.

serenity-opt's passes each work at one phase (rewriting on linalg after
``--compile-to=input``, scheduling with IREE's memory model on ``flow``,
placement on ``stream``); a file from another phase gets an error that says
what was found and what is expected, not output that looks right.
"""

from __future__ import annotations

from typing import Any

# Checked in this order: a later phase's marker wins over an earlier one's
# (an IREE module keeps some ops of earlier dialects).
PHASES = ("vm", "hal", "stream", "flow", "torch", "tosa", "stablehlo", "linalg")
_MARKERS = {
    "vm": ("vm.",),
    "hal": ("hal.executable",),
    "stream": ("stream.",),
    "flow": ("flow.",),
    "torch": ("torch.",),
    "tosa": ("tosa.",),
    "stablehlo": ("stablehlo.", "chlo.", "mhlo."),
    "linalg": ("linalg.",),
}


def _op_names(module: Any, depth: int = 3) -> set[str]:
    """Op names in the module, down to ``depth`` levels of nesting (enough
    for top-level ops, function bodies and the ops inside those)."""
    names: set[str] = set()
    frontier = [module.operation]
    for _ in range(depth):
        nxt = []
        for op in frontier:
            for region in op.regions:
                for block in region.blocks:
                    for o in block.operations:
                        names.add(o.operation.name)
                        nxt.append(o.operation)
        frontier = nxt
    return names


def detect_phase(module: Any) -> str:
    """One of PHASES, or "unknown"."""
    names = _op_names(module)
    for phase in PHASES:
        if any(n.startswith(_MARKERS[phase]) for n in names):
            return phase
    return "unknown"
