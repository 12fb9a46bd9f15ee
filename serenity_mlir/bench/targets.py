"""``serenity-mlir bench-targets``: every model built for every target.

The numbers an edge user deploys by, side by side in one run:

- microcontrollers (static library, not runnable here): code size of the
  object, and the arena IREE computed for the module (slab + results) with
  the imported order and with the SERENITY order; the reduction is what a
  Cortex-M user gains; the arena with ``--rewrite`` (identity graph
  rewriting) on top, with the sites it kept; and the RAM with ``--patches
  auto`` (patch-based inference), alone and with ``--arena-entry`` (the
  input and results inside the arena);
- Cortex-A (aarch64, under qemu): the measured peak and the outputs, compared
  with the host build of the same scheduled model (same inputs);
- host: the measured peak.

Writes DIR/targets.json and DIR/targets.md; prints the Markdown table on
stdout and one progress line per build on stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from serenity_mlir.bench.results import ProgressBar, bench_failed, check_models, config_settings, resolve_models
from serenity_mlir.errors import SerenityError
from serenity_mlir.files import atomic_write
from serenity_mlir.pipeline.driver import compile_model
from serenity_mlir.pipeline.paths import check_out_folder
from serenity_mlir.runtime.compare import max_relative_error
from serenity_mlir.runtime.local import measure
from serenity_mlir.runtime.qemu import run_emulated
from serenity_mlir.samples import SAMPLES
from serenity_mlir.settings import TIME_LIMIT, CompileSettings, MeasureSettings
from serenity_mlir.targets import Target, available_targets, get_target

# Two CPUs' float32 results agree to this normwise relative error.
OUTPUT_RTOL = 1e-5


def _variant(
    base: CompileSettings, scheduler: str = "serenity", placement: str = "serenity", **more: Any
) -> CompileSettings:
    """One build of the target's columns: ``base`` with another scheduler or
    placement, or other settings (``rewrite``, ``patches``, ``arena_entry``)."""
    return replace(
        base,
        schedule=replace(base.schedule, scheduler=scheduler),
        placement=replace(base.placement, placement=placement),
        **more,
    )


def bench_target(model: Path, target: Target, workdir: Path, host: dict[str, Any] | None) -> dict[str, Any]:
    """One model on one target: build, and run where it can run here (the
    outputs saved, so a Cortex-A run is compared with the host's)."""
    vmfb = workdir / f"{target.name}.vmfb"
    # Builds without running (measure off): the runs below save their outputs.
    base = replace(
        config_settings("serenity", "serenity", False, TIME_LIMIT),
        target=target.name,
        measure=MeasureSettings(enabled=False, verify_outputs=False),
    )
    r = compile_model(model, vmfb, base)
    npz = workdir / f"{target.name}.outputs.npz"
    m: dict[str, Any] | None = None
    if target.runnable == "local":
        m = measure(vmfb, seed=0, save_outputs=npz)
    elif target.runnable == "qemu-aarch64":
        m = run_emulated(vmfb, target, seed=0, save_outputs=npz)
    row: dict[str, Any] = {
        "model": model.stem,
        "target": target.name,
        "output_kind": r["output_kind"],
        "code_size_bytes": r["code_size_bytes"],
        "arena_bytes": r["iree_arena_bytes"],
        "ram_bytes": r["ram_bytes"],
        "sram_bytes": r["sram_bytes"],
        "fits_sram": r["fits_sram"],
        "predicted_peak_bytes": r["predicted_peak_bytes"],
        "measured_peak_bytes": m["device_bytes_peak"] if m else None,
        "constant_bytes": m["constant_bytes"] if m else None,
        "outputs_sha256": m["outputs_sha256"] if m else None,
    }
    if m is None:
        # What the schedule and the placement buy on the device: the same
        # build in imported order, and in the SERENITY order with IREE's layout.
        p = compile_model(model, workdir / f"{target.name}.program.vmfb", _variant(base, "program", "iree"))
        s = compile_model(model, workdir / f"{target.name}.ireeplaced.vmfb", _variant(base, placement="iree"))
        row["program_order_arena_bytes"] = p["iree_arena_bytes"]
        row["iree_placement_arena_bytes"] = s["iree_arena_bytes"]
        row["slab_live_bytes"] = r.get("slab_live_bytes")
        if p["iree_arena_bytes"] and r["iree_arena_bytes"]:
            row["arena_reduction"] = round(p["iree_arena_bytes"] / r["iree_arena_bytes"], 3)
        # And what identity graph rewriting adds: the default build with --rewrite.
        rewrite = replace(base.rewrite, enabled=True)
        w = compile_model(model, workdir / f"{target.name}.rewrite.vmfb", _variant(base, rewrite=rewrite))
        row["arena_bytes_rewrite"] = w["iree_arena_bytes"]
        row["rewrite_sites_applied"] = w["rewrite_sites_applied"]
        if w["iree_arena_bytes"] and r["iree_arena_bytes"]:
            row["rewrite_gain"] = round(r["iree_arena_bytes"] / w["iree_arena_bytes"], 3)
        # Patch-based inference (--patches auto), and with the input and the
        # results inside the arena too (--arena-entry): the board's RAM.
        auto = replace(base.patches, mode="auto")
        q = compile_model(model, workdir / f"{target.name}.patches.vmfb", _variant(base, patches=auto))
        row["ram_bytes_patches"] = q["ram_bytes"]
        row["patches_grid"] = q["patches"]["grid"]
        row["patches_split"] = q["patches"]["split"]
        row["patch_mac_overhead"] = q["patch_mac_overhead"]
        row["patches_reason"] = q["patches"]["reason"]
        try:
            both = _variant(base, patches=auto, arena_entry=True)
            qa = compile_model(model, workdir / f"{target.name}.patches-arena.vmfb", both)
            row["ram_bytes_arena_entry_patches"] = qa["ram_bytes"]
        except SerenityError as e:
            # --arena-entry takes one tensor input and one execution region.
            row["arena_entry_error"] = str(e).splitlines()[0]
    if host is not None and target.runnable == "qemu-aarch64" and m is not None:
        # Another CPU may sum in another order (vector widths, FMA): compare
        # within the float32 tolerance, and say whether they are bit-identical.
        err = max_relative_error(npz, workdir / "host.outputs.npz")
        row["outputs_max_rel_error_vs_host"] = err
        row["outputs_match_host"] = err <= OUTPUT_RTOL
        row["outputs_bit_identical_to_host"] = m["outputs_sha256"] == host["outputs_sha256"]
        # iree-run-module stages the module's constants in device memory;
        # the host measurement reports them apart: compare like with like.
        emu_nc = m["device_bytes_peak"] - (m["constant_bytes"] or 0)
        host_nc = host["measured_peak_bytes"] - (host["constant_bytes"] or 0)
        row["peak_vs_host"] = round(emu_nc / host_nc, 4)
    return row


def _kib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1024:,.1f}"


