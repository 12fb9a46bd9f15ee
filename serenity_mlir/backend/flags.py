"""IREE's memory-relevant compile flags, chosen by measurement, and IREE's own
arena for a build with any flags.

``MEMORY_FLAGS`` is the list ``bench-tflm`` builds "IREE with its best memory
flags" with. The compile job adds it to its own build where it is known to
compile (``memory_flags_for``: ``--memory-flags auto``, the default, turns it
on for TFLite models and off for the rest) and rebuilds without it when IREE
fails anyway. The reference build stays IREE's default.

Why only TFLite models. With the padding flag, IREE's CPU code generation
fails on padded convolutions in the channels-first layout that ONNX and
PyTorch models import with: ``iree-codegen-concretize-pad-result-shape``
fails on a depthwise NCHW convolution's dispatch, and a few others crash the
compiler. Measured on the 25 ONNX zoo models (``samples/zoo``), host target:
14 fail to compile (EfficientNet-B0, GhostNet, MnasNet, MobileNetV3,
NASNet-A, PNASNet-5, PC-DARTS, RandWire, ShuffleNetV2, AlexNet, Inception-v1
and -v2, ShuffleNet, ZFNet; EfficientNet-B0, MnasNet and Inception-v1 fail
for Cortex-M7 and Cortex-A53 too). The 11 that compile measure at or below
their figure without it (DenseNet 188,264 -> 161,960 B, SelecSLS 255,912 ->
177,448, ResNeXt and Res2Net 410,664 -> 376,872, RegNet 167,016 -> 155,688,
Inception-v3 111,016 -> 109,800, VGG-19 26,526,624 -> 26,296,224; DPN,
ResNet-50, SqueezeNet unchanged), outputs bit-identical. TFLite models are
channels-last: all twelve ``samples/tflm`` models compile with it, float32
and int8, and none measures higher (below).

Measured on the twelve ``samples/tflm`` models (Keras applications, float32
and int8, 96x96), Cortex-M7, IREE's default build of the imported model with
one flag added at a time (the arena IREE computes, read at the stream phase:
equal to the full build's on the two models checked, MobileNetV2 int8
220,426 B and ResNet float 884,584 B); outputs compared on the host build:

``--iree-dispatch-creation-enable-fuse-padding-into-linalg-consumer-ops`` (kept)
    Without it IREE materialises a zero-padded copy of every padded
    convolution's input (a pad dispatch and a buffer of the padded size); with
    it the convolution reads the padding in its own dispatch. IREE's default
    arena, float32: MobileNetV2-0.35 881,448 -> 626,728 B, MobileNetV3-Small
    266,664 -> 239,784, EfficientNet-B0 w0.25 721,448 -> 589,864, DenseNet
    1,230,696 -> 1,032,232, ResNet 884,584 -> 737,320, NASNet 307,304 ->
    220,712 (int8 in ``bench/tflm.md``). Ours (order and placement on top):
    MobileNetV2 682,216 -> 663,592 B RAM, MobileNetV3 377,256 -> 317,992,
    DenseNet 899,112 -> 847,912, ResNet 872,744 -> 847,912, NASNet unchanged.
    Outputs bit-identical with and without, for IREE's build and ours, on
    every model measured.

Measured and not kept:

``--iree-dispatch-creation-enable-fuse-padding-into-linalg-producer-ops``
    Lowers IREE's arena on some models (MobileNetV2 float 645,352 B, int8
    220,426 -> 161,354; DenseNet float 1,179,496), less than the consumer
    flag on float, and adds nothing to it on DenseNet; alone it changes
    DenseNet int8's outputs (not bit-identical), and together with the
    consumer flag MobileNetV2 float fails to compile for the host ("One or
    more operations with large vector sizes (32768 bytes) were found").
``--iree-dispatch-creation-enable-aggressive-fusion``
    Raises DenseNet (1,230,696 -> 1,378,152 B float, 307,722 -> 344,586
    int8 with ``fuse-multi-use``), lowers NASNet float (307,304 -> 230,120,
    less than the padding flag's 220,712), no change elsewhere.
``--iree-dispatch-creation-fuse-multi-use``,
``--iree-dispatch-creation-enable-early-trunc-fusion``,
``--iree-stream-partitioning-favor=min-peak-memory``,
``--iree-stream-resource-alias-mutable-bindings``
    No change on any model measured.
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

# The flags bench-tflm builds "IREE with its best memory flags" with, and the
# compile job adds with --memory-flags auto (TFLite models) or on.
MEMORY_FLAGS: tuple[str, ...] = (FUSE_PADDING,)


def memory_flags_for(mode: str, model_kind: str) -> tuple[str, ...]:
    """The memory flags the compile job builds a model of ``model_kind``
    ("onnx", "tflite", "mlir", ...) with: all of them with ``on``, none with
    ``off``, and with ``auto`` only for TFLite models, the channels-last
    imports on which IREE compiles them (see the module docstring)."""
    if mode == "on" or (mode == "auto" and model_kind == "tflite"):
        return MEMORY_FLAGS
    return ()

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
