"""Running a module with IREE's ``iree-run-module`` tool, and timing its
calls with ``iree-benchmark-module``.

Used where the Python runtime cannot go: a module for another CPU run under
an emulator (``prefix``, e.g. qemu). Inputs and outputs pass as .npy files;
the figures are read from ``--print_statistics``. Same result record as the
in-process runner (:mod:`serenity_mlir.runtime.modules`).

:func:`benchmark_module` times the invocation alone (the module is loaded
and the inputs placed before the clock starts), on the host or behind the
same ``prefix``: the compile job's latency fields.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from serenity_mlir.errors import CompilerToolError, InputError
from serenity_mlir.ir.tensors import TensorSpec
from serenity_mlir.ir.tools import run_tool, tool_path
from serenity_mlir.runtime.modules import (
    entry_function,
    input_specs,
    module_constant_bytes,
    output_count,
    random_inputs,
    run_record,
)

_STAT_LINE = re.compile(r"^\s*([A-Z_|]+):\s*(\d+)B peak\s*/\s*(\d+)B allocated", re.MULTILINE)


def parse_statistics(text: str) -> dict[str, int]:
    """``--print_statistics`` of iree-run-module: peak bytes by memory type
    (``DEVICE_LOCAL``, ``HOST_LOCAL``)."""
    return {m.group(1): int(m.group(2)) for m in _STAT_LINE.finditer(text)}


def _module_signature(vmfb: Path, function: str | None, given: list[str] | None) -> tuple[str, list[Any], int]:
    """(function, input specs, number of results), read from the module's
    bytecode with the host's VM (no device or executables needed)."""
    import iree.runtime as rt

    try:
        module = rt.VmModule.copy_buffer(rt.VmInstance(), vmfb.read_bytes())
    except Exception as e:  # noqa: BLE001 - the binding raises plain RuntimeError/ValueError
        raise InputError(f"{vmfb}: not an IREE module ({e})") from None
    function = entry_function(vmfb, list(module.function_names), function)
    fn = module.lookup_function(function)
    refl = fn.reflection
    m = re.search(r"\(0\w*?_(\w*)\)", repr(fn))  # calling convention, e.g. (0r_r)
    return function, input_specs(vmfb, refl, given), output_count(refl, len(m.group(1)) if m else 1)


def _input_flags(specs: list[Any], seed: int, folder: Path) -> list[str]:
    """The seeded inputs every runner makes, saved as .npy files in
    ``folder``, as ``--input=@FILE`` flags."""
    import numpy as np

    flags = []
    for i, a in enumerate(random_inputs(specs, seed)):
        np.save(folder / f"in{i}.npy", a)
        flags.append(f"--input=@{folder / f'in{i}.npy'}")
    return flags


