"""``serenity-mlir bench``: the results table, measured in IREE's runtime.

For each model, side by side in one run, each measured in a fresh process:

(a)  IREE with default flags;
(b)  IREE with ``--iree-stream-partitioning-favor=min-peak-memory``;
(c)  the imported dispatch order with serial partitioning ("as exported");
(c') a breadth-first Kahn order with serial partitioning (what a
     memory-oblivious converter emits, TFLite's order in the paper);
(d)  the SERENITY schedule;
(e)  SERENITY after identity graph rewriting (``--rewrite``; n/a without):
     concat -> convolution sites rewritten where that lowers the scheduled
     peak (pipeline/rewrite.py); outputs compared with (a) within a relative
     error of 1e-5;
(p)  SERENITY with patch-based inference (``--patches auto``; n/a without):
     the stage at the input run patch by patch where that pays
     (pipeline/patches.py); outputs compared with (a), bit for bit and within
     a relative error of 1e-5.

Writes DIR/results.json, DIR/results.md and PNG plots; prints the Markdown
table on stdout and a progress bar on stderr.

Why one module of about 400 lines: the configurations, their side-by-side
measurement and the tables they fill change together; the plots live in
bench/plots.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from serenity_mlir.backend.compile import compile_input
from serenity_mlir.bench import plots as bench_plots
from serenity_mlir.bench.stats import geomean
from serenity_mlir.errors import CompilerToolError, InputError
from serenity_mlir.files import atomic_write
from serenity_mlir.memory import joint
from serenity_mlir.pipeline import measure as run_stage
from serenity_mlir.pipeline.chain import BuiltModule, build_module, patch_then_build
from serenity_mlir.pipeline.importer import import_model
from serenity_mlir.pipeline.lower import lower
from serenity_mlir.pipeline.paths import check_out_folder
from serenity_mlir.pipeline.report import rewrite_fields
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.runtime.compare import max_relative_error
from serenity_mlir.runtime.local import compare_latency
from serenity_mlir.samples import IRREGULAR, REGULAR, SAMPLES, write_sample
from serenity_mlir.scheduler.graph import live_profile
from serenity_mlir.settings import TIME_LIMIT, CompileSettings, PlacementSettings, RewriteSettings, ScheduleSettings
from serenity_mlir.targets import get_target

CONFIGS = {
    "a": "IREE default",
    "b": "IREE min-peak-memory",
    "c": "imported order, serial",
    "c'": "Kahn BFS order, serial",
    "cp": "imported order, serial, SERENITY placement",
    "d0": "SERENITY order, IREE placement",
    "d": "SERENITY (order + placement)",
    "e": "SERENITY + rewriting",
    "p": "SERENITY + patch-based inference (--patches auto)",
}
# key -> (scheduler, placement, rewrite): each configuration is a settings
# tree run through the compile job's own chain (pipeline/chain.py).
SCHEDULED = {
    "c": ("program", "iree", False),
    "c'": ("kahn", "iree", False),
    "d0": ("serenity", "iree", False),
    "cp": ("program", "serenity", False),
    "d": ("serenity", "serenity", False),
}


def config_settings(scheduler: str, placement: str, rewrite: bool, time_limit: float) -> CompileSettings:
    """The compile settings of one bench configuration."""
    return CompileSettings(
        quiet=True,
        schedule=ScheduleSettings(scheduler=scheduler, time_limit=time_limit),
        placement=PlacementSettings(placement=placement),
        rewrite=RewriteSettings(enabled=rewrite),
    )


class ProgressBar:
    """A one-line progress bar on stderr (plain lines when not a terminal)."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.t0 = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def step(self, what: str) -> None:
        self.done += 1
        if self.quiet:
            return
        width = 30
        filled = int(width * self.done / max(1, self.total))
        bar = "#" * filled + "-" * (width - filled)
        line = f"[{bar}] {self.done}/{self.total} {time.perf_counter() - self.t0:6.1f}s {what}"
        if self.tty:
            print("\r" + line[:120].ljust(120), end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr)


