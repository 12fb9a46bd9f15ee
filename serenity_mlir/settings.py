"""Every setting of a compile, declared once, as one tree of frozen records.

Why one module: a default written in several layers drifts (the scheduler's
time limit was once written fourteen times). Each record here is what one
stage reads, and the same record is built by every way in: the CLI's flags,
``api.compile_model``'s keywords, the ``iree.build`` action, CMake's deploy
entry, and the passes themselves, whose options *are* these fields
(``SerenitySchedule`` is a ``ScheduleSettings`` with a name and ``apply``,
so ``serenity-opt -p 'serenity-schedule{time-limit=5}'`` sets the same field
the CLI's ``--time-limit 5`` does).

Nothing here imports MLIR or IREE: the records sit just above the pure
scheduler (whose names they check) and below every stage that reads them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError
from serenity_mlir.scheduler.budget import DEFAULT_WORK_LIMIT
from serenity_mlir.scheduler.schedule import SCHEDULERS
from serenity_mlir.units import MAX_DIM, ByteSize, parse_size

# The defaults, each written once.
TIME_LIMIT = 60.0  # seconds the scheduler's search may take
REWRITE_TIME_LIMIT = 60.0  # seconds the rewrite search may spend dropping sites
# Normwise relative error a rewritten module may show against IREE's default
# compile (re-associated float32 sums drift with depth).
REWRITE_RTOL = 1e-5
PLACEMENT_MOVES = 4000  # local-search moves per pack (a budget, not seconds: repeatable)
EXACT_SECONDS = 5.0  # CP-SAT's deterministic time budget per pack
# For IREE's own packer: candidate orders the packing search tries, capped in
# seconds in case a huge graph makes each try slow.
PACK_SEARCH_MOVES = 3000
PACK_SEARCH_SECONDS = 30.0
# Patch-based inference, auto: at most this fraction more MACs than the
# patched ops computed once.
PATCH_OVERHEAD = 0.2
# ... and only when the patched graph's predicted peak is at least this
# fraction below the unpatched one: every patch is more dispatches (compile
# time, latency), which a peak a few percent lower does not pay for.
PATCH_MIN_GAIN = 0.05
# Among the costed candidates, those within this fraction of the lowest peak
# count as equal, and the one with the fewest patches wins.
PATCH_NEAR_BEST = 0.02
# No candidate is costed when the unpatched stage's estimated worst point is
# below this share of the graph's predicted peak: the peak is past the stage.
PATCH_STAGE_SHARE = 0.5
# The quick estimate of a patched stage runs 0.55-1.5x the graph's peak
# where the stage holds it. When the best costed graph peaks this many times
# above a coarser grid's estimate, its peak lies outside the stage, and that
# grid (fewer patches: less to compile and to run) is costed too.
PATCH_ESTIMATE_SPREAD = 1.5

MEMORY_MODELS = ("iree", "paper")
PLACEMENT_NAMES = ("serenity", "heuristic", "iree")
COMPILE_PLACEMENTS = ("serenity", "iree")
MEMORY_FLAG_MODES = ("auto", "on", "off")


def _seconds(value: float | None, flag: str) -> None:
    if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise InputError(f"{flag} must be a number of seconds >= 0, got {value}")


@dataclass(frozen=True)
class ScheduleSettings:
    """How a function body is ordered; the same for the original graph and
    every rewrite variant of one compile, so they compare fairly."""

    scheduler: str = "serenity"
    function: str | None = None
    time_limit: float | None = TIME_LIMIT
    # Sets the search may store in all: what ends a long search, at the same
    # point on any machine (None: no limit; the time limit is the backstop).
    work_limit: int | None = DEFAULT_WORK_LIMIT
    # Bytes the search may keep stored (None: half the available memory);
    # reached, the search ends like at the time limit.
    memory_limit: ByteSize | None = None
    # "iree": what IREE allocates (flow phase); "paper": SERENITY's model.
    memory_model: str = "iree"
    # For IREE's own packer (placement iree): prefer an order it packs more
    # tightly (0: off, the scheduler's order as it is).
    pack_search_moves: int = PACK_SEARCH_MOVES
    pack_search_seconds: float = PACK_SEARCH_SECONDS

    def __post_init__(self) -> None:
        if isinstance(self.memory_limit, str):
            # A pass option or a caller may give the size as text ("512M").
            try:
                object.__setattr__(self, "memory_limit", parse_size(self.memory_limit))
            except InputError as e:
                raise InputError(f"memory-limit: {e}") from None

    def check(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise InputError(f"unknown scheduler '{self.scheduler}' (known: {', '.join(SCHEDULERS)})")
        _seconds(self.time_limit, "--time-limit")
        if self.work_limit is not None and (isinstance(self.work_limit, bool) or self.work_limit <= 0):
            raise InputError(f"--work-limit must be a positive number of sets, got {self.work_limit}")
        if self.memory_limit is not None and self.memory_limit <= 0:
            raise InputError(f"--memory-limit must be a positive size, got {self.memory_limit}")
        if self.memory_model not in MEMORY_MODELS:
            raise InputError(f"unknown memory model '{self.memory_model}' (known: {', '.join(MEMORY_MODELS)})")


@dataclass(frozen=True)
class PlacementSettings:
    """Who lays out the transient slab, and with what budget."""

    placement: str = "serenity"  # serenity | heuristic | iree
    moves: int = PLACEMENT_MOVES
    seed: int = 0
    # CP-SAT on small packs the heuristics leave above the bound (when
    # OR-Tools is installed).
    exact: bool = True
    exact_seconds: float = EXACT_SECONDS

    @property
    def placed(self) -> bool:
        """SERENITY lays out the slab (not IREE's own packer)."""
        return self.placement != "iree"

    def check(self) -> None:
        if self.placement not in PLACEMENT_NAMES:
            raise InputError(f"unknown placement '{self.placement}' (known: {', '.join(PLACEMENT_NAMES)})")
        if self.moves < 0:
            raise InputError(f"placement moves must be >= 0, got {self.moves}")
        _seconds(self.exact_seconds, "exact-seconds")


DEFAULT_PLACEMENT = PlacementSettings()


@dataclass(frozen=True)
class RewriteSettings:
    """SERENITY's identity graph rewriting, kept per concat site where it
    lowers the scheduled peak."""

    enabled: bool = False
    rtol: float = REWRITE_RTOL
    # Seconds the search may spend dropping sites (None: no limit).
    time_limit: float | None = REWRITE_TIME_LIMIT

    def check(self) -> None:
        if not (isinstance(self.rtol, int | float) and math.isfinite(self.rtol) and self.rtol > 0):
            raise InputError(f"--rewrite-rtol must be a positive tolerance, got {self.rtol:g}")
        _seconds(self.time_limit, "--rewrite-time-limit")


_PATCH_MODE = re.compile(r"^(off|auto|[1-9][0-9]*x[1-9][0-9]*(@[0-9]+)?)$")


@dataclass(frozen=True)
class PatchSettings:
    """Patch-based inference of the input stage: ``off``, ``auto`` (the
    split op and grid with the lowest predicted peak within ``overhead``
    more MACs), or a fixed ``RxC`` / ``RxC@N`` (grid, at split op N)."""

    mode: str = "off"
    overhead: float = PATCH_OVERHEAD
    # auto: the least relative peak reduction worth patching for.
    min_gain: float = PATCH_MIN_GAIN

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def check(self) -> None:
        if not isinstance(self.mode, str) or not _PATCH_MODE.match(self.mode):
            raise InputError(f"--patches must be off, auto, RxC or RxC@N (e.g. 2x2@3), got '{self.mode}'")
        if not (isinstance(self.overhead, int | float) and math.isfinite(self.overhead) and self.overhead >= 0):
            raise InputError(f"--patch-overhead must be a fraction >= 0 (0.2: 20% more MACs), got {self.overhead}")
        g = self.min_gain
        if not (isinstance(g, int | float) and math.isfinite(g) and 0 <= g < 1):
            raise InputError(f"--patch-min-gain must be a fraction in [0, 1) (0.05: 5% lower peak), got {g}")


@dataclass(frozen=True)
class MeasureSettings:
    """Whether the built module runs here, and against what."""

    enabled: bool = True
    # Compare the outputs with IREE's default build of the same model.
    verify_outputs: bool = True
    seed: int = 0  # of the random inputs
    # Run a .tflite model in TFLite Micro too and report its arena beside ours.
    compare_tflm: bool = False

    def check(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"--seed must be an integer >= 0, got {self.seed}")


def _check_input_shapes(shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> None:
    """Positive whole dimensions, and one shape per input (a second
    ``--input-shape`` for the same input would silently replace the first)."""
    seen: dict[str, tuple[int, ...]] = {}
    pairs = isinstance(shapes, tuple | list) and all(
        isinstance(p, tuple | list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], tuple | list)
        for p in shapes
    )
    if not pairs:
        raise InputError(f"input shapes must be given as {{name: (1, 3, 224, 224)}}, got {shapes!r}")
    for name, dims in shapes:
        text = "x".join(str(d) for d in dims)
        if not dims or any(isinstance(d, bool) or not isinstance(d, int) or not 0 < d <= MAX_DIM for d in dims):
            raise InputError(f"--input-shape {name}={text}: the dimensions must be whole numbers from 1 to {MAX_DIM:,}")
        if name in seen and seen[name] != dims:
            first = "x".join(str(d) for d in seen[name])
            raise InputError(f"--input-shape given twice for '{name}' ({first} and {text}): give each input one shape")
        seen[name] = dims


@dataclass(frozen=True)
class CompileSettings:
    """The whole ``serenity-mlir compile`` job."""

    target: str = "host"  # a target name or a target .toml file
    iree_flags: tuple[str, ...] = ()  # extra iree-compile flags, for every IREE step
    # IREE's memory flags (backend.flags.MEMORY_FLAGS) for our build: "auto"
    # adds them where they are known to compile (channels-last TFLite models)
    # and rebuilds without them if IREE still fails; "on" always; "off" never.
    memory_flags: str = "auto"
    # Fail when the model needs more RAM than this (None: no budget).
    memory_budget: ByteSize | None = None
    keep_temps: Path | None = None
    quiet: bool = False
    # Shapes for inputs with dynamic dimensions, by input name (a dynamic
    # batch is pinned to 1 without one).
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # An entry point whose one argument is the arena, holding the input and
    # the results (pipeline/arena.py; README.md, "Arena entry point").
    arena_entry: bool = False
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    placement: PlacementSettings = field(default_factory=PlacementSettings)
    rewrite: RewriteSettings = field(default_factory=RewriteSettings)
    patches: PatchSettings = field(default_factory=PatchSettings)
    measure: MeasureSettings = field(default_factory=MeasureSettings)

    def check(self) -> None:
        """Raises InputError for a value that cannot work, before any work."""
        self.schedule.check()
        self.placement.check()
        if self.placement.placement not in COMPILE_PLACEMENTS:
            raise InputError(f"unknown placement '{self.placement.placement}' (known: {', '.join(COMPILE_PLACEMENTS)})")
        self.rewrite.check()
        self.patches.check()
        self.measure.check()
        if self.memory_flags not in MEMORY_FLAG_MODES:
            raise InputError(f"--memory-flags must be one of {', '.join(MEMORY_FLAG_MODES)}, got '{self.memory_flags}'")
        if self.memory_budget is not None and self.memory_budget <= 0:
            raise InputError(f"--memory-budget must be a positive size, got {self.memory_budget}")
        _check_input_shapes(self.input_shapes)

    @staticmethod
    def from_options(**options: Any) -> CompileSettings:
        """The records from the flat keyword names ``api.compile_model`` has
        always taken (``target``, ``scheduler``, ``time_limit``, ``rewrite``,
        ``placement`` ...); an unknown name is an InputError naming it."""
        unknown = sorted(set(options) - set(FLAT_OPTIONS))
        if unknown:
            raise InputError(f"unknown compile option(s): {', '.join(unknown)} (known: {', '.join(FLAT_OPTIONS)})")
        groups: dict[str, dict[str, Any]] = {
            "": {},
            "schedule": {},
            "placement": {},
            "rewrite": {},
            "patches": {},
            "measure": {},
        }
        for name, value in options.items():
            group, key = FLAT_OPTIONS[name]
            groups[group][key] = value
        top = groups[""]
        if "iree_flags" in top:
            top["iree_flags"] = tuple(top["iree_flags"] or ())
        if top.get("memory_budget") is not None:
            top["memory_budget"] = ByteSize(parse_size(top["memory_budget"]))
        if isinstance(top.get("input_shapes"), dict):
            shapes = top["input_shapes"].items()
            top["input_shapes"] = tuple((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in shapes)
        if top.get("keep_temps") is not None:
            top["keep_temps"] = Path(top["keep_temps"])
        return CompileSettings(
            **top,
            schedule=ScheduleSettings(**groups["schedule"]),
            placement=PlacementSettings(**groups["placement"]),
            rewrite=RewriteSettings(**groups["rewrite"]),
            patches=PatchSettings(**groups["patches"]),
            measure=MeasureSettings(**groups["measure"]),
        )


def _flat_names() -> dict[str, tuple[str, str]]:
    """Flat keyword -> (group, field). Most names are the field's own; a few
    keep the names callers have used since the first release."""
    names: dict[str, tuple[str, str]] = {}
    for f in fields(CompileSettings):
        if f.name not in ("schedule", "placement", "rewrite", "patches", "measure"):
            names[f.name] = ("", f.name)
    names["extra_flags"] = ("", "iree_flags")
    for f in fields(ScheduleSettings):
        names[f.name] = ("schedule", f.name)
    names["placement"] = ("placement", "placement")
    names["placement_moves"] = ("placement", "moves")
    names["placement_seed"] = ("placement", "seed")
    names["exact"] = ("placement", "exact")
    names["exact_seconds"] = ("placement", "exact_seconds")
    names["rewrite"] = ("rewrite", "enabled")
    names["rewrite_rtol"] = ("rewrite", "rtol")
    names["rewrite_time_limit"] = ("rewrite", "time_limit")
    names["patches"] = ("patches", "mode")
    names["patch_overhead"] = ("patches", "overhead")
    names["patch_min_gain"] = ("patches", "min_gain")
    names["measure"] = ("measure", "enabled")
    names["verify_outputs"] = ("measure", "verify_outputs")
    names["seed"] = ("measure", "seed")
    names["compare_tflm"] = ("measure", "compare_tflm")
    return names


FLAT_OPTIONS: dict[str, tuple[str, str]] = _flat_names()
