"""Embedded targets: build for a board, inspect what was built, run it emulated.

- ``build_for_target``: finish compiling a scheduled flow file for any target
  and output kind, and report what a firmware author needs: the files, the
  code size (from the object's own ELF section headers), the arena (IREE's
  transient slab, from its scheduling statistics), the input/output bytes.
- ``run_emulated``: run an aarch64 module under ``qemu-aarch64`` with the
  aarch64 ``iree-run-module`` from the ``iree-base-runtime`` wheel (fetched
  once by ``ensure_aarch64_runtime``), on the same seeded inputs as
  ``runtime.measure``, and hash the outputs the same way.
- ``parse_size``: ``256K`` / ``1.5MiB`` / ``65536`` -> bytes.

Microcontroller builds are not run: no IREE runtime for bare metal comes from
the package registries. The arena is known at compile time instead.

Command line: ``python -m serenity_mlir.deploy build|run-emulated|fetch-runtime|inspect ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serenity_mlir.compile import CompileResult, compile_flow_artifacts
from serenity_mlir.errors import BudgetError, CompilerToolError, InputError, SerenityError
from serenity_mlir.targets import Target, get_target

# --------------------------------------------------------------------------
# Sizes

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_SIZE_RE = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([kmg]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes from ``256K``, ``256KiB``, ``256KB``, ``1.5M``, ``2MiB``, ``65536``.

    K, M and G are binary (1024-based), as memory sizes in MCU datasheets are.
    """
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise InputError(f"bad size {text!r}: expected a number of bytes or e.g. 256K")
    if isinstance(text, int):
        if text < 0:
            raise InputError(f"bad size {text}: must not be negative")
        return text
    m = _SIZE_RE.match(text)
    if not m or (m.group(3).lower() == "i" or (m.group(3).lower() == "ib" and not m.group(2))):
        raise InputError(f"bad size '{text}': expected bytes or a number with K, M or G (KiB, MiB, GiB), e.g. 256K")
    number, unit = m.group(1).replace("_", ""), m.group(2).lower()
    value = float(number) * _UNITS[unit] if "." in number else int(number) * _UNITS[unit]
    if value != int(value):
        raise InputError(f"bad size '{text}': not a whole number of bytes")
    return int(value)


def format_size(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def check_memory_budget(need_bytes: int, budget: str | int, what: str = "the model") -> None:
    """Raises BudgetError when ``need_bytes`` exceeds ``budget`` (e.g. ``256K``)."""
    limit = parse_size(budget)
    if need_bytes > limit:
        raise BudgetError(
            f"{what} needs {format_size(need_bytes)} of RAM, over the memory budget of {format_size(limit)} "
            f"by {need_bytes - limit:,} B"
        )


# --------------------------------------------------------------------------
# A small ELF reader: section headers and the symbol table, ELF32 and ELF64.

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHT_SYMTAB, SHT_NOBITS = 2, 8
ELF_MACHINES = {3: "x86", 40: "ARM", 62: "x86_64", 183: "AArch64", 243: "RISC-V"}
ELF_TYPES = {1: "relocatable", 2: "executable", 3: "shared", 4: "core"}


@dataclass(frozen=True)
class ElfSection:
    name: str
    type: int
    flags: int
    size: int


@dataclass(frozen=True)
class ElfSymbol:
    name: str
    binding: int  # 0 local, 1 global, 2 weak
    type: int  # 0 notype, 1 object, 2 func
    defined: bool


@dataclass(frozen=True)
class ElfFile:
    path: Path
    bits: int  # 32 or 64
    little_endian: bool
    machine: int
    file_type: int
    sections: tuple[ElfSection, ...]
    symbols: tuple[ElfSymbol, ...]

    @property
    def machine_name(self) -> str:
        return ELF_MACHINES.get(self.machine, f"machine {self.machine}")

    def undefined(self) -> set[str]:
        """Symbols the object needs from elsewhere (e.g. libgcc's ``__floatdisf``)."""
        return {s.name for s in self.symbols if not s.defined and s.name}

    def defined_globals(self) -> set[str]:
        return {s.name for s in self.symbols if s.defined and s.binding in (1, 2) and s.name}

    def size_summary(self) -> dict[str, int]:
        """Bytes by kind: ``text`` (code), ``rodata`` (read-only data, unwind
        tables), ``data`` (initialised writable, incl. relocated read-only
        data: flash and RAM), ``bss`` (zeroed RAM), ``debug`` (not loaded)."""
        out = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "debug": 0}
        for s in self.sections:
            if s.flags & SHF_ALLOC:
                if s.type == SHT_NOBITS:
                    out["bss"] += s.size
                elif s.flags & SHF_EXECINSTR:
                    out["text"] += s.size
                elif s.flags & SHF_WRITE:
                    out["data"] += s.size
                else:
                    out["rodata"] += s.size
            elif s.name.startswith((".debug", ".zdebug")):
                out["debug"] += s.size
        return out

    @property
    def code_size_bytes(self) -> int:
        """What the object puts in flash: code + read-only data + initialised data."""
        s = self.size_summary()
        return s["text"] + s["rodata"] + s["data"]


