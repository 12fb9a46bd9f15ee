"""Finishing a scheduled flow module with our own slab placement.

IREE lays out each execution region's transients in
``iree-stream-layout-slices``, inside its stream phase. To place them
ourselves the phase is split (README.md, "Owning the slab"):

1. ``iree-opt`` with :data:`STREAM_PIPELINE_ALLOCATE` on the scheduled flow
   module: every execution region's transients become one
   ``stream.resource.pack`` with IREE's own lifetimes and byte sizes;
2. :func:`serenity_mlir.backend.packs.place_packs` replaces each pack by constants
   from ``memory.placement`` (in memory, with IREE's Python bindings);
3. ``iree-opt`` with :data:`STREAM_PIPELINE_FINISH` (``schedule-allocation``
   finds nothing left to do), then ``iree-compile --compile-from=stream``
   with the target's flags, through ``backend.compile`` (same output kinds,
   same scratch-directory build; IREE's statistics from the stream phase).

IREE prints ``#stream.partitioning_config<favor-debug>`` but parses only
``<"debug">``: every text that goes back to a tool is printed through
``ir.mlir.module_to_text`` or patched the same way.

For static libraries (``static-library``, ``vm-c``) the object's path and
the module's name are fixed in the flow text before the split, as
``backend.compile`` does for a flow-phase compile: IREE records them in the
device target at the flow phase.
"""

from __future__ import annotations

import csv
import functools
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iree.compiler import ir

from serenity_mlir.backend.build import arena_from_statistics
from serenity_mlir.backend.compile import CompileResult, compile_stream_artifacts, flow_text_for
from serenity_mlir.backend.packs import PackLayout, PackPlacement, place_packs
from serenity_mlir.errors import CompilerToolError, InputError
from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.ir.tools import run_tool, tool_path
from serenity_mlir.settings import DEFAULT_PLACEMENT, PlacementSettings
from serenity_mlir.targets import Target, get_target

STREAM_PIPELINE_ALLOCATE = (
    "builtin.module(iree-util-verify-initialization-order, iree-stream-tensor-transformation-pipeline, "
    "iree-stream-async-transformation-pipeline, iree-stream-schedule-allocation, iree-stream-emplace-transients, "
    "iree-stream-materialize-transient-size-queries)"
)
STREAM_PIPELINE_FINISH = (
    "builtin.module(iree-stream-cmd-transformation-pipeline, iree-stream-optimization-pipeline, symbol-dce)"
)
_PRINTED_SERIAL = re.compile(r"#stream\.partitioning_config<favor-debug>")


def _reparseable(text: str) -> str:
    return _PRINTED_SERIAL.sub(mlir_io.SERIAL_PARTITIONING, text)


def run_iree_opt(text: str, pipeline: str, what: str) -> str:
    """``iree-opt --pass-pipeline=PIPELINE`` on ``text`` (standard input);
    returns the output, re-parseable (``favor-debug`` written back)."""
    args = [tool_path("iree-opt"), "-", f"--pass-pipeline={pipeline}"]
    try:
        proc = run_tool(what, args, stdin=text)
    except CompilerToolError as e:
        # The input came on standard input: keep it for the reproducer.
        kept = Path(tempfile.mkdtemp(prefix="serenity-stream-")) / "input.mlir"
        kept.write_text(text)
        raise CompilerToolError(what, [args[0], str(kept), *args[2:]], e.stderr) from None
    return _reparseable(proc.stdout)


def lower_to_allocation(flow_text: str) -> str:
    """Step 1: the stream phase up to the transient packs."""
    return run_iree_opt(flow_text, STREAM_PIPELINE_ALLOCATE, "lowering to the stream phase (iree-opt)")


def finish_stream(stream_text: str) -> tuple[str, dict[str, Any] | None]:
    """Step 3a: the rest of the stream phase after placement; returns the
    module and IREE's scheduling statistics of it.

    ``iree-compile --compile-from=stream`` does not run the statistics pass
    (the stream phase is over), so it runs here, at the end of the phase
    where iree-compile runs it, in CSV (``iree-opt`` has no JSON for it) and
    is returned in the shape of iree-compile's JSON dump, as far as
    ``backend.build`` reads it (``stream-aggregate``: ``execution``
    ``transient-memory-size``/``submission-count``, ``global``
    ``constant-size``)."""
    with tempfile.TemporaryDirectory(prefix="serenity-stream-") as d:
        csv_file = Path(d) / "statistics.csv"
        pipeline = STREAM_PIPELINE_FINISH[:-1] + (
            f", iree-stream-dump-statistics{{output-format=csv output-file={csv_file}}})"
        )
        text = run_iree_opt(stream_text, pipeline, "finishing the stream phase (iree-opt)")
        try:
            stats = statistics_from_csv(csv_file.read_text())
        except OSError:
            stats = None
    return text, stats


def statistics_from_csv(csv_text: str) -> dict[str, Any] | None:
    """The aggregate table of ``iree-stream-dump-statistics{output-format=csv}``
    as iree-compile's JSON statistics."""
    lines = [ln for ln in csv_text.splitlines() if ln.strip() and not ln.startswith(";")]
    if len(lines) < 2 or "Transient Size" not in lines[0]:
        return None
    row = dict(zip(next(csv.reader([lines[0]])), next(csv.reader([lines[1]])), strict=False))

    def num(key: str) -> int | None:
        try:
            return int(row[key])
        except (KeyError, ValueError):
            return None

    return {
        "stream-aggregate": {
            "global": {"constant-count": num("Constants"), "constant-size": num("Constant Size")},
            "execution": {
                "transient-memory-size": num("Transient Size"),
                "submission-count": num("Submissions"),
                "dispatch-count": num("Dispatches"),
                "fill-count": num("Fills"),
                "copy-count": num("Copies"),
            },
        },
        "source": "iree-stream-dump-statistics (csv, after placement)",
    }


