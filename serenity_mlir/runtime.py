"""Step 6, run and measure: a compiled module in IREE's runtime.

Every measurement runs in a fresh Python process: the allocator counters are
not reset between devices of one process, so a second measurement in the
same process would start at the first one's peak. ``local-sync`` is used
because ``local-task`` misses queue allocations in its statistics.

The peak is split into its parts by reading the counters at three moments:
after the module is loaded and initialised (constants staged from the
module), after the inputs are placed on the device, and after the call.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serenity_mlir.errors import CompilerToolError, InputError

SIGNATURE_INPUTS = "serenity.inputs"
SIGNATURE_OUTPUTS = "serenity.outputs"

_DTYPES = {
    "f32": "float32",
    "f16": "float16",
    "f64": "float64",
    "bf16": "float32",
    "i8": "int8",
    "i16": "int16",
    "i32": "int32",
    "i64": "int64",
    "si8": "int8",
    "si32": "int32",
    "si64": "int64",
    "ui8": "uint8",
    "i1": "bool",
}


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str  # MLIR element type, e.g. f32

    @staticmethod
    def parse(text: str) -> TensorSpec:
        """``1x8x32x32xf32`` -> shape (1, 8, 32, 32), dtype f32."""
        parts = text.strip().split("x")
        try:
            shape = tuple(int(d) for d in parts[:-1])
        except ValueError:
            raise InputError(f"bad tensor spec '{text}' (expected e.g. 1x8x32x32xf32)") from None
        if parts[-1] not in _DTYPES:
            raise InputError(f"bad tensor spec '{text}': unsupported element type '{parts[-1]}'")
        return TensorSpec(shape, parts[-1])

    def __str__(self) -> str:
        return "x".join([*map(str, self.shape), self.dtype])

    @property
    def nbytes(self) -> int:
        import numpy as np

        n = 1
        for d in self.shape:
            n *= d
        return n * np.dtype(_DTYPES[self.dtype]).itemsize


def random_inputs(specs: list[TensorSpec], seed: int) -> list[Any]:
    """Seeded inputs: normal floats, small non-negative integers, booleans."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        dt = np.dtype(_DTYPES[s.dtype])
        if dt.kind == "f":
            out.append(rng.standard_normal(s.shape).astype(dt))
        elif dt.kind == "b":
            out.append(rng.integers(0, 2, s.shape).astype(dt))
        else:
            out.append(rng.integers(0, 10, s.shape).astype(dt))
    return out


def _measure_in_process(
    vmfb: Path, function: str | None, inputs: list[str] | None, seed: int, repeat: int, save_outputs: Path | None
) -> dict[str, Any]:
    import iree.runtime as rt
    import numpy as np

    device = rt.get_device("local-sync", cache=False)
    config = rt.Config(device=device)
    vm_module = rt.VmModule.copy_buffer(config.vm_instance, vmfb.read_bytes())
    names = [n for n in vm_module.function_names if not n.startswith("__") and not n.endswith("$async")]
    if function is None:
        if len(names) != 1:
            raise InputError(f"{vmfb}: the module exports {', '.join(names)}: pick one with --function")
        function = names[0]
    elif function not in names:
        raise InputError(f"{vmfb}: no function '{function}' (it exports: {', '.join(names)})")
    reflection = vm_module.lookup_function(function).reflection
    if inputs is None:
        if SIGNATURE_INPUTS not in reflection:
            raise InputError(
                f"{vmfb}: the module does not record its input shapes (not built by serenity-mlir): "
                "give them with --input, e.g. --input 1x8x32x32xf32"
            )
        inputs = [t for t in reflection[SIGNATURE_INPUTS].split(",") if t]
    specs = [TensorSpec.parse(t) for t in inputs]
    context = rt.SystemContext(vm_modules=[vm_module], config=config)
    fn = context.modules.module[function]
    after_init = dict(device.allocator.statistics)
    args = [rt.asdevicearray(device, a) for a in random_inputs(specs, seed)]
    after_inputs = dict(device.allocator.statistics)
    results = fn(*args)
    after_call = dict(device.allocator.statistics)
    if not isinstance(results, (list, tuple)):
        results = [results]
    host = [np.asarray(r.to_host()) for r in results]
    digest = hashlib.sha256()
    for h in host:
        digest.update(str(h.dtype).encode())
        digest.update(str(h.shape).encode())
        digest.update(np.ascontiguousarray(h).tobytes())
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = fn(*args)
        if isinstance(r, (list, tuple)):
            for x in r:
                x.to_host()
        else:
            r.to_host()
        times.append(time.perf_counter() - t0)
    if save_outputs is not None:
        np.savez(save_outputs, *host)
    peak = int(after_call["device_bytes_peak"])
    constants = int(after_init["device_bytes_peak"])
    input_bytes = int(after_inputs["device_bytes_allocated"]) - int(after_init["device_bytes_allocated"])
    output_bytes = sum(int(h.nbytes) for h in host)
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
        "transient_bytes": max(0, peak - constants - input_bytes - output_bytes),
        "outputs_sha256": digest.hexdigest(),
        "latency_seconds_median": sorted(times)[len(times) // 2] if times else None,
        "latency_runs": len(times),
    }


