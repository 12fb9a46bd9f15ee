"""Outputs are written whole, with the mode a plain open() would give."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serenity_mlir.files import atomic_write


def test_atomic_write_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "r.json", "{}\n")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "r.json", 3)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
