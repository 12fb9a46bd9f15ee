"""Tensor specs size their elements by width (bf16 is 2 bytes, not numpy's stand-in 4)."""

from __future__ import annotations

import numpy as np
import pytest

from serenity_mlir.errors import InputError
from serenity_mlir.ir.tensors import TensorSpec, spec_bytes
from serenity_mlir.runtime.modules import random_inputs


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [("1x8x32x32xf32", 32768), ("2x3xbf16", 12), ("2x3xf16", 12), ("4xi8", 4), ("4xi1", 4), ("5xf64", 40)],
)
def test_bytes_follow_the_element_width(text: str, nbytes: int) -> None:
    assert TensorSpec.parse(text).nbytes == nbytes
    assert str(TensorSpec.parse(text)) == text


def test_bf16_inputs_are_two_bytes_per_element() -> None:
    (x,) = random_inputs([TensorSpec.parse("2x3xbf16")], seed=0)
    assert x.shape == (2, 3) and x.dtype.itemsize == 2 and x.nbytes == 12
    assert np.isfinite(x.astype(np.float32)).all()


def test_bad_specs_are_input_errors() -> None:
    for bad in ("1x8xq7", "axbxf32", "1x-2xf32"):
        with pytest.raises(InputError):
            TensorSpec.parse(bad)
    assert spec_bytes(["1x2xf32", "nonsense"]) is None
    assert spec_bytes(["1x2xbf16", "3xi32"]) == 16
