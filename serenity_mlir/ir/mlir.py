"""Reading and writing MLIR with IREE's bundled Python bindings.

The bindings are the ones shipped inside iree-base-compiler
(``iree.compiler.ir``); their context registers every IREE dialect, so flow-,
linalg-, torch-, tosa- and stablehlo-level files all parse.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from iree.compiler import ir

from serenity_mlir.errors import InputError

# Serial stream partitioning keeps a chosen dispatch order alive through
# IREE's stream phase. The attribute prints as `<favor-debug>` but only parses
# as `<"debug">`, so printed modules are patched to stay re-parseable.
PARTITIONING_ATTR = "stream.partitioning"
SERIAL_PARTITIONING = '#stream.partitioning_config<"debug">'
_PRINTED_SERIAL = re.compile(r"#stream\.partitioning_config<favor-debug>")


def new_context() -> ir.Context:
    return ir.Context()


def parse_module(source: str | bytes, name: str, context: ir.Context) -> ir.Operation:
    """Parses text or bytecode into the ``builtin.module`` operation; a syntax
    error names the file, line and column. Several top-level ops are wrapped
    in an implicit module, as mlir-opt does. IREE's own printed modules
    parse too (``<favor-debug>`` is read as the ``<"debug">`` it means)."""
    if isinstance(source, str):
        source = _PRINTED_SERIAL.sub(SERIAL_PARTITIONING, source)
    try:
        try:
            op = ir.Operation.parse(source, source_name=name, context=context).operation
        except ir.MLIRError as e:
            if "single top-level operation" not in str(e):
                raise
            op = ir.Module.parse(source, context).operation
        if op.name != "builtin.module":
            # A lone top-level op (a func.func) gets an implicit module too.
            op = ir.Module.parse(source, context).operation
    except ir.MLIRError as e:
        raise InputError(f"malformed MLIR: {_diagnostics(e, name)}") from None
    return op


def load_module(path: str | os.PathLike[str], context: ir.Context) -> ir.Operation:
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not an MLIR file")
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot be read ({e.strerror})") from None
    if not data.startswith(b"ML\xefR"):  # not bytecode
        try:
            text = data.decode()
        except UnicodeDecodeError as e:
            raise InputError(f"{p}: neither MLIR text (not UTF-8 at byte {e.start}) nor MLIR bytecode") from None
        if _PRINTED_SERIAL.search(text):
            return parse_module(text, str(p), context)
    try:
        return ir.Module.parseFile(str(p), context).operation
    except ir.MLIRError as e:
        raise InputError(f"malformed MLIR: {_diagnostics(e, str(p))}") from None


def _diagnostics(e: ir.MLIRError, name: str) -> str:
    parts = []
    for d in e.error_diagnostics:
        parts.append(f"{format_location(d.location)}: {d.message}")
    return "; ".join(parts) if parts else f"{name}: {e}"


def format_location(loc: ir.Location) -> str:
    """`file:line:col` for file locations, the printed form otherwise."""
    text = str(loc)
    m = re.search(r'loc\("([^"]*)":(\d+):(\d+)', text)
    if m:
        return f"{m.group(1)}:{m.group(2)}:{m.group(3)}"
    m = re.search(r'loc\("([^"]*)"\)', text)
    return m.group(1) if m else text


def set_serial_partitioning(module: ir.Operation) -> None:
    with module.context:
        module.attributes[PARTITIONING_ATTR] = ir.Attribute.parse(SERIAL_PARTITIONING)


def module_to_text(module: ir.Operation, debuginfo: bool = False) -> str:
    text = module.get_asm(enable_debug_info=debuginfo)
    return _PRINTED_SERIAL.sub(SERIAL_PARTITIONING, text)
