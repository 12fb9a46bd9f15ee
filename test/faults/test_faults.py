"""Faults and bad input (issue 15): every case must fail cleanly.

Table-driven: each case builds its inputs in a fresh sandbox, runs the
installed console script, and must satisfy the whole fault contract
(harness.fault_problems): non-zero exit, ONE final ``error: ...`` line naming
the problem, no traceback, inputs byte-identical, no output or partial
output, no work folder left unless named, no process left; some cases also
must fail before any work.

``slow``-marked cases compile (seconds each); the signal cases compile and
interrupt at a given step.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import Artifacts, wide_graph
from .harness import (
    BIN,
    ERROR_LINE,
    PREFIX,
    ROOT,
    Expect,
    Sandbox,
    Trigger,
    assert_no_problems,
    clean_success_problems,
    fault_problems,
)

Setup = Callable[[Sandbox, Artifacts], None]

# What a message about two paths that are one file says, in some words.
CLASH = r"overwrit|same (file|path)|is (also )?(the|an?) (input|model|output|report)|is also|clash|collid|both"
PERM = r"permission|read-only|not writable|cannot write"
NOT_DIR = r"not a directory|is a file|under a (regular )?file"
IS_DIR = r"is a directory|director|folder"
NOSPACE = r"no space"


@dataclass
class Case:
    id: str
    tool: str  # "mlir" (serenity-mlir) or "opt" (serenity-opt)
    args: Sequence[str | bytes]
    setup: Setup | None = None
    expect: Expect = field(default_factory=Expect)
    slow: bool = False
    cwd: str | None = None  # a folder under work/ to run in
    forbid: Sequence[str] = ()  # regexes the error line must NOT match
    stdout: str = "pipe"  # "pipe", "closed", or a path ({work} expanded): see Sandbox.run
    stdin: bytes | None = None
    env: dict[str, str] | None = None  # further variables ({work}, {tmp} expanded)


def E(*message: str, before: str | None = None, max_seconds: float | None = None) -> Expect:
    return Expect(message=message, before=before, max_seconds=max_seconds)


# -- setups --------------------------------------------------------------------


def model(name: str | bytes = "m.onnx") -> Setup:
    return lambda sb, art: (sb.copy(art.branches(), name), None)[1]


def chain(*steps: Setup) -> Setup:
    def run(sb: Sandbox, art: Artifacts) -> None:
        for s in steps:
            s(sb, art)

    return run


def write(name: str | bytes, data: str | bytes) -> Setup:
    return lambda sb, art: (sb.write(name, data), None)[1]


def mkdir(name: str, mode: int | None = None) -> Setup:
    return lambda sb, art: (sb.mkdir(name, mode), None)[1]


def copy_art(what: str, name: str | bytes) -> Setup:
    def run(sb: Sandbox, art: Artifacts) -> None:
        sb.copy(getattr(art, what)(), name)

    return run


def external(sb: Sandbox, art: Artifacts) -> None:
    onnx_file, data = art.onnx_external()
    sb.copy(onnx_file)
    sb.copy(data)


def target_file(name: str, text: str | None = None) -> Setup:
    def run(sb: Sandbox, art: Artifacts) -> None:
        sb.write(name, text if text is not None else (ROOT / "pipelines" / "host.toml").read_text())

    return run


def truncated(what: str, name: str) -> Setup:
    def run(sb: Sandbox, art: Artifacts) -> None:
        data = Path(getattr(art, what)()).read_bytes()
        sb.write(name, data[: len(data) // 2])

    return run


def device(name: str, like: str) -> Setup:
    return lambda sb, art: (sb.char_device(name, like), None)[1]


def chmod(name: str, mode: int) -> Setup:
    return lambda sb, art: sb.path(name).chmod(mode)


def small_fs(name: str = "small", size: str = "64k", fill: int = 0) -> Setup:
    """A tmpfs at work/NAME (root only, else the case is skipped); ``fill``
    -1: full to the last byte."""
    return lambda sb, art: (sb.small_fs(name, size, fill), None)[1]


def host_toml(**fields: str) -> str:
    text = (ROOT / "pipelines" / "host.toml").read_text()
    for k, v in fields.items():
        text = re.sub(rf"(?m)^{k} = .*$", f'{k} = "{v}"', text)
    return text


def onnx_failing_checker(kind: str) -> Setup:
    """A model the ONNX checker rejects with a message of several lines."""

    def run(sb: Sandbox, art: Artifacts) -> None:
        from onnx import TensorProto, helper

        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
        if kind == "unsorted":
            nodes = [helper.make_node("Add", ["r", "x"], ["y"]), helper.make_node("Relu", ["x"], ["r"])]
        else:
            nodes = [helper.make_node("NoSuchOp", ["x"], ["y"])]
        m = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        sb.write(f"{kind}.onnx", m.SerializeToString())

    return run


def onnx_lstm(sb: Sandbox, art: Artifacts) -> None:
    """A one-layer LSTM over 6 steps: IREE lowers it to an scf.for loop."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((1, 32, 4)).astype(np.float32), "W")
    r = numpy_helper.from_array(rng.standard_normal((1, 32, 8)).astype(np.float32), "R")
    lstm = helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="encoder/lstm", hidden_size=8)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 1, 1, 8])
    g = helper.make_graph([lstm], "g", [x], [y], initializer=[w, r])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    sb.write("lstm.onnx", m.SerializeToString())


