"""Steps 6-7, run and compare: the built module, and IREE's default build of
the same model as the reference, run on the same seeded inputs.

A scheduled module must give bit-identical outputs (reordering changes no
arithmetic); a rewritten one sums in another order and is compared within a
normwise relative tolerance instead.

The latency is timed apart from those runs, with ``iree-benchmark-module``
(:func:`time_latency`): the shipped module and the reference on the same
runner and the same seeded inputs, the invocation alone.

The runtime answers with its wire format (the JSON a measuring child
prints); this stage turns it into a :class:`Run` at once, so nothing above
reads figures by string key.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serenity_mlir.errors import CompilerToolError, InputError
from serenity_mlir.runtime.compare import max_relative_error
from serenity_mlir.runtime.local import measure
from serenity_mlir.runtime.qemu import benchmark_emulated, run_emulated
from serenity_mlir.runtime.run_module import benchmark_module
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
    # One call's wall time in this run: the first (cold) call in the Python
    # runtime, the whole iree-run-module process under an emulator. An upper
    # bound on a warm call, used to keep the latency timing short.
    call_seconds: float | None = None
    # The module's weights, when the runner copied them into device memory
    # (iree-run-module stages them; the in-process runtime maps the file):
    # in the peak, never in the memory model's prediction.
    staged_weight_bytes: int = 0

    @property
    def peak_without_staged_weights(self) -> int:
        """The peak as the memory model predicts it."""
        return self.peak_bytes - self.staged_weight_bytes

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
            call_seconds=_seconds(record.get("call_seconds", record.get("run_seconds"))),
            staged_weight_bytes=int(record["constant_bytes"]) if record.get("weights_staged") else 0,
        )

    @property
    def non_constant_bytes(self) -> int:
        return self.peak_bytes - self.constant_bytes


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


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
    reference_call_seconds: float | None = None  # the reference run's Run.call_seconds


def compare(run: Runner, module_run: Run, reference: Path, function: str, seed: int,
            outputs: Path | None, reference_outputs: Path | None) -> Comparison:  # fmt: skip
    """Runs the reference on the module's inputs and compares the outputs
    (within tolerance when ``outputs`` were saved)."""
    r = run(reference, function, module_run.inputs, seed, reference_outputs)
    err = None
    if outputs is not None and reference_outputs is not None:
        err = max_relative_error(outputs, reference_outputs)
    return Comparison(r.peak_bytes, r.outputs_sha256 == module_run.outputs_sha256, err, r.call_seconds)


# (module, function, input specs, seed, repetitions) -> seconds per call, one per repetition
Timer = Callable[[Path, str, "list[str]", int, int], "list[float]"]

LATENCY_REPETITIONS = 5  # repetitions per module, each >= 5 ms of calls
LATENCY_CAP_SECONDS = 2.0  # fewer repetitions (down to 1) when a call is slow


def timer(target: Target) -> Timer | None:
    """How a module for ``target`` is timed here (``iree-benchmark-module``,
    under qemu for Cortex-A); None when it cannot run here."""
    if target.runnable == "local":
        return lambda vmfb, fn, inputs, seed, reps: benchmark_module(vmfb, fn, inputs, seed, reps)
    if target.runnable == "qemu-aarch64":
        return lambda vmfb, fn, inputs, seed, reps: benchmark_emulated(vmfb, target, fn, inputs, seed, reps)
    return None


def repetitions(call_seconds: float | None) -> int:
    """:data:`LATENCY_REPETITIONS`, fewer when the two warm-up calls (one
    per round) and that many calls (one per repetition at least) would pass
    :data:`LATENCY_CAP_SECONDS` per module at ``call_seconds`` a call."""
    if not call_seconds or call_seconds <= 0:
        return LATENCY_REPETITIONS
    return max(1, min(LATENCY_REPETITIONS, int(LATENCY_CAP_SECONDS / call_seconds) - 2))


@dataclass(frozen=True)
class Latency:
    """Median seconds per call of the shipped module and of the reference
    (None: not timed; ``reason`` says why)."""

    seconds: float | None
    reference_seconds: float | None
    repetitions: int
    reason: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.seconds is None or not self.reference_seconds:
            return None
        return self.seconds / self.reference_seconds

    def report_fields(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "latency_seconds": None if self.seconds is None else round(self.seconds, 9),
            "reference_latency_seconds": None if self.reference_seconds is None else round(self.reference_seconds, 9),
            "latency_ratio": None if ratio is None else round(ratio, 4),
        }


def time_latency(
    clock: Timer,
    shipped: Path,
    reference: Path | None,
    function: str,
    module_run: Run,
    seed: int,
    call_seconds: float | None,
) -> Latency:
    """Times the shipped module and the reference (None: no reference was
    built) on ``module_run``'s inputs: the median of each one's repetitions.
    The two are timed in two rounds, shipped-reference then
    reference-shipped, half the repetitions each, so load that comes and goes
    on the machine falls on both alike. When the shipped module is the
    reference, it is timed once (ratio 1). A failing timing is a reason, not
    an error: the module itself ran."""
    reps = repetitions(call_seconds)

    def times(vmfb: Path, n: int) -> list[float]:
        return clock(vmfb, function, module_run.inputs, seed, n)

    try:
        if reference is None or reference == shipped:
            seconds = statistics.median(times(shipped, reps))
            if reference is None:
                why = "latency_ratio: no reference build to time against (--no-verify-outputs)"
                return Latency(seconds, None, reps, why)
            return Latency(seconds, seconds, reps)
        half = math.ceil(reps / 2)
        ours, ref = times(shipped, half), times(reference, half)
        if reps > 1:
            ref += times(reference, reps - half)
            ours += times(shipped, reps - half)
    except (CompilerToolError, InputError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return Latency(None, None, reps, f"latency not timed: {first}")
    return Latency(statistics.median(ours), statistics.median(ref), len(ours))