def _config_row(module: BuiltModule, lower_seconds: float) -> dict[str, Any]:
    """A configuration's predicted figures (the measured ones are added later)."""
    outcome, placed = module.sched, module.placed
    fixed = outcome.body.fixed_bytes
    secs = module.built.compile_seconds
    place_fields: dict[str, Any] = {}
    if placed is not None:
        secs = placed.compile_seconds + placed.stream_seconds + placed.placement_seconds
        place_fields = {
            "slab_live_bytes": placed.slab_live_bytes,
            "iree_slab_bytes": placed.iree_slab_bytes,
            "placement_seconds": round(placed.placement_seconds, 3),
        }
    return {
        "compile_seconds": round(secs + lower_seconds, 3),
        "predicted_peak_bytes": module.predicted_peak_bytes,
        "predicted_transient_bytes": module.predicted_slab_bytes,
        "predicted_live_transient_bytes": module.prediction.live_bytes,
        **place_fields,
        "schedule_peak_bytes": outcome.result.peak_bytes + fixed,
        "schedule_seconds": round(outcome.result.seconds, 4),
        "optimal": outcome.result.optimal,
    }


def bench_model(
    model: Path,
    target_name: str,
    workdir: Path,
    bar: ProgressBar,
    time_limit: float,
    repeat: int,
    joint_time_limit: float = 0.0,
    rewrite: bool = False,
    patches: bool = False,
) -> dict[str, Any]:
    target = get_target(target_name)
    imported = import_model(model, quiet=True)
    work = WorkFolder(workdir)
    lowered = lower(imported, work, target)
    row: dict[str, Any] = {"model": model.stem, "path": str(model), "configs": {}}
    vmfbs: dict[str, Path] = {}
    profiles: dict[str, list[int]] = {}
    for key, flags in (("a", []), ("b", ["--iree-stream-partitioning-favor=min-peak-memory"])):
        out = workdir / f"{key}.vmfb"
        secs = compile_input(lowered.input_file, out, target.with_flags(flags))
        vmfbs[key] = out
        row["configs"][key] = {"compile_seconds": round(secs, 3)}
        bar.step(f"{model.stem}: compiled ({key})")
    configs = dict(SCHEDULED)
    if rewrite:
        configs["e"] = ("serenity", "serenity", True)
    for key, (scheduler, placement, rewritten) in configs.items():
        stem = key.replace("'", "_prime")
        settings = config_settings(scheduler, placement, rewritten, time_limit)
        module = build_module(lowered, settings, target, work, f"{stem}.vmfb", model.name, tag=stem)
        vmfbs[key] = module.built.artifacts["module"]
        outcome, body = module.sched, module.sched.body
        cfg = row["configs"][key] = _config_row(module, lowered.seconds)
        if key == "e":
            assert module.rewrite is not None
            fields = rewrite_fields(module.rewrite)
            cfg = row["configs"]["e"] = {
                k: cfg[k] for k in ("compile_seconds", "predicted_peak_bytes", "schedule_seconds", "optimal")
            }
            cfg.update({k: v for k, v in fields.items() if k != "rewrite_predicted_peak_bytes"})
            if module.rewritten:
                profiles["e"] = [x + body.fixed_bytes for x in live_profile(body.graph, outcome.result.order)]
            bar.step(f"{model.stem}: rewritten+scheduled+compiled (e)")
            continue
        profiles[key] = [x + body.fixed_bytes for x in live_profile(body.graph, outcome.result.order)]
        row["num_nodes"] = body.graph.num_nodes
        row["function"] = outcome.function
        row["lower_bound_bytes"] = outcome.result.lower_bound_bytes + body.fixed_bytes
        if key == "d" and joint_time_limit > 0 and joint.available():
            # How far the placed order is from the best order+placement together.
            j = joint.joint_optimum(body.graph, body.buffers, outcome.result.order, time_limit=joint_time_limit)
            row["joint"] = {
                "slab_bytes": j.slab_bytes,
                "bound_bytes": j.bound_bytes,
                "optimal": j.optimal,
                "seconds": round(j.seconds, 2),
                "order_then_pack_slab_bytes": j.hint_slab_bytes,
                "placed_slab_bytes": module.predicted_slab_bytes,
                "gain": round(module.predicted_slab_bytes / j.slab_bytes, 3) if j.slab_bytes else None,
            }
        bar.step(f"{model.stem}: scheduled+compiled ({key})")
    if patches:
        settings = config_settings("serenity", "serenity", False, time_limit)
        settings = replace(settings, patches=replace(settings.patches, mode="auto"))
        _, patch, module = patch_then_build(lowered, target, settings, work, "p.vmfb", model.name, tag="p")
        assert patch is not None
        vmfbs["p"] = module.built.artifacts["module"]
        cfg = row["configs"]["p"] = _config_row(module, lowered.seconds)
        cfg["compile_seconds"] = round(cfg["compile_seconds"] + patch.seconds, 3)
        cfg.update(patch.report_fields())
        bar.step(f"{model.stem}: patched+scheduled+compiled (p)")
    # Our modules record their input shapes; IREE's own builds do not, so
    # measure ours first and give the same inputs to the baselines.
    run = run_stage.runner(target)
    if run is None:
        raise InputError(f"bench measures in IREE's runtime: target {target.name} cannot run here")
    inputs: list[str] | None = None
    hashes = {}
    function = ""
    for key in ("d", "c", "c'", "cp", "d0", "a", "b", *(("e",) if rewrite else ()), *(("p",) if patches else ())):
        npz = workdir / f"outputs_{key.replace(chr(39), '_prime')}.npz"
        m = run(vmfbs[key], row.get("function"), inputs, 0, npz)
        inputs, function = m.inputs, m.function
        hashes[key] = m.outputs_sha256
        cfg = row["configs"][key]
        cfg["measured_peak_bytes"] = m.peak_bytes
        cfg["constant_bytes"] = m.constant_bytes
        cfg["transient_bytes"] = m.transient_bytes
        if cfg.get("predicted_live_transient_bytes"):
            # IREE's slab over the schedule's live bytes in it: fragmentation.
            cfg["transient_over_predicted"] = round(m.transient_bytes / cfg["predicted_live_transient_bytes"], 4)
        bar.step(f"{model.stem}: measured ({key})")
    # Latency: every configuration timed side by side in one process.
    keys = list(vmfbs)
    medians = compare_latency([vmfbs[k] for k in keys], function, inputs or [], 0, repeat)
    for key, median in zip(keys, medians, strict=True):
        row["configs"][key]["latency_seconds"] = median
    for key, h in hashes.items():
        row["configs"][key]["outputs_match_a"] = h == hashes["a"]
    d_peak = row["configs"]["d"]["measured_peak_bytes"]
    if not rewrite:
        row["configs"]["e"] = {"status": "n/a: run with --rewrite"}
    else:
        # A rewritten graph re-associates sums: compare within tolerance.
        _within_tolerance_of_a(row["configs"]["e"], workdir / "outputs_e.npz", workdir, d_peak)
    if not patches:
        row["configs"]["p"] = {"status": "n/a: run with --patches"}
    else:
        # Patches recompute halos in the same order of sums: bit-identical
        # is expected; IREE's vectorisation may still reassociate.
        p = row["configs"]["p"]
        p["outputs_bit_identical_to_a"] = p["outputs_match_a"]
        _within_tolerance_of_a(p, workdir / "outputs_p.npz", workdir, d_peak)
    row["profiles"] = profiles
    a = row["configs"]["a"]
    for cfg in row["configs"].values():
        if "measured_peak_bytes" not in cfg:
            continue
        if a.get("latency_seconds") and cfg.get("latency_seconds"):
            cfg["latency_ratio_vs_a"] = round(cfg["latency_seconds"] / a["latency_seconds"], 3)
    d = row["configs"]["d"]
    for base in ("a", "b", "c", "c'", "d0"):
        d[f"reduction_vs_{base}"] = round(row["configs"][base]["measured_peak_bytes"] / d["measured_peak_bytes"], 3)
    cp = row["configs"]["cp"]
    cp["reduction_vs_c"] = round(row["configs"]["c"]["measured_peak_bytes"] / cp["measured_peak_bytes"], 3)
    d["measured_over_bound"] = round(d["measured_peak_bytes"] / row["lower_bound_bytes"], 3)
    return row


