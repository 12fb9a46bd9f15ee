"""Faults, round three: the flags added since round two.

``compile --patches``, ``--patch-overhead``, ``--input-shape``,
``--arena-entry``, ``--memory-flags``, ``--compare-tflm``; ``measure`` on an
arena entry point; ``bench-tflm`` and ``bench-zoo --no-patches`` (and the
other benches' ``--out``); ``serenity-opt`` with ``serenity-patch`` and
``serenity-place`` options. Each case must satisfy the whole fault contract
(harness.fault_problems), as in test_faults.py; most fail before the import
or before the lowering, a few after a lowering (``slow``).

Bugs these cases found (fixed with them): a repeated ``--input-shape`` for
one input silently kept the last shape; ONNX shape inference's error (one
line per node) and an IREE runtime error (with its VM stack) ended the run
in several lines, not one error line; ``--patches 2x2@999`` (a split op the
stage does not have) or a grid finer than the map built an unpatched module
and exited 0; ``serenity-patch{split=-1}`` was taken; ``measure`` on an
``--arena-entry`` module asked for ``--function`` between IREE's
``$async_transients_size`` query and the entry, then failed in the runtime
in several lines; ``--arena-entry`` on a model with two inputs failed only
after lowering and scheduling; ``--out`` naming a file was a traceback in
``bench``, ``bench-targets``, ``bench-zoo`` and ``bench-tflm`` (after the
work, for the last three); ``bench`` and ``bench-targets`` ended a failed
model in two lines; ``bench-tflm`` took missing, non-.tflite and garbage
files, an unknown target and a missing TFLite Micro as rows, wrote its
tables and ended without an error line; a dimension beyond 64 bits in
``--input-shape`` was a traceback; ``--patches`` on a flow-level .mlir file
ended in the pass's words, naming neither the flag nor the file.
"""

from __future__ import annotations

import os
import re

import pytest

from .conftest import Artifacts
from .harness import ERROR_LINE, SAMPLES, Sandbox, assert_no_problems, clean_success_problems, fault_problems
from .test_faults import GARBAGE, NOTES, RO, Case, E, Setup, chain, copy_art, model, write

C = "compile"
NM = "--no-measure"
OUT = ["-o", "out.vmfb"]


def tflite(name: str = "m.tflite") -> Setup:
    return lambda sb, art: (sb.copy(SAMPLES / "branches.tflite", name), None)[1]


def tflite_cut(name: str, keep: int | None = None) -> Setup:
    """branches.tflite cut short: to ``keep`` bytes (default: half)."""

    def run(sb: Sandbox, art: Artifacts) -> None:
        data = (SAMPLES / "branches.tflite").read_bytes()
        sb.write(name, data[: len(data) // 2 if keep is None else keep])

    return run


DYN = copy_art("onnx_dynamic", "dyn.onnx")  # branches.onnx with a dynamic batch ('batch')


def two_inputs(name: str = "two.onnx") -> Setup:
    """y = relu(x) + z: two 1x4x8x8 inputs."""

    def run(sb: Sandbox, art: Artifacts) -> None:
        from onnx import TensorProto, helper

        vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 8, 8]) for n in ("x", "z", "y")]
        nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "z"], ["y"])]
        graph = helper.make_graph(nodes, "two", vi[:2], vi[2:])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        sb.write(name, m.SerializeToString())

    return run


