"""Embedded targets (issue 6): target files, static libraries, arenas, qemu.

Everything runs the real iree-compile; the aarch64 test runs the aarch64
iree-run-module under qemu-aarch64 (skipped only when qemu-aarch64 is absent;
the runtime wheel is downloaded on first use).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from serenity_mlir.backend.build import arena_bytes, build_for_target, describe_build
from serenity_mlir.backend.compile import compile_flow
from serenity_mlir.backend.elf import read_elf
from serenity_mlir.backend.stream import compile_placed
from serenity_mlir.errors import BudgetError, CompilerToolError, InputError
from serenity_mlir.ir.tools import tool_path
from serenity_mlir.pipeline.driver import compile_model
from serenity_mlir.runtime.local import measure
from serenity_mlir.runtime.qemu import run_emulated
from serenity_mlir.settings import CompileSettings
from serenity_mlir.targets import available_targets, get_target
from serenity_mlir.units import check_memory_budget, parse_size

ROOT = Path(__file__).resolve().parents[2]
BRANCHES = ROOT / "samples" / "branches.onnx"
MCU = ("cortex-m4", "cortex-m7", "cortex-m55")


def placed_build(flow: Path, out: Path, target: str) -> dict[str, Any]:
    """The compile job's build step: the scheduled flow file, placed and compiled."""
    t = get_target(target)
    return dataclasses.asdict(describe_build(flow, compile_placed(flow, out, t).build, t))


def build_model(model: Path, out: Path, target: str, **options: Any) -> dict[str, Any]:
    """What CMake's build step runs: the compile job without running the model."""
    report = compile_model(
        model, out, CompileSettings.from_options(target=target, measure=False, verify_outputs=False, **options)
    )
    report["arena_bytes"] = report["iree_arena_bytes"]
    return report


# --------------------------------------------------------------------------
# Target files


def test_builtin_targets_parse() -> None:
    targets = {t.name: t for t in available_targets()}
    assert {"host", "cortex-a53", "cortex-a72", *MCU} <= set(targets)
    for name in MCU:
        t = targets[name]
        assert t.triple.startswith("thumbv") and t.triple.endswith("eabihf")
        assert (t.output, t.index_bits, t.runnable, t.float_abi) == ("static-library", 32, "none", "hard")
        assert t.sram_bytes and t.sram_bytes >= 128 * 1024
        assert t.features
    for name in ("cortex-a53", "cortex-a72"):
        t = targets[name]
        assert (t.triple, t.output, t.runnable) == ("aarch64-none-elf", "vmfb", "qemu-aarch64")
    assert targets["cortex-m7"].sram_bytes == 512 * 1024
    flags = targets["cortex-m7"].flag_list()
    assert "--iree-llvmcpu-link-static" in flags and "--iree-vm-target-index-bits=32" in flags
    assert "--iree-llvmcpu-target-float-abi=hard" in flags


TINY = """
func.func @f(%a: tensor<16xf32>) -> tensor<16xf32> {
  %0 = arith.addf %a, %a : tensor<16xf32>
  return %0 : tensor<16xf32>
}
"""


