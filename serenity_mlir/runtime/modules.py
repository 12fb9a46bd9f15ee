"""What every way of running a module shares: picking the entry function,
reading its recorded signature, seeded inputs, hashing outputs, and the
result record (the same keys whether the module ran in process on the host
or in ``iree-run-module`` under qemu)."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError
from serenity_mlir.ir.entry import ENTRY_INPUTS, ENTRY_OUTPUTS
from serenity_mlir.ir.reflection import SIGNATURE_INPUTS, SIGNATURE_OUTPUTS, recorded_specs
from serenity_mlir.ir.tensors import NUMPY_DTYPES, TensorSpec

# An --arena-entry build's layout, in its function's reflection (backend.arena writes it).
ARENA_REFLECTION = "serenity.arena_entry"
# What IREE exports beside a public function: its async form, and an arena
# entry point's query of its transient bytes.
_IREE_EXPORT_SUFFIXES = ("$async", "$async_transients_size")


def entry_function(vmfb: Path, names: list[str], function: str | None) -> str:
    """The function to run: ``function`` if the module exports it, else the
    only public one."""
    public = [n for n in names if not n.startswith("__") and not n.endswith(_IREE_EXPORT_SUFFIXES)]
    if function is None:
        if len(public) != 1:
            shown = ", ".join(public) or "no function"
            raise InputError(f"{vmfb}: the module exports {shown}: pick one with --function")
        return public[0]
    if function not in public:
        raise InputError(f"{vmfb}: no function '{function}' (it exports: {', '.join(public)})")
    return function


def recorded_inputs(reflection: dict[str, str]) -> list[str] | None:
    """The function's inputs as recorded: at import (every argument, used or
    not: :mod:`serenity_mlir.ir.entry`), else at the flow phase (the
    arguments the body reads), else None."""
    entry = recorded_specs(reflection, ENTRY_INPUTS)
    return entry if entry is not None else recorded_specs(reflection, SIGNATURE_INPUTS)


def input_specs(vmfb: Path, reflection: dict[str, str], given: list[str] | None) -> list[TensorSpec]:
    """The inputs to make: the ones given, or the ones the pipeline recorded."""
    if ARENA_REFLECTION in reflection:
        # Its one argument is the arena, with the inputs inside at offsets:
        # runtime.arena runs it (the compile does), not a plain call.
        raise InputError(
            f"{vmfb}: an arena entry point (built with --arena-entry): its one argument is the arena, not the "
            "inputs, so it cannot be run like a normal entry point; the compile measures it (its report's "
            "measured_peak_bytes and arena_entry)"
        )
    recorded = recorded_inputs(reflection)
    if given is None:
        given = recorded
        if given is None:
            raise InputError(
                f"{vmfb}: the module does not record its input shapes (not built by serenity-mlir): "
                "give them with --input, e.g. --input 1x8x32x32xf32"
            )
    specs = [TensorSpec.parse(t) for t in given]
    if recorded is not None and [str(s) for s in specs] != recorded:
        raise InputError(
            f"{vmfb}: --input {','.join(map(str, specs)) or '(none)'} does not match the module's inputs "
            f"{','.join(recorded) or '(none)'}"
        )
    return specs


def output_count(reflection: dict[str, str], fallback: int) -> int:
    outs = recorded_specs(reflection, ENTRY_OUTPUTS)
    if outs is None:
        outs = recorded_specs(reflection, SIGNATURE_OUTPUTS)
    return len(outs) if outs is not None else fallback


# Seeded inputs above this size are refused: they would exhaust memory
# before IREE ever ran (a typo such as 100000x100000x1000xf32).
MAX_INPUT_BYTES = 4 << 30


def random_inputs(specs: list[TensorSpec], seed: int) -> list[Any]:
    """Seeded inputs: normal floats, small non-negative integers, booleans."""
    import numpy as np

    total = sum(s.nbytes for s in specs)
    if total > MAX_INPUT_BYTES:
        raise InputError(
            f"the inputs {', '.join(map(str, specs))} need {total:,} B, over the {MAX_INPUT_BYTES:,} B this "
            "tool makes for a measurement"
        )
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        name = NUMPY_DTYPES[s.dtype]
        if name == "bfloat16":
            import ml_dtypes

            dt = np.dtype(ml_dtypes.bfloat16)
        else:
            dt = np.dtype(name)
        if dt.kind == "f" or name == "bfloat16":
            out.append(rng.standard_normal(s.shape).astype(dt))
        elif dt.kind == "b":
            out.append(rng.integers(0, 2, s.shape).astype(dt))
        else:
            out.append(rng.integers(0, 10, s.shape).astype(dt))
    return out


def outputs_digest(arrays: list[Any]) -> str:
    """One hash over the outputs' dtypes, shapes and bytes: equal iff bit-identical."""
    import numpy as np

    digest = hashlib.sha256()
    for h in arrays:
        digest.update(str(h.dtype).encode())
        digest.update(str(h.shape).encode())
        digest.update(np.ascontiguousarray(h).tobytes())
    return digest.hexdigest()


def module_constant_bytes(vmfb: str | Path) -> int | None:
    """Bytes of constant data in a .vmfb (its ``_const*.bin`` members: IREE
    writes the module as a zip-compatible archive), or None if unreadable."""
    try:
        with zipfile.ZipFile(vmfb) as z:
            return sum(i.file_size for i in z.infolist() if re.fullmatch(r"_const.*\.bin", i.filename))
    except (OSError, zipfile.BadZipFile):
        return None


def run_record(
    vmfb: Path,
    function: str,
    specs: list[TensorSpec],
    seed: int,
    peak: int,
    constants: int | None,
    input_bytes: int,
    outputs: list[Any],
) -> dict[str, Any]:
    """The result of one run, the same keys for every runner."""
    output_bytes = sum(int(h.nbytes) for h in outputs)
    return {
        "vmfb": str(vmfb),
        "function": function,
        "inputs": [str(s) for s in specs],
        "seed": seed,
        "device_bytes_peak": peak,
        "constant_bytes": constants,
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        # What the call itself added on top of constants, inputs and outputs:
        # IREE's transient slab (and any staging it did).
        "transient_bytes": max(0, peak - constants - input_bytes - output_bytes) if constants is not None else None,
        "outputs_sha256": outputs_digest(outputs),
    }
