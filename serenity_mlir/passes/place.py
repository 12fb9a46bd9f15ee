"""The ``serenity-place`` pass: SERENITY places the slab's slices itself.

Works on IREE's stream phase after the transients are packed (the first
``iree-opt`` pipeline of "Owning the slab" in README.md,
``backend.stream.STREAM_PIPELINE_ALLOCATE``): every ``stream.resource.pack``
is solved with ``memory.placement`` (never worse than IREE's own greedy) and
replaced by ``arith.constant`` offsets (``backend.packs.place_packs``); the second
pipeline (``STREAM_PIPELINE_FINISH``) and ``iree-compile
--compile-from=stream`` then finish the build with those offsets.

``placement=iree`` leaves the packs to IREE and only reports them;
``print-packs=true`` prints, for every pack, IREE's slab, ours, the bound
and the method as one JSON line on stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

from serenity_mlir.backend.packs import PackPlacement, find_packs, place_packs
from serenity_mlir.errors import InputError
from serenity_mlir.ir.phases import detect_phase
from serenity_mlir.memory.placement import DEFAULT_MOVES, EXACT_SECONDS, PLACEMENTS


@dataclass(frozen=True)
class SerenityPlace:
    """Places every transient pack of a stream-phase module."""

    name: ClassVar[str] = "serenity-place"
    placement: str = "serenity"  # "serenity" | "heuristic" | "iree"
    # Local-search moves per pack (a budget, not seconds: repeatable).
    moves: int = DEFAULT_MOVES
    seed: int = 0
    # CP-SAT on small packs the heuristics leave above the bound (when
    # OR-Tools is installed), with this deterministic time budget.
    exact: bool = True
    exact_seconds: float = EXACT_SECONDS
    print_packs: bool = False

    def apply(self, module: Any) -> PlaceOutcome:
        if self.placement not in PLACEMENTS:
            raise InputError(f"serenity-place: unknown placement '{self.placement}' (known: {', '.join(PLACEMENTS)})")
        if not find_packs(module):
            phase = detect_phase(module)
            raise InputError(
                f"serenity-place works on IREE's stream phase after its transients are packed (iree-opt with "
                f"iree-stream-schedule-allocation ...), but this module (at the {phase} phase) holds no "
                "stream.resource.pack"
            )
        packs = place_packs(
            module, self.placement, moves=self.moves, seed=self.seed, exact=self.exact, exact_seconds=self.exact_seconds
        )
        outcome = PlaceOutcome(placement=self.placement, packs=packs)
        if self.print_packs:
            for p in packs:
                d = p.to_json()
                d.pop("slices")
                d.pop("offsets")
                print(json.dumps(d), file=sys.stderr)
        return outcome


@dataclass
class PlaceOutcome:
    """What the pass did, pack by pack."""

    placement: str
    packs: list[PackPlacement] = field(default_factory=list)

    @property
    def slab_bytes(self) -> int:
        return sum(p.slab_bytes or 0 for p in self.packs)

    @property
    def iree_slab_bytes(self) -> int:
        return sum(p.iree_bytes or 0 for p in self.packs)

    @property
    def slab_live_bytes(self) -> int:
        return sum(p.lower_bound_bytes or 0 for p in self.packs)