def measure(
    vmfb: str | Path,
    function: str | None = None,
    inputs: list[str] | None = None,
    seed: int = 0,
    repeat: int = 0,
    save_outputs: str | Path | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Measures ``vmfb`` in a fresh process and returns the figures."""
    p = Path(vmfb)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    cmd = [sys.executable, "-m", "serenity_mlir.runtime", str(p), "--seed", str(seed), "--repeat", str(repeat)]
    if function:
        cmd += ["--function", function]
    for t in inputs or []:
        cmd += ["--input", t]
    if save_outputs:
        cmd += ["--save-outputs", str(save_outputs)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CompilerToolError(f"running {p.name} (timed out after {timeout} s)", cmd, "") from None
    if proc.returncode == 3:
        raise InputError(proc.stderr.strip().removeprefix("error: "))
    if proc.returncode != 0:
        raise CompilerToolError(f"running {p.name} in the IREE runtime", cmd, proc.stderr)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _latency_in_process(
    vmfbs: list[Path], function: str, inputs: list[str], seed: int, repeat: int
) -> dict[str, Any]:
    """Median call latency of several modules, interleaved in one process:
    every round calls each module once (rotating which goes first), so
    machine noise hits them alike and the ratios are fair."""
    import iree.runtime as rt

    device = rt.get_device("local-sync", cache=False)
    config = rt.Config(device=device)
    specs = [TensorSpec.parse(t) for t in inputs]
    args = [rt.asdevicearray(device, a) for a in random_inputs(specs, seed)]
    fns = []
    for p in vmfbs:
        vm_module = rt.VmModule.copy_buffer(config.vm_instance, p.read_bytes())
        context = rt.SystemContext(vm_modules=[vm_module], config=config)
        fns.append(context.modules.module[function])

    def call(fn: Any) -> float:
        t0 = time.perf_counter()
        r = fn(*args)
        for x in r if isinstance(r, (list, tuple)) else [r]:
            x.to_host()
        return time.perf_counter() - t0

    for fn in fns:
        call(fn)  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for k in range(repeat):
        for j in range(len(fns)):
            i = (j + k) % len(fns)
            times[i].append(call(fns[i]))
    return {
        "latency_seconds_median": [sorted(t)[len(t) // 2] if t else None for t in times],
        "latency_runs": repeat,
    }


def compare_latency(
    vmfbs: list[Path], function: str, inputs: list[str], seed: int = 0, repeat: int = 20, timeout: float = 600
) -> list[float | None]:
    """Median latencies of ``vmfbs`` measured side by side in one fresh process."""
    cmd = [sys.executable, "-m", "serenity_mlir.runtime", *map(str, vmfbs), "--latency", "--function", function]
    cmd += ["--seed", str(seed), "--repeat", str(repeat)]
    for t in inputs:
        cmd += ["--input", t]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CompilerToolError(f"timing {len(vmfbs)} modules (timed out after {timeout} s)", cmd, "") from None
    if proc.returncode != 0:
        raise CompilerToolError("timing modules in the IREE runtime", cmd, proc.stderr)
    medians: list[float | None] = json.loads(proc.stdout)["latency_seconds_median"]
    return medians


# Tolerance of a rewritten (re-associated) float32 graph against the original.
REWRITE_RTOL = 1e-5


def max_relative_error(outputs: str | Path, reference: str | Path) -> float:
    """The largest normwise relative error over the outputs saved by two
    ``measure(save_outputs=...)`` runs: max |a - b| / max |b| per output.

    Normwise rather than element-wise: an element that should be 0 comes out
    as 1e-9 after a different summation order, which is no error at all,
    while an element-wise ratio would call it infinite."""
    import numpy as np

    a = np.load(outputs)
    b = np.load(reference)
    if sorted(a.files) != sorted(b.files):
        raise InputError(f"{outputs} and {reference} hold different outputs")
    worst = 0.0
    for k in b.files:
        x, y = a[k].astype(np.float64), b[k].astype(np.float64)
        if x.shape != y.shape:
            raise InputError(f"output {k}: shape {x.shape} differs from the reference's {y.shape}")
        scale = float(np.max(np.abs(y))) if y.size else 0.0
        diff = float(np.max(np.abs(x - y))) if y.size else 0.0
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serenity_mlir.runtime")
    ap.add_argument("vmfb", type=Path, nargs="+")
    ap.add_argument("--function")
    ap.add_argument("--input", action="append")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=0)
    ap.add_argument("--save-outputs", type=Path)
    ap.add_argument("--latency", action="store_true", help="time several modules side by side")
    a = ap.parse_args(argv)
    try:
        if a.latency:
            if not a.function or not a.input:
                raise InputError("--latency needs --function and --input")
            out = _latency_in_process(a.vmfb, a.function, a.input, a.seed, a.repeat)
        elif len(a.vmfb) != 1:
            raise InputError("give one module (or --latency to time several)")
        else:
            out = _measure_in_process(a.vmfb[0], a.function, a.input, a.seed, a.repeat, a.save_outputs)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