def _fmt_bytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | nodes | (a) IREE | (b) min-peak | (c) imported | (c') Kahn | (c+p) imported, placed "
        "| (d0) SERENITY order | (d) SERENITY | (e) rewrite | (p) patches "
        "| predicted (d) | d vs a | d vs c | d vs c' | bound | d / bound | sched s | compile s | latency d/a |"
    )
    sep = "|" + "---|" * 21
    lines = [head, sep]
    for r in rows:
        c = r["configs"]
        d = c["d"]
        kahn = c["c'"]
        vs_kahn = d["reduction_vs_c'"]
        lines.append(
            f"| {r['model']} | {r['num_nodes']} | {_fmt_bytes(c['a']['measured_peak_bytes'])} "
            f"| {_fmt_bytes(c['b']['measured_peak_bytes'])} | {_fmt_bytes(c['c']['measured_peak_bytes'])} "
            f"| {_fmt_bytes(kahn['measured_peak_bytes'])} | {_fmt_bytes(c['cp']['measured_peak_bytes'])} "
            f"| {_fmt_bytes(c['d0']['measured_peak_bytes'])} | {_fmt_bytes(d['measured_peak_bytes'])} "
            f"| {_fmt_bytes(c['e'].get('measured_peak_bytes'))} | {_patch_cell(c['p'])} "
            f"| {_fmt_bytes(d['predicted_peak_bytes'])} | {d['reduction_vs_a']:.2f}x "
            f"| {d['reduction_vs_c']:.2f}x | {vs_kahn:.2f}x "
            f"| {_fmt_bytes(r['lower_bound_bytes'])} | {d['measured_over_bound']:.2f} | {d['schedule_seconds']:.3f} "
            f"| {d['compile_seconds']:.1f} | {d.get('latency_ratio_vs_a', float('nan')):.2f} |"
        )
    return "\n".join(lines)


