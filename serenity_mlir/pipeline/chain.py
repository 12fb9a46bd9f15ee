"""The one chain of stages after lowering: schedule -> [rewrite] -> [place]
-> compile. The compile job runs it once; the bench runs it once per
configuration (another scheduler, IREE's placement), so a figure in the
bench table is what ``compile`` with the same settings builds.

Each stage returns a record (:class:`ScheduleOutcome`, :class:`RewriteChoice`,
:class:`Placed`, :class:`Built`); :class:`BuiltModule` holds them together
for the report and the measurement.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from serenity_mlir.backend.build import Built, build_for_target, describe_build
from serenity_mlir.backend.stream import PlacedBuild
from serenity_mlir.errors import FunctionChoiceError, InputError
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.memory.slab import SlabPrediction, peak_position, slices_for_order
from serenity_mlir.passes.schedule import ScheduleOutcome
from serenity_mlir.pipeline.arena import ArenaLayout, arena_built, place_arena_and_compile
from serenity_mlir.pipeline.lower import Lowered, lower_linalg_to_flow
from serenity_mlir.pipeline.patches import PatchRecord, patch_stage
from serenity_mlir.pipeline.place import GroundTruth, PlaceJob, place_and_compile
from serenity_mlir.pipeline.rewrite import RewriteChoice, Variant, rewrite_then_schedule
from serenity_mlir.pipeline.schedule import schedule_flow_file
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.settings import CompileSettings
from serenity_mlir.targets import Target
from serenity_mlir.units import check_memory_budget


def _quiet(_: str) -> None:
    return None


@dataclass
class BuiltModule:
    """A scheduled (maybe rewritten) module built for a target."""

    sched: ScheduleOutcome  # keeps the scheduled module alive for its op handles
    flow_file: Path  # the scheduled flow-level file the build read
    built: Built
    placed: PlacedBuild | None  # None: IREE laid out the slab
    truth: GroundTruth | None  # IREE's slices against the memory model (placed builds)
    rewrite: RewriteChoice | None = None
    arena: ArenaLayout | None = None  # --arena-entry: the arena's layout

    @property
    def prediction(self) -> SlabPrediction:
        """IREE's own packing of the order, simulated (and its live bytes)."""
        return self.sched.body.predict(self.sched.result.order)

    @property
    def program_prediction(self) -> SlabPrediction:
        return self.sched.body.predict(range(self.sched.body.graph.num_nodes))

    @property
    def predicted_slab_bytes(self) -> int:
        return self.placed.slab_bytes if self.placed is not None else self.prediction.slab_bytes

    @property
    def cloned_bytes(self) -> int:
        """Constants IREE copies for the call outside the slab (none with an
        arena entry point: there the copy is a slice of the arena)."""
        return self.sched.body.cloned_bytes if self.arena is None else 0

    @property
    def predicted_transient_bytes(self) -> int:
        """What the call allocates besides its inputs and results: the slab
        and the constants it copies (the runtime's ``transient_bytes``)."""
        return self.predicted_slab_bytes + self.cloned_bytes

    @property
    def predicted_peak_bytes(self) -> int:
        """The slab plus what lives outside it for the whole call (inputs,
        results, globals IREE fills at initialisation); for an arena entry
        point the arena (inputs and results inside) plus those globals."""
        if self.arena is not None:
            return self.arena.arena_bytes + self.sched.body.constant_bytes
        return self.predicted_slab_bytes + self.sched.body.fixed_bytes

    @property
    def rewritten(self) -> bool:
        return self.rewrite is not None and bool(self.rewrite.applied)

    def peak_site(self) -> str:
        """The dispatch running when the slab's live bytes peak, with its location."""
        return peak_site(self.sched)


def peak_site(sched: ScheduleOutcome) -> str:
    order = sched.result.order
    pos = peak_position(slices_for_order(sched.body.buffers, order))
    if pos is None:
        return "none"
    op = sched.body.node_ops[order[pos]]
    return f"{sched.body.graph.labels[order[pos]]} at {mlir_io.format_location(op.location)}"