def read_elf(path: str | Path) -> ElfFile:
    """Parses the ELF header, section headers and symbol table of ``path``."""
    p = Path(path)
    data = p.read_bytes()
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise InputError(f"{p}: not an ELF file")
    bits = {1: 32, 2: 64}.get(data[4])
    little = {1: True, 2: False}.get(data[5])
    if bits is None or little is None:
        raise InputError(f"{p}: unsupported ELF class/encoding ({data[4]}, {data[5]})")
    e = "<" if little else ">"
    try:
        if bits == 32:
            (ftype, machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, shstrndx) = struct.unpack_from(
                e + "HHIIIIIHHHHHH", data, 16
            )
            sh_fmt = e + "IIIIIIIIII"
        else:
            (ftype, machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, shstrndx) = struct.unpack_from(
                e + "HHIQQQIHHHHHH", data, 16
            )
            sh_fmt = e + "IIQQQQIIQQ"
        raw = []
        if shoff:
            first = struct.unpack_from(sh_fmt, data, shoff)
            count = shnum or first[5]  # extended numbering: the count is in section 0's size
            if shstrndx == 0xFFFF:
                shstrndx = first[6]
            for i in range(count):
                raw.append(struct.unpack_from(sh_fmt, data, shoff + i * shentsize))

        # (name, type, flags, addr, offset, size, link, info, align, entsize)
        def cstr(table: int, off: int) -> str:
            start = raw[table][4] + off
            end = data.index(b"\0", start)
            return data[start:end].decode(errors="replace")

        sections = tuple(ElfSection(cstr(shstrndx, r[0]) if raw else "", r[1], r[2], r[5]) for r in raw)
        symbols: list[ElfSymbol] = []
        for r in raw:
            if r[1] != SHT_SYMTAB:
                continue
            entsize = 16 if bits == 32 else 24
            for off in range(r[4], r[4] + r[5], entsize):
                if bits == 32:
                    name, _, _, info, _, shndx = struct.unpack_from(e + "IIIBBH", data, off)
                else:
                    name, info, _, shndx, _, _ = struct.unpack_from(e + "IBBHQQ", data, off)
                symbols.append(ElfSymbol(cstr(r[6], name), info >> 4, info & 0xF, shndx != 0))
    except (struct.error, ValueError, IndexError):
        raise InputError(f"{p}: truncated or malformed ELF file") from None
    return ElfFile(p, bits, little, machine, ftype, sections, tuple(symbols))


# --------------------------------------------------------------------------
# Building for a target


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


_SIGNATURE = re.compile(r'serenity\.(inputs|outputs)\s*=\s*"([^"]*)"')


def _flow_signature(flow_file: Path) -> dict[str, list[str]]:
    """The tensor specs the pipeline recorded in the entry's reflection."""
    try:
        text = flow_file.read_text(errors="replace")
    except OSError:
        return {}
    return {k: [t for t in v.split(",") if t] for k, v in _SIGNATURE.findall(text)}


