"""Steps 6-7, run and compare: the built module, and IREE's default build of
the same model as the reference, run on the same seeded inputs.

A scheduled module must give bit-identical outputs (reordering changes no
arithmetic); a rewritten one sums in another order and is compared within a
normwise relative tolerance instead.

The runtime answers with its wire format (the JSON a measuring child
prints); this stage turns it into a :class:`Run` at once, so nothing above
reads figures by string key.
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


@dataclass(frozen=True)
class Run:
    """One run of a module on seeded inputs, in a fresh process."""

    function: str
    peak_bytes: int  # the allocator's peak: constants, inputs, results, slab
    constant_bytes: int  # staged from the module at initialisation
    input_bytes: int
    output_bytes: int
    transient_bytes: int
    outputs_sha256: str
    inputs: list[str]  # the input specs, to run another module on the same inputs

    @staticmethod
    def of(record: dict[str, Any]) -> Run:
        return Run(
            function=str(record["function"]),
            peak_bytes=int(record["device_bytes_peak"]),
            constant_bytes=int(record["constant_bytes"]),
            input_bytes=int(record["input_bytes"]),
            output_bytes=int(record["output_bytes"]),
            transient_bytes=int(record["transient_bytes"]),
            outputs_sha256=str(record["outputs_sha256"]),
            inputs=list(record["inputs"]),
        )

    @property
    def non_constant_bytes(self) -> int:
        return self.peak_bytes - self.constant_bytes


# (module, function, input specs or None, seed, where to save the outputs or None) -> the run
Runner = Callable[[Path, str | None, "list[str] | None", int, "Path | None"], Run]


def runner(target: Target) -> Runner | None:
    """How a module for ``target`` runs here, each run in a fresh process;
    None when it cannot run here."""
    if target.runnable == "local":
        return lambda vmfb, fn, inputs, seed, save: Run.of(
            measure(vmfb, fn, inputs=inputs, seed=seed, save_outputs=save)
        )
    if target.runnable == "qemu-aarch64":
        return lambda vmfb, fn, inputs, seed, save: Run.of(
            run_emulated(vmfb, target, fn, inputs, seed, save_outputs=save)
        )
    return None


@dataclass(frozen=True)
class Comparison:
    reference_peak: int
    bit_identical: bool
    max_rel_error: float | None  # only when compared by tolerance


def compare(run: Runner, module_run: Run, reference: Path, function: str, seed: int,
            outputs: Path | None, reference_outputs: Path | None) -> Comparison:  # fmt: skip
    """Runs the reference on the module's inputs and compares the outputs
    (within tolerance when ``outputs`` were saved)."""
    r = run(reference, function, module_run.inputs, seed, reference_outputs)
    err = None
    if outputs is not None and reference_outputs is not None:
        err = max_relative_error(outputs, reference_outputs)
    return Comparison(r.peak_bytes, r.outputs_sha256 == module_run.outputs_sha256, err)