# Places the packs of a parsed stream-phase module in place (the
# serenity-place pass, or :func:`place_packs` with a settings record).
Placer = Callable[[ir.Operation], PackLayout]


def place_stream_text(stream_text: str, placer: Placer) -> tuple[str, PackLayout]:
    """Step 2 on text: parses the stream-phase module, places every pack
    with ``placer`` and prints it back."""
    ctx = mlir_io.new_context()
    module = mlir_io.parse_module(stream_text, "<stream>", ctx)
    layout = placer(module)
    return mlir_io.module_to_text(module, debuginfo=True), layout


@dataclass
class PlacedBuild:
    """What ``compile_placed`` did: every pack (slices, IREE's slab, ours,
    the bound, the method; the sums count the call's packs), the build
    (artifacts and IREE's statistics), and the time each step took."""

    target: str
    layout: PackLayout
    build: CompileResult
    placement_seconds: float
    stream_seconds: float  # both iree-opt steps
    compile_seconds: float
    files: dict[str, Path] = field(default_factory=dict)  # kept intermediate files

    @property
    def placement(self) -> str:
        return self.layout.placement

    @property
    def packs(self) -> list[PackPlacement]:
        return self.layout.packs

    @property
    def artifacts(self) -> dict[str, Path]:
        return self.build.artifacts

    @property
    def slab_bytes(self) -> int:
        return self.layout.slab_bytes

    @property
    def iree_slab_bytes(self) -> int:
        return self.layout.iree_slab_bytes

    @property
    def slab_live_bytes(self) -> int:
        return self.layout.slab_live_bytes

    @property
    def methods(self) -> list[str]:
        """How the call's packs were solved (``iree``: left to IREE)."""
        return sorted({p.placement.method if p.placement else "iree" for p in self.layout.call_packs})

    @property
    def arena_bytes(self) -> int | None:
        """IREE's ``transient-memory-size`` statistic for this build."""
        return arena_from_statistics(self.build.statistics)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "placement": self.placement,
            "slab_bytes": self.slab_bytes,
            "iree_slab_bytes": self.iree_slab_bytes,
            "slab_live_bytes": self.slab_live_bytes,
            "arena_bytes": self.arena_bytes,
            "placement_seconds": round(self.placement_seconds, 3),
            "stream_seconds": round(self.stream_seconds, 3),
            "compile_seconds": round(self.compile_seconds, 3),
            "artifacts": {k: str(v) for k, v in self.artifacts.items()},
            "packs": [p.to_json() for p in self.packs],
        }


def compile_placed(
    flow_file: str | Path,
    out: str | Path,
    target: Target | str,
    settings: PlacementSettings = DEFAULT_PLACEMENT,
    keep_dir: str | Path | None = None,
    placer: Placer | None = None,
) -> PlacedBuild:
    """Compiles a (scheduled) flow file for ``target`` with the slab placed by
    ``settings`` (``serenity``: ``memory.placement``; ``iree``: IREE's own
    layout, through the same split, for comparison), or by ``placer`` when
    given (the compile job passes the serenity-place pass). Writes the same
    files as ``backend.compile.compile_flow_artifacts`` (``out`` and, for
    static libraries, ``OUT.o``/``OUT.h``; ``OUT.c`` for vm-c). ``keep_dir``:
    keep the stream-phase files there (``model.stream.mlir``,
    ``model.placed.stream.mlir``, ``model.final.stream.mlir``)."""
    flow_file, out = Path(flow_file), Path(out)
    t = get_target(target) if isinstance(target, str) else target
    if not flow_file.is_file():
        raise InputError(f"{flow_file}: no such file")
    text = flow_text_for(flow_file, out, t)
    t0 = time.perf_counter()
    allocated = lower_to_allocation(text)
    t1 = time.perf_counter()
    if placer is None:
        placer = functools.partial(_place_by_settings, settings)
    placed, layout = place_stream_text(allocated, placer)
    t2 = time.perf_counter()
    final, statistics = finish_stream(placed)
    t3 = time.perf_counter()
    files: dict[str, Path] = {}
    keep = Path(keep_dir) if keep_dir is not None else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        for key, body in (("stream", allocated), ("placed", placed), ("final", final)):
            p = keep / f"model.{key}.stream.mlir" if key != "stream" else keep / "model.stream.mlir"
            atomic_write(p, body)
            files[key] = p
    out.parent.mkdir(parents=True, exist_ok=True)
    if keep is not None:
        src = keep / "model.final.stream.mlir"
    else:
        # Kept when iree-compile fails: the error's reproducer names it.
        src = Path(tempfile.mkdtemp(prefix="serenity-stream-")) / "model.final.stream.mlir"
        atomic_write(src, final)
    build = compile_stream_artifacts(src, out, t)
    if keep is None:
        shutil.rmtree(src.parent, ignore_errors=True)
    if build.statistics is None or arena_from_statistics(build.statistics) is None:
        build.statistics = statistics
    return PlacedBuild(
        target=t.name,
        layout=layout,
        build=build,
        placement_seconds=t2 - t1,
        stream_seconds=(t1 - t0) + (t3 - t2),
        compile_seconds=build.seconds,
        files=files,
    )


def _place_by_settings(settings: PlacementSettings, module: ir.Operation) -> PackLayout:
    return PackLayout(settings.placement, place_packs(module, settings))


def predicted_peak(build: PlacedBuild, input_bytes: int, output_bytes: int) -> int:
    """The runtime peak the placement predicts on the host (local-sync):
    the inputs, the results (external allocations) and the slabs."""
    return input_bytes + output_bytes + build.slab_bytes
