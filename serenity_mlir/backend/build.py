"""Finishing a build for a target and reporting what a firmware author needs.

``build_for_target`` compiles a scheduled flow file for any target and output
kind and describes the files, the code size (from the object's own ELF section
headers), the arena (IREE's transient slab, from its scheduling statistics)
and the input/output bytes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
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


def arena_bytes(flow_file: str | Path, target: Target | str) -> int | None:
    """The arena a flow file needs on ``target``: compiles it in a scratch
    directory and reads IREE's transient slab size (see arena_from_statistics)."""
    t = get_target(target) if isinstance(target, str) else target
    with tempfile.TemporaryDirectory(prefix="serenity-arena-") as d:
        res = compile_flow_artifacts(Path(flow_file), Path(d) / "arena.vmfb", t)
    return arena_from_statistics(res.statistics)



@dataclass(frozen=True)
class Built:
    """A module built for a target, and what a firmware author needs of it.

    ``code_size_bytes`` is the object's flash for static libraries (from its
    own ELF section headers), the module's size otherwise; ``arena_bytes`` is
    IREE's transient slab (results included, from its scheduling
    statistics); ``ram_bytes`` = arena + inputs (the results live in the
    arena). Static libraries also carry ``elf``, ``sections``,
    ``library_query_symbol`` and ``undefined_symbols`` (to be provided at link
    time by the compiler runtime, libgcc / compiler-rt)."""

    target: str
    output_kind: str
    artifacts: dict[str, Path]  # role -> path
    compile_seconds: float
    code_size_bytes: int
    arena_bytes: int | None
    inputs: list[str] | None
    outputs: list[str] | None
    input_bytes: int | None
    output_bytes: int | None
    ram_bytes: int | None
    sram_bytes: int | None
    fits_sram: bool | None
    constant_bytes: int | None = None
    submission_count: int | None = None
    sections: dict[str, Any] | None = None
    elf: dict[str, Any] | None = None
    library_query_symbol: str | None = None
    undefined_symbols: list[str] | None = None

    @property
    def transient_bytes(self) -> int | None:
        """IREE's arena less the results: the slab."""
        if self.arena_bytes is None or self.output_bytes is None:
            return None
        return self.arena_bytes - self.output_bytes

    def library_fields(self) -> dict[str, Any]:
        """The static library's report fields (none for a vmfb)."""
        names = ("sections", "elf", "library_query_symbol", "undefined_symbols")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


def build_for_target(flow_file: Path, out: Path, target: Target) -> Built:
    """Compiles a (scheduled) flow file for ``target`` (every output kind;
    nothing is written unless the whole compile succeeds) and describes the
    build (:class:`Built`)."""
    flow_file, out = Path(flow_file), Path(out)
    return describe_build(flow_file, compile_flow_artifacts(flow_file, out, target), target)


def describe_build(flow_file: Path, res: CompileResult, target: Target) -> Built:
    """The :class:`Built` of a compile already done (from the flow phase, or
    through the placement stage's split); the entry signature is read from
    the scheduled flow file."""
    sig = read_signature(flow_file)
    stats = res.statistics or {}
    agg = stats.get("stream-aggregate", {}) if isinstance(stats, dict) else {}
    arena = arena_from_statistics(res.statistics)
    input_bytes = spec_bytes(sig.get("inputs", [])) if "inputs" in sig else None
    output_bytes = spec_bytes(sig.get("outputs", [])) if "outputs" in sig else None
    main = res.artifacts.get("module") or res.artifacts["c_source"]
    ram = arena + input_bytes if arena is not None and input_bytes is not None else None
    library: dict[str, Any] = {}
    code_size = main.stat().st_size
    if "object" in res.artifacts:
        elf = read_elf(res.artifacts["object"])
        query = f"{res.library_name}_library_query"
        if query not in elf.defined_globals():
            raise CompilerToolError(
                f"the static library {res.artifacts['object']} does not define {query}",
                [],
                "symbols: " + ", ".join(sorted(elf.defined_globals())),
            )
        code_size = elf.code_size_bytes
        library = {
            "sections": elf.size_summary(),
            "elf": {"bits": elf.bits, "machine": elf.machine_name, "type": ELF_TYPES.get(elf.file_type)},
            "library_query_symbol": query,
            "undefined_symbols": sorted(elf.undefined()),
        }
    return Built(
        target=target.name,
        output_kind=target.output,
        artifacts=dict(res.artifacts),
        compile_seconds=round(res.seconds, 3),
        code_size_bytes=code_size,
        arena_bytes=arena,
        inputs=sig.get("inputs"),
        outputs=sig.get("outputs"),
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        ram_bytes=ram,
        sram_bytes=target.sram_bytes,
        fits_sram=ram <= target.sram_bytes if ram is not None and target.sram_bytes is not None else None,
        constant_bytes=agg.get("global", {}).get("constant-size"),
        submission_count=agg.get("execution", {}).get("submission-count"),
        **library,
    )
