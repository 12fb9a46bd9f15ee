"""Tensor specs as the pipeline records them (``1x8x32x32xf32``).

The byte size comes from the element type's width, not from a numpy dtype:
numpy has no bf16, and a stand-in dtype would count bf16 as 4 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from serenity_mlir.errors import InputError

# MLIR element type -> bits per element.
ELEMENT_BITS = {
    "f64": 64,
    "f32": 32,
    "f16": 16,
    "bf16": 16,
    "i64": 64,
    "i32": 32,
    "i16": 16,
    "i8": 8,
    "si64": 64,
    "si32": 32,
    "si8": 8,
    "ui8": 8,
    "i1": 8,  # IREE stores i1 tensors one byte per element
}

# MLIR element type -> numpy dtype name for host arrays (bf16: ml_dtypes).
NUMPY_DTYPES = {
    "f64": "float64",
    "f32": "float32",
    "f16": "float16",
    "bf16": "bfloat16",
    "i64": "int64",
    "i32": "int32",
    "i16": "int16",
    "i8": "int8",
    "si64": "int64",
    "si32": "int32",
    "si8": "int8",
    "ui8": "uint8",
    "i1": "bool",
}


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str  # MLIR element type, e.g. f32

    @staticmethod
    def parse(text: str) -> TensorSpec:
        """``1x8x32x32xf32`` -> shape (1, 8, 32, 32), dtype f32."""
        parts = text.strip().split("x")
        try:
            shape = tuple(int(d) for d in parts[:-1])
        except ValueError:
            raise InputError(f"bad tensor spec '{text}' (expected e.g. 1x8x32x32xf32)") from None
        if any(d < 0 for d in shape):
            raise InputError(f"bad tensor spec '{text}': negative dimension")
        if parts[-1] not in ELEMENT_BITS:
            raise InputError(f"bad tensor spec '{text}': unsupported element type '{parts[-1]}'")
        return TensorSpec(shape, parts[-1])

    def __str__(self) -> str:
        return "x".join([*map(str, self.shape), self.dtype])

    @property
    def num_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.num_elements * ELEMENT_BITS[self.dtype] // 8


def spec_bytes(specs: list[str]) -> int | None:
    """Total bytes of recorded specs, or None if one cannot be read."""
    try:
        return sum(TensorSpec.parse(s).nbytes for s in specs)
    except InputError:
        return None
