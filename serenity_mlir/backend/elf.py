"""A small ELF reader: section headers and the symbol table, ELF32 and ELF64.

Enough to report a static library's code size (flash) and check that it
defines IREE's library query function, without binutils for every target.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from serenity_mlir.errors import InputError

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