def _spec_bytes(specs: list[str]) -> int | None:
    from serenity_mlir.runtime import TensorSpec

    try:
        return sum(TensorSpec.parse(s).nbytes for s in specs)
    except InputError:
        return None


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
    res: CompileResult = compile_flow_artifacts(flow_file, out, target, extra_flags)
    sig = _flow_signature(flow_file)
    stats = res.statistics or {}
    agg = stats.get("stream-aggregate", {}) if isinstance(stats, dict) else {}
    arena = arena_from_statistics(res.statistics)
    input_bytes = _spec_bytes(sig.get("inputs", [])) if "inputs" in sig else None
    output_bytes = _spec_bytes(sig.get("outputs", [])) if "outputs" in sig else None
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


# --------------------------------------------------------------------------
# Running aarch64 modules under qemu-aarch64


def _runtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iree-base-runtime")
    except PackageNotFoundError:
        return "3.13.0"


def _find_run_module(root: Path) -> Path | None:
    if root.is_file():
        return root
    for cand in (root / "iree" / "_runtime_libs" / "iree-run-module", root / "iree-run-module"):
        if cand.is_file():
            return cand
    return None


def ensure_aarch64_runtime() -> Path:
    """The aarch64 ``iree-run-module`` from the ``iree-base-runtime`` wheel of
    the installed version, downloaded (``pip download --platform
    manylinux_2_28_aarch64``) and unpacked once into
    ``~/.cache/serenity-mlir/aarch64/iree-base-runtime-VERSION``.

    ``SERENITY_AARCH64_RUNTIME`` overrides the location: the binary itself or
    a directory holding it or the unpacked wheel (filled on first use)."""
    ver = _runtime_version()
    env = os.environ.get("SERENITY_AARCH64_RUNTIME")
    if env:
        root = Path(env).expanduser()
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        root = cache / "serenity-mlir" / "aarch64" / f"iree-base-runtime-{ver}"
    found = _find_run_module(root)
    if found is not None:
        _make_executable(found)
        return found
    if root.exists() and not root.is_dir():
        raise InputError(f"SERENITY_AARCH64_RUNTIME={root}: not iree-run-module nor a directory")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root.parent) as d:
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--platform", "manylinux_2_28_aarch64", f"iree-base-runtime=={ver}", "-d", d,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompilerToolError("downloading the aarch64 iree-base-runtime wheel", cmd, proc.stderr)
        wheels = sorted(Path(d).glob("iree_base_runtime-*.whl"))
        if not wheels:
            raise CompilerToolError("downloading the aarch64 iree-base-runtime wheel (no wheel)", cmd, proc.stderr)
        unpacked = Path(d) / "unpacked"
        with zipfile.ZipFile(wheels[0]) as z:
            z.extractall(unpacked)
        if _find_run_module(unpacked) is None:
            raise InputError(f"{wheels[0].name}: has no iree/_runtime_libs/iree-run-module")
        root.mkdir(exist_ok=True)
        for item in unpacked.iterdir():
            dest = root / item.name
            if not dest.exists():
                os.replace(item, dest)  # another process may have won the race: keep its copy
    found = _find_run_module(root)
    if found is None:
        raise InputError(f"{root}: unpacking the aarch64 runtime failed")
    _make_executable(found)
    return found


def _make_executable(p: Path) -> None:
    mode = p.stat().st_mode
    if not mode & 0o111:
        p.chmod(mode | 0o755)


def qemu_command(target: Target) -> list[str]:
    """``qemu-aarch64 -L SYSROOT [-cpu CPU]``: the target's own core when qemu
    models it, so an instruction the core lacks faults instead of passing."""
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        raise InputError(
            "qemu-aarch64 not found: install it with "
            "`apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross` (Debian/Ubuntu)"
        )
    env = os.environ.get("SERENITY_QEMU_SYSROOT") or os.environ.get("QEMU_LD_PREFIX")
    sysroot = Path(env or "/usr/aarch64-linux-gnu")
    for lib in ("lib/ld-linux-aarch64.so.1", "lib/libstdc++.so.6"):
        if not (sysroot / lib).exists():
            raise InputError(
                f"{sysroot / lib} not found: the aarch64 iree-run-module needs an aarch64 glibc and libstdc++ "
                "(`apt-get install libc6-arm64-cross libstdc++6-arm64-cross`, or set SERENITY_QEMU_SYSROOT)"
            )
    cmd = [qemu, "-L", str(sysroot)]
    if target.cpu in _qemu_cpus(qemu):
        cmd += ["-cpu", target.cpu]
    return cmd


