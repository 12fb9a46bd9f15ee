"""Run and measure on this machine, in IREE's Python runtime.

Every measurement runs in a fresh Python process: the allocator counters are
not reset between devices of one process, so a second measurement in the
same process would start at the first one's peak. ``local-sync`` is used
because ``local-task`` misses queue allocations in its statistics.

The peak is split into its parts by reading the counters at three moments:
after the module is loaded and initialised (constants staged from the
module), after the inputs are placed on the device, and after the call.

The child (``python -m serenity_mlir.runtime.local``) prints one JSON object:
the figures, or ``{"error": ...}`` for a problem with the user's module or
inputs, which the parent raises as an InputError.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from serenity_mlir.errors import CompilerToolError, InputError
from serenity_mlir.ir.tensors import TensorSpec
from serenity_mlir.ir.tools import run_tool
from serenity_mlir.runtime.modules import entry_function, input_specs, random_inputs, run_record


def _load(vmfb: Path, config: Any) -> Any:
    import iree.runtime as rt

    try:
        return rt.VmModule.copy_buffer(config.vm_instance, vmfb.read_bytes())
    except Exception as e:  # noqa: BLE001 - the binding raises plain RuntimeError/ValueError
        raise InputError(f"{vmfb}: not an IREE module for this machine's runtime ({e})") from None


def _call(fn: Any, args: list[Any], vmfb: Path) -> list[Any]:
    try:
        r = fn(*args)
    except Exception as e:  # noqa: BLE001 - the binding raises plain RuntimeError/ValueError
        raise InputError(f"{vmfb}: the call failed in IREE's runtime: {e}") from None
    if r is None:
        return []  # a function without results
    return list(r) if isinstance(r, (list, tuple)) else [r]


def _measure_in_process(
    vmfb: Path, function: str | None, inputs: list[str] | None, seed: int, repeat: int, save_outputs: Path | None
) -> dict[str, Any]:
    import iree.runtime as rt
    import numpy as np

    device = rt.get_device("local-sync", cache=False)
    config = rt.Config(device=device)
    vm_module = _load(vmfb, config)
    function = entry_function(vmfb, list(vm_module.function_names), function)
    specs = input_specs(vmfb, vm_module.lookup_function(function).reflection, inputs)
    try:
        context = rt.SystemContext(vm_modules=[vm_module], config=config)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{vmfb}: cannot be loaded on this machine's local-sync device ({e})") from None
    fn = context.modules.module[function]
    after_init = dict(device.allocator.statistics)
    args = [rt.asdevicearray(device, a) for a in random_inputs(specs, seed)]
    after_inputs = dict(device.allocator.statistics)
    t0 = time.perf_counter()
    results = _call(fn, args, vmfb)
    call_seconds = time.perf_counter() - t0  # the first call: cold, an upper bound on a warm one
    after_call = dict(device.allocator.statistics)
    host = [np.asarray(r.to_host()) for r in results]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for x in _call(fn, args, vmfb):
            x.to_host()
        times.append(time.perf_counter() - t0)
    if save_outputs is not None:
        np.savez(save_outputs, *host)
    record = run_record(
        vmfb,
        function,
        specs,
        seed,
        peak=int(after_call["device_bytes_peak"]),
        constants=int(after_init["device_bytes_peak"]),
        input_bytes=int(after_inputs["device_bytes_allocated"]) - int(after_init["device_bytes_allocated"]),
        outputs=host,
    )
    record["call_seconds"] = call_seconds
    record["latency_seconds_median"] = sorted(times)[len(times) // 2] if times else None
    record["latency_runs"] = len(times)
    return record


def run_child(args: list[str], what: str, timeout: float, module: str = __name__) -> dict[str, Any]:
    """Runs ``module`` (by default this one) as a fresh process, so the IREE
    runtime and its allocator statistics stay out of this process, and reads
    its JSON answer: an ``error`` key is the input's fault (InputError), any
    other failure the tool's (CompilerToolError with its stderr)."""
    cmd = [sys.executable, "-m", module, *args]
    proc = run_tool(what, cmd, timeout, check=False)
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "error" in answer:
        raise InputError(str(answer["error"]))
    if proc.returncode != 0 or not isinstance(answer, dict):
        raise CompilerToolError(what, cmd, proc.stderr)
    return answer


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
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a module file")
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    if seed < 0 or repeat < 0:
        raise InputError(f"--seed and --repeat must be integers >= 0, got {seed} and {repeat}")
    args = [str(p), "--seed", str(seed), "--repeat", str(repeat)]
    if function:
        args += ["--function", function]
    for t in inputs or []:
        args += ["--input", t]
    if save_outputs:
        args += ["--save-outputs", str(save_outputs)]
    return run_child(args, f"running {p.name} in the IREE runtime", timeout)


def _latency_in_process(vmfbs: list[Path], function: str, inputs: list[str], seed: int, repeat: int) -> dict[str, Any]:
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
        context = rt.SystemContext(vm_modules=[_load(p, config)], config=config)
        fns.append((p, context.modules.module[function]))

    def call(p: Path, fn: Any) -> float:
        t0 = time.perf_counter()
        for x in _call(fn, args, p):
            x.to_host()
        return time.perf_counter() - t0

    for p, fn in fns:
        call(p, fn)  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for k in range(repeat):
        for j in range(len(fns)):
            i = (j + k) % len(fns)
            times[i].append(call(*fns[i]))
    return {
        "latency_seconds_median": [sorted(t)[len(t) // 2] if t else None for t in times],
        "latency_runs": repeat,
    }


def compare_latency(
    vmfbs: list[Path], function: str, inputs: list[str], seed: int = 0, repeat: int = 20, timeout: float = 600
) -> list[float | None]:
    """Median latencies of ``vmfbs`` measured side by side in one fresh process."""
    args = [*map(str, vmfbs), "--latency", "--function", function, "--seed", str(seed), "--repeat", str(repeat)]
    for t in inputs:
        args += ["--input", t]
    medians: list[float | None] = run_child(args, f"timing {len(vmfbs)} modules in the IREE runtime", timeout)[
        "latency_seconds_median"
    ]
    return medians


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serenity_mlir.runtime.local")
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
        out = {"error": str(e)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