@pytest.mark.parametrize("name", [t.name for t in available_targets()])
def test_llvm_recognises_every_builtin_cpu_and_feature(name: str, tmp_path: Path) -> None:
    src = tmp_path / "tiny.mlir"
    src.write_text(TINY)
    t = get_target(name)
    # (cwd: a static-library build without an output path writes ./.o and ./.h)
    proc = subprocess.run(
        [tool_path("iree-compile"), str(src), *t.flag_list(), "-o", str(tmp_path / "tiny.vmfb")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "is not a recognized" not in proc.stderr


BAD_FILES = [
    ('name = "b"\ntriple = "x"\ncolour = "red"\n', "unknown target field(s): colour"),
    ('name = "b"\n', "needs a string field 'triple'"),
    ('name = "b"\ntriple = "x"\nindex_bits = "32"\n', "field 'index_bits' must be an integer (got string '32')"),
    ('name = "b"\ntriple = "x"\nindex_bits = true\n', "field 'index_bits' must be an integer (got boolean True)"),
    ('name = "b"\ntriple = "x"\nindex_bits = 16\n', "field 'index_bits' must be 32 or 64"),
    ('name = "b"\ntriple = "x"\noutput = "elf"\n', "field 'output' must be one of vmfb, static-library, vm-c"),
    ('name = "b"\ntriple = "x"\nrunnable = "yes"\n', "field 'runnable' must be one of local, qemu-aarch64, none"),
    ('name = "b"\ntriple = "x"\nfloat_abi = "softfp"\n', "field 'float_abi' must be one of"),
    ('name = "b"\ntriple = "x"\nsram_bytes = "lots"\n', "field 'sram_bytes': bad size 'lots'"),
    ('name = "b"\ntriple = "x"\nsram_bytes = 0\n', "field 'sram_bytes' must be positive"),
    ('name = "b"\ntriple = "x"\nfeatures = ["+dsp"]\n', "field 'features' must be a string (got array"),
    ('name = "b c"\ntriple = "x"\n', "field 'name' must be a plain word"),
    ('name = "b"\ntriple = "thumbv7em-none-eabihf"\nrunnable = "qemu-aarch64"\n', "is not aarch64"),
    ('name = "b"\ntriple = "x"\noutput = "static-library"\nrunnable = "local"\n', "'runnable' must be none"),
    ('name = "b"\ntriple = \n', "invalid target file"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_target_files_are_rejected_clearly(text: str, message: str, tmp_path: Path) -> None:
    p = tmp_path / "board.toml"
    p.write_text(text)
    with pytest.raises(InputError) as e:
        get_target(str(p))
    assert str(e.value).startswith(f"{p}: ")
    assert message in str(e.value)


def test_user_target_file(tmp_path: Path) -> None:
    p = tmp_path / "my-f7.toml"
    p.write_text(
        'name = "my-f7"\ntriple = "thumbv7em-none-eabihf"\ncpu = "cortex-m7"\nfeatures = "+fp-armv8d16sp,+dsp"\n'
        'float_abi = "hard"\noutput = "static-library"\nindex_bits = 32\nsram_bytes = "320K"\n'
    )
    t = get_target(str(p))
    assert (t.name, t.sram_bytes, t.source) == ("my-f7", 320 * 1024, str(p))
    with pytest.raises(InputError, match="no such target file"):
        get_target(str(tmp_path / "missing.toml"))
    with pytest.raises(InputError, match=r"unknown target 'nope' \(known: .*cortex-m7"):
        get_target("nope")


# --------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("256K", 262144),
        ("256k", 262144),
        ("256KiB", 262144),
        ("256KB", 262144),
        ("1M", 1 << 20),
        ("2MiB", 2 << 20),
        ("1.5M", 1572864),
        ("1G", 1 << 30),
        ("65536", 65536),
        ("65536B", 65536),
        (" 64 K ", 65536),
        (1000, 1000),
    ],
)
def test_parse_size(text: str | int, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "K", "12Q", "-5", "1.5", "0.1K", "256 KiBs", "abc", "1e3", "i", "5iB"])
def test_parse_size_rejects_junk(text: str) -> None:
    with pytest.raises(InputError, match="bad size"):
        parse_size(text)


def test_memory_budget() -> None:
    check_memory_budget(256 * 1024, "256K")
    with pytest.raises(BudgetError, match=r"needs 262,145 B .* budget of 262,144 B .* by 1 B"):
        check_memory_budget(256 * 1024 + 1, "256K")


# --------------------------------------------------------------------------
# Cortex-M builds


@pytest.fixture(scope="module")
def m7(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("m7") / "branches.vmfb"
    temps = out.parent / "temps"
    return build_model(BRANCHES, out, "cortex-m7", keep_temps=temps)


def test_cortex_m7_static_library(m7: dict[str, Any]) -> None:
    a = {k: Path(v) for k, v in m7["artifacts"].items()}
    assert set(a) == {"module", "object", "header"}
    assert a["object"] == a["module"].with_suffix(".o") and a["header"] == a["module"].with_suffix(".h")
    elf = read_elf(a["object"])
    assert (elf.bits, elf.little_endian, elf.machine_name, elf.file_type) == (32, True, "ARM", 1)
    assert "branches_linked_library_query" in elf.defined_globals()
    assert m7["library_query_symbol"] == "branches_linked_library_query"
    assert "branches_linked_library_query(" in a["header"].read_text()
    sizes = elf.size_summary()
    assert sizes["text"] > 0
    assert m7["code_size_bytes"] == sizes["text"] + sizes["rodata"] + sizes["data"] == elf.code_size_bytes
    assert m7["sections"] == sizes
    # No scratch directory is left beside the outputs.
    assert sorted(p.name for p in a["module"].parent.iterdir()) == [
        "branches.h",
        "branches.o",
        "branches.vmfb",
        "temps",
    ]
    if shutil.which("arm-none-eabi-size"):
        # GNU size's text + data (dec) counts the same bytes as our reader.
        out = subprocess.run(["arm-none-eabi-size", str(a["object"])], capture_output=True, text=True).stdout
        assert int(out.splitlines()[1].split()[3]) == m7["code_size_bytes"]


def test_arena_matches_the_host_runtime(m7: dict[str, Any], tmp_path: Path) -> None:
    """The arena read at compile time (IREE's transient slab) is what the
    runtime allocates on top of the inputs: checked on the host build."""
    assert m7["arena_bytes"] == 393216
    assert m7["ram_bytes"] == m7["arena_bytes"] + m7["input_bytes"]
    assert (m7["input_bytes"], m7["output_bytes"]) == (32768, 32768)
    host = build_model(BRANCHES, tmp_path / "host.vmfb", "host")
    assert host["arena_bytes"] == m7["arena_bytes"]
    r = measure(tmp_path / "host.vmfb")
    assert r["device_bytes_peak"] - r["constant_bytes"] - r["input_bytes"] == m7["arena_bytes"]
    assert m7["fits_sram"] is True


def test_arena_bytes_and_program_order(m7: dict[str, Any], tmp_path: Path) -> None:
    flow = Path(m7["artifacts"]["module"]).parent / "temps" / "model.scheduled.flow.mlir"
    assert arena_bytes(flow, "cortex-m7") == m7["arena_bytes"]
    program = build_model(BRANCHES, tmp_path / "program.vmfb", "cortex-m7", scheduler="program")
    assert program["arena_bytes"] > m7["arena_bytes"]
    assert program["fits_sram"] is False  # 655,360 + 32,768 B > 512 KiB: the SERENITY order fits, this does not


def test_build_is_reproducible(m7: dict[str, Any], tmp_path: Path) -> None:
    flow = Path(m7["artifacts"]["module"]).parent / "temps" / "model.scheduled.flow.mlir"
    again = placed_build(flow, tmp_path / "branches.vmfb", "cortex-m7")
    for role in ("module", "object", "header"):
        assert Path(again["artifacts"][role]).read_bytes() == Path(m7["artifacts"][role]).read_bytes(), role


def test_vm_c_output(m7: dict[str, Any], tmp_path: Path) -> None:
    flow = Path(m7["artifacts"]["module"]).parent / "temps" / "model.scheduled.flow.mlir"
    r = placed_build(flow, tmp_path / "branches.vmfb", "cortex-m7-vmc")
    assert set(r["artifacts"]) == {"c_source", "object", "header"}
    assert "iree_status_t branches_create(" in (tmp_path / "branches.c").read_text()
    assert not (tmp_path / "branches.vmfb").exists()
    assert r["arena_bytes"] == m7["arena_bytes"]
    assert r["code_size_bytes"] == m7["code_size_bytes"]


def test_failed_builds_write_nothing(m7: dict[str, Any], tmp_path: Path) -> None:
    # A flow file lowered for the host cannot be finished for a Cortex-M.
    host_temps = tmp_path / "host-temps"
    build_model(BRANCHES, tmp_path / "h.vmfb", "host", keep_temps=host_temps)
    host_flow = host_temps / "model.scheduled.flow.mlir"
    out = tmp_path / "out" / "m.vmfb"
    out.parent.mkdir()
    out.write_bytes(b"old module")
    with pytest.raises(InputError, match="lowered for x86_64, not for target cortex-m7"):
        compile_flow(host_flow, out, get_target("cortex-m7"))
    # ... nor an M7 flow file for the aarch64 target,
    m7_flow = Path(m7["artifacts"]["module"]).parent / "temps" / "model.scheduled.flow.mlir"
    with pytest.raises(InputError, match="lowered for thumbv7em"):
        compile_flow(m7_flow, out, get_target("cortex-a53"))
    # ... and an iree-compile failure leaves the old outputs alone.
    with pytest.raises(CompilerToolError, match="reproduce with"):
        compile_flow(m7_flow, out, get_target("cortex-m7").with_flags(["--iree-no-such-flag"]))
    assert out.read_bytes() == b"old module"
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.vmfb"]


def test_unrecognised_feature_is_an_error(m7: dict[str, Any], tmp_path: Path) -> None:
    p = tmp_path / "typo.toml"
    p.write_text(
        'name = "typo"\ntriple = "thumbv7em-none-eabihf"\ncpu = "cortex-m7"\nfeatures = "+fp-armv8d16sp,+dspp"\n'
        'float_abi = "hard"\noutput = "static-library"\nindex_bits = 32\n'
    )
    flow = Path(m7["artifacts"]["module"]).parent / "temps" / "model.scheduled.flow.mlir"
    with pytest.raises(InputError, match=r"typo.toml\): LLVM does not recognise feature '\+dspp'"):
        build_for_target(flow, tmp_path / "x.vmfb", get_target(str(p)))
    assert not list(tmp_path.glob("x.*"))


def test_memory_budget_in_build(tmp_path: Path) -> None:
    need = r"branches.onnx on cortex-m7 \(peak at dispatch .+\) needs 425,984 B .*budget of 262,144 B"
    with pytest.raises(BudgetError, match=need):
        build_model(BRANCHES, tmp_path / "b.vmfb", "cortex-m7", memory_budget="256K")
    r = build_model(BRANCHES, tmp_path / "b.vmfb", "cortex-m7", memory_budget="512K")
    assert r["memory_budget_bytes"] == 524288


def test_elf_reader_on_elf64() -> None:
    exe = Path(os.path.realpath(sys.executable))
    elf = read_elf(exe)
    assert elf.bits == 64 and elf.sections
    with pytest.raises(InputError, match="not an ELF file"):
        read_elf(BRANCHES)


# --------------------------------------------------------------------------
# Cortex-A under qemu


@pytest.mark.skipif(shutil.which("qemu-aarch64") is None, reason="qemu-aarch64 is not installed (Debian: qemu-user)")
def test_cortex_a53_under_qemu_matches_host(tmp_path: Path) -> None:
    a53 = build_model(BRANCHES, tmp_path / "a53.vmfb", "cortex-a53")
    emu = run_emulated(tmp_path / "a53.vmfb", "cortex-a53", save_outputs=tmp_path / "a53.npz")
    assert emu["emulator"].endswith("-cpu cortex-a53")
    build_model(BRANCHES, tmp_path / "host.vmfb", "host")
    host = measure(tmp_path / "host.vmfb")
    assert emu["inputs"] == host["inputs"] == ["1x8x32x32xf32"]
    assert emu["outputs_sha256"] == host["outputs_sha256"]
    # Same slab on both CPUs; iree-run-module also stages the constants.
    assert emu["transient_bytes"] == host["transient_bytes"]
    assert emu["device_bytes_peak"] == emu["constant_bytes"] + emu["input_bytes"] + a53["arena_bytes"]
    assert (tmp_path / "a53.npz").is_file()


@pytest.mark.skipif(shutil.which("qemu-aarch64") is None, reason="qemu-aarch64 is not installed (Debian: qemu-user)")
def test_compile_for_cortex_a53_measures_the_prediction(tmp_path: Path) -> None:
    """The compile job measured under qemu: iree-run-module also copies the
    weights into device memory, which the prediction (inputs, results, slab)
    leaves out; without them the peak is the prediction, byte for byte."""
    r = compile_model(BRANCHES, tmp_path / "a53.vmfb", CompileSettings.from_options(target="cortex-a53",
                                                                                     verify_outputs=False))  # fmt: skip
    assert r["constant_bytes"] > 0
    assert r["measured_peak_bytes"] == r["predicted_peak_bytes"] + r["constant_bytes"]
    assert r["prediction_exact"] is True


# --------------------------------------------------------------------------
# CMake


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_builds_a_sample(tmp_path: Path) -> None:
    build = tmp_path / "build"
    cfg = subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            "-DSERENITY_TARGET=cortex-m7",
            "-DSERENITY_SAMPLES=branches",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert cfg.returncode == 0, cfg.stderr
    b = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert b.returncode == 0, b.stdout + b.stderr
    samples = build / "samples"
    assert {"branches.vmfb", "branches.o", "branches.h", "branches.json"} <= {p.name for p in samples.iterdir()}
    assert re.search(r"branches.onnx -> cortex-m7: code .* arena 384.0 KiB", b.stdout)
    if shutil.which("arm-none-eabi-gcc"):
        assert read_elf(samples / "branches_link.elf").file_type == 2  # linked executable
    # Up to date: nothing is rebuilt.
    again = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert "serenity-mlir: branches" not in again.stdout