# TFLite Micro made unimportable for the run: a package of that name first on
# the path whose import fails (no bytecode written into work/).
def _no_tflm_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in ("{work}/shadow", os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


NO_TFLM = write("shadow/tflite_micro/__init__.py", 'raise ImportError("No module named tflite_micro")\n')
TFLM_MISSING = r"tflite-micro|TFLite Micro"

# fmt: off
CASES: list[Case] = [
    # ---- --patches and --patch-overhead: rejected before the import
    Case("patches-zero-rows", "mlir", [C, "m.onnx", *OUT, "--patches", "0x3", NM], model(),
         E(r"--patches", r"'0x3'", before="import", max_seconds=20)),
    Case("patches-banana", "mlir", [C, "m.onnx", *OUT, "--patches", "banana", NM], model(),
         E(r"--patches", r"banana", before="import")),
    Case("patches-negative-split", "mlir", [C, "m.onnx", *OUT, "--patches", "2x2@-1", NM], model(),
         E(r"--patches", r"2x2@-1", before="import")),
    Case("patches-split-not-a-number", "mlir", [C, "m.onnx", *OUT, "--patches", "2x2@x", NM], model(),
         E(r"--patches", r"2x2@x", before="import")),
    Case("patches-auto-at-split", "mlir", [C, "m.onnx", *OUT, "--patches", "auto@3", NM], model(),
         E(r"--patches", r"auto@3", before="import")),
    Case("patches-empty", "mlir", [C, "m.onnx", *OUT, "--patches=", NM], model(), E(r"--patches", before="import")),
    Case("patches-upper-case-x", "mlir", [C, "m.onnx", *OUT, "--patches", "2X2", NM], model(),
         E(r"--patches", r"2X2", before="import")),
    Case("patch-overhead-negative", "mlir", [C, "m.onnx", *OUT, "--patches", "auto", "--patch-overhead=-1", NM],
         model(), E(r"--patch-overhead", r"-1", before="import")),
    Case("patch-overhead-nan", "mlir", [C, "m.onnx", *OUT, "--patches", "auto", "--patch-overhead", "nan", NM],
         model(), E(r"--patch-overhead", r"nan", before="import")),
    Case("patch-overhead-inf", "mlir", [C, "m.onnx", *OUT, "--patches", "auto", "--patch-overhead", "1e400", NM],
         model(), E(r"--patch-overhead", r"inf", before="import")),
    Case("patch-overhead-abc", "mlir", [C, "m.onnx", *OUT, "--patch-overhead", "abc", NM], model(),
         E(r"--patch-overhead", r"abc", before="import")),
    Case("patch-overhead-negative-without-patches", "mlir", [C, "m.onnx", *OUT, "--patch-overhead=-0.5", NM],
         model(), E(r"--patch-overhead", r"-0\.5", before="import")),
    Case("patches-output-is-model", "mlir", [C, "m.onnx", "-o", "m.onnx", "--patches", "auto"], model(),
         E(r"m\.onnx", r"overwrit", before="import")),
    # ---- --memory-flags
    Case("memory-flags-maybe", "mlir", [C, "m.onnx", *OUT, "--memory-flags", "maybe"], model(),
         E(r"--memory-flags", r"maybe", before="import", max_seconds=20)),
    Case("memory-flags-upper-case", "mlir", [C, "m.onnx", *OUT, "--memory-flags", "ON"], model(),
         E(r"--memory-flags", r"'ON'", before="import")),
    # ---- --input-shape: the text, rejected before the import
    Case("input-shape-zero-dim", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input=0x8x32x32", NM], DYN,
         E(r"--input-shape", r"input=0x8x32x32", before="import")),
    Case("input-shape-negative-dim", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input=-1x8x32x32", NM], DYN,
         E(r"--input-shape", r"-1x8x32x32", before="import")),
    Case("input-shape-x-garbage", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input=axbxc", NM], DYN,
         E(r"--input-shape", r"axbxc", before="import")),
    Case("input-shape-empty-dim", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input=1xx8x32x32", NM], DYN,
         E(r"--input-shape", r"1xx8x32x32", before="import")),
    Case("input-shape-no-name", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "=1x8x32x32", NM], DYN,
         E(r"--input-shape", r"=1x8x32x32", before="import")),
    Case("input-shape-no-dims", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input", NM], DYN,
         E(r"--input-shape", r"'input'", before="import")),
    Case("input-shape-dim-beyond-64-bit", "mlir",
         [C, "dyn.onnx", *OUT, "--input-shape", "input=99999999999999999999x8x32x32", NM], DYN,
         E(r"--input-shape", r"99999999999999999999", r"larger", before="import"), forbid=[r"internal"]),
    Case("input-shape-twice-two-shapes", "mlir",
         [C, "dyn.onnx", *OUT, "--input-shape", "input=1x8x32x32", "--input-shape", "input=2x8x32x32", NM], DYN,
         E(r"--input-shape", r"twice", r"'input'", r"1x8x32x32", r"2x8x32x32", before="import")),
    # ---- --input-shape against the model: after the import, before the lowering
    Case("input-shape-unknown-name", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "nosuch=1x8x32x32", NM], DYN,
         E(r"dyn\.onnx", r"'nosuch'", r"input", before="lowering")),
    Case("input-shape-wrong-rank", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input=1x8x32", NM], DYN,
         E(r"dyn\.onnx", r"rank 4", r"rank 3", before="lowering")),
    Case("input-shape-contradicts-static-dim", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input=1x9x32x32", NM],
         DYN, E(r"dyn\.onnx", r"dimension 1", r"8", r"9", before="lowering")),
    Case("input-shape-on-static-model", "mlir", [C, "m.onnx", *OUT, "--input-shape", "input=2x8x32x32", NM], model(),
         E(r"m\.onnx", r"fixed at 1", r"2", before="lowering")),
    # The file's own shapes (batch 1 inside) contradict batch 2: ONNX names every node, on one line.
    Case("input-shape-contradicts-the-graph", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input=2x8x32x32", NM],
         DYN, E(r"dyn\.onnx", r"shape inference", r"--input-shape input=2x8x32x32", r"b3/conv0",
                before="lowering")),
    Case("input-shape-on-mlir", "mlir", [C, "t.mlir", *OUT, "--input-shape", "input=1x8x32x32", NM],
         copy_art("torch_mlir", "t.mlir"), E(r"t\.mlir", r"\.onnx and \.tflite", before="lowering")),
    Case("input-shape-unknown-name-tflite", "mlir", [C, "m.tflite", *OUT, "--input-shape", "nosuch=1x2", NM],
         tflite(), E(r"m\.tflite", r"'nosuch'", before="lowering")),
    Case("input-shape-contradicts-tflite", "mlir", [C, "m.tflite", *OUT, "--input-shape", "input=2x32x32x8", NM],
         tflite(), E(r"m\.tflite", r"1x32x32x8", r"2x32x32x8", before="lowering")),
    Case("dynamic-inner-dim-wrong-rank", "mlir", [C, "dyn.onnx", *OUT, "--input-shape", "input=1x8x32x32x1", NM],
         copy_art("onnx_dynamic_inner", "dyn.onnx"), E(r"dyn\.onnx", r"rank 4", r"rank 5", before="lowering")),
    # ---- .tflite files that are not
    Case("tflite-truncated", "mlir", [C, "t.tflite", *OUT], tflite_cut("t.tflite"),
         E(r"t\.tflite", before="lowering")),
    Case("tflite-garbage", "mlir", [C, "g.tflite", *OUT], write("g.tflite", GARBAGE),
         E(r"g\.tflite", r"TFL3|flatbuffer", before="lowering")),
    Case("tflite-empty", "mlir", [C, "e.tflite", *OUT], write("e.tflite", b""), E(r"e\.tflite", before="lowering")),
    Case("tflite-header-only", "mlir", [C, "h.tflite", *OUT], tflite_cut("h.tflite", 64),
         E(r"h\.tflite", before="lowering")),
    # ---- --compare-tflm
    Case("compare-tflm-onnx", "mlir", [C, "m.onnx", *OUT, "--compare-tflm", NM], model(),
         E(r"--compare-tflm", r"m\.onnx", r"\.tflite", before="import", max_seconds=20)),
    Case("compare-tflm-mlir", "mlir", [C, "t.mlir", *OUT, "--compare-tflm", NM], copy_art("torch_mlir", "t.mlir"),
         E(r"--compare-tflm", r"t\.mlir", before="import")),
    Case("compare-tflm-package-missing", "mlir", [C, "m.tflite", *OUT, "--compare-tflm", NM],
         chain(tflite(), NO_TFLM), E(TFLM_MISSING, r"pip install", before="import"), env=_no_tflm_env()),
    Case("compare-tflm-output-is-model", "mlir", [C, "m.tflite", "-o", "m.tflite", "--compare-tflm"], tflite(),
         E(r"m\.tflite", r"overwrit", before="import")),
    # ---- --arena-entry: one tensor input, known from the import
    Case("arena-entry-two-inputs", "mlir", [C, "two.onnx", *OUT, "--arena-entry", NM], two_inputs(),
         E(r"two\.onnx", r"--arena-entry", r"one tensor input", r"\b2\b", r"x, z", before="lowering")),
    Case("arena-entry-two-inputs-cortex-m4", "mlir",
         [C, "two.onnx", *OUT, "--arena-entry", "--target", "cortex-m4", NM], two_inputs(),
         E(r"two\.onnx", r"--arena-entry", before="lowering")),
    Case("arena-entry-two-inputs-patches-rewrite", "mlir",
         [C, "two.onnx", *OUT, "--arena-entry", "--patches", "auto", "--rewrite", "--placement", "iree"],
         two_inputs(), E(r"two\.onnx", r"--arena-entry", before="lowering")),
    Case("arena-entry-no-inputs", "mlir", [C, "n.onnx", *OUT, "--arena-entry", NM],
         copy_art("onnx_no_inputs", "n.onnx"), E(r"n\.onnx", r"--arena-entry", r"\b0\b", before="lowering")),
    Case("arena-entry-output-is-model", "mlir", [C, "m.onnx", "-o", "m.onnx", "--arena-entry"], model(),
         E(r"m\.onnx", r"overwrit", before="import")),
    Case("arena-entry-static-suffix", "mlir", [C, "m.onnx", "-o", "out.o", "--arena-entry", "--target", "cortex-m7"],
         model(), E(r"out\.o", r"suffix", before="import")),
    # ---- --patches RxC[@N] the model cannot take: an error, not an unpatched build (lowers first)
    Case("patches-split-out-of-range", "mlir", [C, "m.onnx", *OUT, "--patches", "2x2@999", NM], model(),
         E(r"--patches 2x2@999", r"m\.onnx", r"999", r"8 layers"), slow=True),
    Case("patches-grid-finer-than-the-map", "mlir", [C, "m.onnx", *OUT, "--patches", "99x2", NM], model(),
         E(r"--patches 99x2", r"m\.onnx", r"finer"), slow=True),
    Case("patches-on-a-flow-level-mlir", "mlir", [C, "f.mlir", *OUT, "--patches", "2x2", NM],
         copy_art("flow_mlir", "f.mlir"), E(r"--patches 2x2", r"f\.mlir", r"flow"), slow=True),
    # ---- measure on an --arena-entry module (its one argument is the arena)
    Case("measure-arena-entry", "mlir", ["measure", "a.vmfb"], copy_art("arena_vmfb", "a.vmfb"),
         E(r"a\.vmfb", r"arena entry point", r"--arena-entry"), forbid=[r"--function", r"transients_size"]),
    Case("measure-arena-entry-function", "mlir", ["measure", "a.vmfb", "--function", "branches"],
         copy_art("arena_vmfb", "a.vmfb"), E(r"a\.vmfb", r"arena entry point"), forbid=[r"OUT_OF_RANGE"]),
    Case("measure-arena-entry-repeat", "mlir", ["measure", "a.vmfb", "--repeat", "2", "--input", "1x8x32x32xf32"],
         copy_art("arena_vmfb", "a.vmfb"), E(r"a\.vmfb", r"arena entry point")),
    # ---- serenity-opt: serenity-patch options
    Case("opt-patch-grid-zero", "opt", ["l.mlir", "-p", "serenity-patch{grid=0x3}"], copy_art("linalg_mlir", "l.mlir"),
         E(r"l\.mlir", r"grid", r"0x3")),
    Case("opt-patch-grid-banana", "opt", ["l.mlir", "-p", "serenity-patch{grid=banana}"],
         copy_art("linalg_mlir", "l.mlir"), E(r"grid", r"banana")),
    Case("opt-patch-split-negative", "opt", ["l.mlir", "-p", "serenity-patch{grid=2x2 split=-1}", "-o", "o.mlir"],
         copy_art("linalg_mlir", "l.mlir"), E(r"l\.mlir", r"split", r"'-1'")),
    Case("opt-patch-split-abc", "opt", ["l.mlir", "-p", "serenity-patch{grid=2x2 split=abc}", "-o", "o.mlir"],
         copy_art("linalg_mlir", "l.mlir"), E(r"split", r"'abc'")),
    Case("opt-patch-unknown-option", "opt", ["l.mlir", "-p", "serenity-patch{grid=2x2 colour=red}"],
         copy_art("linalg_mlir", "l.mlir"), E(r"serenity-patch", r"colour", r"grid")),
    Case("opt-patch-option-without-value", "opt", ["l.mlir", "-p", "serenity-patch{grid}"],
         copy_art("linalg_mlir", "l.mlir"), E(r"serenity-patch", r"grid", r"value")),
    Case("opt-patch-function-missing", "opt", ["l.mlir", "-p", "serenity-patch{function=nope}"],
         copy_art("linalg_mlir", "l.mlir"), E(r"l\.mlir", r"nope")),
    Case("opt-patch-on-flow", "opt", ["f.mlir", "-p", "serenity-patch"], copy_art("flow_mlir", "f.mlir"),
         E(r"f\.mlir", r"serenity-patch", r"flow")),
    Case("opt-patch-on-torch", "opt", ["t.mlir", "-p", "serenity-patch"], copy_art("torch_mlir", "t.mlir"),
         E(r"t\.mlir", r"serenity-patch", r"torch")),
    # ---- serenity-opt: serenity-place options
    Case("opt-place-bogus-placement", "opt", ["s.mlir", "-p", "serenity-place{placement=bogus}"],
         copy_art("stream_mlir", "s.mlir"), E(r"serenity-place", r"bogus")),
    Case("opt-place-moves-negative", "opt", ["s.mlir", "-p", "serenity-place{moves=-1}"],
         copy_art("stream_mlir", "s.mlir"), E(r"serenity-place", r"moves", r"-1")),
    Case("opt-place-moves-abc", "opt", ["s.mlir", "-p", "serenity-place{moves=abc}"],
         copy_art("stream_mlir", "s.mlir"), E(r"serenity-place", r"moves", r"abc")),
    Case("opt-place-exact-seconds-nan", "opt", ["s.mlir", "-p", "serenity-place{exact-seconds=nan}"],
         copy_art("stream_mlir", "s.mlir"), E(r"exact-seconds", r"nan")),
    Case("opt-place-exact-seconds-negative", "opt", ["s.mlir", "-p", "serenity-place{exact-seconds=-1}"],
         copy_art("stream_mlir", "s.mlir"), E(r"exact-seconds", r"-1")),
    Case("opt-place-exact-maybe", "opt", ["s.mlir", "-p", "serenity-place{exact=maybe}"],
         copy_art("stream_mlir", "s.mlir"), E(r"exact", r"maybe")),
    Case("opt-place-print-packs-2", "opt", ["s.mlir", "-p", "serenity-place{print-packs=2}"],
         copy_art("stream_mlir", "s.mlir"), E(r"print-packs", r"'2'")),
    Case("opt-place-on-flow", "opt", ["f.mlir", "--serenity-place"], copy_art("flow_mlir", "f.mlir"),
         E(r"f\.mlir", r"serenity-place", r"flow", r"stream\.resource\.pack")),
    Case("opt-place-on-linalg", "opt", ["l.mlir", "--serenity-place", "-o", "o.mlir"],
         copy_art("linalg_mlir", "l.mlir"), E(r"l\.mlir", r"serenity-place", r"linalg")),
    # ---- bench-tflm: models, target, TFLite Micro and --out checked before any work
    Case("bench-tflm-missing-model", "mlir", ["bench-tflm", "nope.tflite", "--out", "bt"], None,
         E(r"nope\.tflite", r"no such file", max_seconds=20)),
    Case("bench-tflm-onnx-model", "mlir", ["bench-tflm", "m.onnx", "--out", "bt"], model(),
         E(r"m\.onnx", r"\.tflite")),
    Case("bench-tflm-garbage-model", "mlir", ["bench-tflm", "g.tflite", "--out", "bt"], write("g.tflite", GARBAGE),
         E(r"g\.tflite", r"TFL3|flatbuffer")),
    Case("bench-tflm-model-is-dir", "mlir", ["bench-tflm", "d.tflite", "--out", "bt"],
         lambda sb, art: (sb.mkdir("d.tflite"), None)[1], E(r"d\.tflite", r"not a file")),
    Case("bench-tflm-unknown-target", "mlir", ["bench-tflm", "m.tflite", "--target", "bogus", "--out", "bt"],
         tflite(), E(r"bogus")),
    Case("bench-tflm-host-target", "mlir", ["bench-tflm", "m.tflite", "--target", "host", "--out", "bt"], tflite(),
         E(r"--target host", r"microcontroller")),
    Case("bench-tflm-out-is-file", "mlir", ["bench-tflm", "m.tflite", "--out", "notes.txt"], chain(tflite(), NOTES),
         E(r"--out notes\.txt", r"not a folder"), forbid=[r"internal"]),
    Case("bench-tflm-out-read-only", "mlir", ["bench-tflm", "m.tflite", "--out", "ro/bt"], chain(tflite(), RO),
         E(r"--out ro/bt", r"not writable")),
    Case("bench-tflm-out-under-file", "mlir", ["bench-tflm", "m.tflite", "--out", "notes.txt/bt"],
         chain(tflite(), NOTES), E(r"--out notes\.txt/bt", r"is a file")),
    Case("bench-tflm-package-missing", "mlir", ["bench-tflm", "m.tflite", "--out", "bt"], chain(tflite(), NO_TFLM),
         E(TFLM_MISSING, r"pip install"), env=_no_tflm_env()),
    # TFLite Micro fails on it after the checks: the one model failed, no tables written.
    Case("bench-tflm-truncated-model", "mlir", ["bench-tflm", "t.tflite", "--out", "bt", "-q"],
         tflite_cut("t.tflite", 20000), E(r"1 of 1 models failed", r"t\.tflite")),
    # ---- bench-zoo --no-patches, bench, bench-targets: --out and the models, before any work
    Case("bench-zoo-unknown-model", "mlir", ["bench-zoo", "--no-patches", "nosuch", "--out", "bz"], None,
         E(r"'nosuch'", r"zoo")),
    Case("bench-zoo-garbage-model", "mlir", ["bench-zoo", "--no-patches", "g.onnx", "--out", "bz"],
         write("g.onnx", GARBAGE), E(r"g\.onnx", r"not a readable ONNX model")),
    Case("bench-zoo-out-is-file", "mlir", ["bench-zoo", "--no-patches", "m.onnx", "--out", "notes.txt"],
         chain(model(), NOTES), E(r"--out notes\.txt", r"not a folder"), forbid=[r"internal"]),
    Case("bench-zoo-out-read-only", "mlir", ["bench-zoo", "--no-patches", "m.onnx", "--out", "ro/bz"],
         chain(model(), RO), E(r"--out ro/bz", r"not writable")),
    Case("bench-zoo-no-patches-with-value", "mlir", ["bench-zoo", "--no-patches=1", "m.onnx"], model(),
         E(r"--no-patches")),
    Case("bench-out-is-file", "mlir", ["bench", "m.onnx", "--out", "notes.txt"], chain(model(), NOTES),
         E(r"--out notes\.txt", r"not a folder"), forbid=[r"internal"]),
    Case("bench-unknown-target", "mlir", ["bench", "m.onnx", "--target", "bogus", "--out", "b"], model(),
         E(r"bogus")),
    Case("bench-garbage-model", "mlir", ["bench", "g.onnx", "--out", "b"], write("g.onnx", GARBAGE),
         E(r"g\.onnx", r"not a readable ONNX model")),
    Case("bench-targets-out-is-file", "mlir", ["bench-targets", "m.onnx", "--targets", "host", "--out", "notes.txt"],
         chain(model(), NOTES), E(r"--out notes\.txt", r"not a folder"), forbid=[r"internal"]),
    Case("bench-targets-garbage-model", "mlir", ["bench-targets", "g.onnx", "--targets", "host", "--out", "bt"],
         write("g.onnx", GARBAGE), E(r"g\.onnx", r"not a readable ONNX model")),
]
# fmt: on