def _within_tolerance_of_a(cfg: dict[str, Any], outputs: Path, workdir: Path, d_peak: int) -> None:
    """(e) and (p) change the graph: their outputs match (a) within the
    rewrite tolerance (not bit for bit), and their peak is quoted against (d)."""
    err = max_relative_error(outputs, workdir / "outputs_a.npz")
    cfg["outputs_max_rel_error_vs_a"] = err
    cfg["outputs_match_a"] = err <= RewriteSettings().rtol
    cfg["reduction_vs_d"] = round(d_peak / cfg["measured_peak_bytes"], 3)


def _patch_cell(p: dict[str, Any]) -> str:
    """(p)'s measured bytes and the grid it chose ("none" when auto kept the
    module whole: then it is (d)'s build)."""
    if "measured_peak_bytes" not in p:
        return "n/a"
    grid = p["patches"]["grid"]
    return f"{_fmt_bytes(p['measured_peak_bytes'])} ({grid + '@' + str(p['patches']['split']) if grid else 'none'})"


def fragmentation_table(rows: list[dict[str, Any]]) -> str:
    """(d)'s slab: the schedule's live bytes, IREE's packing of them
    (predicted and measured), and the joint order+offset optimum."""
    lines = [
        "| model | live bytes in slab (d) | slab placed | slab measured | measured / live "
        "| joint slab (CP-SAT) | proven | placed / joint |",
        "|" + "---|" * 8,
    ]
    for r in rows:
        d = r["configs"]["d"]
        j = r.get("joint")
        joint_cols = (
            f"| {_fmt_bytes(j['slab_bytes'])} | {'yes' if j['optimal'] else 'no'} | {j['gain']:.2f}x |"
            if j
            else "| n/a | n/a | n/a |"
        )
        lines.append(
            f"| {r['model']} | {_fmt_bytes(d['predicted_live_transient_bytes'])} "
            f"| {_fmt_bytes(d['predicted_transient_bytes'])} | {_fmt_bytes(d['transient_bytes'])} "
            f"| {d.get('transient_over_predicted', float('nan')):.3f} {joint_cols}"
        )
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]], irregular: set[str]) -> dict[str, Any]:
    irr = [r for r in rows if r["model"] in irregular]
    out: dict[str, Any] = {}
    for base in ("a", "b", "c", "c'", "d0"):
        out[f"geomean_reduction_vs_{base}_irregular"] = geomean(
            [r["configs"]["d"][f"reduction_vs_{base}"] for r in irr], 3
        )
    out["never_worse_than_baselines"] = all(
        r["configs"]["d"]["measured_peak_bytes"]
        <= min(r["configs"][k]["measured_peak_bytes"] for k in ("a", "b", "c", "c'", "cp", "d0"))
        for r in rows
    )
    out["outputs_match"] = all(r["configs"][k].get("outputs_match_a", True) for r in rows for k in r["configs"])
    measured_e = [r for r in rows if "measured_peak_bytes" in r["configs"]["e"]]
    if measured_e:
        with_site = [r for r in measured_e if r["configs"]["e"]["rewrite_sites_rewritable"] > 0]
        out["rewrite_networks_with_a_site"] = [r["model"] for r in with_site]
        out["rewrite_sites_applied"] = {r["model"]: r["configs"]["e"]["rewrite_sites_applied"] for r in measured_e}
        out["geomean_reduction_e_vs_d_with_a_site"] = geomean(
            [r["configs"]["e"]["reduction_vs_d"] for r in with_site], 3
        )
        out["rewrite_never_worse_than_d"] = all(
            r["configs"]["e"]["measured_peak_bytes"] <= r["configs"]["d"]["measured_peak_bytes"] for r in measured_e
        )
    measured_p = [r for r in rows if "measured_peak_bytes" in r["configs"]["p"]]
    if measured_p:
        out["patches_applied"] = {
            r["model"]: r["configs"]["p"]["patches"]["grid"] for r in measured_p if r["configs"]["p"]["patches"]["grid"]
        }
        out["patches_never_above_d"] = all(
            r["configs"]["p"]["measured_peak_bytes"] <= r["configs"]["d"]["measured_peak_bytes"] for r in measured_p
        )
    return out


