"""The ``serenity-patch`` pass: patch-based inference on linalg-on-tensors.

Runs on a module after IREE's ``input`` phase, like ``serenity-rewrite``:
the stage at the network's input is cut at a split op and run as a grid of
patches (:mod:`serenity_mlir.rewrite.patches` finds the stage,
:mod:`serenity_mlir.rewrite.patch_plan` plans the patches,
:mod:`serenity_mlir.rewrite.patch_rewrite` writes them). ``grid=RxC``;
``split=N`` (the N-th convolution or pooling of the stage, from 0) or
``auto`` (the split with the lowest quick estimate for this grid;
``serenity_mlir.pipeline.patches`` chooses split and grid for a compile with
the memory model). A stage that cannot be patched is left alone and the
outcome says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from iree.compiler import ir

from serenity_mlir.analysis import find_body_function
from serenity_mlir.errors import InputError, InternalError
from serenity_mlir.ir.phases import detect_phase
from serenity_mlir.rewrite.patch_plan import estimate_peak, plan
from serenity_mlir.rewrite.patch_rewrite import apply_patches
from serenity_mlir.rewrite.patches import NotPatchable, find_stage


def parse_grid(text: str) -> tuple[int, int]:
    """``"2x3"`` -> (2, 3); InputError otherwise."""
    rows, x, cols = text.lower().partition("x")
    try:
        grid = (int(rows), int(cols)) if x else (0, 0)
    except ValueError:
        grid = (0, 0)
    if grid[0] < 1 or grid[1] < 1:
        raise InputError(f"bad patch grid '{text}': expected RxC with R, C >= 1 (e.g. 2x2)")
    return grid


@dataclass(frozen=True)
class SerenityPatch:
    """Runs the input stage as a grid of patches up to a split op."""

    name: ClassVar[str] = "serenity-patch"
    grid: str = "2x2"
    split: str = "auto"
    function: str | None = None

    def apply(self, module: ir.Operation) -> PatchPassOutcome:
        grid = parse_grid(self.grid)
        phase = detect_phase(module)
        if phase not in ("linalg", "unknown"):
            raise InputError(
                "serenity-patch works on linalg on tensors (iree-compile --compile-to=input), "
                f"but this module is at the {phase} phase"
            )
        _, func = find_body_function(module, self.function)
        try:
            split = self._split(func, grid)
            done = apply_patches(func, split, grid)
        except NotPatchable as e:
            return PatchPassOutcome(applied=False, reason=str(e))
        try:
            module.verify()
        except ir.MLIRError as e:
            raise InternalError(f"the patched module does not verify: {e}") from None
        return PatchPassOutcome(applied=True, description=done.description)

    def _split(self, func: ir.Operation, grid: tuple[int, int]) -> int:
        if self.split != "auto":
            try:
                split = int(self.split)
            except ValueError:
                split = -1
            if split < 0:
                raise InputError(
                    f"serenity-patch: split must be a layer number (0, 1, ...) or 'auto', not '{self.split}'"
                )
            return split
        stage = find_stage(func)
        best: tuple[int, int] | None = None
        reasons = []
        for i in range(len(stage.layers)):
            try:
                est = estimate_peak(plan(stage, i, grid))
            except NotPatchable as e:
                reasons.append(str(e))
                continue
            if best is None or est < best[0]:
                best = (est, i)
        if best is None:
            raise NotPatchable(f"no layer of the stage can be the split op: {reasons[0] if reasons else 'none'}")
        return best[1]


@dataclass
class PatchPassOutcome:
    applied: bool
    reason: str = ""
    description: dict[str, Any] = field(default_factory=dict)