_QEMU_CPUS: dict[str, set[str]] = {}


def _qemu_cpus(qemu: str) -> set[str]:
    if qemu not in _QEMU_CPUS:
        # qemu lists its CPUs after "Available CPUs:" (and exits with 1).
        proc = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True)
        _, _, listing = proc.stdout.partition("Available CPUs:")
        _QEMU_CPUS[qemu] = set(listing.split())
    return _QEMU_CPUS[qemu]


_STAT_LINE = re.compile(r"^\s*([A-Z_|]+):\s*(\d+)B peak\s*/\s*(\d+)B allocated", re.MULTILINE)


def parse_statistics(text: str) -> dict[str, int]:
    """``--print_statistics`` of iree-run-module: peak bytes by memory type
    (``DEVICE_LOCAL``, ``HOST_LOCAL``)."""
    return {m.group(1): int(m.group(2)) for m in _STAT_LINE.finditer(text)}


def _module_signature(vmfb: Path, function: str | None) -> tuple[str, list[str] | None, int]:
    """(function, recorded input specs or None, number of results), read from
    the module's bytecode with the host's VM (no device or executables needed)."""
    import iree.runtime as rt

    from serenity_mlir.runtime import SIGNATURE_INPUTS, SIGNATURE_OUTPUTS

    try:
        module = rt.VmModule.copy_buffer(rt.VmInstance(), vmfb.read_bytes())
    except Exception as e:  # noqa: BLE001 - the binding raises plain RuntimeError/ValueError
        raise InputError(f"{vmfb}: not an IREE module ({e})") from None
    names = [n for n in module.function_names if not n.startswith("__") and not n.endswith("$async")]
    if function is None:
        if len(names) != 1:
            raise InputError(f"{vmfb}: the module exports {', '.join(names)}: pick one with --function")
        function = names[0]
    elif function not in names:
        raise InputError(f"{vmfb}: no function '{function}' (it exports: {', '.join(names)})")
    fn = module.lookup_function(function)
    refl = fn.reflection
    inputs = [t for t in refl[SIGNATURE_INPUTS].split(",") if t] if SIGNATURE_INPUTS in refl else None
    if SIGNATURE_OUTPUTS in refl:
        n_out = len([t for t in refl[SIGNATURE_OUTPUTS].split(",") if t])
    else:
        m = re.search(r"\(0\w*?_(\w*)\)", repr(fn))  # calling convention, e.g. (0r_r)
        n_out = len(m.group(1)) if m else 1
    return function, inputs, n_out


def module_constant_bytes(vmfb: str | Path) -> int | None:
    """Bytes of constant data in a .vmfb (its ``_const*.bin`` members: IREE
    writes the module as a zip-compatible archive), or None if unreadable."""
    try:
        with zipfile.ZipFile(vmfb) as z:
            return sum(i.file_size for i in z.infolist() if re.fullmatch(r"_const.*\.bin", i.filename))
    except (OSError, zipfile.BadZipFile):
        return None