def _param(c: Case) -> object:
    return pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else [])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_flag_fault(case: Case, sandbox: Sandbox, art: Artifacts) -> None:
    if case.setup is not None:
        case.setup(sandbox, art)
    res = sandbox.run(case.tool, case.args, stdin=case.stdin, env=case.env)
    problems = fault_problems(sandbox, res, case.expect)
    said = next((ln for ln in reversed(res.lines) if ERROR_LINE.match(ln)), "")
    problems += [f"error line matches /{f}/: {said[:160]!r}" for f in case.forbid if re.search(f, said, re.I)]
    assert_no_problems(res, problems, case.id)


def test_ids_unique() -> None:
    from .test_faults import CASES as ROUND_ONE

    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert not set(ids) & {c.id for c in ROUND_ONE}


# -- left alone by design, but said -------------------------------------------------


@pytest.mark.parametrize(
    "options, reason",
    [("grid=2x2 split=999", r"no split op 999"), ("grid=99x99", r"finer than the split op's output")],
    ids=["split-out-of-range", "grid-too-fine"],
)
def test_opt_patch_not_applied_says_why(options: str, reason: str, sandbox: Sandbox, art: Artifacts) -> None:
    """serenity-patch leaves a stage it cannot patch alone (the pass's
    contract, lit-tested): the output is written, exit 0, and a note on
    stderr says why, so the user does not take the input for the result."""
    sandbox.copy(art.linalg_mlir(), "l.mlir")
    res = sandbox.run("opt", ["l.mlir", "-p", f"serenity-patch{{{options}}}", "-o", "o.mlir"])
    assert res.returncode == 0, res.describe()
    assert_no_problems(res, clean_success_problems(sandbox, res, ["o.mlir"]))
    notes = [ln for ln in res.lines if ln.startswith("note: serenity-patch left l.mlir as it was")]
    assert notes and re.search(reason, notes[0]), res.describe()


@pytest.mark.slow
def test_input_shape_repeated_alike_is_one_shape(sandbox: Sandbox, art: Artifacts) -> None:
    """The same shape given twice for one input is not a conflict: it compiles."""
    sandbox.copy(art.onnx_dynamic(), "dyn.onnx")
    shape = ["--input-shape", "input=1x8x32x32"]
    res = sandbox.run("mlir", [C, "dyn.onnx", "-o", "out.vmfb", *shape, *shape, NM, "-q"])
    assert res.returncode == 0, res.describe()
    assert_no_problems(res, clean_success_problems(sandbox, res, ["out.vmfb"]))
