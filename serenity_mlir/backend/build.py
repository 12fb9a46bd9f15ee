"""Finishing a build for a target and reporting what a firmware author needs.

``build_for_target`` compiles a scheduled flow file for any target and output
kind and reports the files, the code size (from the object's own ELF section
headers), the arena (IREE's transient slab, from its scheduling statistics)
and the input/output bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from serenity_mlir.backend.compile import CompileResult, compile_flow_artifacts
from serenity_mlir.backend.elf import ELF_TYPES, read_elf
from serenity_mlir.errors import CompilerToolError
from serenity_mlir.ir.reflection import read_signature
from serenity_mlir.ir.tensors import spec_bytes
from serenity_mlir.targets import Target, get_target


def arena_from_statistics(statistics: dict[str, Any] | None) -> int | None:
    """IREE's transient slab size from its scheduling statistics
    (``stream-aggregate.execution.transient-memory-size``): the scratch arena
    the calls need. IREE sums it over submissions, so with several execution
    regions it is an upper bound. It holds the results too (checked against
    the host runtime: peak = inputs + this, for branches and darts)."""
    try:
        value = statistics["stream-aggregate"]["execution"]["transient-memory-size"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    return int(value) if isinstance(value, int) else None


def arena_bytes(flow_file: str | Path, target: Target | str, extra_flags: list[str] | None = None) -> int | None:
    """The arena a flow file needs on ``target``: compiles it in a scratch
    directory and reads IREE's transient slab size (see arena_from_statistics)."""
    t = get_target(target) if isinstance(target, str) else target
    with tempfile.TemporaryDirectory(prefix="serenity-arena-") as d:
        res = compile_flow_artifacts(Path(flow_file), Path(d) / "arena.vmfb", t, extra_flags)
    return arena_from_statistics(res.statistics)



def build_for_target(
    flow_file: Path, out: Path, target: Target, extra_flags: list[str] | None = None
) -> dict[str, Any]:
    """Compiles a (scheduled) flow file for ``target`` (every output kind;
    nothing is written unless the whole compile succeeds) and reports:

    ``artifacts`` (role -> path), ``compile_seconds``, ``code_size_bytes``
    (flash bytes of the object for static libraries; the module's size
    otherwise), ``arena_bytes`` (IREE's transient slab, or None),
    ``input_bytes``/``output_bytes``, ``ram_bytes`` (arena + inputs: the
    results live in the arena), ``sram_bytes``/``fits_sram`` for the part,
    and for static libraries ``library_query_symbol``, ``elf`` and ``sections``.
    """
    flow_file, out = Path(flow_file), Path(out)
    return build_report(flow_file, compile_flow_artifacts(flow_file, out, target, extra_flags), target)


def build_report(flow_file: Path, res: CompileResult, target: Target) -> dict[str, Any]:
    """The report of ``build_for_target`` for a compile already done (from
    the flow phase, or through the placement stage's split)."""
    sig = read_signature(flow_file)
    stats = res.statistics or {}
    agg = stats.get("stream-aggregate", {}) if isinstance(stats, dict) else {}
    arena = arena_from_statistics(res.statistics)
    input_bytes = spec_bytes(sig.get("inputs", [])) if "inputs" in sig else None
    output_bytes = spec_bytes(sig.get("outputs", [])) if "outputs" in sig else None
    main = res.artifacts.get("module") or res.artifacts["c_source"]
    report: dict[str, Any] = {
        "target": target.name,
        "triple": target.triple,
        "cpu": target.cpu,
        "output_kind": target.output,
        "artifacts": {role: str(p) for role, p in res.artifacts.items()},
        "compile_seconds": round(res.seconds, 3),
        "module_bytes": main.stat().st_size,
        "code_size_bytes": main.stat().st_size,
        "arena_bytes": arena,
        "arena_source": "iree-scheduling-dump-statistics (transient-memory-size)" if arena is not None else None,
        "submission_count": agg.get("execution", {}).get("submission-count"),
        "constant_bytes": agg.get("global", {}).get("constant-size"),
        "inputs": sig.get("inputs"),
        "outputs": sig.get("outputs"),
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        "ram_bytes": arena + input_bytes if arena is not None and input_bytes is not None else None,
        "sram_bytes": target.sram_bytes,
    }
    report["fits_sram"] = (
        report["ram_bytes"] <= target.sram_bytes
        if report["ram_bytes"] is not None and target.sram_bytes is not None
        else None
    )
    if "object" in res.artifacts:
        elf = read_elf(res.artifacts["object"])
        query = f"{res.library_name}_library_query"
        if query not in elf.defined_globals():
            raise CompilerToolError(
                f"the static library {res.artifacts['object']} does not define {query}",
                [],
                "symbols: " + ", ".join(sorted(elf.defined_globals())),
            )
        report.update(
            {
                "code_size_bytes": elf.code_size_bytes,
                "sections": elf.size_summary(),
                "elf": {"bits": elf.bits, "machine": elf.machine_name, "type": ELF_TYPES.get(elf.file_type)},
                "library_query_symbol": query,
                # to be provided at link time, by the compiler runtime (libgcc / compiler-rt)
                "undefined_symbols": sorted(elf.undefined()),
            }
        )
    return report