def run_iree_run_module(
    vmfb: str | Path,
    function: str | None = None,
    input_specs: list[str] | None = None,
    seed: int = 0,
    prefix: list[str] | None = None,
    run_module: str | Path | None = None,
    timeout: float = 600,
    save_outputs: str | Path | None = None,
) -> dict[str, Any]:
    """Runs ``vmfb`` with an ``iree-run-module`` (the host's, or another one
    behind ``prefix`` such as qemu) on ``local-sync`` with seeded inputs
    (``runtime.random_inputs``) passed as .npy files, and returns the
    statistics and the outputs' hash (computed as ``runtime.measure`` does;
    ``save_outputs`` writes them as an .npz, as ``runtime.measure`` does)."""
    import numpy as np

    from serenity_mlir.iree_tools import tool_path
    from serenity_mlir.runtime import TensorSpec, random_inputs

    p = Path(vmfb)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    function, recorded, n_out = _module_signature(p, function)
    if input_specs is None:
        if recorded is None:
            raise InputError(
                f"{p}: the module does not record its input shapes (not built by serenity-mlir): "
                "give them, e.g. --input 1x8x32x32xf32"
            )
        input_specs = recorded
    specs = [TensorSpec.parse(t) for t in input_specs]
    tool = str(run_module) if run_module else tool_path("iree-run-module")
    with tempfile.TemporaryDirectory(prefix="serenity-run-") as d:
        cmd = [*(prefix or []), tool, "--device=local-sync", f"--module={p.resolve()}", f"--function={function}"]
        for i, a in enumerate(random_inputs(specs, seed)):
            np.save(Path(d) / f"in{i}.npy", a)
            cmd.append(f"--input=@{Path(d) / f'in{i}.npy'}")
        outs = [Path(d) / f"out{i}.npy" for i in range(n_out)]
        cmd += [f"--output=@{o}" for o in outs] + ["--print_statistics"]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CompilerToolError(f"running {p.name} (timed out after {timeout} s)", cmd, "") from None
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise CompilerToolError(f"running {p.name} with iree-run-module", cmd, proc.stderr + proc.stdout)
        stats = parse_statistics(proc.stdout + proc.stderr)
        if "DEVICE_LOCAL" not in stats:
            raise CompilerToolError(f"reading the statistics of {p.name}", cmd, proc.stdout + proc.stderr)
        digest = hashlib.sha256()
        output_bytes = 0
        arrays = []
        for o in outs:
            if not o.is_file():
                raise CompilerToolError(f"running {p.name}: no output {o.name} written", cmd, proc.stderr)
            h = np.load(o)
            digest.update(str(h.dtype).encode())
            digest.update(str(h.shape).encode())
            digest.update(np.ascontiguousarray(h).tobytes())
            output_bytes += int(h.nbytes)
            arrays.append(h)
        if save_outputs is not None:
            np.savez(save_outputs, *arrays)
    input_bytes = sum(s.nbytes for s in specs)
    peak = stats["DEVICE_LOCAL"]
    constants = module_constant_bytes(p)
    return {
        "vmfb": str(p),
        "function": function,
        "inputs": [str(s) for s in specs],
        "seed": seed,
        # iree-run-module stages the module's constants and the inputs into
        # device memory and reads the results back into host memory, so
        # DEVICE_LOCAL peak = constants + inputs + IREE's slab (which holds
        # the results) and HOST_LOCAL = the results' copies.
        "device_bytes_peak": peak,
        "host_bytes_peak": stats.get("HOST_LOCAL", 0),
        "constant_bytes": constants,
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        # as runtime.measure: what the call added besides constants, inputs, results
        "transient_bytes": max(0, peak - constants - input_bytes - output_bytes) if constants is not None else None,
        "outputs_sha256": digest.hexdigest(),
        "run_seconds": round(seconds, 3),
        "command": cmd[: len(prefix or []) + 1],
    }


def run_emulated(
    vmfb: str | Path,
    target: Target | str,
    function: str | None = None,
    input_specs: list[str] | None = None,
    seed: int = 0,
    timeout: float = 600,
    save_outputs: str | Path | None = None,
) -> dict[str, Any]:
    """Runs an aarch64 module under ``qemu-aarch64`` (``-cpu`` the target's
    core) with the aarch64 ``iree-run-module``; same keys as
    ``runtime.measure`` (``device_bytes_peak``, ``constant_bytes``,
    ``input_bytes``, ``output_bytes``, ``transient_bytes``, ``outputs_sha256``,
    ``inputs``), plus ``host_bytes_peak`` and ``emulator``.

    The peak is iree-run-module's, which stages the constants into device
    memory: compare it with ``run_iree_run_module`` on the host build (same
    tool), or compare ``transient_bytes`` with ``runtime.measure``'s. Outputs
    are bit-identical to the host's only when the code generated for both
    CPUs rounds alike (branches: yes; darts: within 1e-6 relative)."""
    t = get_target(target) if isinstance(target, str) else target
    if t.runnable != "qemu-aarch64":
        raise InputError(f"target {t.name} is not runnable under qemu-aarch64 (runnable = {t.runnable!r})")
    prefix = qemu_command(t)
    result = run_iree_run_module(
        vmfb, function, input_specs, seed, prefix, ensure_aarch64_runtime(), timeout, save_outputs
    )
    result["emulator"] = " ".join(Path(prefix[0]).name if i == 0 else a for i, a in enumerate(prefix))
    result["target"] = t.name
    return result


