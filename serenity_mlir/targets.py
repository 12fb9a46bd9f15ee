"""Compilation targets, read from the declarative files in ``pipelines/``.

A target is a small frozen object with a ``flag_list()`` (as IREE's Python
``TargetMachine``): the iree-compile flags that select it. The files are TOML
so a user can add one for their board without touching code; ``--target`` also
accepts a path to such a file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from serenity_mlir.errors import InputError

OUTPUT_KINDS = ("vmfb", "static-library", "vm-c")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    triple: str
    cpu: str = "generic"
    features: str = ""
    backend: str = "llvm-cpu"
    output: str = "vmfb"
    runnable: str = "none"  # "local": this machine's runtime; "none": build only
    float_abi: str = ""
    index_bits: int = 64
    sram_bytes: int | None = None
    source: str = ""

    def flag_list(self) -> list[str]:
        """The iree-compile flags that select this target (device and codegen)."""
        flags = [
            "--iree-hal-target-device=local",
            f"--iree-hal-local-target-device-backends={self.backend}",
            f"--iree-llvmcpu-target-triple={self.triple}",
            f"--iree-llvmcpu-target-cpu={self.cpu}",
        ]
        if self.features:
            flags.append(f"--iree-llvmcpu-target-cpu-features={self.features}")
        if self.float_abi:
            flags.append(f"--iree-llvmcpu-target-float-abi={self.float_abi}")
        if self.index_bits != 64:
            flags.append(f"--iree-vm-target-index-bits={self.index_bits}")
        return flags


_FIELDS = {f for f in Target.__dataclass_fields__}


def _parse(text: str, source: str) -> Target:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{source}: invalid target file: {e}") from None
    unknown = set(data) - _FIELDS
    if unknown:
        raise InputError(f"{source}: unknown target field(s): {', '.join(sorted(unknown))}")
    for key in ("name", "triple"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError(f"{source}: the target file needs a string '{key}'")
    if data.get("output", "vmfb") not in OUTPUT_KINDS:
        raise InputError(f"{source}: 'output' must be one of {', '.join(OUTPUT_KINDS)}")
    data.setdefault("description", data["name"])
    try:
        return Target(source=source, **data)
    except TypeError as e:
        raise InputError(f"{source}: {e}") from None


def _builtin_files() -> dict[str, resources.abc.Traversable]:
    root = resources.files("serenity_mlir.pipelines")
    return {p.name[: -len(".toml")]: p for p in root.iterdir() if p.name.endswith(".toml")}


def available_targets() -> list[Target]:
    return [_parse(p.read_text(), f"pipelines/{p.name}") for _, p in sorted(_builtin_files().items())]


def get_target(name_or_path: str) -> Target:
    """A built-in target by name, or a user's target file by path."""
    p = Path(name_or_path)
    if name_or_path.endswith(".toml") or p.is_file():
        if not p.is_file():
            raise InputError(f"{p}: no such target file")
        return _parse(p.read_text(), str(p))
    files = _builtin_files()
    if name_or_path not in files:
        raise InputError(f"unknown target '{name_or_path}' (known: {', '.join(sorted(files))})")
    return _parse(files[name_or_path].read_text(), f"pipelines/{name_or_path}.toml")
