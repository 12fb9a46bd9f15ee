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
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError, SerenityError
from serenity_mlir.files import atomic_write
from serenity_mlir.pipeline.driver import compile_model
from serenity_mlir.settings import CompileSettings

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
        out.append(p)
    return out


def checks(row: dict[str, Any]) -> dict[str, bool]:
    """The zoo's checks on one row (all False when the compile failed)."""
    if "error" in row:
        return {k: False for k in ("compiles", "bit_identical", "never_above_default", "total_exact", "slab_exact")}
    return {
        "compiles": True,
        "bit_identical": row["outputs_bit_identical"] is True,
        "never_above_default": row["shipped_peak_bytes"] <= row["reference_measured_peak_bytes"],
        "total_exact": row["prediction_exact"] is True,
        "slab_exact": row["predicted_transient_bytes"] == row["transient_bytes"],
    }


def bench_zoo_model(model: Path, workdir: Path) -> dict[str, Any]:
    """One model compiled with the defaults; an error is the row's ``error``
    (its first line), not an exception."""
    row: dict[str, Any] = {"model": model.stem, "irregular": model.stem in IRREGULAR}
    t0 = time.perf_counter()
    try:
        r = compile_model(model, workdir / f"{model.stem}.vmfb", CompileSettings.from_options(quiet=True))
    except Exception as e:  # noqa: BLE001 - recorded in the row; the run goes on
        line = (str(e).strip() or type(e).__name__).splitlines()[0]
        # Our errors say what failed; anything else is a bug: name its type.
        row["error"] = line if isinstance(e, SerenityError) else f"{type(e).__name__}: {line}"
    else:
        row.update({k: r.get(k) for k in FIELDS})
        ref, shipped = row["reference_measured_peak_bytes"], row["shipped_peak_bytes"]
        row["reduction_vs_default"] = round(ref / shipped, 4) if ref and shipped else None
    row["wall_seconds"] = round(time.perf_counter() - t0, 1)
    row["checks"] = checks(row)
    row["ok"] = all(row["checks"].values())
    return row


def geomean(xs: list[float]) -> float | None:
    return round(math.exp(sum(math.log(x) for x in xs) / len(xs)), 3) if xs else None


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [r for r in rows if r.get("reduction_vs_default")]
    return {
        "models": len(rows),
        "passed": sum(r["ok"] for r in rows),
        "failed": [r["model"] for r in rows if not r["ok"]],
        "irregular": [r["model"] for r in rows if r["irregular"]],
        "geomean_default_over_shipped_irregular": geomean(
            [r["reduction_vs_default"] for r in measured if r["irregular"]]
        ),
        "geomean_default_over_shipped_all": geomean([r["reduction_vs_default"] for r in measured]),
        "never_above_default": all(r["checks"]["never_above_default"] for r in rows),
        "wall_seconds": round(sum(r["wall_seconds"] for r in rows), 1),
    }


def _b(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def markdown(rows: list[dict[str, Any]], s: dict[str, Any]) -> str:
    lines = [
        "| model | nodes | IREE default | SERENITY | shipped | default / shipped | predicted | measured "
        "| pred = meas | slab predicted | slab measured | slab = | bit-identical | sched s | compile s |",
        "|" + "---|" * 15,
    ]
    for r in rows:
        name = f"{r['model']}{' *' if r['irregular'] else ''}"
        if "error" in r:
            lines.append(f"| {name} | **fails**: `{r['error']}` |" + " |" * 13)
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
            f"| {_yes(c['bit_identical'])} | {r['schedule_seconds']:.2f} | {r['compile_seconds']:.1f} |"
        )
    irr = ", ".join(s["irregular"]) or "none"
    lines += [
        "",
        f"Measured peaks in bytes, host target, `serenity-mlir compile` with its defaults. `*` = irregular "
        f"(multi-branch cells: {irr}). IREE default = `reference_measured_peak_bytes`; SERENITY = "
        "`measured_peak_bytes` (the SERENITY-ordered and -placed module); shipped = what the output file holds "
        "(IREE's default build when it measured lower); default / shipped = `reference_measured_peak_bytes / "
        "shipped_peak_bytes`; slab = `predicted_transient_bytes` vs the measured `transient_bytes`.",
        "",
        f"Geomean default / shipped: {_g(s['geomean_default_over_shipped_irregular'])} over the "
        f"{len(s['irregular'])} irregular models, {_g(s['geomean_default_over_shipped_all'])} over all "
        f"{s['models']}. Checks passed on {s['passed']} of {s['models']} models"
        + (f"; failing: {', '.join(s['failed'])}." if s["failed"] else "."),
    ]
    return "\n".join(lines)


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
    a = ap.parse_args(argv)
    models = zoo_models(a.models)
    rows = []
    with tempfile.TemporaryDirectory(prefix="serenity-zoo-") as work:
        for i, model in enumerate(models, 1):
            r = bench_zoo_model(model, Path(work))
            rows.append(r)
            print(_progress(i, len(models), r), file=sys.stderr, flush=True)
    s = summary(rows)
    md = markdown(rows, s)
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write(a.out / "zoo.json", json.dumps({"summary": s, "rows": rows}, indent=2) + "\n")
    atomic_write(a.out / "zoo.md", md + "\n")
    print(md)
    print(f"wrote {a.out / 'zoo.json'} and {a.out / 'zoo.md'}", file=sys.stderr)
    return 0 if not s["failed"] else 1