# --------------------------------------------------------------------------
# Command line (used by CMakeLists.txt)


def build_model(
    model: str | Path,
    out: str | Path,
    target: str,
    scheduler: str = "serenity",
    function: str | None = None,
    time_limit: float | None = 60.0,
    extra_flags: list[str] | None = None,
    memory_budget: str | None = None,
    keep_temps: Path | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    """The pipeline's compile job without running the model (what CMake
    needs): import, lower, schedule, ``build_for_target``, budget check."""
    from serenity_mlir.pipeline import CompileOptions, compile_model

    options = CompileOptions(
        target=target,
        scheduler=scheduler,
        function=function,
        time_limit=time_limit,
        measure=False,
        verify_outputs=False,
        keep_temps=keep_temps,
        extra_flags=list(extra_flags or []),
        quiet=quiet,
        memory_budget=memory_budget,
    )
    report = compile_model(model, out, options)
    # The build-only view CMake and the summary line read.
    report["arena_bytes"] = report["iree_arena_bytes"]
    return report


def _summary_line(r: dict[str, Any]) -> str:
    def kib(n: int | None) -> str:
        return "?" if n is None else f"{n / 1024:.1f} KiB"

    fit = {True: "fits", False: "does NOT fit", None: ""}[r.get("fits_sram")]
    sram = f" ({fit} {kib(r['sram_bytes'])} SRAM)" if r.get("sram_bytes") else ""
    return (
        f"{Path(r['model']).name} -> {r['target']}: code {kib(r['code_size_bytes'])}, "
        f"arena {kib(r['arena_bytes'])}, RAM {kib(r['ram_bytes'])}{sram}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serenity_mlir.deploy", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile a model for a target and report code size and arena")
    b.add_argument("model")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--target", required=True)
    b.add_argument("--scheduler", default="serenity")
    b.add_argument("--function")
    b.add_argument("--time-limit", type=float, default=60.0)
    b.add_argument("--memory-budget", help="fail if the RAM need exceeds this, e.g. 256K")
    b.add_argument("--report", help="write the JSON report here")
    b.add_argument("--keep-temps", type=Path)
    b.add_argument("--iree-flag", action="append", default=[])
    b.add_argument("-q", "--quiet", action="store_true", help="print a one-line summary instead of the report")
    r = sub.add_parser("run-emulated", help="run an aarch64 module under qemu-aarch64")
    r.add_argument("vmfb")
    r.add_argument("--target", required=True)
    r.add_argument("--function")
    r.add_argument("--input", action="append")
    r.add_argument("--seed", type=int, default=0)
    sub.add_parser("fetch-runtime", help="download the aarch64 iree-run-module; print its path")
    i = sub.add_parser("inspect", help="sizes and symbols of an object file")
    i.add_argument("object")
    a = ap.parse_args(argv)
    try:
        if a.command == "build":
            out = build_model(
                a.model, a.output, a.target, a.scheduler, a.function, a.time_limit, a.iree_flag,
                a.memory_budget, a.keep_temps,
            )  # fmt: skip
            if a.report:
                from serenity_mlir.mlir_io import atomic_write

                atomic_write(a.report, json.dumps(out, indent=2) + "\n")
            if a.quiet:
                print(_summary_line(out))
                return 0
        elif a.command == "run-emulated":
            out = run_emulated(a.vmfb, a.target, a.function, a.input, a.seed)
        elif a.command == "fetch-runtime":
            print(ensure_aarch64_runtime())
            return 0
        else:
            elf = read_elf(a.object)
            out = {
                "bits": elf.bits,
                "machine": elf.machine_name,
                "type": ELF_TYPES.get(elf.file_type),
                "code_size_bytes": elf.code_size_bytes,
                "sections": elf.size_summary(),
                "library_query_symbols": sorted(s for s in elf.defined_globals() if s.endswith("_library_query")),
            }
    except SerenityError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
