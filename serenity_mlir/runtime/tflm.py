"""TFLite Micro's own numbers for a .tflite model: its arena and its outputs.

TFLite Micro (TFLM) is the runtime microcontroller users already ship; its
Python interpreter (``pip install tflite-micro``) runs a ``.tflite`` file on
the host with TFLM's kernels and memory planner. Built with the recording
allocator, it prints what it planned (``print_allocations``, on the C
stderr)::

    [RecordingMicroAllocator] Arena allocation total 398240 bytes
    [RecordingMicroAllocator] Arena allocation head 393216 bytes
    [RecordingMicroAllocator] Arena allocation tail 5024 bytes
    [RecordingMicroAllocator] 'TfLiteEvalTensor data' used 624 bytes with alignment overhead (...)

The head is the non-persistent part the planner lays out: every activation
tensor, the input and the output included, and the kernels' scratch
buffers; the tail holds TFLM's persistent structures (tensor and node
records, quantisation parameters the kernels precompute). :func:`run_tflm`
runs the model once on given or seeded inputs and returns both, with the
outputs. The package exposes no accessor for these numbers, so they are read
from that printout (captured from file descriptor 2).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError
from serenity_mlir.files import captured_stderr

TFLM_INSTALL = "pip install tflite-micro"
# A host-side arena far above what the planner needs for the models here; TFLM
# only uses what it plans (head + tail), the rest is untouched.
DEFAULT_ARENA_BYTES = 64 << 20

_LINE = re.compile(r"\[RecordingMicroAllocator\] Arena allocation (total|head|tail) (\d+) bytes")
_PART = re.compile(r"\[RecordingMicroAllocator\] '([^']+)' used (\d+) bytes")


@dataclass(frozen=True)
class TflmRun:
    """One TFLM invocation: the arena it planned and what it computed."""

    model: Path
    arena_head_bytes: int  # the planned tensors: activations, input, output, scratch
    arena_tail_bytes: int  # TFLM's persistent structures
    arena_total_bytes: int
    tail_parts: tuple[tuple[str, int], ...]  # the recording allocator's breakdown of the tail
    inputs: tuple[Any, ...]  # numpy arrays, as given to TFLM
    outputs: tuple[Any, ...]  # numpy arrays, in the model's output order


def _tflm_runtime() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise InputError(f"measuring with TFLite Micro needs its Python package: {TFLM_INSTALL}") from None
    return runtime


def require_tflm() -> None:
    """Raises InputError naming the install when TFLite Micro is missing
    (checked before a compile starts, not after it)."""
    _tflm_runtime()


def _details(get: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        try:
            out.append(get(len(out)))
        except IndexError:
            return out


def seeded_inputs(details: Sequence[dict[str, Any]], seed: int = 0) -> list[Any]:
    """Inputs for a model's input details: floats uniform in [-1, 1] (the range
    Keras image models take), integers uniform over their whole type (an int8
    model's quantised input covers its calibration range)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[Any] = []
    for d in details:
        dt = np.dtype(d["dtype"])
        shape = tuple(int(x) for x in d["shape"])
        if dt.kind == "f":
            out.append(rng.uniform(-1.0, 1.0, shape).astype(dt))
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, int(info.max) + 1, shape, dtype=dt))
        else:
            out.append(rng.integers(0, 2, shape).astype(dt))
    return out


def run_tflm(
    model: str | Path, inputs: Sequence[Any] | None = None, seed: int = 0, arena_size: int = DEFAULT_ARENA_BYTES
) -> TflmRun:
    """Runs ``model`` once with TFLM's interpreter (recording allocator) on
    ``inputs`` (default: :func:`seeded_inputs` with ``seed``) and returns the
    arena it planned and the outputs."""
    runtime = _tflm_runtime()
    p = Path(model)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    made, log = captured_stderr(lambda: runtime.Interpreter.from_file(str(p), arena_size=arena_size))
    if isinstance(made, Exception):
        raise InputError(f"{p}: TFLite Micro cannot load the model: {made} {_last_lines(log)}") from None
    ip = made
    in_details, log = captured_stderr(lambda: _details(ip.get_input_details))  # it prints the index error it raises
    if isinstance(in_details, Exception):
        raise InputError(f"{p}: TFLite Micro cannot read the model's inputs: {in_details} {_last_lines(log)}")
    args = list(inputs) if inputs is not None else seeded_inputs(in_details, seed)
    if len(args) != len(in_details):
        raise InputError(f"{p}: the model takes {len(in_details)} inputs, {len(args)} given")

    def invoke() -> list[Any]:
        for i, a in enumerate(args):
            ip.set_input(a, i)
        ip.invoke()
        outs = [ip.get_output(i).copy() for i in range(len(_details(ip.get_output_details)))]
        ip.print_allocations()
        return outs

    outs, log = captured_stderr(invoke)
    if isinstance(outs, Exception):
        raise InputError(f"{p}: TFLite Micro failed to run the model: {outs} {_last_lines(log)}") from None
    found = {k: int(v) for k, v in _LINE.findall(log)}
    if set(found) != {"total", "head", "tail"}:
        raise InputError(f"{p}: TFLite Micro printed no arena allocation (its output: {_last_lines(log)})")
    parts = tuple((name, int(n)) for name, n in _PART.findall(log))
    return TflmRun(
        model=p,
        arena_head_bytes=found["head"],
        arena_tail_bytes=found["tail"],
        arena_total_bytes=found["total"],
        tail_parts=parts,
        inputs=tuple(args),
        outputs=tuple(outs),
    )


def _last_lines(log: str, n: int = 3) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return ("(" + "; ".join(lines[-n:]) + ")") if lines else ""
