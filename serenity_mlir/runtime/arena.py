"""Running an arena entry point (``--arena-entry``) on this machine.

The module's entry takes one buffer, the arena, that holds the input, the
results and IREE's transients; the layout (offsets, sizes, types) is in the
function's reflection (``serenity.arena_entry``, the report's
``arena_entry``). As a firmware caller does, the runner

1. allocates the arena itself: a numpy array, 64-byte aligned (IREE's
   buffers are; a misaligned arena was seen to crash), imported zero-copy
   with ``import_host_allocation`` on ``local-sync``;
2. writes the seeded inputs at their offsets, calls, and reads the results
   at theirs; twice, rewriting the input before the second call (its bytes
   are reused during the call), and checks that both calls agree.

The allocator counts only what IREE allocates itself (constants staged at
initialisation, anything outside the arena), so the peak reported is that
plus the arena: what the call needs in all, to compare with the predicted
arena + constants. An arena smaller than the module needs is refused by
IREE's range check on the arena (``OUT_OF_RANGE``) and raised here as an
InputError, not a crash.

Every run is a fresh process, like :mod:`.local` (the allocator's counters
are per process).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError
from serenity_mlir.ir.tensors import NUMPY_DTYPES, TensorSpec
from serenity_mlir.runtime.local import run_child
from serenity_mlir.runtime.modules import ARENA_REFLECTION, entry_function, outputs_digest, random_inputs, run_record

ALIGNMENT = 64


def arena_layout(reflection: dict[str, str], vmfb: Path) -> dict[str, Any]:
    """The arena layout a module's function records, or an InputError."""
    if ARENA_REFLECTION not in reflection:
        raise InputError(f"{vmfb}: not an arena entry point (built without --arena-entry)")
    layout: dict[str, Any] = json.loads(reflection[ARENA_REFLECTION])
    return layout


def _dtype(spec: TensorSpec) -> Any:
    import numpy as np

    name = NUMPY_DTYPES[spec.dtype]
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _run_in_process(
    vmfb: Path, function: str | None, seed: int, save_outputs: Path | None, arena_bytes: int | None
) -> dict[str, Any]:
    import iree.runtime as rt
    import numpy as np

    device = rt.get_device("local-sync", cache=False)
    config = rt.Config(device=device)
    try:
        module = rt.VmModule.copy_buffer(config.vm_instance, vmfb.read_bytes())
    except Exception as e:  # noqa: BLE001 - the binding raises plain RuntimeError/ValueError
        raise InputError(f"{vmfb}: not an IREE module for this machine's runtime ({e})") from None
    # IREE exports the arena's size query beside the entry (<fn>$async_transients_size).
    names = [n for n in module.function_names if not n.endswith("_transients_size")]
    function = entry_function(vmfb, names, function)
    fn = module.lookup_function(function)
    layout = arena_layout(fn.reflection, vmfb)
    need = int(layout["arena_bytes"])
    size = need if arena_bytes is None else arena_bytes
    inputs = [(TensorSpec.parse(i["type"]), int(i["offset"])) for i in layout["inputs"]]
    outputs = [(TensorSpec.parse(o["type"]), int(o["offset"])) for o in layout["outputs"]]
    for spec, offset in inputs + outputs:
        if offset + spec.nbytes > size:
            raise InputError(
                f"{vmfb}: an arena of {size:,} B cannot hold {spec} at offset {offset:,} "
                f"(the module needs {need:,} B)"
            )
    context = rt.SystemContext(vm_modules=[module], config=config)
    after_init = dict(device.allocator.statistics)
    raw = np.zeros(size + ALIGNMENT, np.uint8)
    start = (-raw.ctypes.data) % ALIGNMENT
    arena = raw[start : start + size]
    arena[:] = 0xAB  # not zero: a result the call did not write would show
    memory = rt.MemoryType.DEVICE_LOCAL | rt.MemoryType.HOST_VISIBLE
    buffer = device.allocator.import_host_allocation(arena, memory, rt.BufferUsage.DEFAULT)
    view = rt.HalBufferView(buffer, [size], rt.HalElementType.INT_8)
    values = random_inputs([s for s, _ in inputs], seed)
    results: list[list[Any]] = []
    for _call in range(2):
        for (spec, offset), x in zip(inputs, values, strict=True):
            arena[offset : offset + spec.nbytes] = np.ascontiguousarray(x).view(np.uint8).reshape(-1)
        args, rets = rt.VmVariantList(1), rt.VmVariantList(1)
        args.push_ref(view)
        try:
            context.vm_context.invoke(fn, args, rets)
        except Exception as e:  # noqa: BLE001 - the binding raises plain RuntimeError
            raise InputError(f"{vmfb}: the call with an arena of {size:,} B failed in IREE's runtime: {e}") from None
        results.append(
            [
                arena[offset : offset + spec.nbytes].view(_dtype(spec)).reshape(spec.shape).copy()
                for spec, offset in outputs
            ]
        )
    after_call = dict(device.allocator.statistics)
    if outputs_digest(results[0]) != outputs_digest(results[1]):
        raise InputError(f"{vmfb}: two calls on the same input gave different results")
    if save_outputs is not None:
        np.savez(save_outputs, *results[0])
    allocated = int(after_call["device_bytes_peak"])
    record = run_record(
        vmfb,
        function,
        [s for s, _ in inputs],
        seed,
        peak=allocated + size,
        constants=int(after_init["device_bytes_peak"]),
        input_bytes=sum(s.nbytes for s, _ in inputs),
        outputs=results[0],
    )
    # The slab's share of the arena, plus anything IREE allocated itself
    # during the call (nothing, when the arena holds everything).
    record["transient_bytes"] = max(0, record["device_bytes_peak"] - record["constant_bytes"]) - sum(
        s.nbytes for s, _ in inputs + outputs
    )
    record["arena_bytes"] = size
    record["allocator_peak_bytes"] = allocated
    record["calls"] = len(results)
    del context
    return record


def run_arena(
    vmfb: str | Path,
    function: str | None = None,
    seed: int = 0,
    save_outputs: str | Path | None = None,
    arena_bytes: int | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Runs the arena entry point ``vmfb`` in a fresh process (see the
    module docstring) and returns the run record of :mod:`.modules`, with
    ``arena_bytes`` and ``allocator_peak_bytes``; ``device_bytes_peak`` is
    the allocator's peak plus the arena. ``arena_bytes``: run with an arena
    of that size instead of the one the module records (a smaller one is an
    InputError)."""
    p = Path(vmfb)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    args = [str(p), "--seed", str(seed)]
    if function:
        args += ["--function", function]
    if save_outputs is not None:
        args += ["--save-outputs", str(save_outputs)]
    if arena_bytes is not None:
        args += ["--arena-bytes", str(arena_bytes)]
    return run_child(args, f"running the arena entry point {p.name} in the IREE runtime", timeout, __name__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serenity_mlir.runtime.arena")
    ap.add_argument("vmfb", type=Path)
    ap.add_argument("--function")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-outputs", type=Path)
    ap.add_argument("--arena-bytes", type=int)
    a = ap.parse_args(argv)
    try:
        out = _run_in_process(a.vmfb, a.function, a.seed, a.save_outputs, a.arena_bytes)
    except InputError as e:
        out = {"error": str(e)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
