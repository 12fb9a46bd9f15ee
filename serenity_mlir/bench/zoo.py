"""``serenity-mlir bench-zoo``: every model of the zoo compiled with the defaults.

Real architectures (``samples/zoo/*.onnx``: exported from public model code,
and the onnx package's ``light_*`` models), each compiled by the ``compile``
job with its defaults and checked: it compiles, its outputs equal IREE's
default build bit for bit, what ships measures at or below IREE's default
build, and the prediction equals the measurement (the total and the
transient slab).

Writes DIR/zoo.json and DIR/zoo.md; prints the Markdown on stdout and one
progress line per model on stderr. A model that fails is recorded in its row
(with the error line) and the run goes on; the exit code is 1 when any model
fails a check.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serenity_mlir.bench.stats import geomean
from serenity_mlir.errors import InputError, SerenityError
from serenity_mlir.files import atomic_write
from serenity_mlir.pipeline.driver import compile_model
from serenity_mlir.pipeline.paths import check_out_folder
from serenity_mlir.settings import PATCH_OVERHEAD, CompileSettings

ZOO_DIR = Path(__file__).resolve().parents[2] / "samples" / "zoo"

# Multi-branch cells: concatenated or summed branches beyond a plain residual
# add (NAS cells, random wiring, dense and dual-path blocks, Inception
# modules, Ghost modules, hierarchical Res2Net splits, SelecSLS' feature
# concats, ShuffleNet's split-and-concat units, SqueezeNet's fire modules).
# The others are chains with residual adds or squeeze-excite (MnasNet,
# EfficientNet, MobileNetV3, ResNeXt, RegNet, ResNet-50, AlexNet, ZFNet, VGG).
IRREGULAR = (
    "nasnet_a",
    "pnasnet5",
    "randwire",
    "pc_darts_cifar",
    "densenet",
    "dpn",
    "inception_v3",
    "res2net",
    "ghostnet",
    "selecsls",
    "shufflenet_v2",
    "light_inception_v1",
    "light_inception_v2",
    "light_densenet121",
    "light_squeezenet",
    "light_shufflenet",
)

# The report fields a row keeps.
FIELDS = (
    "num_nodes",
    "reference_measured_peak_bytes",
    "measured_peak_bytes",
    "shipped",
    "shipped_peak_bytes",
    "predicted_peak_bytes",
    "prediction_exact",
    "predicted_transient_bytes",
    "transient_bytes",
    "constant_bytes",
    "outputs_bit_identical",
    "optimal",
    "placement",
    "model_matches_iree_slices",
    "schedule_seconds",
    "compile_seconds",
    "latency_ratio",
    "peak_without_input_bytes",
)


def zoo_models(names: list[str]) -> list[Path]:
    """Model files by path, or zoo models by name; default: every zoo model."""
    if not names:
        models = sorted(ZOO_DIR.glob("*.onnx"))
        if not models:
            raise InputError(f"no zoo models in {ZOO_DIR}")
        return models
    out = []
    for name in names:
        p = Path(name)
        if p.suffix != ".onnx":
            p = ZOO_DIR / f"{name}.onnx"
        if not p.is_file():
            raise InputError(f"'{name}' is neither a model file nor a zoo model (see {ZOO_DIR})")
        if p.suffix == Path(name).suffix == ".onnx":
            _check_readable_onnx(p)
        out.append(p)
    return out


def _check_readable_onnx(p: Path) -> None:
    """A model file given by path parses as ONNX (its weights are not read):
    a truncated or foreign file is refused before the first model's work."""
    import onnx

    try:
        onnx.load(str(p), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types
        raise InputError(f"{p}: not a readable ONNX model: {' '.join(str(e).split())}") from None


def checks(row: dict[str, Any]) -> dict[str, bool]:
    """The zoo's checks on one row (all False when the compile failed); with
    a ``--patches auto`` compile in the row, its own checks too: it compiles,
    never measures above the figure without patches, adds at most the MAC
    cap, predicts exactly, and its outputs equal IREE's default build (bit for
    bit, or within tolerance where patches reassociate nothing but IREE's
    vectorisation of the smaller tiles does)."""
    if "error" in row:
        return {k: False for k in ("compiles", "bit_identical", "never_above_default", "total_exact", "slab_exact")}
    c = {
        "compiles": True,
        "bit_identical": row["outputs_bit_identical"] is True,
        "never_above_default": row["shipped_peak_bytes"] <= row["reference_measured_peak_bytes"],
        "total_exact": row["prediction_exact"] is True,
        "slab_exact": row["predicted_transient_bytes"] == row["transient_bytes"],
    }
    if "patches_error" in row:
        c["patches_compiles"] = False
    elif "patches_shipped_peak_bytes" in row:
        c["patches_compiles"] = True
        c["patches_never_above_without"] = row["patches_shipped_peak_bytes"] <= row["shipped_peak_bytes"]
        c["patches_mac_cap"] = (row["patches_patch_mac_overhead"] or 0) <= PATCH_OVERHEAD + 1e-9
        c["patches_exact"] = row["patches_prediction_exact"] is True
        c["patches_outputs"] = (
            row["patches_outputs_bit_identical"] is True or row["patches_outputs_within_tolerance"] is True
        )
    return c


def _error_line(e: Exception) -> str:
    line = (str(e).strip() or type(e).__name__).splitlines()[0]
    # Our errors say what failed; anything else is a bug: name its type.
    return line if isinstance(e, SerenityError) else f"{type(e).__name__}: {line}"


def bench_zoo_model(model: Path, workdir: Path, patches: bool = True) -> dict[str, Any]:
    """One model compiled with the defaults and, with ``patches``, again with
    ``--patches auto`` (the ``patches_*`` keys); an error is the row's
    ``error`` / ``patches_error`` (its first line), not an exception."""
    row: dict[str, Any] = {"model": model.stem, "irregular": model.stem in IRREGULAR}
    t0 = time.perf_counter()
    try:
        r = compile_model(model, workdir / f"{model.stem}.vmfb", CompileSettings.from_options(quiet=True))
    except Exception as e:  # noqa: BLE001 - recorded in the row; the run goes on
        row["error"] = _error_line(e)
    else:
        row.update({k: r.get(k) for k in FIELDS})
        ref, shipped = row["reference_measured_peak_bytes"], row["shipped_peak_bytes"]
        row["reduction_vs_default"] = round(ref / shipped, 4) if ref and shipped else None
    row["wall_seconds"] = round(time.perf_counter() - t0, 1)
    if patches and "error" not in row:
        row.update(bench_patches(model, workdir, row))
    row["checks"] = checks(row)
    row["ok"] = all(row["checks"].values())
    return row


# The report fields a row keeps from the --patches auto compile, as patches_<field>.
PATCH_FIELDS = (
    "shipped",
    "shipped_peak_bytes",
    "measured_peak_bytes",
    "predicted_peak_bytes",
    "prediction_exact",
    "input_bytes",
    "outputs_bit_identical",
    "outputs_within_tolerance",
    "outputs_max_rel_error",
    "patch_mac_overhead",
    "latency_ratio",
    "compile_seconds",
)


def bench_patches(model: Path, workdir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """The same model with ``--patches auto``: what was patched, what ships,
    the MACs the halos add, and the wall time against the compile without."""
    t0 = time.perf_counter()
    try:
        settings = CompileSettings.from_options(quiet=True, patches="auto")
        r = compile_model(model, workdir / f"{model.stem}.patches.vmfb", settings)
    except Exception as e:  # noqa: BLE001 - recorded in the row; the run goes on
        return {"patches_error": _error_line(e)}
    out = {f"patches_{k}": r.get(k) for k in PATCH_FIELDS}
    p = r.get("patches") or {}
    out["patches_grid"] = p.get("grid")
    out["patches_split"] = p.get("split")
    out["patches_reason"] = p.get("reason") or None
    wall = time.perf_counter() - t0
    out["patches_wall_seconds"] = round(wall, 1)
    out["patches_time_ratio"] = round(wall / row["wall_seconds"], 2) if row["wall_seconds"] else None
    ref, shipped = row["reference_measured_peak_bytes"], out["patches_shipped_peak_bytes"]
    out["patches_reduction_vs_default"] = round(ref / shipped, 4) if ref and shipped else None
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [r for r in rows if r.get("reduction_vs_default")]
    return {
        "models": len(rows),
        "passed": sum(r["ok"] for r in rows),
        "failed": [r["model"] for r in rows if not r["ok"]],
        "irregular": [r["model"] for r in rows if r["irregular"]],
        "geomean_default_over_shipped_irregular": geomean(
            [r["reduction_vs_default"] for r in measured if r["irregular"]], 3
        ),
        "geomean_default_over_shipped_all": geomean([r["reduction_vs_default"] for r in measured], 3),
        "never_above_default": all(r["checks"]["never_above_default"] for r in rows),
        "wall_seconds": round(sum(r["wall_seconds"] for r in rows), 1),
        **patch_summary(rows),
    }


def patch_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``--patches auto`` figures over the zoo (empty without them)."""
    with_p = [r for r in rows if r.get("patches_reduction_vs_default")]
    if not with_p:
        return {}
    light = [r for r in with_p if r["model"].startswith("light_")]
    ratios = [r["patches_time_ratio"] for r in with_p if r.get("patches_time_ratio")]
    return {
        "patches_models": len(with_p),
        "patches_applied": [r["model"] for r in with_p if r.get("patches_grid")],
        "geomean_default_over_patches_light": geomean([r["patches_reduction_vs_default"] for r in light], 3),
        "geomean_default_over_shipped_light": geomean([r["reduction_vs_default"] for r in light], 3),
        "geomean_default_over_patches_all": geomean([r["patches_reduction_vs_default"] for r in with_p], 3),
        "patches_never_above_without": all(r["checks"].get("patches_never_above_without", False) for r in with_p),
        "patches_max_time_ratio": max(ratios) if ratios else None,
    }


def _b(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def markdown(rows: list[dict[str, Any]], s: dict[str, Any]) -> str:
    lines = [
        "| model | nodes | IREE default | SERENITY | shipped | default / shipped | predicted | measured "
        "| pred = meas | slab predicted | slab measured | slab = | bit-identical | sched s | compile s "
        "| latency ratio |",
        "|" + "---|" * 16,
    ]
    for r in rows:
        name = f"{r['model']}{' *' if r['irregular'] else ''}"
        if "error" in r:
            lines.append(f"| {name} | **fails**: `{r['error']}` |" + " |" * 14)
            continue
        c = r["checks"]
        ratio = r["reduction_vs_default"]
        shipped = r["shipped"] if r["shipped"] == "serenity" else f"**{r['shipped']}**"
        lines.append(
            f"| {name} | {r['num_nodes']} | {_b(r['reference_measured_peak_bytes'])} "
            f"| {_b(r['measured_peak_bytes'])} | {shipped} "
            f"| {'n/a' if ratio is None else f'{ratio:.2f}x'}{'' if c['never_above_default'] else ' **above**'} "
            f"| {_b(r['predicted_peak_bytes'])} | {_b(r['measured_peak_bytes'])} | {_yes(c['total_exact'])} "
            f"| {_b(r['predicted_transient_bytes'])} | {_b(r['transient_bytes'])} | {_yes(c['slab_exact'])} "
            f"| {_yes(c['bit_identical'])} | {r['schedule_seconds']:.2f} | {r['compile_seconds']:.1f} "
            f"| {_x(r.get('latency_ratio'))} |"
        )
    irr = ", ".join(s["irregular"]) or "none"
    lines += [
        "",
        f"Measured peaks in bytes, host target, `serenity-mlir compile` with its defaults. `*` = irregular "
        f"(multi-branch cells: {irr}). IREE default = `reference_measured_peak_bytes`; SERENITY = "
        "`measured_peak_bytes` (the SERENITY-ordered and -placed module); shipped = what the output file holds "
        "(IREE's default build when it measured lower); default / shipped = `reference_measured_peak_bytes / "
        "shipped_peak_bytes`; slab = `predicted_transient_bytes` vs the measured `transient_bytes`; latency ratio "
        "= the shipped module's median run time / IREE's default build's (`latency_ratio`).",
        "",
        f"Geomean default / shipped: {_g(s['geomean_default_over_shipped_irregular'])} over the "
        f"{len(s['irregular'])} irregular models, {_g(s['geomean_default_over_shipped_all'])} over all "
        f"{s['models']}. Checks passed on {s['passed']} of {s['models']} models"
        + (f"; failing: {', '.join(s['failed'])}." if s["failed"] else "."),
    ]
    return "\n".join(lines)


def patches_markdown(rows: list[dict[str, Any]], s: dict[str, Any]) -> str:
    """The ``--patches auto`` table: what was patched and what it bought."""
    if "patches_models" not in s:
        return ""
    lines = [
        "| model | patched | IREE default | shipped | with patches | default / with patches | MAC overhead "
        "| outputs | latency ratio (without / with) | compile time with / without |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        if "error" in r or ("patches_shipped_peak_bytes" not in r and "patches_error" not in r):
            continue
        if "patches_error" in r:
            lines.append(f"| {r['model']} | **fails**: `{r['patches_error']}` |" + " |" * 8)
            continue
        c = r["checks"]
        what = f"{r['patches_grid']} @ {r['patches_split']}" if r["patches_grid"] else "no"
        outputs = (
            "bit-identical"
            if r["patches_outputs_bit_identical"]
            else f"within tolerance ({r['patches_outputs_max_rel_error']:.1e})"
            if r["patches_outputs_within_tolerance"]
            else "**DIFFER**"
        )
        above = "" if c.get("patches_never_above_without") else " **above**"
        lat = f"{_x(r.get('latency_ratio'))} / {_x(r.get('patches_latency_ratio'))}"
        lines.append(
            f"| {r['model']} | {what} | {_b(r['reference_measured_peak_bytes'])} | {_b(r['shipped_peak_bytes'])} "
            f"| {_b(r['patches_shipped_peak_bytes'])}{above} | {_x(r['patches_reduction_vs_default'])} "
            f"| {100 * (r['patches_patch_mac_overhead'] or 0):.1f}% | {outputs} | {lat} "
            f"| {_x(r['patches_time_ratio'])} |"
        )
    lines += [
        "",
        "`--patches auto` (MAC cap 20%): patched = grid @ split layer, or no (the reason is in zoo.json); "
        "with patches = its shipped peak, input included; latency ratio = the shipped module's median run time / "
        "IREE's default build's (`latency_ratio`); compile time = wall seconds with patches / without.",
        "",
        f"Geomean default / shipped over the {sum(1 for r in rows if r['model'].startswith('light_'))} light_* "
        f"models: {_g(s['geomean_default_over_shipped_light'])} without patches, "
        f"{_g(s['geomean_default_over_patches_light'])} with; over all {s['patches_models']}: "
        f"{_g(s['geomean_default_over_patches_all'])}. Patched: {', '.join(s['patches_applied']) or 'none'}. "
        f"Never above the figure without patches: {'yes' if s['patches_never_above_without'] else '**no**'}; "
        f"compile time at most {_x(s['patches_max_time_ratio'])} of the compile without.",
    ]
    return "\n".join(lines)


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}x"


def _progress(i: int, n: int, r: dict[str, Any]) -> str:
    head = f"[{i}/{n}] {r['model']} ({r['wall_seconds']:.0f} s): "
    if "error" in r:
        return head + f"FAILED: {r['error']}"
    failed = [k for k, ok in r["checks"].items() if not ok]
    ratio = r["reduction_vs_default"]
    return head + (
        f"shipped {r['shipped']} {_b(r['shipped_peak_bytes'])} B, "
        f"IREE default {_b(r['reference_measured_peak_bytes'])} B"
        f" ({'n/a' if ratio is None else f'{ratio:.3f}x'}); "
        + ("all checks pass" if not failed else f"FAILED: {', '.join(failed)}")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="serenity-mlir bench-zoo", description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="zoo model names or .onnx files (default: every samples/zoo/*.onnx)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"), help="where zoo.json and zoo.md go")
    ap.add_argument("--no-patches", action="store_true", help="skip the second compile with --patches auto")
    a = ap.parse_args(argv)
    models = zoo_models(a.models)
    check_out_folder(a.out, ("zoo.json", "zoo.md"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="serenity-zoo-") as work:
        for i, model in enumerate(models, 1):
            r = bench_zoo_model(model, Path(work), patches=not a.no_patches)
            rows.append(r)
            print(_progress(i, len(models), r), file=sys.stderr, flush=True)
    errors = [r for r in rows if "error" in r]
    if len(errors) == len(rows):
        # Nothing compiled: no tables, the first model's error is the one line.
        raise SerenityError(f"{len(errors)} of {len(rows)} models failed; {errors[0]['model']}: {errors[0]['error']}")
    s = summary(rows)
    md = markdown(rows, s)
    if "patches_models" in s:
        md += "\n\n" + patches_markdown(rows, s)
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write(a.out / "zoo.json", json.dumps({"summary": s, "rows": rows}, indent=2) + "\n")
    atomic_write(a.out / "zoo.md", md + "\n")
    print(md)
    print(f"wrote {a.out / 'zoo.json'} and {a.out / 'zoo.md'}", file=sys.stderr)
    if s["failed"]:
        # The tables keep every row; the run still ends in one error line.
        raise SerenityError(
            f"{len(s['failed'])} of {len(rows)} models failed (see {a.out / 'zoo.json'}): {', '.join(s['failed'])}"
        )
    return 0