def plots(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Live bytes over the schedule, (c), (c'), (d) and (e) when a rewrite was
    kept, with (d)'s and (e)'s measured peaks, per model; a bar chart of peaks
    (drawn by :mod:`.plots`)."""
    if not bench_plots.have_matplotlib():
        print(f"note: matplotlib is not installed: no plots ({bench_plots.PLOTS_INSTALL})", file=sys.stderr)
        return []
    written = []
    for r in rows:
        plot = bench_plots.LivePlot(title=f"{r['model']}: memory over the schedule", from_zero=False)
        for key, style in (("c", "-"), ("c'", ":"), ("d", "-"), ("e", "-")):
            prof = r["profiles"].get(key)
            if prof:
                levels = []
                if key in ("d", "e") and "measured_peak_bytes" in r["configs"][key]:
                    # What the runtime reserved: IREE's packed slab plus inputs
                    # and results; above the live curve's top by fragmentation.
                    levels.append(bench_plots.Level(f"({key}) measured peak", r["configs"][key]["measured_peak_bytes"]))
                plot.curves.append(bench_plots.Curve(f"({key}) {CONFIGS[key]}", prof, style, levels))
        written.append(bench_plots.live_bytes_plot(plot, out_dir / f"live_{r['model']}.png"))
    keys = ["a", "b", "c", "c'", "d"]
    if all("measured_peak_bytes" in r["configs"]["e"] for r in rows):
        keys.append("e")
    series = [(f"({k}) {CONFIGS[k]}", [r["configs"][k]["measured_peak_bytes"] for r in rows]) for k in keys]
    title = "Peak memory measured in IREE's runtime"
    models = [r["model"] for r in rows]
    written.append(bench_plots.peaks_bar_plot(models, series, out_dir / "peaks.png", title, "measured peak KiB"))
    return written


def bench_failed(e: BaseException, work_root: Path) -> BaseException:
    """What a bench raises when a model fails: the error itself, for the
    tool's one error line; the work folder is kept (and named in that line)
    only when a tool failed, whose reproducer reads its files."""
    if isinstance(e, CompilerToolError):
        e.args = (e.summary(work_root),)
    else:
        shutil.rmtree(work_root, ignore_errors=True)
    return e


def check_models(names: list[str]) -> None:
    """Raises for a name that is neither a model file nor a sample network,
    before anything is written."""
    for name in names:
        p = Path(name)
        if p.suffix in (".onnx", ".mlir", ".mlirbc", ".tflite"):
            if not p.is_file():
                raise InputError(f"{p}: no such file")
        elif name not in SAMPLES:
            raise InputError(f"'{name}' is neither a model file nor a sample network ({', '.join(SAMPLES)})")


def resolve_models(names: list[str], samples_dir: Path, paper: bool) -> list[Path]:
    """Model files by path, or sample networks by name (generated on demand
    into ``samples_dir``)."""
    check_models(names)
    return [
        write_sample(name, samples_dir / f"{name}.onnx", paper=paper) if name in SAMPLES else Path(name)
        for name in names
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="serenity-mlir bench")
    ap.add_argument("models", nargs="*", help="model files or sample names (default: all sample networks)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--target", default="host")
    ap.add_argument("--paper-size", action="store_true", help="generate the sample networks at paper-like sizes")
    ap.add_argument("--time-limit", type=float, default=TIME_LIMIT)
    ap.add_argument("--repeat", type=int, default=20, help="timed calls per configuration for latency")
    ap.add_argument(
        "--joint-time-limit", type=float, default=10.0,
        help="seconds for the exact joint order+offset optimum of (d) (needs the 'exact' extra; 0: skip)",
    )  # fmt: skip
    ap.add_argument(
        "--rewrite",
        action="store_true",
        help="also measure (e): SERENITY after identity graph rewriting of concat -> convolution sites",
    )
    ap.add_argument(
        "--patches",
        action="store_true",
        help="also measure (p): SERENITY with patch-based inference (compile --patches auto)",
    )
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    names = a.models or sorted(IRREGULAR) + sorted(REGULAR)
    check_models(names)
    get_target(a.target)
    check_out_folder(a.out, ("results.json", "results.md"))
    work_root = Path(tempfile.mkdtemp(prefix="serenity-bench-"))
    try:
        models = resolve_models(names, work_root, a.paper_size)
        bar = ProgressBar(len(models) * (10 + 2 * a.rewrite + 2 * a.patches), a.quiet)
        rows = []
        for model in models:
            wd = work_root / model.stem
            wd.mkdir(exist_ok=True)
            rows.append(
                bench_model(
                    model, a.target, wd, bar, a.time_limit, a.repeat, a.joint_time_limit, a.rewrite, a.patches
                )
            )
        bar.close()
    except BaseException as e:
        raise bench_failed(e, work_root) from None
    shutil.rmtree(work_root, ignore_errors=True)
    a.out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows) + "\n\nFragmentation of (d)'s slab:\n\n" + fragmentation_table(rows)
    # Sample names say which networks are regular; any other model counts as irregular.
    summ = summary(rows, {r["model"] for r in rows if r["model"] not in REGULAR})
    result = {"target": a.target, "rows": rows, "summary": summ, "configs": CONFIGS}
    atomic_write(a.out / "results.json", json.dumps(result, indent=2) + "\n")
    md = f"{table}\n\n" + "\n".join(f"- {k}: {v}" for k, v in summ.items()) + "\n"
    atomic_write(a.out / "results.md", md)
    written = plots(rows, a.out)
    print(table)
    print()
    for k, v in summ.items():
        print(f"{k}: {v}")
    print(f"wrote {a.out / 'results.json'}, {a.out / 'results.md'} and {len(written)} plots", file=sys.stderr)
    return 0
