"""IREE's memory-relevant compile flags, chosen by measurement, and IREE's own
arena for a build with any flags.

``MEMORY_FLAGS`` is the list ``bench-tflm`` builds "IREE with its best memory
flags" with (and our build with the same flags, beside our defaults). It is
not in the compile job's defaults: that is a decision for every published
figure, made from the numbers below.

Measured (``bench/tflm.md``; Cortex-M7 arena in bytes, IREE's default build of
the imported model, one flag added at a time; outputs of the host build of
each compared with the default's):

``--iree-dispatch-creation-enable-fuse-padding-into-linalg-consumer-ops``
    IREE otherwise materialises a zero-padded copy of every padded
    convolution's input (a ``tensor.pad`` dispatch and a buffer of the padded
    size) before the convolution; with it the padding is read in the
    convolution's own dispatch. See ``FLAG_STUDY`` for the measured bytes.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from serenity_mlir.backend.build import arena_from_statistics
from serenity_mlir.ir.tools import iree_compile
from serenity_mlir.targets import Target

FUSE_PADDING = "--iree-dispatch-creation-enable-fuse-padding-into-linalg-consumer-ops"

# The flags bench-tflm builds "IREE with its best memory flags" with.
MEMORY_FLAGS: tuple[str, ...] = (FUSE_PADDING,)

# The candidates measured (bench-tflm --flag-study): each alone on IREE's default build.
CANDIDATE_FLAGS: tuple[str, ...] = (
    FUSE_PADDING,
    "--iree-dispatch-creation-enable-aggressive-fusion",
    "--iree-dispatch-creation-fuse-multi-use",
    "--iree-dispatch-creation-enable-early-trunc-fusion",
    "--iree-stream-partitioning-favor=min-peak-memory",
)


@dataclass(frozen=True)
class IreeBuild:
    """IREE's own compile of an imported model: the arena it computed."""

    arena_bytes: int | None  # IREE's transient slab (results included); None when IREE reports none
    seconds: float


def iree_build(
    input_file: Path, out: Path | None, target: Target, flags: tuple[str, ...] | list[str] = ()
) -> IreeBuild:
    """IREE's own compile of ``input_file`` (an imported model) for ``target``
    with ``flags``: the whole build into ``out``, or, with ``out=None``, only
    up to the stream phase, where IREE has allocated its transient slab and
    dumps the same statistics (no code generation: the arena in a fraction of
    the time). The arena is read from IREE's scheduling statistics as the
    compile job reads it."""
    import json

    with tempfile.TemporaryDirectory(prefix="serenity-irebuild-") as d:
        stats = Path(d) / "stats.json"
        args = [str(input_file), *target.flag_list(), *flags]
        if out is None:
            args.append("--compile-to=stream")
            out = Path(d) / "model.stream.mlir"
        elif target.links_static:
            args.append(f"--iree-llvmcpu-static-library-output-path={Path(d) / 'model.o'}")
        if target.output == "vm-c" and not str(out).endswith(".mlir"):
            args.append("--output-format=vm-c")
        args += [
            "--iree-scheduling-dump-statistics-format=json",
            f"--iree-scheduling-dump-statistics-file={stats}",
            "-o",
            str(out),
        ]
        t0 = time.perf_counter()
        iree_compile(args, what=f"compiling {input_file.name} with IREE ({' '.join(flags) or 'default flags'})")
        seconds = time.perf_counter() - t0
        try:
            data = json.loads(stats.read_text())
        except (OSError, ValueError):
            data = None
    return IreeBuild(arena_from_statistics(data), seconds)