def run_iree_run_module(
    vmfb: str | Path,
    function: str | None = None,
    inputs: list[str] | None = None,
    seed: int = 0,
    prefix: list[str] | None = None,
    run_module: str | Path | None = None,
    timeout: float = 600,
    save_outputs: str | Path | None = None,
) -> dict[str, Any]:
    """Runs ``vmfb`` with an ``iree-run-module`` (the host's, or another one
    behind ``prefix`` such as qemu) on ``local-sync`` with the seeded inputs
    every runner makes, and returns the same record as ``runtime.measure``
    (``save_outputs`` writes the outputs as an .npz, as it does)."""
    import numpy as np

    p = Path(vmfb)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    function, specs, n_out = _module_signature(p, function, inputs)
    tool = str(run_module) if run_module else tool_path("iree-run-module")
    with tempfile.TemporaryDirectory(prefix="serenity-run-") as d:
        cmd = [*(prefix or []), tool, "--device=local-sync", f"--module={p.resolve()}", f"--function={function}"]
        cmd += _input_flags(specs, seed, Path(d))
        outs = [Path(d) / f"out{i}.npy" for i in range(n_out)]
        cmd += [f"--output=@{o}" for o in outs] + ["--print_statistics"]
        t0 = time.perf_counter()
        proc = run_tool(f"running {p.name} with iree-run-module", cmd, timeout, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise CompilerToolError(f"running {p.name} with iree-run-module", cmd, proc.stderr + proc.stdout)
        stats = parse_statistics(proc.stdout + proc.stderr)
        if "DEVICE_LOCAL" not in stats:
            raise CompilerToolError(f"reading the statistics of {p.name}", cmd, proc.stdout + proc.stderr)
        arrays = []
        for o in outs:
            if not o.is_file():
                raise CompilerToolError(f"running {p.name}: no output {o.name} written", cmd, proc.stderr)
            arrays.append(np.load(o))
        if save_outputs is not None:
            np.savez(save_outputs, *arrays)
    # iree-run-module stages the module's constants and the inputs into
    # device memory and reads the results back into host memory, so
    # DEVICE_LOCAL peak = constants + inputs + IREE's slab (which holds the
    # results) and HOST_LOCAL = the results' copies.
    record = run_record(
        p,
        function,
        specs,
        seed,
        peak=stats["DEVICE_LOCAL"],
        constants=module_constant_bytes(p),
        input_bytes=sum(s.nbytes for s in specs),
        outputs=arrays,
    )
    record["host_bytes_peak"] = stats.get("HOST_LOCAL", 0)
    record["weights_staged"] = True  # constant_bytes are in device_bytes_peak
    record["run_seconds"] = round(seconds, 3)
    record["command"] = cmd[: len(prefix or []) + 1]
    return record


# Google Benchmark's time units, in seconds.
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_benchmark(text: str) -> list[float]:
    """Seconds per call of each repetition in ``iree-benchmark-module
    --benchmark_format=json`` output (the repetitions' own rows: each the
    mean wall time of that repetition's calls; aggregate rows left out)."""
    try:
        rows = json.loads(text)["benchmarks"]
        return [
            float(r["real_time"]) * _UNITS[r["time_unit"]]
            for r in rows
            if r.get("run_type", "iteration") == "iteration"
        ]
    except (ValueError, KeyError, TypeError):
        return []


def benchmark_module(
    vmfb: str | Path,
    function: str,
    inputs: list[str],
    seed: int = 0,
    repetitions: int = 5,
    min_seconds: float = 0.005,
    prefix: list[str] | None = None,
    benchmark_tool: str | Path | None = None,
    timeout: float = 600,
) -> list[float]:
    """Seconds per call of ``function`` in ``iree-benchmark-module`` (the
    host's, or another behind ``prefix`` such as qemu) on ``local-sync`` with
    the seeded inputs every runner makes: one warm-up call, then
    ``repetitions`` repetitions, each calling until ``min_seconds`` have passed
    (at least once); one wall-time mean per call for each repetition. Only the
    invocation is timed: loading the module and reading the inputs are not."""
    p = Path(vmfb)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    specs = [TensorSpec.parse(t) for t in inputs]  # as the module's run recorded them: no runtime import here
    tool = str(benchmark_tool) if benchmark_tool else tool_path("iree-benchmark-module")
    what = f"timing {p.name} with iree-benchmark-module"
    with tempfile.TemporaryDirectory(prefix="serenity-bench-") as d:
        cmd = [*(prefix or []), tool, "--device=local-sync", f"--module={p.resolve()}", f"--function={function}"]
        cmd += _input_flags(specs, seed, Path(d))
        cmd += [
            f"--benchmark_repetitions={repetitions}",
            f"--benchmark_min_time={min_seconds:g}s",
            "--benchmark_min_warmup_time=1e-9",  # one warm-up call before the first repetition
            "--benchmark_format=json",
        ]
        proc = run_tool(what, cmd, timeout, check=False)
    times = parse_benchmark(proc.stdout)
    if proc.returncode != 0 or not times:
        raise CompilerToolError(what, cmd, proc.stderr + proc.stdout)
    return times
