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
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from serenity_mlir.backend.packs import PackLayout, find_packs, place_packs
from serenity_mlir.errors import InputError
from serenity_mlir.ir.phases import detect_phase
from serenity_mlir.settings import PlacementSettings


@dataclass(frozen=True)
class SerenityPlace(PlacementSettings):
    """Places every transient pack of a stream-phase module.

    Its options are :class:`PlacementSettings`' fields (the compile job
    builds the pass from the same record), plus ``print-packs``."""

    name: ClassVar[str] = "serenity-place"
    print_packs: bool = False

    @staticmethod
    def of(settings: PlacementSettings, **overrides: Any) -> SerenityPlace:
        """The pass for a settings record (``overrides``: fields to change)."""
        values = {f.name: getattr(settings, f.name) for f in fields(PlacementSettings)}
        return SerenityPlace(**{**values, **overrides})

    def apply(self, module: Any) -> PackLayout:
        try:
            self.check()
        except InputError as e:
            raise InputError(f"serenity-place: {e}") from None
        if not find_packs(module):
            phase = detect_phase(module)
            raise InputError(
                f"serenity-place works on IREE's stream phase after its transients are packed (iree-opt with "
                f"iree-stream-schedule-allocation ...), but this module (at the {phase} phase) holds no "
                "stream.resource.pack"
            )
        packs = place_packs(module, self)
        outcome = PackLayout(placement=self.placement, packs=packs)
        if self.print_packs:
            for p in packs:
                d = p.to_json()
                d.pop("slices")
                d.pop("offsets")
                print(json.dumps(d), file=sys.stderr)
        return outcome


# What the pass did, pack by pack (the sums count the call's packs).
PlaceOutcome = PackLayout
