"""Compilation targets, read from the declarative files in ``pipelines/``.

A target is a small frozen object with a ``flag_list()`` (as IREE's Python
``TargetMachine``): the iree-compile flags that select it. The files are TOML
so a user can add one for their board without touching code; ``--target`` also
accepts a path to such a file.

The flags must be given from the first phase (``--compile-to=flow``) on: IREE
fixes the device target there, including the executable format (an embedded
ELF inside the .vmfb, or a static library for microcontrollers), so a flow file
lowered for one target cannot be finished for another.

Fields (all but ``name`` and ``triple`` optional):

``name``, ``description``
    what ``--target`` and ``serenity-mlir targets`` show.
``triple``, ``cpu``, ``features``, ``abi``, ``float_abi``
    LLVM's target: ``--iree-llvmcpu-target-{triple,cpu,cpu-features,abi,float-abi}``.
``output``
    ``vmfb`` (embedded ELF inside the module), ``static-library`` (the module
    plus ``OUT.o`` and ``OUT.h`` to link into firmware) or ``vm-c`` (the VM
    module as C source ``OUT.c``, plus the same object and header).
``index_bits``
    32 for microcontrollers (``--iree-vm-target-index-bits``).
``sram_bytes``
    on-chip RAM of a typical part (an integer or a size such as ``"512K"``).
``runnable``
    ``local`` (this machine), ``qemu-aarch64`` (user-mode emulation here),
    ``none`` (built and inspected only).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError
from serenity_mlir.files import read_text
from serenity_mlir.units import parse_size

OUTPUT_KINDS = ("vmfb", "static-library", "vm-c")
RUNNABLE = ("local", "qemu-aarch64", "none")
FLOAT_ABIS = ("", "default", "soft", "hard")
INDEX_BITS = (32, 64)


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    triple: str
    cpu: str = "generic"
    features: str = ""
    backend: str = "llvm-cpu"
    output: str = "vmfb"
    runnable: str = "none"  # "local" | "qemu-aarch64" | "none"
    float_abi: str = ""
    index_bits: int = 64
    sram_bytes: int | None = None
    abi: str = ""  # --iree-llvmcpu-target-abi, e.g. ilp32f (RISC-V)
    source: str = ""
    # Further iree-compile flags for every IREE step of a build (the compile's
    # --iree-flag): part of the target, so every stage that selects the
    # target gives them too, and no stage takes a flag list of its own.
    iree_flags: tuple[str, ...] = ()

    def with_flags(self, flags: Sequence[str]) -> Target:
        """This target with ``flags`` added to every IREE step."""
        return replace(self, iree_flags=(*self.iree_flags, *flags)) if flags else self

    @property
    def links_static(self) -> bool:
        """True when the executables go into a static library (OUT.o + OUT.h)."""
        return self.output in ("static-library", "vm-c")

    @property
    def arch(self) -> str:
        """The triple's architecture, e.g. ``thumbv7em`` or ``aarch64``."""
        return self.triple.split("-", 1)[0]

    def flag_list(self) -> list[str]:
        """The iree-compile flags that select this target (device and codegen).

        Use the same list at ``--compile-to=flow`` and ``--compile-from=flow``;
        it ends with the target's ``iree_flags``.
        """
        flags = [
            "--iree-hal-target-device=local",
            f"--iree-hal-local-target-device-backends={self.backend}",
            f"--iree-llvmcpu-target-triple={self.triple}",
            f"--iree-llvmcpu-target-cpu={self.cpu}",
        ]
        if self.features:
            flags.append(f"--iree-llvmcpu-target-cpu-features={self.features}")
        if self.abi:
            flags.append(f"--iree-llvmcpu-target-abi={self.abi}")
        if self.float_abi:
            flags.append(f"--iree-llvmcpu-target-float-abi={self.float_abi}")
        if self.index_bits != 64:
            flags.append(f"--iree-vm-target-index-bits={self.index_bits}")
        if self.links_static:
            # Recorded in the device target at the flow phase: the executables
            # become a static library instead of an ELF embedded in the module.
            flags += [
                "--iree-llvmcpu-link-embedded=false",
                "--iree-llvmcpu-link-static",
                "--iree-llvmcpu-debug-symbols=false",
            ]
        flags += self.iree_flags
        return flags


