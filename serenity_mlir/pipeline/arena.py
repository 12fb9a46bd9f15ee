"""The place stage for ``--arena-entry``: input and results inside the arena.

Same chain position as :mod:`.place` (schedule -> place -> compile), with
two differences (README.md, "Arena entry point"):

- before the stream phase, the scheduled flow module's entry point is
  rewritten so that its one argument is the arena
  (``backend.arena.make_arena_entry``; a copy beside the scheduled file,
  which stays what the memory model and the report read);
- at the stream phase the execution region's pack is placed together with
  the input's and the results' pseudo-slices (``memory.arena``), by the
  same placer and settings as the slab alone, and the offsets are written
  into the pack, its clones and the arena's subspans
  (``backend.arena.write_arena_layout``). Other packs (module
  initialisers, the one-slot pack IREE puts around the emplaced slab) are
  placed as usual.

IREE's scheduling statistics do not count an emplaced slab, so the arena
comes from our own placement here, never from them: :class:`ArenaLayout`
is what the report's ``arena_entry`` and ``ram_bytes`` are made of.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from iree.compiler import ir

from serenity_mlir.backend.arena import ArenaEntry, IoTensor, arena_region, make_arena_entry, write_arena_layout
from serenity_mlir.backend.build import Built
from serenity_mlir.backend.packs import PackLayout, PackPlacement, PackSlice, find_packs, place_packs, read_pack
from serenity_mlir.backend.stream import PlacedBuild, compile_placed
from serenity_mlir.errors import InputError
from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.ir.mlir import format_location
from serenity_mlir.memory.arena import ArenaPlacement, IoBuffer, place_arena
from serenity_mlir.memory.slab import ALIGNMENT
from serenity_mlir.pipeline.measure import Run
from serenity_mlir.pipeline.place import GroundTruth, PlaceJob, compare_with_model
from serenity_mlir.runtime.arena import run_arena


@dataclass(frozen=True)
class ArenaLayout:
    """Where the caller puts the input and finds the results, and the
    arena's size: what a firmware author needs of an arena entry point."""

    function: str
    arena_bytes: int  # the whole arena: input, results and transients
    alignment: int  # of the arena's start and of every offset
    inputs: tuple[tuple[IoTensor, int], ...]  # (tensor, offset)
    outputs: tuple[tuple[IoTensor, int], ...]
    steps: int  # lifetime indices of the execution region (IREE's async ops)
    input_last_read: tuple[int | None, ...]
    output_first_write: tuple[int | None, ...]
    lower_bound_bytes: int  # the most bytes alive at one time, inputs and results included
    iree_greedy_bytes: int  # IREE's greedy best-fit on the same slices and pseudo-slices
    method: str

    def to_json(self) -> dict[str, Any]:
        """The report's ``arena_entry`` (also written into the module's
        reflection, where the runtime's arena runner reads it)."""

        def io(items: tuple[tuple[IoTensor, int], ...]) -> list[dict[str, Any]]:
            return [{"name": t.name, "type": t.spec, "offset": o, "bytes": t.nbytes} for t, o in items]

        return {
            "function": self.function,
            "arena_bytes": self.arena_bytes,
            "alignment": self.alignment,
            "inputs": io(self.inputs),
            "outputs": io(self.outputs),
            "steps": self.steps,
            "input_last_read_step": list(self.input_last_read),
            "output_first_write_step": list(self.output_first_write),
            "lower_bound_bytes": self.lower_bound_bytes,
            "iree_greedy_bytes": self.iree_greedy_bytes,
            "method": self.method,
        }


@dataclass(frozen=True)
class ArenaPlaced:
    """The stage's record: the build, the arena, and the check of IREE's
    slices against the memory model (as :class:`.place.Placed`)."""

    build: PlacedBuild
    truth: GroundTruth
    layout: ArenaLayout
    flow_file: Path  # the rewritten flow module


def layout_of(entry: ArenaEntry, region_steps: int, reads: list[int | None], writes: list[int | None],
              ap: ArenaPlacement) -> ArenaLayout:  # fmt: skip
    n_in = len(entry.inputs)
    return ArenaLayout(
        function=entry.function,
        arena_bytes=ap.total,
        alignment=ALIGNMENT,
        inputs=tuple(zip(entry.inputs, ap.io_offsets[:n_in], strict=True)),
        outputs=tuple(zip(entry.outputs, ap.io_offsets[n_in:], strict=True)),
        steps=region_steps,
        input_last_read=tuple(reads),
        output_first_write=tuple(writes),
        lower_bound_bytes=ap.lower_bound,
        iree_greedy_bytes=ap.placement.iree_total,
        method=ap.placement.method,
    )


