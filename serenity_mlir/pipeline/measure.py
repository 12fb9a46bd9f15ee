"""Steps 6-7, run and compare: the built module, and IREE's default build of
the same model as the reference, run on the same seeded inputs.

A scheduled module must give bit-identical outputs (reordering changes no
arithmetic); a rewritten one sums in another order and is compared within a
normwise relative tolerance instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serenity_mlir.runtime.compare import max_relative_error
from serenity_mlir.runtime.local import measure
from serenity_mlir.runtime.qemu import run_emulated
from serenity_mlir.targets import Target

# (module, function, input specs or None, seed, where to save the outputs or None) -> run record
Runner = Callable[[Path, str | None, "list[str] | None", int, "Path | None"], dict[str, Any]]


def runner(target: Target) -> Runner | None:
    """How a module for ``target`` runs here, each run in a fresh process;
    None when it cannot run here."""
    if target.runnable == "local":
        return lambda vmfb, fn, inputs, seed, save: measure(vmfb, fn, inputs=inputs, seed=seed, save_outputs=save)
    if target.runnable == "qemu-aarch64":
        return lambda vmfb, fn, inputs, seed, save: run_emulated(vmfb, target, fn, inputs, seed, save_outputs=save)
    return None


def measured_fields(m: dict[str, Any], predicted_total: int) -> dict[str, Any]:
    """The report fields of a run of the built module."""
    non_constant = m["device_bytes_peak"] - m["constant_bytes"]
    return {
        "measured_peak_bytes": m["device_bytes_peak"],
        "constant_bytes": m["constant_bytes"],
        "input_bytes": m["input_bytes"],
        "output_bytes": m["output_bytes"],
        "transient_bytes": m["transient_bytes"],
        "measured_non_constant_bytes": non_constant,
        "predicted_vs_measured_non_constant": round(predicted_total / non_constant, 4) if non_constant else None,
        "outputs_sha256": m["outputs_sha256"],
        # The prediction holds the inputs, results, slab and the globals IREE
        # fills at initialisation (analysis.body.splat_global_bytes).
        "prediction_exact": predicted_total == m["device_bytes_peak"],
    }


@dataclass(frozen=True)
class Comparison:
    reference_peak: int
    bit_identical: bool
    max_rel_error: float | None  # only when compared by tolerance


def compare(run: Runner, module_run: dict[str, Any], reference: Path, function: str, seed: int,
            outputs: Path | None, reference_outputs: Path | None) -> Comparison:  # fmt: skip
    """Runs the reference on the module's inputs and compares the outputs
    (within tolerance when ``outputs`` were saved)."""
    r = run(reference, function, module_run["inputs"], seed, reference_outputs)
    err = None
    if outputs is not None and reference_outputs is not None:
        err = max_relative_error(outputs, reference_outputs)
    return Comparison(r["device_bytes_peak"], r["outputs_sha256"] == module_run["outputs_sha256"], err)
