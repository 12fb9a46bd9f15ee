"""Running aarch64 (Cortex-A) modules here, under ``qemu-aarch64``.

The aarch64 ``iree-run-module`` comes from the ``iree-base-runtime`` wheel of
the installed version (fetched once by :func:`ensure_aarch64_runtime`); qemu's
user-mode emulation runs it with the target's own core where qemu models it.
Microcontroller builds are not run: no IREE runtime for bare metal comes from
the package registries.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError
from serenity_mlir.ir.tools import run_tool
from serenity_mlir.runtime.run_module import benchmark_module, run_iree_run_module
from serenity_mlir.targets import Target, get_target


def _runtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iree-base-runtime")
    except PackageNotFoundError:
        return "3.13.0"


def _find_run_module(root: Path) -> Path | None:
    if root.is_file():
        return root
    for cand in (root / "iree" / "_runtime_libs" / "iree-run-module", root / "iree-run-module"):
        if cand.is_file():
            return cand
    return None


def ensure_aarch64_runtime() -> Path:
    """The aarch64 ``iree-run-module`` from the ``iree-base-runtime`` wheel of
    the installed version, downloaded (``pip download --platform
    manylinux_2_28_aarch64``) and unpacked once into
    ``~/.cache/serenity-mlir/aarch64/iree-base-runtime-VERSION``.

    ``SERENITY_AARCH64_RUNTIME`` overrides the location: the binary itself or
    a directory holding it or the unpacked wheel (filled on first use)."""
    ver = _runtime_version()
    env = os.environ.get("SERENITY_AARCH64_RUNTIME")
    if env:
        root = Path(env).expanduser()
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        root = cache / "serenity-mlir" / "aarch64" / f"iree-base-runtime-{ver}"
    found = _find_run_module(root)
    if found is not None:
        _make_executable(found)
        return found
    if root.exists() and not root.is_dir():
        raise InputError(f"SERENITY_AARCH64_RUNTIME={root}: not iree-run-module nor a directory")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root.parent) as d:
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--platform", "manylinux_2_28_aarch64", f"iree-base-runtime=={ver}", "-d", d,
        ]  # fmt: skip
        run_tool("downloading the aarch64 iree-base-runtime wheel", cmd)
        wheels = sorted(Path(d).glob("iree_base_runtime-*.whl"))
        if not wheels:
            raise InputError(f"pip downloaded no iree-base-runtime wheel for aarch64 into {d}")
        unpacked = Path(d) / "unpacked"
        with zipfile.ZipFile(wheels[0]) as z:
            z.extractall(unpacked)
        if _find_run_module(unpacked) is None:
            raise InputError(f"{wheels[0].name}: has no iree/_runtime_libs/iree-run-module")
        root.mkdir(exist_ok=True)
        for item in unpacked.iterdir():
            dest = root / item.name
            if not dest.exists():
                os.replace(item, dest)  # another process may have won the race: keep its copy
    found = _find_run_module(root)
    if found is None:
        raise InputError(f"{root}: unpacking the aarch64 runtime failed")
    _make_executable(found)
    return found


def _make_executable(p: Path) -> None:
    mode = p.stat().st_mode
    if not mode & 0o111:
        p.chmod(mode | 0o755)


def qemu_command(target: Target) -> list[str]:
    """``qemu-aarch64 -L SYSROOT [-cpu CPU]``: the target's own core when qemu
    models it, so an instruction the core lacks faults instead of passing."""
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        raise InputError(
            "qemu-aarch64 not found: install it with "
            "`apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross` (Debian/Ubuntu)"
        )
    env = os.environ.get("SERENITY_QEMU_SYSROOT") or os.environ.get("QEMU_LD_PREFIX")
    sysroot = Path(env or "/usr/aarch64-linux-gnu")
    for lib in ("lib/ld-linux-aarch64.so.1", "lib/libstdc++.so.6"):
        if not (sysroot / lib).exists():
            raise InputError(
                f"{sysroot / lib} not found: the aarch64 iree-run-module needs an aarch64 glibc and libstdc++ "
                "(`apt-get install libc6-arm64-cross libstdc++6-arm64-cross`, or set SERENITY_QEMU_SYSROOT)"
            )
    cmd = [qemu, "-L", str(sysroot)]
    if target.cpu in _qemu_cpus(qemu):
        cmd += ["-cpu", target.cpu]
    return cmd


_QEMU_CPUS: dict[str, set[str]] = {}


def _qemu_cpus(qemu: str) -> set[str]:
    if qemu not in _QEMU_CPUS:
        # qemu lists its CPUs after "Available CPUs:" (and exits with 1).
        proc = run_tool("listing qemu's CPUs", [qemu, "-cpu", "help"], 60, check=False)
        _, _, listing = proc.stdout.partition("Available CPUs:")
        _QEMU_CPUS[qemu] = set(listing.split())
    return _QEMU_CPUS[qemu]


def _emulated_target(target: Target | str) -> Target:
    t = get_target(target) if isinstance(target, str) else target
    if t.runnable != "qemu-aarch64":
        raise InputError(f"target {t.name} is not runnable under qemu-aarch64 (runnable = {t.runnable!r})")
    return t


def run_emulated(
    vmfb: str | Path,
    target: Target | str,
    function: str | None = None,
    input_specs: list[str] | None = None,
    seed: int = 0,
    timeout: float = 600,
    save_outputs: str | Path | None = None,
) -> dict[str, Any]:
    """Runs an aarch64 module under ``qemu-aarch64`` (``-cpu`` the target's
    core) with the aarch64 ``iree-run-module``; same keys as
    ``runtime.measure`` (``device_bytes_peak``, ``constant_bytes``,
    ``input_bytes``, ``output_bytes``, ``transient_bytes``, ``outputs_sha256``,
    ``inputs``), plus ``host_bytes_peak`` and ``emulator``.

    The peak is iree-run-module's, which stages the constants into device
    memory: compare it with ``run_iree_run_module`` on the host build (same
    tool), or compare ``transient_bytes`` with ``runtime.measure``'s. Outputs
    are bit-identical to the host's only when the code generated for both
    CPUs rounds alike (branches: yes; darts: within 1e-6 relative)."""
    t = _emulated_target(target)
    prefix = qemu_command(t)
    result = run_iree_run_module(
        vmfb, function, input_specs, seed, prefix, ensure_aarch64_runtime(), timeout, save_outputs
    )
    result["emulator"] = " ".join(Path(prefix[0]).name if i == 0 else a for i, a in enumerate(prefix))
    result["target"] = t.name
    return result


def benchmark_emulated(
    vmfb: str | Path,
    target: Target | str,
    function: str,
    inputs: list[str],
    seed: int = 0,
    repetitions: int = 5,
    timeout: float = 600,
) -> list[float]:
    """Seconds per call, one per repetition, of an aarch64 module in the aarch64
    ``iree-benchmark-module`` (beside its ``iree-run-module``) under
    ``qemu-aarch64``: emulated time, comparable only with another module
    timed the same way (see ``run_module.benchmark_module``)."""
    t = _emulated_target(target)
    prefix = qemu_command(t)
    tool = ensure_aarch64_runtime().parent / "iree-benchmark-module"
    if not tool.is_file():
        raise InputError(f"{tool}: not found beside the aarch64 iree-run-module (SERENITY_AARCH64_RUNTIME)")
    _make_executable(tool)
    return benchmark_module(
        vmfb, function, inputs, seed, repetitions, prefix=prefix, benchmark_tool=tool, timeout=timeout
    )
