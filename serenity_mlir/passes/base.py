"""What a pass is, and how a pipeline string becomes passes (xDSL's style).

A pass is a small frozen dataclass: its class attribute ``name`` is the
kebab-case name users type, its fields are its options (``scheduler``,
``time_limit`` ...; typed ``time-limit=5`` on the command line), and
``apply(module)`` runs it on a parsed MLIR module and returns what it did.
The registry maps names to pass classes, so serenity-opt needs no per-pass
code: ``-p 'serenity-schedule{scheduler=program},serenity-print-graph'``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from serenity_mlir.errors import InputError
from serenity_mlir.units import ByteSize, parse_size


class ModulePass(Protocol):
    name: ClassVar[str]

    def apply(self, module: Any) -> object: ...


def option_name(field: str) -> str:
    return field.replace("_", "-")


def options_of(cls: type) -> dict[str, Any]:
    """Option name (kebab-case) -> the field's type, for a pass class."""
    hints = typing.get_type_hints(cls)
    return {option_name(f.name): hints[f.name] for f in dataclasses.fields(cls)}


def _convert(text: str, tp: Any, where: str) -> Any:
    """A command-line value for an option of type ``tp``."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() == "none" and type(None) in args:
            return None
        (tp,) = [a for a in args if a is not type(None)]
        return _convert(text, tp, where)
    if tp is ByteSize:
        try:
            return parse_size(text)
        except InputError as e:
            raise InputError(f"{where}: {e}") from None
    try:
        if tp is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if tp is int:
            return int(text)
        if tp is float:
            value = float(text)
            if value != value:
                raise ValueError(text)
            return value
        if typing.get_origin(tp) is tuple:
            return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{where}: bad value '{text}'") from None
    return text


def make_pass(cls: type, options: Mapping[str, str], where: str) -> ModulePass:
    """An instance of ``cls`` with its options given as strings."""
    known = options_of(cls)
    values = {}
    for key, text in options.items():
        if key not in known:
            shown = ", ".join(known) or "none"
            raise InputError(f"{where}: unknown option '{key}' of pass {cls.name} (options: {shown})")  # type: ignore[attr-defined]
        values[key.replace("-", "_")] = _convert(text, known[key], f"{where}: option '{key}'")
    try:
        p: ModulePass = cls(**values)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None
    return p


_ITEM = re.compile(r"\s*([A-Za-z0-9_-]+)\s*(?:\{([^{}]*)\})?\s*(?:,|$)")


def parse_pipeline(text: str, registry: Mapping[str, type]) -> list[tuple[type, dict[str, str]]]:
    """``a{k=v k2=v2},b`` -> [(A, {k: v, k2: v2}), (B, {})], checked against ``registry``."""
    out: list[tuple[type, dict[str, str]]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m or m.end() == pos:
            raise InputError(f"bad pass pipeline '{text}' at character {pos + 1}: expected name{{option=value ...}}")
        name, body = m.group(1), m.group(2)
        if name not in registry:
            raise InputError(f"unknown pass '{name}' (known: {', '.join(registry)})")
        opts: dict[str, str] = {}
        for item in (body or "").split():
            key, eq, value = item.partition("=")
            if not eq:
                raise InputError(f"pass {name}: option '{item}' needs a value (option=value)")
            opts[key] = value
        out.append((registry[name], opts))
        pos = m.end()
    return out


def field_names(cls: type) -> Sequence[str]:
    return [f.name for f in dataclasses.fields(cls)]
