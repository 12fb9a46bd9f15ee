"""Shared pytest helpers: run the console scripts as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_tool(
    name: str, *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs an installed console script (serenity-mlir, serenity-opt)."""
    exe = BIN / name
    return subprocess.run([str(exe), *args], capture_output=True, text=True, input=stdin, cwd=cwd)


@pytest.fixture(scope="session")
def branches_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled multi-branch sample (committed under samples/)."""
    p = ROOT / "samples" / "branches.onnx"
    assert p.is_file(), "samples/branches.onnx is missing: run python -m serenity_mlir.samples samples branches"
    return p
