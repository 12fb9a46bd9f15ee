"""Running a module with IREE's ``iree-run-module`` tool.

Used where the Python runtime cannot go: a module for another CPU run under
an emulator (``prefix``, e.g. qemu). Inputs and outputs pass as .npy files;
the figures are read from ``--print_statistics``. Same result record as the
in-process runner (:mod:`serenity_mlir.runtime.modules`).
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

from serenity_mlir.errors import CompilerToolError, InputError
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
        for i, a in enumerate(random_inputs(specs, seed)):
            np.save(Path(d) / f"in{i}.npy", a)
            cmd.append(f"--input=@{Path(d) / f'in{i}.npy'}")
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
    record["run_seconds"] = round(seconds, 3)
    record["command"] = cmd[: len(prefix or []) + 1]
    return record
