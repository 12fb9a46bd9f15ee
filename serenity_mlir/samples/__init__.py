"""Deterministic ONNX generators for the networks the scheduler is evaluated on.

The irregularly wired networks (DARTS, SwiftNet, RandWire) are where a
memory-aware schedule pays off; MobileNetV2 and ResNet are regular controls,
and ``branches`` is a tiny smoke test.  Models are built with ``onnx`` and
``numpy`` only (opset 17, IR version 8, float32, static batch-1 NCHW shapes,
weights as initializers, input ``"input"``, output ``"output"``) so they need
no framework and are byte-for-byte reproducible for a given seed.

Every ``build_*`` takes size keywords, ``seed`` and ``paper``: the default is
small enough to compile with IREE in seconds, ``paper=True`` gives sizes close
to the papers' (explicit size keywords override either preset).
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Callable

import onnx

from .branches import build_branches
from .darts import build_darts, build_darts_cifar
from .mobilenetv2 import build_mobilenetv2
from .randwire import build_randwire_cifar10, build_randwire_cifar100
from .resnet import build_resnet
from .swiftnet import build_swiftnet

SAMPLES: dict[str, Callable[..., onnx.ModelProto]] = {
    "branches": build_branches,
    "darts": build_darts,
    "darts_cifar": build_darts_cifar,
    "swiftnet": build_swiftnet,
    "randwire_cifar10": build_randwire_cifar10,
    "randwire_cifar100": build_randwire_cifar100,
    "mobilenetv2": build_mobilenetv2,
    "resnet": build_resnet,
}
IRREGULAR = {"darts", "darts_cifar", "swiftnet", "randwire_cifar10", "randwire_cifar100"}
REGULAR = {"mobilenetv2", "resnet"}

__all__ = [
    "IRREGULAR", "REGULAR", "SAMPLES", "build_branches", "build_darts", "build_darts_cifar",
    "build_mobilenetv2",
    "build_randwire_cifar10", "build_randwire_cifar100", "build_resnet", "build_swiftnet",
    "write_sample",
]


def write_sample(name: str, path: str | os.PathLike[str], paper: bool = False) -> pathlib.Path:
    """Build sample ``name`` and save it to ``path`` (``<path>/<name>.onnx`` if a directory).

    The file is written to a temporary file in the same directory and then
    moved into place with ``os.replace``, so concurrent readers (or a crash)
    never see a half-written model.
    """
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; choose from {sorted(SAMPLES)}")
    target = pathlib.Path(path)
    if target.is_dir():
        target = target / f"{name}.onnx"
    data = SAMPLES[name](paper=paper).SerializeToString()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would surprise other readers
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return target
