"""``serenity-mlir bench-tflm``: side by side with TFLite Micro, float32 and int8.

For every ``.tflite`` model (default: ``samples/tflm/*.tflite``, Keras
applications converted by TensorFlow's own converter, dynamic batch
included), on a Cortex-M target (default ``cortex-m7``):

- TFLite Micro's arena as its recording allocator prints it: the head (every
  tensor, the input and the output included) and the tail (persistent
  structures) apart;
- our RAM counted alike: the compile report's ``ram_bytes`` (the arena,
  results included, plus the input) and the whole compile's seconds;
- IREE's default build of the same imported model for the same target, and
  IREE with its best memory flags (``backend.flags.MEMORY_FLAGS``), counted
  the same way (arena + input); and our build without those flags (our
  defaults add them to TFLite models: ``--memory-flags auto``);
- our outputs against TFLM's: the host build of the same compile run on
  TFLM's own inputs; int8 equal or within 1 LSB, float32 within 1e-5
  (normwise relative error).
- ours with ``--arena-entry`` (the input and the results inside the arena,
  the input's bytes reused once read, as TFLM reuses them) and with
  ``--arena-entry --patches auto`` (what the patch stage chose, or why
  nothing); the host arena-entry build run as a caller runs it, its outputs
  against our plain host build's on the same seeded inputs, bit for bit;
- compile seconds: ours against IREE's own whole default build of the same
  imported model for the target (``compile_over_iree``).

Without ``--flag-study`` the study of an earlier DIR/tflm.json is kept per
model (IREE alone, our code does not change it), marked as carried.

Writes DIR/tflm.json and DIR/tflm.md; prints the Markdown table on stdout and
one progress line per model on stderr. A model that fails is recorded with
its error line and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from serenity_mlir.backend.flags import CANDIDATE_FLAGS, MEMORY_FLAGS, iree_build
from serenity_mlir.bench.stats import geomean
from serenity_mlir.errors import InputError, SerenityError
from serenity_mlir.files import atomic_write
from serenity_mlir.ir.tools import iree_compile
from serenity_mlir.pipeline import driver
from serenity_mlir.pipeline.importer import import_model
from serenity_mlir.pipeline.paths import check_out_folder
from serenity_mlir.runtime.modules import entry_function
from serenity_mlir.runtime.tflm import require_tflm, run_tflm
from serenity_mlir.settings import CompileSettings, MeasureSettings, PatchSettings
from serenity_mlir.targets import Target, get_target

TFLM_DIR = Path(__file__).resolve().parents[2] / "samples" / "tflm"
FLOAT_RTOL = 1e-5
INT_LSB = 1


# The compile job's defaults, built without a run (a Cortex-M build does not
# run here; the host builds are run apart, beside TFLM).
_NO_RUN = CompileSettings(quiet=True, measure=MeasureSettings(enabled=False, verify_outputs=False))


def _compile(
    model: Path,
    out: Path,
    target: str,
    flags: tuple[str, ...] = (),
    memory_flags: str = "auto",
    arena_entry: bool = False,
    patches: str = "off",
) -> tuple[dict[str, Any], float]:
    """The compile job with its defaults (no measurement: a Cortex-M build
    does not run here), plus ``flags``, a ``--memory-flags`` mode, and
    ``--arena-entry`` / ``--patches`` when asked; returns the report and the
    wall seconds."""
    t0 = time.perf_counter()
    job = replace(_NO_RUN, target=target, iree_flags=tuple(flags), memory_flags=memory_flags)
    job = replace(job, arena_entry=arena_entry, patches=PatchSettings(mode=patches))
    r = driver.compile_model(model, out, job)
    return r, time.perf_counter() - t0


_DISPATCH_I32 = re.compile(r"tensor<((?:\d+x)*)i32>")


def i32_intermediates(src: Path, flow: Path, target: Target) -> dict[str, int]:
    """The int32 tensors IREE's dispatches write between kernels (an int8
    model's accumulators before their rescale, when not fused), from IREE's
    own flow-phase lowering: how many, the largest and their total bytes."""
    iree_compile([str(src), "--compile-to=flow", *target.flag_list(), "-o", str(flow)], what="lowering to flow")
    sizes = []
    for line in flow.read_text().splitlines():
        if "flow.dispatch @" not in line or "->" not in line:
            continue
        for dims in _DISPATCH_I32.findall(line.split("->", 1)[1]):
            sizes.append(4 * math.prod(int(x) for x in dims.split("x") if x))
    return {
        "i32_results": len(sizes),
        "i32_largest_bytes": max(sizes, default=0),
        "i32_total_bytes": sum(sizes),
    }


def run_host_module(vmfb: Path, inputs: list[Any]) -> list[Any]:
    """Runs a host build on ``inputs`` in process (local-sync); returns the outputs."""
    import iree.runtime as rt
    import numpy as np

    config = rt.Config("local-sync")
    ctx = rt.SystemContext(config=config)
    vm = rt.VmModule.copy_buffer(ctx.instance, vmfb.read_bytes())
    ctx.add_vm_module(vm)
    fn = getattr(ctx.modules, vm.name)[entry_function(vmfb, list(vm.function_names), None)]
    res = fn(*inputs)
    res = list(res) if isinstance(res, list | tuple) else [res]
    return [np.asarray(r.to_host()) for r in res]


def compare_outputs(ours: list[Any], theirs: list[Any]) -> dict[str, Any]:
    """int8 (any integer): the largest difference in LSB; float: the normwise
    relative error, per output, the worst kept."""
    import numpy as np

    if len(ours) != len(theirs):
        return {"outputs_match": False, "outputs_note": f"{len(ours)} outputs vs TFLM's {len(theirs)}"}
    worst_lsb, worst_rel, differing = 0, 0.0, 0
    integer = all(np.asarray(t).dtype.kind in "iu" for t in theirs)
    for a, b in zip(ours, theirs, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            a = a.reshape(b.shape)
        if integer:
            d = np.abs(a.astype(np.int64) - b.astype(np.int64))
            worst_lsb = max(worst_lsb, int(d.max()))
            differing += int((d != 0).sum())
        else:
            den = float(np.linalg.norm(b.astype(np.float64))) or 1.0
            worst_rel = max(worst_rel, float(np.linalg.norm(a.astype(np.float64) - b)) / den)
    if integer:
        return {
            "outputs_max_lsb": worst_lsb,
            "outputs_differing": differing,
            "outputs_match": worst_lsb <= INT_LSB,
        }
    return {"outputs_max_rel_error": worst_rel, "outputs_match": worst_rel <= FLOAT_RTOL}


def bench_model(model: Path, work: Path, target: str, flags: tuple[str, ...], study: bool = False) -> dict[str, Any]:
    t = get_target(target)
    row: dict[str, Any] = {"model": model.name.removesuffix(".tflite"), "target": target}
    tf = run_tflm(model, seed=0)
    row["tflm_head_bytes"] = tf.arena_head_bytes
    row["tflm_tail_bytes"] = tf.arena_tail_bytes
    input_bytes = sum(int(x.nbytes) for x in tf.inputs)
    row["input_bytes"] = input_bytes
    row["output_bytes"] = sum(int(x.nbytes) for x in tf.outputs)
    # Ours, counted as TFLM's head: arena (results included) + the input.
    ours, secs = _compile(model, work / "ours.vmfb", target)
    row["ram_bytes"] = ours["ram_bytes"]
    row["iree_arena_bytes"] = ours["iree_arena_bytes"]
    row["compile_seconds"] = round(secs, 1)
    row["memory_flags"] = ours["memory_flags"]  # what --memory-flags auto chose
    # Ours with the bench's memory flags (the defaults' build when auto chose
    # them), and without any.
    if tuple(ours["memory_flags"]) != flags:
        ours, _ = _compile(model, work / "ours_flags.vmfb", target, flags, memory_flags="off")
    row["ram_bytes_memory_flags"] = ours["ram_bytes"]
    without, _ = _compile(model, work / "ours_off.vmfb", target, memory_flags="off")
    row["ram_bytes_no_memory_flags"] = without["ram_bytes"]
    row.update(arena_entry_fields(model, work, target, tf.arena_head_bytes))
    # IREE's own builds of the same imported model.
    imported = import_model(model, quiet=True)
    row["input_shapes"] = imported.input_shapes
    src = work / ("model.mlirbc" if isinstance(imported.mlir, bytes) else "model.mlir")
    src.write_bytes(imported.mlir if isinstance(imported.mlir, bytes) else imported.mlir.encode())
    d = iree_build(src, None, t)
    row["iree_stream_seconds"] = round(d.seconds, 1)  # IREE up to the stream phase (the arena)
    # IREE's whole default build for the target, code generation included:
    # what our compile's seconds compare with.
    row["iree_compile_seconds"] = round(iree_build(src, work / "iree_target.vmfb", t).seconds, 1)
    row["compile_over_iree"] = round(secs / row["iree_compile_seconds"], 2) if row["iree_compile_seconds"] else None
    row["iree_default_ram_bytes"] = None if d.arena_bytes is None else d.arena_bytes + input_bytes
    row.update(i32_intermediates(src, work / "model.flow.mlir", t))
    f = iree_build(src, None, t, flags)
    row["iree_memory_flags_ram_bytes"] = None if f.arena_bytes is None else f.arena_bytes + input_bytes
    if study:
        row["flag_study"] = {flag: iree_build(src, None, t, (flag,)).arena_bytes for flag in CANDIDATE_FLAGS}
        row["flag_study"]["default"] = d.arena_bytes
    # Outputs: our host build of the same model (its defaults) on TFLM's inputs.
    _compile(model, work / "host.vmfb", "host")
    outs = run_host_module(work / "host.vmfb", list(tf.inputs))
    row.update(compare_outputs(outs, list(tf.outputs)))
    # Do the memory flags keep the outputs bit for bit? Ours, and IREE's default.
    host = get_target("host")
    # (the defaults' build is the one with the flags when auto chose them)
    host_flags = work / "host.vmfb"
    if tuple(row["memory_flags"]) != flags:
        host_flags = work / "host_flags.vmfb"
        _compile(model, host_flags, "host", flags, memory_flags="off")
    _compile(model, work / "host_off.vmfb", "host", memory_flags="off")
    row["memory_flags_bit_identical_ours"] = _same(
        run_host_module(host_flags, list(tf.inputs)),
        run_host_module(work / "host_off.vmfb", list(tf.inputs)),
    )
    iree_build(src, work / "iree_host.vmfb", host)
    iree_build(src, work / "iree_host_flags.vmfb", host, flags)
    iree_outs = run_host_module(work / "iree_host.vmfb", list(tf.inputs))
    row["memory_flags_bit_identical_iree"] = _same(
        iree_outs, run_host_module(work / "iree_host_flags.vmfb", list(tf.inputs))
    )
    row["ours_bit_identical_to_iree_default"] = _same(outs, iree_outs)
    row.update(arena_outputs_fields(model, work))
    if row["ram_bytes"]:
        row["tflm_over_ours"] = round(tf.arena_head_bytes / row["ram_bytes"], 3)
    return row


def arena_entry_fields(model: Path, work: Path, target: str, tflm_head: int) -> dict[str, Any]:
    """Ours with ``--arena-entry`` (the input and the results inside the
    arena, the input's bytes reused once read, as TFLM reuses them), and
    with ``--arena-entry --patches auto``; our defaults otherwise. A build
    that fails is recorded with its error line."""
    out: dict[str, Any] = {}
    r, secs = _compile(model, work / "arena.vmfb", target, arena_entry=True)
    out["ram_bytes_arena_entry"] = r["ram_bytes"]
    out["arena_lower_bound_bytes"] = (r.get("arena_entry") or {}).get("lower_bound_bytes")
    out["compile_seconds_arena_entry"] = round(secs, 1)
    if r["ram_bytes"]:
        out["tflm_over_ours_arena_entry"] = round(tflm_head / r["ram_bytes"], 3)
    try:
        p, secs = _compile(model, work / "arena_patches.vmfb", target, arena_entry=True, patches="auto")
    except SerenityError as e:
        out["arena_entry_patches_error"] = str(e).splitlines()[0]
        return out
    out["ram_bytes_arena_entry_patches"] = p["ram_bytes"]
    out["compile_seconds_arena_entry_patches"] = round(secs, 1)
    out["patches"] = p.get("patches")
    out["patch_mac_overhead"] = p.get("patch_mac_overhead")
    if p["ram_bytes"]:
        out["tflm_over_ours_arena_entry_patches"] = round(tflm_head / p["ram_bytes"], 3)
    return out


def arena_outputs_fields(model: Path, work: Path) -> dict[str, Any]:
    """The host build with ``--arena-entry``, run as a caller runs it
    (runtime/arena.py, seeded inputs written into the arena), against our
    plain host build (``work/host.vmfb``) on the same inputs: bit for bit."""
    import numpy as np

    from serenity_mlir.ir.tensors import TensorSpec
    from serenity_mlir.runtime.arena import run_arena
    from serenity_mlir.runtime.modules import random_inputs

    r, _ = _compile(model, work / "host_arena.vmfb", "host", arena_entry=True)
    layout = r["arena_entry"]
    saved = work / "host_arena_outputs.npz"
    run_arena(work / "host_arena.vmfb", seed=0, save_outputs=saved)
    with np.load(saved) as z:
        arena_outs = [z[f"arr_{i}"] for i in range(len(z.files))]
    specs = [TensorSpec.parse(i["type"]) for i in layout["inputs"]]
    plain = run_host_module(work / "host.vmfb", random_inputs(specs, 0))
    return {"arena_entry_bit_identical": _same(arena_outs, plain)}


def _same(a: list[Any], b: list[Any]) -> bool:
    import numpy as np

    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _n(v: int | None) -> str:
    return "n/a" if v is None else f"{v:,}"


def _outputs(r: dict[str, Any]) -> str:
    if "error" in r:
        return "n/a"
    if "outputs_max_lsb" in r:
        m = r["outputs_max_lsb"]
        if m == 0:
            return "equal"
        return f"{'within' if m <= INT_LSB else 'OFF by'} {m} LSB ({r['outputs_differing']} values)"
    if "outputs_max_rel_error" in r:
        return f"{'match' if r['outputs_match'] else 'DIFFER'} ({r['outputs_max_rel_error']:.1e})"
    return r.get("outputs_note", "n/a")


def _ratio(a: int | None, b: int | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def markdown_table(rows: list[dict[str, Any]], flags: tuple[str, ...]) -> str:
    lines = [
        "| model | TFLM head | TFLM tail | ours (`ram_bytes`) | TFLM / ours | IREE default | IREE + memory flags "
        "| ours without memory flags | input | outputs vs TFLM | compile s |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | error: {r['error']} |" + " |" * 9)
            continue
        lines.append(
            f"| {r['model']} | {_n(r['tflm_head_bytes'])} | {_n(r['tflm_tail_bytes'])} | {_n(r['ram_bytes'])} "
            f"| {_ratio(r['tflm_head_bytes'], r['ram_bytes'])} | {_n(r['iree_default_ram_bytes'])} "
            f"| {_n(r['iree_memory_flags_ram_bytes'])} | {_n(r.get('ram_bytes_no_memory_flags'))} "
            f"| {_n(r['input_bytes'])} | {_outputs(r)} | {r['compile_seconds']} |"
        )
    ok = [r for r in rows if r.get("tflm_over_ours")]
    if ok:
        geo = geomean(r["tflm_over_ours"] for r in ok) or 0.0
        at_most = sum(1 for r in ok if r["ram_bytes"] <= r["tflm_head_bytes"])
        off = [r for r in ok if r.get("ram_bytes_no_memory_flags")]
        geo_off = geomean(r["tflm_head_bytes"] / r["ram_bytes_no_memory_flags"] for r in off) or 0.0
        at_most_off = sum(1 for r in off if r["ram_bytes_no_memory_flags"] <= r["tflm_head_bytes"])
        # Our defaults against both IREE baselines (a baseline IREE cannot build does not count).
        below = sum(1 for r in ok if all(b is None or r["ram_bytes"] <= b for b in _baselines(r)))
        lines += [
            "",
            f"Geomean TFLM head / ours: {geo:.3f}x over {len(ok)} models, ours <= TFLM's head on {at_most} of "
            f"{len(ok)}; without the memory flags {geo_off:.3f}x, {at_most_off} of {len(off)}. Ours <= IREE's "
            f"default and <= IREE with the memory flags on {below} of {len(ok)}. Bytes; target "
            f"{rows[0]['target']}; ours = the compile job's defaults (--memory-flags auto: on for these TFLite "
            f"models); memory flags: {' '.join(flags)}.",
        ]
    return "\n".join(lines)


def _baselines(r: dict[str, Any]) -> tuple[int | None, int | None]:
    """IREE's default build and IREE with the memory flags, counted as ours."""
    return r["iree_default_ram_bytes"], r["iree_memory_flags_ram_bytes"]


def flag_study_table(rows: list[dict[str, Any]]) -> str:
    studied = [r for r in rows if "flag_study" in r]
    if not studied:
        return ""
    lines = [
        "| model | IREE default arena | " + " | ".join(f"`{f.removeprefix('--')}`" for f in CANDIDATE_FLAGS) + " |",
        "|" + "---|" * (2 + len(CANDIDATE_FLAGS)),
    ]
    for r in studied:
        s = r["flag_study"]
        lines.append(f"| {r['model']} | {_n(s['default'])} | " + " | ".join(_n(s[f]) for f in CANDIDATE_FLAGS) + " |")
    return "\n".join(lines)


def gap_table(rows: list[dict[str, Any]]) -> str:
    """What stands between ours and TFLM's head, per model, in bytes: the
    padded copies the memory flags remove (IREE's default and ours), the
    input and the results IREE keeps for the whole call (TFLM reuses the
    input's memory once it is read), the int32 tensors between dispatches,
    and what is left once the input is taken out (a bound: the input may be
    dead at the peak in TFLM's plan, or alive)."""
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return ""
    lines = [
        "| model | padding (IREE default) | padding (ours) | ours + flags - TFLM head | input | results "
        "| ours + flags - input - TFLM head | int32 results between dispatches (largest) |",
        "|" + "---|" * 8,
    ]
    for r in ok:
        pad_iree = (r["iree_default_ram_bytes"] or 0) - (r["iree_memory_flags_ram_bytes"] or 0)
        pad_ours = r.get("ram_bytes_no_memory_flags", r["ram_bytes"]) - r["ram_bytes_memory_flags"]
        over = r["ram_bytes_memory_flags"] - r["tflm_head_bytes"]
        lines.append(
            f"| {r['model']} | {pad_iree:,} | {pad_ours:,} | {over:,} | {r['input_bytes']:,} "
            f"| {r['output_bytes']:,} | {over - r['input_bytes']:,} "
            f"| {r['i32_results']} ({r['i32_largest_bytes']:,}) |"
        )
    return "\n".join(lines)


def _patches(r: dict[str, Any]) -> str:
    """What ``--patches auto`` did with the arena entry: the grid, or none."""
    if "arena_entry_patches_error" in r:
        return "error"
    p = r.get("patches")
    if not p:
        return "n/a"
    if p.get("grid"):
        return f"{p['grid']} at split {p['split']} (+{r.get('patch_mac_overhead', 0):.0%} MACs)"
    return "none" if p.get("candidates") else "none (no stage)"


def _secs(v: float | None) -> str:
    return "n/a" if v is None else f"{v}"


def arena_table(rows: list[dict[str, Any]]) -> str:
    """Ours with ``--arena-entry`` and with ``--arena-entry --patches auto``
    beside TFLM's head, the arena build's host outputs against our plain
    host build, and compile seconds against IREE's own build; then the
    summary: geomeans and counts at most TFLM's head, compile seconds ours
    over IREE alone for float32 and int8."""
    ok = [r for r in rows if "error" not in r and r.get("ram_bytes_arena_entry")]
    if not ok:
        return ""
    lines = [
        "| model | TFLM head | ours (`ram_bytes`) | ours `--arena-entry` | TFLM / ours (arena) "
        "| ours `--arena-entry --patches auto` | TFLM / ours (arena + patches) | patches chosen "
        "| arena outputs vs plain build | compile s: ours / arena / IREE alone | ours / IREE |",
        "|" + "---|" * 11,
    ]
    for r in ok:
        bit = r.get("arena_entry_bit_identical")
        bits = "n/a" if bit is None else ("bit-identical" if bit else "DIFFER")
        lines.append(
            f"| {r['model']} | {_n(r['tflm_head_bytes'])} | {_n(r['ram_bytes'])} | {_n(r['ram_bytes_arena_entry'])} "
            f"| {_ratio(r['tflm_head_bytes'], r['ram_bytes_arena_entry'])} "
            f"| {_n(r.get('ram_bytes_arena_entry_patches'))} "
            f"| {_ratio(r['tflm_head_bytes'], r.get('ram_bytes_arena_entry_patches'))} | {_patches(r)} | {bits} "
            f"| {_secs(r.get('compile_seconds'))} / {_secs(r.get('compile_seconds_arena_entry'))} "
            f"/ {_secs(r.get('iree_compile_seconds'))} "
            f"| {'n/a' if r.get('compile_over_iree') is None else format(r['compile_over_iree'], '.2f') + 'x'} |"
        )
    lines += ["", arena_summary(ok)]
    return "\n".join(lines)


def arena_summary(rows: list[dict[str, Any]]) -> str:
    """One paragraph: ours with the arena entry, and with patches, against
    TFLM's head (geomean, how many at most it), and the compile seconds."""
    parts = []
    for key, what in (
        ("ram_bytes_arena_entry", "With `--arena-entry`"),
        ("ram_bytes_arena_entry_patches", "With `--arena-entry --patches auto`"),
    ):
        have = [r for r in rows if r.get(key)]
        if not have:
            parts.append(f"{what}: no model built.")
            continue
        geo = geomean([r["tflm_head_bytes"] / r[key] for r in have]) or 0.0
        at_most = sum(1 for r in have if r[key] <= r["tflm_head_bytes"])
        parts.append(
            f"{what}: geomean TFLM head / ours {geo:.3f}x over {len(have)} models, "
            f"ours <= TFLM's head on {at_most} of {len(have)}."
        )
    patched = [r for r in rows if (r.get("patches") or {}).get("grid")]
    tried = [r for r in rows if r.get("patches") or "arena_entry_patches_error" in r]
    if tried:
        stageless = sum(1 for r in tried if r.get("patches") and not r["patches"].get("candidates"))
        failed = sum(1 for r in tried if "arena_entry_patches_error" in r)
        why = [
            f"no patchable stage at the input on {stageless}" if stageless else "",
            f"nothing costed below the unpatched graph on {len(tried) - len(patched) - stageless - failed}"
            if len(tried) - len(patched) - stageless - failed
            else "",
            f"the build failed on {failed}" if failed else "",
        ]
        reasons = "; ".join(w for w in why if w)
        parts.append(f"Patches applied on {len(patched)} of {len(tried)}" + (f" ({reasons})." if reasons else "."))
    bits = [r["arena_entry_bit_identical"] for r in rows if r.get("arena_entry_bit_identical") is not None]
    if bits:
        parts.append(f"Host arena-entry outputs bit-identical with our plain host build on {sum(bits)} of {len(bits)}.")
    timed = []
    for kind in ("f32", "int8"):
        rs = [r for r in rows if r["model"].endswith("." + kind) and r.get("compile_over_iree")]
        if rs:
            ours = sum(r["compile_seconds"] for r in rs)
            iree = sum(r["iree_compile_seconds"] for r in rs)
            geo = geomean([r["compile_over_iree"] for r in rs]) or 0.0
            timed.append(f"{kind} {ours:.1f} s vs {iree:.1f} s over {len(rs)} models (geomean {geo:.2f}x)")
    if timed:
        parts.append(
            "Compile seconds, ours (defaults) vs IREE's own default build for the target alone: "
            + "; ".join(timed)
            + " (wall time, one run each, on a shared machine)."
        )
    return " ".join(parts)


CARRIED = (
    "The flag study (the last table: IREE's default build with each candidate flag alone, read at the stream "
    "phase; no code of ours in it) is carried from the previous `bench-tflm --flag-study` run with the same "
    "IREE and the same files; the rest was measured in this run."
)


def report_text(rows: list[dict[str, Any]]) -> str:
    """bench/tflm.md: the table, ours with the arena entry, what stands
    between ours and TFLM, the flag study (and where it came from)."""
    parts = [markdown_table(rows, MEMORY_FLAGS), arena_table(rows), gap_table(rows), flag_study_table(rows)]
    if any(r.get("flag_study_from_previous_run") for r in rows):
        parts.append(CARRIED)
    return "\n\n".join(p for p in parts if p) + "\n"


def check_tflite_files(models: list[Path]) -> None:
    """Each model an existing .tflite flatbuffer (its 'TFL3' identifier), or
    an InputError naming it, before any work."""
    for m in models:
        if not m.exists():
            raise InputError(f"{m}: no such file")
        if not m.is_file():
            raise InputError(f"{m}: not a file")
        if m.suffix.lower() != ".tflite":
            raise InputError(f"{m}: bench-tflm takes .tflite models (TFLite Micro runs them), not {m.suffix or 'this'}")
        try:
            with open(m, "rb") as f:
                head = f.read(8)
        except OSError as e:
            raise InputError(f"{m}: cannot be read ({e.strerror})") from None
        if head[4:8] != b"TFL3":
            raise InputError(f"{m}: not a TFLite flatbuffer (no 'TFL3' identifier)")


def carry_flag_study(row: dict[str, Any], previous: dict[str, dict[str, Any]]) -> None:
    """A run without ``--flag-study`` keeps the study the previous run of
    the same model recorded (IREE alone: our code does not change it),
    marked as carried."""
    old = previous.get(row["model"])
    if "flag_study" in row or not old or "flag_study" not in old:
        return
    row["flag_study"] = old["flag_study"]
    row["flag_study_from_previous_run"] = True


def previous_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The rows of an earlier tflm.json by model ({} when there is none)."""
    try:
        return {r["model"]: r for r in json.loads(path.read_text())["rows"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="serenity-mlir bench-tflm", description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=Path, help=".tflite files (default: samples/tflm/*.tflite)")
    ap.add_argument("--target", default="cortex-m7", help="a microcontroller target (default cortex-m7)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument(
        "--flag-study", action="store_true", help="also build IREE's default with each candidate flag alone"
    )
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    models = a.models or sorted(TFLM_DIR.glob("*.tflite"))
    if not models:
        raise InputError(f"no .tflite models (looked in {TFLM_DIR})")
    # Everything that can be checked before the first model's minutes of work.
    check_tflite_files(models)
    if not get_target(a.target).links_static:
        raise InputError(f"--target {a.target}: bench-tflm compares microcontroller builds (e.g. cortex-m7)")
    require_tflm()
    check_out_folder(a.out, ("tflm.json", "tflm.md"))
    rows: list[dict[str, Any]] = []
    previous = {} if a.flag_study else previous_rows(a.out / "tflm.json")
    for i, model in enumerate(models, 1):
        work = Path(tempfile.mkdtemp(prefix="serenity-tflm-"))
        t0 = time.perf_counter()
        try:
            row = bench_model(model, work, a.target, MEMORY_FLAGS, a.flag_study)
        except SerenityError as e:
            why = " ".join(str(e).split()) or type(e).__name__
            row = {"model": model.name.removesuffix(".tflite"), "target": a.target, "error": why}
        finally:
            shutil.rmtree(work, ignore_errors=True)
        carry_flag_study(row, previous)
        rows.append(row)
        # Written after every model once one was measured: a long run keeps
        # what it measured, a run that measured nothing writes nothing.
        if any("error" not in r for r in rows):
            _write_tables(a.out, rows)
        if not a.quiet:
            print(f"[{i}/{len(models)}] {model.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    failed = [r for r in rows if "error" in r]
    if len(failed) < len(rows):
        print(report_text(rows), end="")
        print(f"wrote {a.out / 'tflm.json'} and {a.out / 'tflm.md'}", file=sys.stderr)
    if failed:
        # The run ends in one error line (the tables keep the rows measured).
        first = failed[0]
        where = f" (see {a.out / 'tflm.json'})" if len(failed) < len(rows) else ""
        raise SerenityError(f"{len(failed)} of {len(rows)} models failed{where}; {first['model']}: {first['error']}")
    return 0


def _write_tables(out: Path, rows: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"memory_flags": list(MEMORY_FLAGS), "rows": rows}
    atomic_write(out / "tflm.json", json.dumps(record, indent=2) + "\n")
    atomic_write(out / "tflm.md", report_text(rows))