def build_module(
    lowered: Lowered,
    settings: CompileSettings,
    target: Target,
    work: WorkFolder,
    out_name: str,
    subject: str,
    tag: str | None = None,
    step: Callable[[str], None] = _quiet,
    detail: Callable[[str], None] = _quiet,
    scheduled: tuple[ScheduleOutcome, Path] | None = None,
) -> BuiltModule:
    """Schedules the lowered module, rewrites it (``settings.rewrite``),
    places its slab (``settings.placement``) and compiles it into
    ``work.build_dir(tag) / out_name``. ``subject`` names the model in a
    memory-budget error; ``step`` and ``detail`` get progress lines.
    ``scheduled``: the lowered module's schedule with these settings and
    the file it wrote, when an earlier stage computed it already (the patch
    stage's unpatched graph); used as it is when our placement lays out the
    slab (IREE's packer wants the packing search, which it did not run)."""
    placing = settings.placement.placed
    step(f"scheduling with '{settings.schedule.scheduler}'")
    sched_file = work.scheduled(tag)
    if scheduled is not None and placing:
        sched = scheduled[0]
        shutil.copyfile(scheduled[1], sched_file)
    else:
        # With our placement the order's live bytes are what the slab costs, so
        # the scheduler's order stands; IREE's packer needs the packing search.
        sched = schedule_flow_file(lowered.flow_file, sched_file, settings.schedule, not placing)
    choice = None
    if settings.rewrite.enabled:
        step("rewriting concat -> convolution sites and scheduling again")
        # Every graph is costed as it will be built: by the placement's cheap
        # part when SERENITY places the slab, by IREE's packing otherwise.
        baseline = Variant.of((), sched_file, sched, placing)
        choice = rewrite_then_schedule(lowered.input_file, baseline, work, target, settings, log=detail)
        if choice.applied:
            sched, sched_file = choice.best.outcome, choice.best.flow_file
    if settings.memory_budget is not None and not settings.arena_entry:
        # Fail before the long compile when the prediction already says no
        # (placement can only do better than the order's live bytes; an
        # arena entry point also reuses the input's, so only its build is
        # checked, by the driver).
        live = sched.body.predict(sched.result.order).live_bytes + sched.body.fixed_bytes
        check_memory_budget(
            live, settings.memory_budget, f"{subject} on {target.name} (peak at dispatch {peak_site(sched)})"
        )
    out = work.build_dir(tag) / out_name
    if settings.arena_entry:
        # Our placement lays out the arena (inputs and results included)
        # whichever placer the settings name; no packing search: the order's
        # live bytes are not the arena's bound any more.
        step(f"placing the arena (input and results inside) and compiling for {target.name}")
        ap = place_arena_and_compile(PlaceJob(sched, sched_file, out, target, settings.placement, work.stream_dir(tag)))
        built = arena_built(describe_build(sched_file, ap.build.build, target), ap.layout)
        return BuiltModule(sched, sched_file, built, ap.build, ap.truth, choice, arena=ap.layout)
    if not placing:
        step(f"compiling for {target.name}")
        return BuiltModule(sched, sched_file, build_for_target(sched_file, out, target), None, None, choice)
    step(f"placing the slab and compiling for {target.name}")
    placed = place_and_compile(PlaceJob(sched, sched_file, out, target, settings.placement, work.stream_dir(tag)))
    module = BuiltModule(
        sched, sched_file, describe_build(sched_file, placed.build.build, target), placed.build, placed.truth, choice
    )
    if placed.build.slab_bytes > placed.build.slab_live_bytes and choice is None:
        module = _try_packing_search(module, lowered, settings, target, work, out_name, tag, detail)
    return module


def _try_packing_search(
    module: BuiltModule,
    lowered: Lowered,
    settings: CompileSettings,
    target: Target,
    work: WorkFolder,
    out_name: str,
    tag: str | None,
    detail: Callable[[str], None],
) -> BuiltModule:
    """The placement did not reach the order's live bytes: an order IREE's
    packer likes may place tighter. Kept only when it does."""
    assert module.placed is not None
    if settings.schedule.scheduler != "serenity":
        return module
    detail(
        f"placement: {module.placed.slab_bytes:,} B for {module.placed.slab_live_bytes:,} live; "
        "trying the packing search"
    )
    alt_tag = "packed" if tag is None else f"{tag}-packed"
    alt_file = work.scheduled(alt_tag)
    alt = schedule_flow_file(lowered.flow_file, alt_file, settings.schedule)
    out = work.build_dir(alt_tag) / out_name
    placed = place_and_compile(PlaceJob(alt, alt_file, out, target, settings.placement, work.stream_dir(alt_tag)))
    if placed.build.slab_bytes >= module.placed.slab_bytes:
        return module
    return replace(
        module,
        sched=alt,
        flow_file=alt_file,
        built=describe_build(alt_file, placed.build.build, target),
        placed=placed.build,
        truth=placed.truth,
    )


def patch_then_build(
    lowered: Lowered,
    target: Target,
    settings: CompileSettings,
    work: WorkFolder,
    out_name: str,
    model_name: str,
    step: Callable[[str], None] = _quiet,
    detail: Callable[[str], None] = _quiet,
    tag: str | None = None,
) -> tuple[Lowered, PatchRecord | None, BuiltModule]:
    """From the lowered model to the built module: the patch stage
    (``settings.patches``, when asked), then :func:`build_module`. The
    compile job and the bench's patches column both come through here.
    Returns the lowered module the chain started from (the patched one when
    patches applied), the patch record, and the built module (``tag``: its
    build folder, as for :func:`build_module`)."""
    patch = None
    if settings.patches.enabled:
        step(f"patching the input stage ({settings.patches.mode})")
        try:
            patch = patch_stage(
                lowered.input_file,
                work,
                target,
                settings.schedule,
                settings.patches.mode,
                settings.patches.overhead,
                log=detail,
                function=settings.schedule.function,
                baseline_flow=lowered.flow_file,
                min_gain=settings.patches.min_gain,
            )
        except InputError as e:
            # The pass's words (e.g. a model at the flow phase) with the flag and the file.
            if not isinstance(e, FunctionChoiceError) and model_name not in str(e):
                e.args = (f"--patches {settings.patches.mode}: {model_name}: {e}",)
            raise
        if patch.applied:
            # The patched graph's flow module sits at one place in the work
            # folder (the plot reads it there): auto lowered it while costing,
            # a fixed grid is lowered now.
            flow = work.variant("patched", "flow")
            if patch.flow_file is not None:
                shutil.copyfile(patch.flow_file, flow)
            else:
                lower_linalg_to_flow(patch.file, flow, target, what="lowering the patched module to flow")
            # The chain goes on from the patched module; the reference stays
            # IREE's build of the model as imported.
            lowered = Lowered(patch.file, flow, lowered.seconds)
        elif settings.patches.mode != "auto":
            # A grid the user forced, that this model cannot take: not a
            # module built without what was asked for.
            raise InputError(f"--patches {settings.patches.mode}: cannot patch {model_name}: {patch.reason}")
        else:
            detail(f"patches: none applied ({patch.reason})")
    reuse = patch.baseline if patch is not None and not patch.applied else None
    module = build_module(
        lowered, settings, target, work, out_name, model_name, tag=tag, step=step, detail=detail, scheduled=reuse
    )
    return lowered, patch, module