def _vs_host(r: dict[str, Any]) -> str:
    if "outputs_match_host" not in r:
        return "n/a"
    if r["outputs_bit_identical_to_host"]:
        return "bit-identical"
    return f"{'match' if r['outputs_match_host'] else 'DIFFER'} ({r['outputs_max_rel_error_vs_host']:.1e})"


def _grid(r: dict[str, Any]) -> str:
    if "patches_grid" not in r:
        return "n/a"
    return "none" if r["patches_grid"] is None else f"{r['patches_grid']}@{r['patches_split']}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | target | output | code KiB | arena KiB (imported order) | arena KiB (SERENITY order, IREE layout) "
        "| arena KiB (SERENITY) | arena reduction | RAM KiB | fits SRAM | measured peak KiB | peak vs host "
        "| outputs vs host (max rel. error) | arena KiB (SERENITY + rewrite) | rewrite gain "
        "| RAM KiB (--patches auto) | grid@split | RAM KiB (--arena-entry --patches auto) |",
        "|" + "---|" * 18,
    ]
    for r in rows:
        red = r.get("arena_reduction")
        gain = r.get("rewrite_gain")
        lines.append(
            f"| {r['model']} | {r['target']} | {r['output_kind']} | {_kib(r['code_size_bytes'])} "
            f"| {_kib(r.get('program_order_arena_bytes'))} | {_kib(r.get('iree_placement_arena_bytes'))} "
            f"| {_kib(r['arena_bytes'])} "
            f"| {'n/a' if red is None else f'{red:.2f}x'} | {_kib(r['ram_bytes'])} "
            f"| {'n/a' if r['fits_sram'] is None else ('yes' if r['fits_sram'] else 'NO')} "
            f"| {_kib(r['measured_peak_bytes'])} | {r.get('peak_vs_host', 'n/a')} "
            f"| {_vs_host(r)} | {_kib(r.get('arena_bytes_rewrite'))} "
            f"| {'n/a' if gain is None else f'{gain:.2f}x'} | {_kib(r.get('ram_bytes_patches'))} "
            f"| {_grid(r)} | {_kib(r.get('ram_bytes_arena_entry_patches'))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="serenity-mlir bench-targets", description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="model files or sample names (default: every sample network)")
    ap.add_argument("--targets", default="", help="comma-separated target names (default: every target)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    names = a.models or list(SAMPLES)
    check_models(names)
    targets = [get_target(t) for t in a.targets.split(",") if t] or available_targets()
    # The host runs first: the Cortex-A runs are compared with it.
    targets.sort(key=lambda t: t.name != "host")
    check_out_folder(a.out, ("targets.json", "targets.md"))
    work_root = Path(tempfile.mkdtemp(prefix="serenity-targets-"))
    try:
        models = resolve_models(names, work_root, paper=False)
        bar = ProgressBar(len(models) * len(targets), a.quiet)
        rows = []
        for model in models:
            wd = work_root / model.stem
            wd.mkdir(exist_ok=True)
            host: dict[str, Any] | None = None
            for t in targets:
                row = bench_target(model, t, wd, host)
                if t.name == "host":
                    host = row
                rows.append(row)
                bar.step(f"{model.stem} -> {t.name}")
        bar.close()
    except BaseException as e:
        raise bench_failed(e, work_root) from None
    shutil.rmtree(work_root, ignore_errors=True)
    table = markdown_table(rows)
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write(a.out / "targets.json", json.dumps({"rows": rows}, indent=2) + "\n")
    atomic_write(a.out / "targets.md", table + "\n")
    print(table)
    print(f"wrote {a.out / 'targets.json'} and {a.out / 'targets.md'}", file=sys.stderr)
    return 0
