"""The work folder of one compile: every intermediate file has a name here.

Stages get the paths they read and write from this record instead of
finding each other's output by globbing, so what a stage produces is visible
in its signature. The names are also what ``--keep-temps`` shows a user
(and what a reproducer command refers to), so they stay stable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from serenity_mlir.errors import InputError


@dataclass(frozen=True)
class WorkFolder:
    root: Path

    @staticmethod
    def create() -> WorkFolder:
        return WorkFolder(Path(tempfile.mkdtemp(prefix="serenity-")))

    def model_input(self, binary: bool) -> Path:
        """The imported model as IREE reads it (text or bytecode)."""
        return self.root / ("model.input.mlirbc" if binary else "model.input.mlir")

    @property
    def flow(self) -> Path:
        return self.root / "model.flow.mlir"

    @property
    def scheduled_flow(self) -> Path:
        return self.scheduled(None)

    def scheduled(self, tag: str | None) -> Path:
        """The scheduled flow module of one build (``tag``: a configuration
        of the bench, or a second attempt; None: the compile's own)."""
        return self.root / "model.scheduled.flow.mlir" if tag is None else self.variant(tag, "scheduled.flow")

    def build_dir(self, tag: str | None) -> Path:
        """Where one build's module is written and measured before it is
        moved to the user's output path (so a measurement never reads
        another process's file at that path)."""
        return self.root / ("module" if tag is None else f"module-{tag}")

    def stream_dir(self, tag: str | None) -> Path:
        """One build's stream-phase files (the packs, placed and final)."""
        return self.root / ("stream" if tag is None else f"stream-{tag}")

    @property
    def linalg(self) -> Path:
        return self.root / "model.linalg.mlir"

    def variant(self, tag: str, phase: str) -> Path:
        """A rewrite variant's file: phase is linalg, flow or scheduled.flow."""
        return self.root / f"model.{tag}.{phase}.mlir"

    @property
    def module_dir(self) -> Path:
        return self.build_dir(None)

    @property
    def reference(self) -> Path:
        return self.root / "reference.vmfb"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs.npz"

    @property
    def reference_outputs(self) -> Path:
        return self.root / "reference_outputs.npz"

    def holds_files(self) -> bool:
        return any(p.is_file() for p in self.root.rglob("*"))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def copy_to(self, dest: Path) -> None:
        """Copies the intermediate files into ``dest`` (made, or an empty
        folder), leaving the folder's own mode alone. A failure is an
        InputError naming ``dest``."""
        try:
            dest.mkdir(parents=True, exist_ok=True)
            for src in sorted(self.root.rglob("*")):
                rel = src.relative_to(self.root)
                if src.is_dir():
                    (dest / rel).mkdir(exist_ok=True)
                elif src.is_file():
                    shutil.copy2(src, dest / rel)
        except OSError as e:
            raise InputError(
                f"--keep-temps {dest}: cannot copy the intermediate files there ({e.strerror or e})"
            ) from None


def check_keep_temps(
    dest: Path, reads: Iterable[tuple[str, Path]] = (), writes: Iterable[tuple[str, Path]] = ()
) -> None:
    """``--keep-temps`` must name a new or empty folder: it never overwrites.
    With the compile's ``reads`` and ``writes`` (what each path is, and the
    path), none of them may be the folder or lie inside it."""
    if dest.exists() and not dest.is_dir():
        raise InputError(f"--keep-temps {dest}: exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise InputError(f"--keep-temps {dest}: the folder is not empty (give a new or empty folder)")
    parent = dest.parent if not dest.exists() else dest
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--keep-temps {dest}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--keep-temps {dest}: {parent} is not writable (permission denied)")
    folder = dest.resolve()
    for what, p in [*reads, *writes]:
        if p.resolve() == folder or p.resolve().is_relative_to(folder):
            raise InputError(f"--keep-temps {dest}: is also {what} {p}: give another folder")