# field -> (accepted Python types, what the error message calls it)
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"),
    "description": ((str,), "a string"),
    "triple": ((str,), "a string"),
    "cpu": ((str,), "a string"),
    "features": ((str,), "a string"),
    "abi": ((str,), "a string"),
    "backend": ((str,), "a string"),
    "output": ((str,), "a string"),
    "runnable": ((str,), "a string"),
    "float_abi": ((str,), "a string"),
    "index_bits": ((int,), "an integer"),
    "sram_bytes": ((int, str), 'an integer or a size such as "512K"'),
}
_FILE_FIELDS = {f.name for f in fields(Target)} - {"source", "iree_flags"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _type_name(v: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(v), type(v).__name__
    )


def _parse(text: str, source: str) -> Target:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{source}: invalid target file: {e}") from None
    unknown = sorted(set(data) - _FILE_FIELDS)
    if unknown:
        raise InputError(
            f"{source}: unknown target field(s): {', '.join(unknown)} (known: {', '.join(sorted(_FILE_FIELDS))})"
        )
    for key in ("name", "triple"):
        if key not in data:
            raise InputError(f"{source}: the target file needs a string field '{key}'")
    for key, value in data.items():
        types, what = _TYPES[key]
        # TOML booleans are Python ints: reject them explicitly.
        if isinstance(value, bool) or not isinstance(value, types):
            raise InputError(f"{source}: field '{key}' must be {what} (got {_type_name(value)} {value!r})")
    for key in ("name", "triple"):
        if not data[key].strip():
            raise InputError(f"{source}: field '{key}' must not be empty")
    if not _NAME_RE.match(data["name"]):
        raise InputError(f"{source}: field 'name' must be a plain word such as cortex-m7 (got {data['name']!r})")
    _check_choice(data, "output", OUTPUT_KINDS, source)
    _check_choice(data, "runnable", RUNNABLE, source)
    _check_choice(data, "float_abi", FLOAT_ABIS, source)
    if "index_bits" in data and data["index_bits"] not in INDEX_BITS:
        raise InputError(f"{source}: field 'index_bits' must be 32 or 64 (got {data['index_bits']})")
    if "backend" in data and data["backend"] != "llvm-cpu":
        raise InputError(f"{source}: field 'backend' must be llvm-cpu (got {data['backend']!r})")
    if "sram_bytes" in data:
        data["sram_bytes"] = _size(data["sram_bytes"], source)
    if data.get("runnable") == "qemu-aarch64" and not data["triple"].startswith("aarch64"):
        raise InputError(f"{source}: field 'runnable' is qemu-aarch64 but the triple {data['triple']!r} is not aarch64")
    if data.get("output", "vmfb") != "vmfb" and data.get("runnable", "none") != "none":
        raise InputError(
            f"{source}: field 'runnable' must be none for output {data['output']!r} (no runtime here loads it)"
        )
    data.setdefault("description", data["name"])
    return Target(source=source, **data)


def _check_choice(data: dict[str, Any], key: str, choices: tuple[str, ...], source: str) -> None:
    if key in data and data[key] not in choices:
        shown = ", ".join(repr(c) if not c else c for c in choices)
        raise InputError(f"{source}: field '{key}' must be one of {shown} (got {data[key]!r})")


def _size(value: int | str, source: str) -> int:
    try:
        n = parse_size(value)
    except InputError as e:
        raise InputError(f"{source}: field 'sram_bytes': {e}") from None
    if n <= 0:
        raise InputError(f"{source}: field 'sram_bytes' must be positive (got {value!r})")
    return n


def _builtin_files() -> dict[str, resources.abc.Traversable]:
    root = resources.files("serenity_mlir.targets.builtin")
    return {p.name[: -len(".toml")]: p for p in root.iterdir() if p.name.endswith(".toml")}


def available_targets() -> list[Target]:
    return [_parse(p.read_text(), f"pipelines/{p.name}") for _, p in sorted(_builtin_files().items())]


def get_target(name_or_path: str) -> Target:
    """A built-in target by name, or a user's target file by path."""
    p = Path(name_or_path)
    if name_or_path.endswith(".toml") or p.is_file():
        if not p.exists():
            raise InputError(f"{p}: no such target file")
        return _parse(read_text(p, "target file"), str(p))
    files = _builtin_files()
    if name_or_path not in files:
        raise InputError(f"unknown target '{name_or_path}' (known: {', '.join(sorted(files))})")
    return _parse(files[name_or_path].read_text(), f"pipelines/{name_or_path}.toml")