def onnx_dft(sb: Sandbox, art: Artifacts) -> None:
    """A Relu then a two-sided DFT, which IREE's ONNX lowering cannot lower."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="frontend/relu"),
        helper.make_node("DFT", ["r"], ["y"], name="frontend/spectrum", onesided=0),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 2])
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    sb.write("dft.onnx", m.SerializeToString())


NOTES = write("notes.txt", "my notes\n")
RO = mkdir("ro", 0o555)
GARBAGE = bytes(range(256)) * 8
G_OK = {"nodes": [{"name": "a", "bytes": 4}, {"name": "b", "bytes": 4}], "edges": [["a", "b"]], "outputs": ["b"]}


def graph(obj: Any) -> Setup:
    return write("g.json", json.dumps(obj))


def ro_with_model(sb: Sandbox, art: Artifacts) -> None:
    sb.copy(art.branches(), "ro/m.onnx")
    sb.path("ro").chmod(0o555)


def user_temps(sb: Sandbox, art: Artifacts) -> None:
    """A folder the user works in: the model and a file of their own that
    happens to have the name of one of the intermediate files."""
    sb.copy(art.branches(), "m.onnx")
    sb.write("model.flow.mlir", "// my hand-edited flow file\n")
    sb.path(".").chmod(0o755)


# -- the table -------------------------------------------------------------------

C = "compile"
NM = "--no-measure"
VMFB = copy_art("host_vmfb", "b.vmfb")

# fmt: off
CASES: list[Case] = [
    # ---- data loss: a written path equal to a read one (or to another written one)
    Case("report-is-model", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "m.onnx", NM], model(),
         E(r"m\.onnx", CLASH, before="lowering")),
    Case("report-is-output", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "out.vmfb", NM], model(),
         E(r"out\.vmfb", CLASH, before="lowering")),
    Case("output-is-external-data", "mlir", [C, "ext.onnx", "-o", "ext.bin", NM], external,
         E(r"ext\.bin", CLASH, before="lowering")),
    Case("report-is-external-data", "mlir", [C, "ext.onnx", "-o", "out.vmfb", "--report", "ext.bin", NM], external,
         E(r"ext\.bin", CLASH, before="lowering")),
    Case("output-is-model", "mlir", [C, "m.onnx", "-o", "m.onnx"], model(), E(r"m\.onnx", CLASH, before="import")),
    Case("output-is-model-via-symlink", "mlir", [C, "m.onnx", "-o", "link.vmfb"],
         chain(model(), lambda sb, art: os.symlink("m.onnx", sb.path("link.vmfb"))),
         E(r"link\.vmfb", CLASH, before="import")),
    Case("output-is-input-mlir", "mlir", [C, "t.mlir", "-o", "t.mlir"], copy_art("torch_mlir", "t.mlir"),
         E(r"t\.mlir", CLASH, before="import")),
    Case("output-is-target-file", "mlir", [C, "m.onnx", "--target", "board.toml", "-o", "board.toml", NM],
         chain(model(), target_file("board.toml")), E(r"board\.toml", CLASH, before="lowering")),
    Case("report-is-target-file", "mlir",
         [C, "m.onnx", "--target", "board.toml", "-o", "out.vmfb", "--report", "board.toml", NM],
         chain(model(), target_file("board.toml")), E(r"board\.toml", CLASH, before="lowering")),
    Case("report-is-static-header", "mlir",
         [C, "m.onnx", "--target", "cortex-m4", "-o", "out.vmfb", "--report", "out.h", NM], model(),
         E(r"out\.h", CLASH, before="lowering")),
    Case("keep-temps-is-output", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--keep-temps", "out.vmfb", NM], model(),
         E(r"out\.vmfb", CLASH, before="lowering")),
    Case("keep-temps-dot-overwrites-user-files", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--keep-temps", ".", NM],
         user_temps, E(r"keep-temps", r"exist|not empty|overwrit", before="lowering")),
    Case("keep-temps-is-file", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--keep-temps", "notes.txt", NM],
         chain(model(), NOTES), E(r"notes\.txt", r"not a directory|is a file|exists", before="lowering")),
    Case("keep-temps-under-file", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--keep-temps", "notes.txt/t", NM],
         chain(model(), NOTES), E(r"notes\.txt", NOT_DIR, before="lowering")),
    Case("keep-temps-read-only", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--keep-temps", "ro/t", NM],
         chain(model(), RO), E(r"ro/t", PERM, before="lowering")),
    # ---- output paths
    Case("output-read-only-dir", "mlir", [C, "m.onnx", "-o", "ro/out.vmfb", NM], chain(model(), RO),
         E(r"ro/out\.vmfb", PERM, before="lowering")),
    Case("output-new-dir-under-read-only", "mlir", [C, "m.onnx", "-o", "ro/new/out.vmfb", NM], chain(model(), RO),
         E(r"ro/new", PERM, before="lowering")),
    Case("output-is-dir", "mlir", [C, "m.onnx", "-o", "outdir", NM], chain(model(), mkdir("outdir")),
         E(r"outdir", IS_DIR, before="lowering")),
    Case("output-under-file", "mlir", [C, "m.onnx", "-o", "notes.txt/out.vmfb", NM], chain(model(), NOTES),
         E(r"notes\.txt", NOT_DIR, before="lowering")),
    Case("output-is-char-device", "mlir", [C, "m.onnx", "-o", "null", NM], chain(model(), device("null", "/dev/null")),
         E(r"null", r"not a regular file|device", before="lowering")),
    Case("output-static-suffix-o", "mlir", [C, "m.onnx", "--target", "cortex-m4", "-o", "out.o", NM], model(),
         E(r"out\.o", r"suffix", before="import")),
    Case("output-static-suffix-h", "mlir", [C, "m.onnx", "--target", "cortex-m4", "-o", "out.h", NM], model(),
         E(r"out\.h", r"suffix", before="import")),
    Case("output-relative-in-unwritable-cwd", "mlir", [C, "m.onnx", "-o", "out.vmfb", NM], ro_with_model,
         E(r"out\.vmfb", PERM, before="lowering"), cwd="ro"),
    # ---- --report paths: checked before the compile
    Case("report-is-dir", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "rdir", NM],
         chain(model(), mkdir("rdir")), E(r"rdir", IS_DIR, before="lowering")),
    Case("report-read-only", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "ro/r.json", NM],
         chain(model(), RO), E(r"ro/r\.json", PERM, before="lowering")),
    Case("report-under-file", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "notes.txt/r.json", NM],
         chain(model(), NOTES), E(r"notes\.txt", NOT_DIR, before="lowering")),
    Case("report-dev-full", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "full", NM],
         chain(model(), device("full", "/dev/full")), E(r"full", r"no space|not a regular file|device"), slow=True),
    # ---- option values: rejected before the import
    Case("time-limit-negative", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--time-limit", "-1", NM], model(),
         E(r"time-limit", r"-1", before="import")),
    Case("time-limit-nan", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--time-limit", "nan", NM], model(),
         E(r"time-limit", r"nan", before="import")),
    Case("memory-budget-banana", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--memory-budget", "banana"], model(),
         E(r"banana", before="import", max_seconds=5)),
    Case("memory-budget-negative", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--memory-budget=-5K"], model(),
         E(r"-5K", before="import", max_seconds=5)),
    Case("rewrite-rtol-nan", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--rewrite-rtol", "nan"], model(),
         E(r"rewrite-rtol", before="import")),
    Case("rewrite-time-limit-negative", "mlir",
         [C, "m.onnx", "-o", "out.vmfb", "--rewrite", "--rewrite-time-limit", "-5"], model(),
         E(r"rewrite-time-limit must be a number of seconds >= 0, got -5", before="import")),
    Case("rewrite-time-limit-inf", "mlir",
         [C, "m.onnx", "-o", "out.vmfb", "--rewrite", "--rewrite-time-limit", "inf"], model(),
         E(r"rewrite-time-limit", before="import")),
    Case("seed-negative", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--seed", "-1", "--no-verify-outputs"], model(),
         E(r"seed", r"-1", before="import")),
    Case("scheduler-bogus", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--scheduler", "bogus"], model(),
         E(r"bogus", before="import")),
    Case("target-unknown", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "nosuch"], model(),
         E(r"nosuch", before="import")),
    Case("target-toml-bad-field-type", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "board.toml"],
         chain(model(), target_file("board.toml", 'name = "b"\ntriple = "x86_64-unknown-unknown-eabi-elf"\n'
                                    'index_bits = "many"\n')),
         E(r"board\.toml", r"index_bits", before="import")),
    Case("target-toml-unknown-field", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "board.toml"],
         chain(model(), target_file("board.toml", 'name = "b"\ntriple = "x86_64-unknown-unknown-eabi-elf"\n'
                                    'colour = "red"\n')),
         E(r"board\.toml", r"colour", before="import")),
    Case("target-toml-syntax", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "board.toml"],
         chain(model(), target_file("board.toml", "name = \n")), E(r"board\.toml", before="import")),
    Case("target-toml-binary", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "board.toml"],
         chain(model(), write("board.toml", GARBAGE)), E(r"board\.toml", before="import")),
    Case("target-toml-unreadable", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "board.toml"],
         chain(model(), target_file("board.toml"), chmod("board.toml", 0)), E(r"board\.toml", PERM, before="import")),
    Case("target-is-dir", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "tdir.toml"],
         chain(model(), mkdir("tdir.toml")), E(r"tdir\.toml", before="import")),
    Case("iree-flag-bogus", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--iree-flag=--no-such-flag", NM], model(),
         E(r"no-such-flag"), slow=True),
    # ---- models
    Case("model-missing", "mlir", [C, "nope.onnx", "-o", "out.vmfb"], None, E(r"nope\.onnx", r"no such file")),
    Case("model-is-dir", "mlir", [C, "m.onnx", "-o", "out.vmfb"], mkdir("m.onnx"),
         E(r"m\.onnx", r"not a file|director|folder")),
    Case("model-empty-onnx", "mlir", [C, "empty.onnx", "-o", "out.vmfb"], write("empty.onnx", b""),
         E(r"empty\.onnx")),
    Case("model-truncated-onnx", "mlir", [C, "trunc.onnx", "-o", "out.vmfb"], truncated("branches", "trunc.onnx"),
         E(r"trunc\.onnx")),
    Case("model-garbage-onnx", "mlir", [C, "g.onnx", "-o", "out.vmfb"], write("g.onnx", GARBAGE), E(r"g\.onnx")),
    # A dynamic batch is pinned to 1 (see "model-dynamic-batch" below); another dynamic dimension is an error.
    Case("model-dynamic-dims", "mlir", [C, "dyn.onnx", "-o", "out.vmfb"],
         copy_art("onnx_dynamic_inner", "dyn.onnx"), E(r"dyn\.onnx", r"dynamic", r"height")),
    Case("model-external-data-missing", "mlir", [C, "ext.onnx", "-o", "out.vmfb"],
         lambda sb, art: (sb.copy(art.onnx_external()[0]), None)[1], E(r"ext\.bin")),
    Case("model-unknown-suffix", "mlir", [C, "m.txt", "-o", "out.vmfb"], model("m.txt"), E(r"m\.txt", r"format")),
    Case("model-non-utf8-name-garbage", "mlir", [C, b"m\xff.onnx", "-o", "out.vmfb"], write(b"m\xff.onnx", GARBAGE),
         E(r"m.{1,8}\.onnx")),
    Case("model-unreadable", "mlir", [C, "m.onnx", "-o", "out.vmfb"], chain(model(), chmod("m.onnx", 0)),
         E(r"m\.onnx", PERM)),
    Case("onnx-function-missing", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--function", "nope", NM], model(),
         E(r"m\.onnx", r"nope")),
    Case("mlir-syntax-error", "mlir", [C, "bad.mlir", "-o", "out.vmfb"], write("bad.mlir", "func.func @f( {\n"),
         E(r"bad\.mlir:\d+:\d+")),
    Case("mlir-binary", "mlir", [C, "bin.mlir", "-o", "out.vmfb"], write("bin.mlir", GARBAGE), E(r"bin\.mlir")),
    Case("mlir-two-functions-no-function", "mlir", [C, "two.mlir", "-o", "out.vmfb"],
         copy_art("two_funcs_mlir", "two.mlir"),
         E(r"two\.mlir", r"first", r"second", r"--function")),
    Case("mlir-function-missing", "mlir", [C, "two.mlir", "-o", "out.vmfb", "--function", "nope"],
         copy_art("two_funcs_mlir", "two.mlir"), E(r"two\.mlir", r"nope", r"first|second")),
    # ---- measure
    Case("measure-text-file", "mlir", ["measure", "notes.txt"], NOTES, E(r"notes\.txt", r"vmfb|module|flatbuffer")),
    Case("measure-onnx", "mlir", ["measure", "m.onnx"], model(), E(r"m\.onnx", r"vmfb|module|flatbuffer")),
    Case("measure-empty", "mlir", ["measure", "e.vmfb"], write("e.vmfb", b""), E(r"e\.vmfb")),
    Case("measure-truncated", "mlir", ["measure", "t.vmfb"], truncated("host_vmfb", "t.vmfb"), E(r"t\.vmfb")),
    Case("measure-missing", "mlir", ["measure", "nope.vmfb"], None, E(r"nope\.vmfb", r"no such file")),
    Case("measure-dir", "mlir", ["measure", "d.vmfb"], mkdir("d.vmfb"), E(r"d\.vmfb", r"not a file|director|folder")),
    Case("measure-wrong-shape", "mlir", ["measure", "b.vmfb", "--input", "1x8x16x16xf32"], VMFB,
         E(r"1x8x16x16xf32", r"1x8x32x32xf32")),
    Case("measure-wrong-rank", "mlir", ["measure", "b.vmfb", "--input", "8x32x32xf32"], VMFB,
         E(r"8x32x32xf32", r"1x8x32x32xf32")),
    Case("measure-wrong-dtype", "mlir", ["measure", "b.vmfb", "--input", "1x8x32x32xi32"], VMFB,
         E(r"1x8x32x32xi32", r"f32")),
    Case("measure-absurd-shape", "mlir", ["measure", "b.vmfb", "--input", "100000x100000x1000xf32"], VMFB,
         E(r"100000x100000x1000xf32")),
    Case("measure-bad-spec", "mlir", ["measure", "b.vmfb", "--input", "banana"], VMFB, E(r"banana")),
    Case("measure-negative-dim", "mlir", ["measure", "b.vmfb", "--input", "1x-8x32x32xf32"], VMFB,
         E(r"1x-8x32x32xf32")),
    Case("measure-too-many-inputs", "mlir",
         ["measure", "b.vmfb", "--input", "1x8x32x32xf32", "--input", "1x8x32x32xf32"], VMFB, E(r"input", r"1|one")),
    Case("measure-function-missing", "mlir", ["measure", "b.vmfb", "--function", "nope"], VMFB, E(r"nope")),
    Case("measure-repeat-negative", "mlir", ["measure", "b.vmfb", "--repeat", "-1"], VMFB, E(r"repeat", r"-1")),
    Case("measure-seed-negative", "mlir", ["measure", "b.vmfb", "--seed", "-1"], VMFB, E(r"seed", r"-1")),
    Case("measure-cortex-m4-module", "mlir", ["measure", "m4.vmfb"], copy_art("cortex_m4_vmfb", "m4.vmfb"),
         E(r"m4\.vmfb", r"cortex-m|thumb|static|not (built )?for (this|the) host|cannot run")),
    Case("measure-cortex-a53-module", "mlir", ["measure", "a53.vmfb"], copy_art("cortex_a53_vmfb", "a53.vmfb"),
         E(r"a53\.vmfb", r"aarch64|cortex-a|qemu|not (built )?for (this|the) host|cannot run")),
    # ---- schedule-graph
    Case("graph-binary", "mlir", ["schedule-graph", "g.json"], write("g.json", GARBAGE), E(r"g\.json")),
    Case("graph-dir", "mlir", ["schedule-graph", "gdir"], mkdir("gdir"), E(r"gdir", IS_DIR)),
    Case("graph-unreadable", "mlir", ["schedule-graph", "g.json"], chain(graph(G_OK), chmod("g.json", 0)),
         E(r"g\.json", PERM)),
    Case("graph-empty", "mlir", ["schedule-graph", "g.json"], write("g.json", ""), E(r"g\.json", r"json|empty")),
    Case("graph-cycle", "mlir", ["schedule-graph", "g.json"],
         graph({"nodes": [{"name": "a", "bytes": 1}, {"name": "b", "bytes": 1}], "edges": [["a", "b"], ["b", "a"]]}),
         E(r"g\.json", r"cycle")),
    Case("graph-self-loop", "mlir", ["schedule-graph", "g.json"],
         graph({"nodes": [{"name": "a", "bytes": 1}], "edges": [["a", "a"]]}),
         E(r"g\.json", r"cycle|itself|self-loop")),
    Case("graph-unknown-name", "mlir", ["schedule-graph", "g.json"],
         graph({"nodes": [{"name": "a", "bytes": 1}], "edges": [["a", "q"]]}), E(r"g\.json", r"'q'")),
    Case("graph-negative-size", "mlir", ["schedule-graph", "g.json"], graph({"nodes": [{"name": "a", "bytes": -1}]}),
         E(r"g\.json", r"bytes")),
    Case("graph-duplicate-name", "mlir", ["schedule-graph", "g.json"],
         graph({"nodes": [{"name": "a", "bytes": 1}, {"name": "a", "bytes": 2}]}), E(r"g\.json", r"duplicate|twice")),
    Case("graph-time-limit-negative", "mlir", ["schedule-graph", "g.json", "--time-limit", "-1"], graph(G_OK),
         E(r"time-limit", r"-1")),
    Case("graph-time-limit-nan", "mlir", ["schedule-graph", "g.json", "--time-limit", "nan"], graph(G_OK),
         E(r"time-limit", r"nan")),
    Case("graph-memory-limit-banana", "mlir", ["schedule-graph", "g.json", "--memory-limit", "banana"], graph(G_OK),
         E(r"memory-limit", r"banana"), forbid=[r"unrecognized"]),
    Case("graph-memory-limit-negative", "mlir", ["schedule-graph", "g.json", "--memory-limit", "-1"], graph(G_OK),
         E(r"memory-limit", r"-1"), forbid=[r"unrecognized"]),
    # ---- bench-scheduler
    Case("bench-scheduler-ws-abc", "mlir", ["bench-scheduler", "--ws", "abc", "--samples", ""], None,
         E(r"ws", r"abc")),
    Case("bench-scheduler-ws-zero", "mlir", ["bench-scheduler", "--ws", "0", "--samples", ""], None,
         E(r"ws", r"0")),
    Case("bench-scheduler-samples-bogus", "mlir", ["bench-scheduler", "--ws", "", "--samples", "bogus"], None,
         E(r"bogus")),
    Case("bench-scheduler-time-limit-nan", "mlir", ["bench-scheduler", "--ws", "8", "--samples", "", "--time-limit",
                                                    "nan"], None, E(r"time-limit", r"nan")),
    Case("bench-scheduler-out-is-dir", "mlir", ["bench-scheduler", "--ws", "8", "--samples", "", "--out", "odir"],
         mkdir("odir"), E(r"odir", IS_DIR)),
    # ---- bench, bench-targets: checked before the first compile
    Case("bench-missing-model", "mlir", ["bench", "nope.onnx", "--out", "bdir"], None,
         E(r"nope\.onnx", r"no such file", max_seconds=10)),
    Case("bench-targets-unknown-target", "mlir", ["bench-targets", "m.onnx", "--targets", "bogus", "--out", "bt"],
         model(), E(r"bogus", max_seconds=10)),
    # ---- serenity-opt: the phase found and the one expected
    Case("opt-torch-level", "opt", ["t.mlir", "--serenity-schedule"], copy_art("torch_mlir", "t.mlir"),
         E(r"t\.mlir", r"torch", r"flow")),
    Case("opt-linalg-level", "opt", ["l.mlir", "--serenity-schedule"], copy_art("linalg_mlir", "l.mlir"),
         E(r"l\.mlir", r"input|linalg", r"flow")),
    Case("opt-stream-level", "opt", ["s.mlir", "--serenity-schedule"], copy_art("stream_mlir", "s.mlir"),
         E(r"s\.mlir", r"stream", r"flow")),
    Case("opt-stream-favor-debug", "opt", ["s.mlir", "--serenity-schedule"],
         copy_art("stream_favor_debug_mlir", "s.mlir"), E(r"s\.mlir", r"stream", r"flow"), forbid=[r"malformed"]),
    Case("opt-hal-favor-debug", "opt", ["h.mlir", "--serenity-schedule"], copy_art("hal_favor_debug_mlir", "h.mlir"),
         E(r"h\.mlir", r"hal", r"flow"), forbid=[r"malformed"]),
    Case("opt-rewrite-on-flow", "opt", ["f.mlir", "--serenity-rewrite"], copy_art("flow_mlir", "f.mlir"),
         E(r"f\.mlir", r"flow", r"input|linalg")),
    Case("opt-rewrite-on-torch", "opt", ["t.mlir", "--serenity-rewrite"], copy_art("torch_mlir", "t.mlir"),
         E(r"t\.mlir", r"torch", r"input|linalg")),
    Case("opt-missing", "opt", ["nope.mlir", "--serenity-schedule"], None, E(r"nope\.mlir", r"no such file")),
    Case("opt-dir", "opt", ["d.mlir", "--serenity-schedule"], mkdir("d.mlir"),
         E(r"d\.mlir", r"not a file|director|folder")),
    Case("opt-unreadable", "opt", ["f.mlir", "--serenity-schedule"],
         chain(copy_art("flow_mlir", "f.mlir"), chmod("f.mlir", 0)), E(r"f\.mlir", PERM)),
    Case("opt-binary", "opt", ["g.mlir", "--serenity-schedule"], write("g.mlir", GARBAGE), E(r"g\.mlir")),
    Case("opt-empty", "opt", ["e.mlir", "--serenity-schedule"], write("e.mlir", ""),
         E(r"e\.mlir", r"empty|no (public )?function")),
    Case("opt-output-is-dir", "opt", ["f.mlir", "--serenity-schedule", "-o", "odir"],
         chain(copy_art("flow_mlir", "f.mlir"), mkdir("odir")), E(r"odir", IS_DIR)),
    Case("opt-output-read-only", "opt", ["f.mlir", "--serenity-schedule", "-o", "ro/o.mlir"],
         chain(copy_art("flow_mlir", "f.mlir"), RO), E(r"ro/o\.mlir", PERM)),
    Case("opt-time-limit-nan", "opt", ["f.mlir", "--serenity-schedule", "--time-limit", "nan"],
         copy_art("flow_mlir", "f.mlir"), E(r"time-limit", r"nan")),
    Case("opt-two-functions-no-function", "opt", ["two.mlir", "--serenity-schedule"],
         copy_art("two_funcs_flow_mlir", "two.mlir"), E(r"two\.mlir", r"first", r"second")),
    Case("opt-function-missing", "opt", ["f.mlir", "--serenity-schedule", "--function", "nope"],
         copy_art("flow_mlir", "f.mlir"), E(r"f\.mlir", r"nope")),
    Case("opt-unknown-pass", "opt", ["f.mlir", "-p", "bogus"], copy_art("flow_mlir", "f.mlir"), E(r"bogus")),
    # ---- issue 24, 1: standard output on a full device or disk; -o and --report on a full disk
    Case("graph-stdout-dev-full", "mlir", ["schedule-graph", "g.json"], graph(G_OK),
         E(r"standard output", NOSPACE), stdout="/dev/full"),
    Case("targets-stdout-dev-full", "mlir", ["targets"], None, E(r"standard output", NOSPACE), stdout="/dev/full"),
    Case("help-stdout-dev-full", "mlir", ["--help"], None, E(r"standard output", NOSPACE), stdout="/dev/full"),
    Case("opt-stdout-dev-full", "opt", ["f.mlir", "--serenity-schedule"], copy_art("flow_mlir", "f.mlir"),
         E(r"standard output", NOSPACE), stdout="/dev/full"),
    Case("compile-stdout-dev-full", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "r.json", NM], model(),
         E(r"standard output", NOSPACE, before="import", max_seconds=20), stdout="/dev/full"),
    Case("measure-stdout-dev-full", "mlir", ["measure", "b.vmfb"], VMFB,
         E(r"standard output", NOSPACE, max_seconds=20), stdout="/dev/full"),
    Case("compile-stdout-full-disk", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "r.json", NM, "-q"],
         chain(model(), small_fs(fill=-1), write("small/summary.json", "")),
         E(r"standard output", NOSPACE), stdout="{work}/small/summary.json", slow=True),
    Case("output-disk-full", "mlir", [C, "m.onnx", "-o", "small/out.vmfb", "--report", "r.json", NM, "-q"],
         chain(model(), small_fs()), E(r"small/out\.vmfb", NOSPACE), slow=True),
    Case("report-disk-full", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "small/r.json", NM, "-q"],
         chain(model(), small_fs(fill=-1)), E(r"small/r\.json", NOSPACE), slow=True),
    Case("opt-output-disk-full", "opt", ["f.mlir", "--serenity-schedule", "-o", "small/o.mlir"],
         chain(copy_art("flow_mlir", "f.mlir"), small_fs(fill=-1)), E(r"small/o\.mlir", NOSPACE)),
    # ---- issue 24, 3: names too long for the file system, refused before any work
    Case("output-name-too-long", "mlir", [C, "m.onnx", "-o", "x" * 300 + ".vmfb", NM], model(),
         E(r"-o", r"\b305 bytes", r"longer than", before="import", max_seconds=20)),
    Case("report-name-too-long", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "r" * 260 + ".json", NM],
         model(), E(r"--report", r"longer than", before="import", max_seconds=20)),
    Case("keep-temps-name-too-long", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--keep-temps", "k" * 256, NM],
         model(), E(r"--keep-temps", r"longer than", before="import", max_seconds=20)),
    Case("static-library-name-too-long", "mlir",
         [C, "m.onnx", "--target", "cortex-m4", "-o", "s" * 230 + ".vmfb", NM], model(),
         E(r"static library", r"shorter name", before="import", max_seconds=20)),
    Case("opt-output-name-too-long", "opt", ["f.mlir", "--serenity-schedule", "-o", "o" * 300 + ".mlir"],
         copy_art("flow_mlir", "f.mlir"), E(r"-o", r"longer than")),
    # ---- issue 24, 6: graphs that are valid JSON only in part
    Case("graph-nested-200000-deep", "mlir", ["schedule-graph", "g.json"],
         write("g.json", "[" * 200_000 + "]" * 200_000), E(r"g\.json", r"nested too deeply", max_seconds=30)),
    Case("graph-nested-object", "mlir", ["schedule-graph", "g.json"],
         write("g.json", '{"nodes": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001),
         E(r"g\.json", r"nested too deeply", max_seconds=30)),
    Case("graph-huge-integer", "mlir", ["schedule-graph", "g.json"],
         write("g.json", '{"nodes": [{"name": "a", "bytes": ' + "9" * 5000 + "}]}"), E(r"g\.json", r"digits|json")),
    Case("graph-work-limit-negative", "mlir", ["schedule-graph", "g.json", "--work-limit", "-1"], graph(G_OK),
         E(r"work-limit", r"-1")),
    Case("graph-work-limit-banana", "mlir", ["schedule-graph", "g.json", "--work-limit", "banana"], graph(G_OK),
         E(r"work-limit", r"banana")),
    # ---- issue 24, 7: an unusable TMPDIR, refused before any work
    Case("tmpdir-missing", "mlir", [C, "m.onnx", "-o", "out.vmfb", NM], model(),
         E(r"TMPDIR=\S*/work/nope", r"no such folder", before="import", max_seconds=20), env={"TMPDIR": "{work}/nope"}),
    Case("tmpdir-is-a-file", "mlir", [C, "m.onnx", "-o", "out.vmfb", NM], chain(model(), NOTES),
         E(r"TMPDIR=\S*notes\.txt", r"not a folder", before="import", max_seconds=20),
         env={"TMPDIR": "{work}/notes.txt"}),
    Case("tmpdir-read-only", "mlir", [C, "m.onnx", "-o", "out.vmfb", NM], chain(model(), RO),
         E(r"TMPDIR=\S*/ro", PERM, before="import", max_seconds=20), env={"TMPDIR": "{work}/ro"}),
    Case("tmpdir-missing-measure", "mlir", ["measure", "b.vmfb"], VMFB,
         E(r"TMPDIR", r"no such folder", max_seconds=20), env={"TMPDIR": "{work}/nope"}),
    Case("tmpdir-missing-bench-scheduler", "mlir", ["bench-scheduler", "--ws", "8", "--samples", ""], None,
         E(r"TMPDIR", r"no such folder", max_seconds=20), env={"TMPDIR": "{work}/nope"}),
    # ---- issue 24, 8: the error line gives the first cause
    Case("target-unknown-cpu", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "board.toml", NM],
         chain(model(), target_file("board.toml", host_toml(name="board", cpu="foo"))),
         E(r"'foo' is not a recognized processor"), forbid=[r"64-bit code"], slow=True),
    Case("target-unknown-feature", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--target", "board.toml", NM],
         chain(model(), target_file("board.toml", host_toml(name="board", cpu="generic", features="+nosuchfeat"))),
         E(r"nosuchfeat"), slow=True),
    Case("onnx-checker-whole-sentence", "mlir", [C, "unsorted.onnx", "-o", "out.vmfb"],
         onnx_failing_checker("unsorted"), E(r"unsorted\.onnx", r"input 'r' of node.*is not output of any previous")),
    Case("onnx-checker-context", "mlir", [C, "unknown.onnx", "-o", "out.vmfb"], onnx_failing_checker("unknown"),
         E(r"unknown\.onnx", r"NoSuchOp", r"Context: Bad node spec")),
    Case("onnx-recurrent-layer", "mlir", [C, "lstm.onnx", "-o", "out.vmfb"], onnx_lstm,
         E(r"lstm\.onnx", r"LSTM 'encoder/lstm'", r"loop or branch", r"scf\.for"), forbid=[r"internal"]),
    Case("onnx-op-iree-cannot-lower", "mlir", [C, "dft.onnx", "-o", "out.vmfb"], onnx_dft,
         E(r"lowering", r"at the model's DFT node 'frontend/spectrum'"), forbid=[r"internal"]),
    # ---- issue 24, 9: what is not text on standard input
    Case("opt-binary-stdin", "opt", ["-", "--serenity-schedule"], None, E(r"<stdin>", r"not MLIR text"),
         forbid=[r"serenity-mlir", r"internal"], stdin=GARBAGE),
    Case("opt-bytecode-stdin", "opt", ["-", "--serenity-schedule"], None, E(r"<stdin>", r"bytecode"),
         forbid=[r"internal"], stdin=b"ML\xefR" + GARBAGE),
    Case("opt-latin1-stdin", "opt", ["-", "--serenity-schedule"], None, E(r"<stdin>", r"not MLIR text"),
         forbid=[r"internal"], stdin="func.func @caf\xe9() { return }".encode("latin-1")),
    Case("graph-binary-stdin", "mlir", ["schedule-graph", "-"], None, E(r"<stdin>", r"not a text file"),
         forbid=[r"internal"], stdin=GARBAGE),
]

# fmt: on

# Cases that run a compile to the end today (or should fail only late): seconds each.
# fmt: off
SLOW_IDS = {
    "report-is-model", "report-is-output", "output-is-external-data", "report-is-external-data",
    "output-is-target-file", "report-is-target-file", "report-is-static-header", "keep-temps-is-output",
    "keep-temps-dot-overwrites-user-files", "keep-temps-is-file", "keep-temps-under-file", "keep-temps-read-only",
    "output-read-only-dir", "output-new-dir-under-read-only", "output-is-dir", "output-under-file",
    "output-is-char-device", "output-relative-in-unwritable-cwd", "report-is-dir", "report-read-only",
    "report-under-file", "report-dev-full", "iree-flag-bogus", "seed-negative", "time-limit-negative",
    "time-limit-nan", "onnx-function-missing",
}
# fmt: on


def _param(c: Case) -> Any:
    marks = [pytest.mark.slow] if c.slow or c.id in SLOW_IDS else []
    return pytest.param(c, id=c.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fault(case: Case, sandbox: Sandbox, art: Artifacts) -> None:
    if case.setup is not None:
        case.setup(sandbox, art)
    res = sandbox.run(
        case.tool,
        case.args,
        cwd=sandbox.path(case.cwd) if case.cwd else None,
        stdout=case.stdout.replace("{work}", str(sandbox.work)),
        stdin=case.stdin,
        env=case.env,
    )
    problems = fault_problems(sandbox, res, case.expect)
    said = next((ln for ln in reversed(res.lines) if ERROR_LINE.match(ln)), "")
    problems += [f"error line matches /{f}/: {said[:160]!r}" for f in case.forbid if re.search(f, said, re.I)]
    assert_no_problems(res, problems, case.id)


# -- signals -----------------------------------------------------------------------


def WS(sb: Sandbox, art: Artifacts) -> None:
    sb.copy(art.ws_graph(), "ws.json")


INT, TERM, HUP, QUIT = signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT
COMPILE_ARGS = [C, "m.onnx", "-o", "out.vmfb", "--report", "r.json"]
# With PYTHONPROFILEIMPORTTIME=1 Python prints a line as each import ends:
# a trigger that does not depend on the machine's speed. The handlers are
# installed before the commands import their modules, so a signal right
# after one of these lines lands while Python is still importing.
IMPORTTIME = {"PYTHONPROFILEIMPORTTIME": "1"}
# schedule-graph imports serenity_mlir.files when it starts reading the graph.
GRAPH_STARTED = r"^import time:.*\|\s+serenity_mlir\.files$"
# compile imports the driver (and with it ONNX, IREE, numpy) when it starts.
COMPILE_IMPORTING = r"^import time:.*\|\s+serenity_mlir\.pipeline\.importer$"
# A search that runs until it is interrupted (no work limit, 30 s).
WS_ARGS = ["schedule-graph", "ws.json", "--time-limit", "30", "--work-limit", "0"]
# The final compile's step ("[4/7] compiling for host", "[4/7] placing the slab and compiling for host").
FINAL_COMPILE = r"\] (?:.* )?compiling for "


@dataclass
class SignalCase:
    id: str
    args: Sequence[str]
    signals: Sequence[tuple[int, float]]
    trigger: Trigger
    to_group: bool = False
    setup: Setup = model()
    message: Sequence[str] = (r"interrupt|terminat|signal|cancel",)
    env: dict[str, str] | None = None


# fmt: off
SIGNAL_CASES = [
    SignalCase("sigint-lowering", COMPILE_ARGS, [(INT, 0)], Trigger(r"\] lowering", "iree-compile")),
    SignalCase("sigterm-lowering", COMPILE_ARGS, [(TERM, 0)], Trigger(r"\] lowering", "iree-compile")),
    SignalCase("sigint-lowering-process-group", COMPILE_ARGS, [(INT, 0)], Trigger(r"\] lowering", "iree-compile"),
               to_group=True),
    SignalCase("sigint-final-compile", COMPILE_ARGS, [(INT, 0)], Trigger(FINAL_COMPILE, "iree-compile")),
    SignalCase("sigterm-final-compile", COMPILE_ARGS, [(TERM, 0)], Trigger(FINAL_COMPILE, "iree-compile")),
    SignalCase("sigint-measuring", COMPILE_ARGS, [(INT, 0)], Trigger(r"\] measuring", "python", delay=0.2)),
    SignalCase("sigterm-measuring", COMPILE_ARGS, [(TERM, 0)], Trigger(r"\] measuring", "python", delay=0.2)),
    SignalCase("sigint-reference-compile", COMPILE_ARGS, [(INT, 0)],
               Trigger(r"\] compiling the same model", "iree-compile")),
    SignalCase("sigint-twice-lowering", COMPILE_ARGS, [(INT, 0), (INT, 0.15)], Trigger(r"\] lowering", "iree-compile")),
    SignalCase("sigint-twice-measuring", COMPILE_ARGS, [(INT, 0), (INT, 0.15)],
               Trigger(r"\] measuring", "python", delay=0.2)),
    SignalCase("sigint-schedule-graph", WS_ARGS, [(INT, 0)], Trigger(GRAPH_STARTED, delay=0.5), setup=WS,
               env=IMPORTTIME),
    SignalCase("sigterm-schedule-graph", WS_ARGS, [(TERM, 0)], Trigger(GRAPH_STARTED, delay=0.5), setup=WS,
               env=IMPORTTIME),
    # ---- issue 24, 2: SIGHUP (terminal closed, ssh dropped) and SIGQUIT end the run like SIGTERM
    SignalCase("sighup-lowering", COMPILE_ARGS, [(HUP, 0)], Trigger(r"\] lowering", "iree-compile")),
    SignalCase("sigquit-lowering", COMPILE_ARGS, [(QUIT, 0)], Trigger(r"\] lowering", "iree-compile")),
    SignalCase("sighup-lowering-process-group", COMPILE_ARGS, [(HUP, 0)], Trigger(r"\] lowering", "iree-compile"),
               to_group=True),
    SignalCase("sighup-final-compile", COMPILE_ARGS, [(HUP, 0)], Trigger(FINAL_COMPILE, "iree-compile")),
    SignalCase("sighup-measuring", COMPILE_ARGS, [(HUP, 0)], Trigger(r"\] measuring", "python", delay=0.2)),
    SignalCase("sigquit-measuring", COMPILE_ARGS, [(QUIT, 0)], Trigger(r"\] measuring", "python", delay=0.2)),
    SignalCase("sighup-reference-compile", COMPILE_ARGS, [(HUP, 0)],
               Trigger(r"\] compiling the same model", "iree-compile")),
    SignalCase("sighup-then-sigterm", COMPILE_ARGS, [(HUP, 0), (TERM, 0.15)], Trigger(r"\] lowering", "iree-compile")),
    SignalCase("sighup-schedule-graph", WS_ARGS, [(HUP, 0)], Trigger(GRAPH_STARTED, delay=0.5), setup=WS,
               env=IMPORTTIME),
    SignalCase("sigquit-schedule-graph", WS_ARGS, [(QUIT, 0)], Trigger(GRAPH_STARTED, delay=0.5), setup=WS,
               env=IMPORTTIME),
    # ---- issue 24, 2: a signal while Python still imports (seconds on a loaded machine)
    SignalCase("sigint-while-importing-compile", COMPILE_ARGS, [(INT, 0)], Trigger(COMPILE_IMPORTING), env=IMPORTTIME),
    SignalCase("sigterm-while-importing-compile", COMPILE_ARGS, [(TERM, 0)], Trigger(COMPILE_IMPORTING),
               env=IMPORTTIME),
    SignalCase("sighup-while-importing-compile", COMPILE_ARGS, [(HUP, 0)], Trigger(COMPILE_IMPORTING), env=IMPORTTIME),
    SignalCase("sigint-while-starting-schedule-graph", WS_ARGS, [(INT, 0)], Trigger(GRAPH_STARTED), setup=WS,
               env=IMPORTTIME),
]

# fmt: on


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in SIGNAL_CASES])
def test_signal(case: SignalCase, sandbox: Sandbox, art: Artifacts) -> None:
    """The run ends within 2 s of the signal with a message, kills its
    children, and leaves no output, partial output or temp folder."""
    case.setup(sandbox, art)
    res = sandbox.run(
        "mlir", case.args, signals=case.signals, trigger=case.trigger, to_group=case.to_group, env=case.env
    )
    problems = fault_problems(sandbox, res, Expect(message=case.message, after_signal=2.0))
    running = ", ".join(sorted({p.name for p in res.running_at_signal})) or "-"
    assert_no_problems(res, [*problems, *([f"(running at the signal: {running})"] if problems else [])], case.id)


# -- clean either way: a valid (if odd) input either works or fails cleanly ----------


@dataclass
class EitherCase:
    id: str
    args: Sequence[str | bytes]
    setup: Setup
    outputs: Sequence[str]  # what a success must have written (work/-relative)
    must_succeed: bool = False
    cwd: str | None = None
    tool: str = "mlir"


LONG = "x" * 245  # + ".vmfb": 250 characters, 5 short of NAME_MAX


# fmt: off
EITHER_CASES = [
    EitherCase("model-without-graph-inputs", [C, "n.onnx", "-o", "out.vmfb", "--no-verify-outputs"],
               copy_art("onnx_no_inputs", "n.onnx"), ["out.vmfb"]),
    EitherCase("model-dynamic-batch", [C, "dyn.onnx", "-o", "out.vmfb", NM], copy_art("onnx_dynamic", "dyn.onnx"),
               ["out.vmfb"], must_succeed=True),
    EitherCase("model-zero-size-dimension", [C, "z.onnx", "-o", "out.vmfb", "--no-verify-outputs"],
               copy_art("onnx_zero_dim", "z.onnx"), ["out.vmfb"]),
    EitherCase("non-utf8-names-compile", [C, b"m\xff.onnx", "-o", b"o\xff.vmfb", NM], model(b"m\xff.onnx"),
               ["o\\xff.vmfb"], must_succeed=True),
    EitherCase("huge-time-limit", [C, "m.onnx", "-o", "out.vmfb", "--time-limit", "1e300", NM], model(),
               ["out.vmfb"], must_succeed=True),
    EitherCase("unwritable-cwd-absolute-paths", [C, "{work}/ro/m.onnx", "-o", "{work}/out.vmfb", NM], ro_with_model,
               ["out.vmfb"], must_succeed=True, cwd="ro"),
    # ---- issue 24, 3: 250-character names work (the hidden temporary sibling always fits)
    EitherCase("output-name-250", [C, "m.onnx", "-o", LONG + ".vmfb", NM], model(), [LONG + ".vmfb"],
               must_succeed=True),
    EitherCase("report-name-250", [C, "m.onnx", "-o", "out.vmfb", "--report", LONG + ".json", NM], model(),
               ["out.vmfb", LONG + ".json"], must_succeed=True),
    EitherCase("output-name-254-in-folder", [C, "m.onnx", "-o", "d/" + "y" * 249 + ".vmfb", NM], model(),
               ["d", "d/" + "y" * 249 + ".vmfb"], must_succeed=True),
    EitherCase("opt-output-name-250", ["f.mlir", "--serenity-schedule", "-o", LONG + ".mlir"],
               copy_art("flow_mlir", "f.mlir"), [LONG + ".mlir"], must_succeed=True, tool="opt"),
]

# fmt: on


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in EITHER_CASES])
def test_clean_either_way(case: EitherCase, sandbox: Sandbox, art: Artifacts) -> None:
    case.setup(sandbox, art)
    args = [a.replace("{work}", str(sandbox.work)) if isinstance(a, str) else a for a in case.args]
    res = sandbox.run(case.tool, args, cwd=sandbox.path(case.cwd) if case.cwd else None)
    if res.returncode == 0:
        assert_no_problems(res, clean_success_problems(sandbox, res, case.outputs), case.id)
    else:
        problems = fault_problems(sandbox, res, Expect())
        if case.must_succeed:
            problems.insert(0, "a valid input failed")
        assert_no_problems(res, problems, case.id)


# -- concurrent compiles to one -o ----------------------------------------------------


@pytest.mark.slow
def test_concurrent_compiles_measure_their_own_module(sandbox: Sandbox, art: Artifacts) -> None:
    """Two compiles to the same -o (one in program order, one SERENITY's):
    each must measure the module it built, not the other's."""
    sandbox.copy(art.branches(), "m.onnx")
    env = sandbox.env()
    mismatches = []
    for attempt in range(2):
        procs = []
        for sched in ("program", "serenity"):
            argv = [
                *PREFIX,
                str(BIN / "serenity-mlir"),
                C,
                "m.onnx",
                "-o",
                "out.vmfb",
                "--scheduler",
                sched,
                "--no-verify-outputs",
                "-q",
                "--report",
                f"{sched}{attempt}.json",
            ]
            procs.append(
                (
                    sched,
                    subprocess.Popen(
                        argv, cwd=sandbox.work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                    ),
                )
            )
        for sched, p in procs:
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err
            r = json.loads((sandbox.work / f"{sched}{attempt}.json").read_text())
            if r["measured_peak_bytes"] != r["predicted_peak_bytes"]:
                mismatches.append(
                    f"try {attempt + 1}, --scheduler {sched}: predicted {r['predicted_peak_bytes']:,}, "
                    f"measured {r['measured_peak_bytes']:,}"
                )
    assert not mismatches, "measured another run's module: " + "; ".join(mismatches)
    assert not os.listdir(sandbox.tmp), f"left in TMPDIR: {os.listdir(sandbox.tmp)}"


# -- schedule-graph --memory-limit (issue 15: expected to exist) -----------------------


def _valid_order(g: dict[str, Any], order: list[str]) -> bool:
    pos = {n: i for i, n in enumerate(order)}
    names = [n["name"] for n in g["nodes"]]
    return sorted(order) == sorted(names) and all(pos[a] < pos[b] for a, b in g["edges"])


def test_memory_limit_flag_documented() -> None:
    r = subprocess.run([str(BIN / "serenity-mlir"), "schedule-graph", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--memory-limit" in r.stdout, "schedule-graph has no --memory-limit"


def test_memory_limit_generous_keeps_optimal(sandbox: Sandbox) -> None:
    g = wide_graph(24, seed=3, width=6)
    sandbox.write("g.json", json.dumps(g))
    res = sandbox.run("mlir", ["schedule-graph", "g.json", "--memory-limit", "1G"])
    assert res.returncode == 0, res.describe()
    out = json.loads(res.stdout)
    assert _valid_order(g, out["order"]) and out["optimal"] is True


@pytest.mark.slow
def test_memory_limit_honoured(sandbox: Sandbox, art: Artifacts) -> None:
    """WS(300): unbounded, the exact search grows past 100 MB within 8 s here
    and runs to its 60 s time limit. With --memory-limit 40M it must stop at
    the limit (long before the time limit) with a valid order marked
    optimal: false, and the process's peak RSS must grow by no more than the
    limit (5% slack) over the same command without a search (``--scheduler
    program``: the interpreter, the imports, the graph and its bounds, about
    100 MB here, which no limit on the search can go below): the limit is
    on the search's stored state (issue 15's contract)."""
    g = json.loads(art.ws_graph().read_text())
    sandbox.write("ws.json", json.dumps(g))
    # No work limit: the memory limit, not the work budget, must end the search.
    argv = [*PREFIX, str(BIN / "serenity-mlir"), "schedule-graph", "ws.json", "--time-limit", "60", "--work-limit", "0"]
    base = subprocess.Popen([*argv, "--scheduler", "program"], cwd=sandbox.work, env=sandbox.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _, base_status, base_usage = os.wait4(base.pid, 0)
    assert os.waitstatus_to_exitcode(base_status) == 0, "schedule-graph --scheduler program failed"
    base_mib = base_usage.ru_maxrss / 1024
    argv += ["--memory-limit", "40M"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=sandbox.work, env=sandbox.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    t_out = threading.Thread(target=lambda: out_chunks.append(p.stdout.read()))  # type: ignore[union-attr]
    t_err = threading.Thread(target=lambda: err_chunks.append(p.stderr.read()))  # type: ignore[union-attr]
    t_out.start()
    t_err.start()
    killer = threading.Timer(40, lambda: p.kill())
    killer.start()
    # wait4 gives this process's own peak RSS (setpriv execs: same pid).
    _, status, usage = os.wait4(p.pid, 0)
    killer.cancel()
    seconds = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    t_out.join()
    t_err.join()
    stderr = b"".join(err_chunks).decode(errors="replace")
    assert p.returncode == 0, f"exit {p.returncode} after {seconds:.1f} s: {stderr.strip()[-400:]}"
    out = json.loads(b"".join(out_chunks))
    assert _valid_order(g, out["order"]), "not a valid order"
    assert out["optimal"] is False
    assert out["stopped_by"] == "memory-limit", out["stopped_by"]
    peak_mib = usage.ru_maxrss / 1024
    grown = peak_mib - base_mib
    assert grown <= 40 * 1.05, f"peak RSS {peak_mib:.0f} MiB: {grown:.0f} MiB over the search-free run (limit 40M)"
    assert seconds < 30, f"took {seconds:.0f} s: the memory limit did not end the search"


# -- issue 24, 1: a closed standard output (`| head -0`) ends the run quietly ------------


@dataclass
class QuietCase:
    id: str
    tool: str
    args: Sequence[str]
    setup: Setup | None = None


# fmt: off
QUIET_CASES = [
    QuietCase("graph-stdout-closed", "mlir", ["schedule-graph", "g.json"], graph(G_OK)),
    QuietCase("targets-stdout-closed", "mlir", ["targets"]),
    QuietCase("help-stdout-closed", "mlir", ["--help"]),
    QuietCase("compile-help-stdout-closed", "mlir", [C, "--help"]),
    QuietCase("opt-stdout-closed", "opt", ["f.mlir", "--serenity-schedule"], copy_art("flow_mlir", "f.mlir")),
    QuietCase("compile-stdout-closed", "mlir", [C, "m.onnx", "-o", "out.vmfb", "--report", "r.json", NM, "-q"],
              model()),
    QuietCase("measure-stdout-closed", "mlir", ["measure", "b.vmfb"], VMFB),
]
# fmt: on


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in QUIET_CASES])
def test_closed_stdout_is_a_quiet_end(case: QuietCase, sandbox: Sandbox, art: Artifacts) -> None:
    """Like the usual Unix tools: no message, no traceback, exit 141
    (128 + SIGPIPE); and, as for any failed output, nothing written."""
    if case.setup is not None:
        case.setup(sandbox, art)
    res = sandbox.run(case.tool, case.args, stdout="closed", timeout=60)
    problems = []
    if res.returncode != 141:
        problems.append(f"exit {res.returncode}, not 141")
    if res.lines:
        problems.append(f"not quiet: {res.lines[-1][:160]!r}")
    problems += clean_success_problems(sandbox, res, [])
    assert_no_problems(res, problems, case.id)


# -- issue 24, 6: the time limit bounds the call; the output does not depend on the load ---


def _schedule_graph(sandbox: Sandbox, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    argv = [*PREFIX, str(BIN / "serenity-mlir"), "schedule-graph", *args]
    r = subprocess.run(argv, cwd=sandbox.work, env=sandbox.env(env), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-500:]
    out: dict[str, Any] = json.loads(r.stdout)
    return out


@pytest.mark.slow
def test_same_order_alone_and_under_load(sandbox: Sandbox, art: Artifacts) -> None:
    """WS(300) to a work limit the search reaches (it stops there, not at
    the clock): the same order, peak, state count and lower bound when the
    machine is quiet and when it runs four CPU-bound processes beside it.
    The limit lets the threshold search run past the bounds and the beam
    search (about 107,000 sets, 2 s on a quiet machine here)."""
    sandbox.copy(art.ws_graph(), "ws.json")
    args = ("ws.json", "--work-limit", "400000", "--time-limit", "600")
    alone = _schedule_graph(sandbox, *args)
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdout=subprocess.DEVNULL) for _ in range(4)
    ]
    try:
        loaded = _schedule_graph(sandbox, *args)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert alone["stopped_by"] == "work-limit" and not alone["optimal"]
    assert alone["states"] > 50_000, "stopped before the threshold search ran"
    same = ("order", "peak_bytes", "states", "lower_bound_bytes", "stopped_by")
    assert {k: loaded[k] for k in same} == {k: alone[k] for k in same}
    assert loaded["seconds"] > 0 and alone["seconds"] > 0


@pytest.mark.slow
def test_time_limit_bounds_the_whole_call(sandbox: Sandbox, art: Artifacts) -> None:
    """With no work limit, --time-limit 3 ends the search within 10% (or a
    second) of the limit, and the output says the clock ended it."""
    sandbox.copy(art.ws_graph(), "ws.json")
    out = _schedule_graph(sandbox, "ws.json", "--work-limit", "0", "--time-limit", "3")
    assert out["stopped_by"] == "time-limit" and not out["optimal"]
    assert out["seconds"] <= 3 + 1.0, f"{out['seconds']:.1f} s for a 3 s limit"


@pytest.mark.slow
def test_long_chain_through_the_cli(sandbox: Sandbox) -> None:
    """A 100,000-node chain: linear preprocessing, proven optimal."""
    n = 100_000
    nodes = [{"name": f"n{i}", "bytes": 4} for i in range(n)]
    edges = [[f"n{i}", f"n{i + 1}"] for i in range(n - 1)]
    sandbox.write("chain.json", json.dumps({"nodes": nodes, "edges": edges, "outputs": [f"n{n - 1}"]}))
    t0 = time.monotonic()
    out = _schedule_graph(sandbox, "chain.json")
    seconds = time.monotonic() - t0
    assert out["optimal"] and out["peak_bytes"] == 8 and out["stopped_by"] is None
    assert seconds < 90, f"took {seconds:.0f} s"
