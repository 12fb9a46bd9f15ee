"""Byte sizes of tensor types, as IREE stores them.

Statically shaped builtin tensors and torch's ``!torch.vtensor`` (an ONNX
model imported but not yet lowered); a dynamic shape is an error that names
the value and where it is: a schedule needs sizes.
"""

from __future__ import annotations

from iree.compiler import ir

from serenity_mlir.errors import InputError
from serenity_mlir.ir.mlir import format_location


def tensor_bytes(t: ir.Type) -> int | None:
    """Byte size of a statically shaped tensor type; None for non-tensors."""
    shaped: ir.ShapedType | None = None
    if isinstance(t, ir.RankedTensorType):
        shaped = t
    elif str(t).startswith("!torch.vtensor<["):
        return _torch_vtensor_bytes(str(t))
    if shaped is None:
        return None
    if not shaped.has_static_shape:
        raise DynamicShape(str(t))
    n = 1
    for d in shaped.shape:
        n *= d
    return n * _element_bits(shaped.element_type) // 8 + (1 if (n * _element_bits(shaped.element_type)) % 8 else 0)


class DynamicShape(Exception):
    pass


def _element_bits(t: ir.Type) -> int:
    if isinstance(t, ir.IntegerType):
        return max(8, t.width) if t.width == 1 else t.width
    if isinstance(t, ir.IndexType):
        return 64
    if isinstance(t, ir.ComplexType):
        return 2 * _element_bits(t.element_type)
    width = getattr(t, "width", None)
    if isinstance(width, int):
        return width
    raise InputError(f"unsupported element type {t}")


_TORCH_BITS = {
    "f64": 64,
    "f32": 32,
    "f16": 16,
    "bf16": 16,
    "si64": 64,
    "si32": 32,
    "si16": 16,
    "si8": 8,
    "ui8": 8,
    "i1": 8,
}


def _torch_vtensor_bytes(text: str) -> int:
    inner = text[len("!torch.vtensor<[") :]
    dims, _, rest = inner.partition("]")
    if "?" in dims:
        raise DynamicShape(text)
    n = 1
    for d in dims.split(","):
        if d.strip():
            n *= int(d)
    elem = rest.strip(",> ")
    return n * _TORCH_BITS.get(elem, 32) // 8


def tensor_bytes_or_error(arg: ir.Value, func_op: ir.Operation, name: str) -> int | None:
    try:
        return tensor_bytes(arg.type)
    except DynamicShape as e:
        where = format_location(func_op.location)
        raise InputError(
            f"{where}: dynamic shapes are not supported: argument {arg.get_name()} of '{name}' has type {e}"
        ) from None