def place_arena_and_compile(job: PlaceJob) -> ArenaPlaced:
    """Rewrites the scheduled flow module's entry into an arena entry point
    (written beside it, ``*.arena.flow.mlir``), compiles it with the arena
    placed (stream-phase files in ``job.stream_dir``) and returns the arena's
    layout with the build."""
    sched, scheduled_flow, settings = job.sched, job.flow_file, job.settings
    ctx = mlir_io.new_context()
    module = mlir_io.load_module(scheduled_flow, ctx)
    entry = make_arena_entry(module, sched.function)
    arena_flow = scheduled_flow.with_name(scheduled_flow.name.replace(".flow.mlir", "") + ".arena.flow.mlir")
    atomic_write(arena_flow, mlir_io.module_to_text(module, debuginfo=True))
    truths: list[GroundTruth] = []
    layouts: list[ArenaLayout] = []

    def placer(stream_module: ir.Operation) -> PackLayout:
        region = arena_region(stream_module, entry)
        truths.append(compare_with_model(sched.body, stream_module, sched.result.order, region.pack))
        slices = read_pack(region.pack)[0] if region.pack is not None else []
        where = format_location((region.pack or region.function).location)
        io = [
            IoBuffer(t.name, "input", t.nbytes, step)
            for t, step in zip(entry.inputs, region.input_last_read, strict=True)
        ] + [
            IoBuffer(t.name, "output", t.nbytes, step)
            for t, step in zip(entry.outputs, region.output_first_write, strict=True)
        ]
        ap = place_arena(slices, io, region.last_index, settings, ALIGNMENT)
        layout = layout_of(entry, region.last_index + 1, region.input_last_read, region.output_first_write, ap)
        layouts.append(layout)
        n_in = len(entry.inputs)
        write_arena_layout(
            stream_module,
            region,
            list(ap.slab_offsets),
            list(ap.io_offsets[:n_in]),
            list(ap.io_offsets[n_in:]),
            ap.total,
            layout.to_json(),
        )
        pseudo = tuple(PackSlice(*iv) for iv in ap.pseudo)
        packs = [PackPlacement(sched.function, where, (*slices, *pseudo), ap.placement, "arena entry")]
        if find_packs(stream_module):
            # The one-slot pack around the emplaced slab and module
            # initialisers' packs: placed as usual, none of them is the call's
            # slab (the arena above is all of it).
            packs += [
                PackPlacement("", p.location, p.slices, p.placement, p.note or "outside the arena's slab")
                for p in place_packs(stream_module, settings)
            ]
        return PackLayout(settings.placement, packs)

    build = compile_placed(arena_flow, job.out, job.target, settings, keep_dir=job.stream_dir, placer=placer)
    return ArenaPlaced(build, truths[0], layouts[0], arena_flow)


def arena_built(built: Built, layout: ArenaLayout) -> Built:
    """The build's figures for an arena entry point: ``ram_bytes`` is the
    arena (everything non-constant: input, results, transients) plus any
    transient memory IREE's statistics still count outside it (none when
    the region's slab is the only one; they do not count the emplaced slab,
    so the arena is never read from them)."""
    outside = built.arena_bytes or 0
    ram = layout.arena_bytes + outside
    fits = ram <= built.sram_bytes if built.sram_bytes is not None else None
    return replace(built, ram_bytes=ram, fits_sram=fits)


def run_arena_module(vmfb: Path, function: str | None, inputs: list[str] | None, seed: int,
                     save: Path | None) -> Run:  # fmt: skip
    """A :data:`.measure.Runner` for an arena entry point (host only): the
    seeded inputs written into a zero-copy arena, the results read from it
    (``runtime.arena``); the peak is the arena plus what IREE allocated
    itself. ``inputs`` must be None or the module's own (the arena's layout
    fixes them)."""
    record = run_arena(vmfb, function, seed=seed, save_outputs=save)
    if inputs is not None and inputs != record["inputs"]:
        raise InputError(f"{vmfb}: an arena entry point runs on its own inputs {record['inputs']}, not {inputs}")
    return Run.of(record)
