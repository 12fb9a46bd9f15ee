"""Start-up is cheap (issue 24, 2): ``--help`` and ``targets`` import no
ONNX, IREE, numpy or bench module, so the signal handlers (installed before
any command imports its modules) cover nearly all of a run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
HEAVY = re.compile(r"\|\s+(onnx|iree|numpy|ml_dtypes|matplotlib|serenity_mlir\.bench|serenity_mlir\.pipeline)(\.|$)")


def _imports(*args: str) -> list[str]:
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    r = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    return [ln.rsplit("|", 1)[1].strip() for ln in r.stderr.splitlines() if ln.startswith("import time:")]


@pytest.mark.parametrize(
    "args",
    [("serenity-mlir", "--help"), ("serenity-mlir", "targets"), ("serenity-mlir", "compile", "--help")],
    ids=["help", "targets", "compile-help"],
)
def test_light_commands_import_nothing_heavy(args: tuple[str, ...]) -> None:
    modules = _imports(*args)
    assert "serenity_mlir.tools.cli" in modules
    heavy = [m for m in modules if HEAVY.search(f"| {m}")]
    assert not heavy, f"{' '.join(args)} imports {heavy[:5]}"
