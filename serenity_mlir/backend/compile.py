"""Step 5, compile: finish compiling a (scheduled) flow-level module.

``--compile-from=flow`` with the target's flags. Every output kind is built in
a temporary directory beside the destination and renamed into place only when
the whole compile succeeded, so a failed compile never leaves a half-written
(or a stale mix of old and new) output.

Output kinds (``Target.output``), for ``out = DIR/NAME.vmfb``:

- ``vmfb``: ``NAME.vmfb`` with the executables embedded as ELF.
- ``static-library``: ``NAME.vmfb`` (the VM module) plus ``NAME.o`` and
  ``NAME.h``, the executables as a static library whose entry point is
  ``NAME_linked_library_query`` (declared in ``NAME.h``).
- ``vm-c``: ``NAME.c`` (the VM module as C: ``NAME_create`` makes it) plus
  the same ``NAME.o`` and ``NAME.h``.

For the static kinds the module is named ``NAME`` (so one firmware can hold
several models); a ``vmfb`` module keeps IREE's default name, ``module``.

IREE records the static library's output path in the device target at the
flow phase (``static_library_output`` in ``#hal.executable.target``), and a
later ``--iree-llvmcpu-static-library-output-path`` does not override it: a
flow file lowered without it compiles "successfully" and writes no object. So
the path is set in (a copy of) the flow file here.

Every compile also dumps IREE's scheduling statistics (JSON), which carry the
size of the transient slab each call needs (the arena of a bare-metal build).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serenity_mlir.errors import CompilerToolError, InputError
from serenity_mlir.files import hidden_sibling
from serenity_mlir.ir.tools import run_tool, tool_path
from serenity_mlir.targets import Target


@dataclass
class CompileResult:
    """What one compile produced."""

    seconds: float
    # role -> path: "module" (.vmfb), "c_source" (.c), "object" (.o), "header" (.h)
    artifacts: dict[str, Path] = field(default_factory=dict)
    # IREE's --iree-scheduling-dump-statistics-format=json output, parsed (or None)
    statistics: dict[str, Any] | None = None
    library_name: str | None = None  # static libraries: NAME in NAME_library_query
    vm_module_name: str = "module"  # vm-c: NAME_create() makes the module
    warnings: list[str] = field(default_factory=list)


def compile_flow(flow_file: Path, out: Path, target: Target) -> float:
    """Compiles ``flow_file`` into ``out`` (and the files beside it that the
    target's output kind needs); returns the seconds it took."""
    return compile_flow_artifacts(flow_file, out, target).seconds


def compile_input(input_file: Path, out: Path, target: Target) -> float:
    """IREE's own full compile of an input-level module (the baselines)."""
    return _compile(Path(input_file), "input", Path(out), target, None, "compiling with IREE").seconds


class BackgroundCompile:
    """:func:`compile_input` on the other core while this process goes on.

    The compile job checks its module against IREE's default build of the
    same model; that build needs only the lowered input, so it can run while
    the pass schedules, rewrites and places (Python, one core): iree-compile
    is a process of its own. :meth:`result` waits for it and raises its
    error; :meth:`cancel` kills it (an interrupt, a failed compile job), so
    no child outlives the job and its work folder."""

    def __init__(self, input_file: Path, out: Path, target: Target) -> None:
        self._procs: list[subprocess.Popen[str]] = []
        self._cancelled = False
        self._lock = threading.Lock()
        self._seconds = 0.0
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(Path(input_file), Path(out), target), daemon=True
        )
        self._thread.start()

    def _run(self, src: Path, out: Path, target: Target) -> None:
        try:
            what = "compiling with IREE"
            self._seconds = _compile(src, "input", out, target, None, what, self._started).seconds
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread by result()
            self._error = e

    def result(self) -> float:
        """Seconds the compile took; raises what it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._seconds

    def _started(self, p: subprocess.Popen[str]) -> None:
        with self._lock:
            self._procs.append(p)
            if self._cancelled:
                p.kill()  # cancelled before it started

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            for p in self._procs:
                if p.poll() is None:
                    p.kill()
        self._thread.join(timeout=30)


def compile_flow_artifacts(flow_file: Path, out: Path, target: Target) -> CompileResult:
    """As ``compile_flow``, and says what was written (and IREE's statistics)."""
    return _compile(Path(flow_file), "flow", Path(out), target, None, "compiling from the flow phase")


def artifact_paths(out: Path, target: Target) -> dict[str, Path]:
    """The files a compile of ``target`` to ``out`` writes, by role."""
    paths: dict[str, Path] = {}
    if target.output == "vm-c":
        paths["c_source"] = out if out.suffix == ".c" else out.with_suffix(".c")
    else:
        paths["module"] = out
    if target.links_static:
        paths["object"] = out.with_suffix(".o")
        paths["header"] = out.with_suffix(".h")
    if len(set(paths.values())) != len(paths):
        raise InputError(f"{out}: choose an output name whose suffix is not .o or .h")
    return paths


# The longest file stem iree-compile is given to write (LLVM writes through a
# temporary file named after the output plus a suffix, within NAME_MAX).
_LONGEST_SCRATCH_STEM = 200


def check_output_name(out: Path, target: Target) -> None:
    """A static library is named after its file (the name is its C symbol
    prefix), so its name must leave iree-compile room for its temporary
    file: an InputError otherwise, before any work."""
    if target.links_static and len(os.fsencode(library_name(out))) > _LONGEST_SCRATCH_STEM:
        raise InputError(
            f"-o {out}: a static library's name is its C symbol prefix and may be at most "
            f"{_LONGEST_SCRATCH_STEM} bytes long for iree-compile (give a shorter name)"
        )


def library_name(out: Path) -> str:
    """The C identifier IREE derives the static library's name from (the
    compiled file's stem): ``NAME_linked_library_query`` is its entry point."""
    stem = out.name.split(".", 1)[0] or "module"
    ident = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return ident if not ident[0].isdigit() else f"m_{ident}"


_STATIC_TARGET = re.compile(r'#hal\.executable\.target<\s*"llvm-cpu"\s*,\s*"static"\s*,\s*\{')
_OUT_ENTRY = r'static_library_output\s*=\s*"(?:[^"\\]|\\.)*"'
# An existing entry, with the comma that separates it from its neighbour.
_STATIC_OUTPUT = re.compile(rf"{_OUT_ENTRY}\s*,\s*|\s*,\s*{_OUT_ENTRY}|{_OUT_ENTRY}")
_TRIPLE = re.compile(r'target_triple\s*=\s*"([^"]*)"')
_LLVM_WARNING = re.compile(r"'([^']*)' is not a recognized (feature|processor) for this target")


def _mlir_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _flow_text(flow_file: Path) -> str:
    data = flow_file.read_bytes()
    if data.startswith(b"ML\xefR"):  # MLIR bytecode: print it as text
        proc = run_tool(f"reading {flow_file}", [tool_path("iree-opt"), str(flow_file)])
        return proc.stdout
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InputError(f"{flow_file}: neither MLIR text nor MLIR bytecode") from None


def _check_lowered_for(text: str, flow_file: Path, target: Target) -> None:
    """The device target is fixed at the flow phase: refuse a flow file that
    was lowered for another architecture or executable format, rather than
    silently building code for the wrong machine (or no object at all)."""
    arches = {t.split("-", 1)[0] for t in _TRIPLE.findall(text)}
    if arches and target.arch not in arches:
        raise InputError(
            f"{flow_file}: lowered for {', '.join(sorted(arches))}, not for target {target.name} ({target.arch}): "
            f"lower it with the same target (iree-compile --compile-to=flow with the target's flags)"
        )
    has_static = bool(_STATIC_TARGET.search(text))
    if target.links_static and not has_static:
        raise InputError(
            f"{flow_file}: not lowered for a static library, as target {target.name} needs: lower it with the "
            "target's flags (they include --iree-llvmcpu-link-embedded=false --iree-llvmcpu-link-static)"
        )
    if not target.links_static and has_static:
        raise InputError(
            f"{flow_file}: lowered for a static library but target {target.name} builds an embedded ELF (vmfb)"
        )


def _set_static_output(text: str, obj: str) -> str:
    """Points every static-library executable target at ``obj``."""

    entry = f"static_library_output = {_mlir_string(obj)}"

    def patch(m: re.Match[str]) -> str:
        rest = text[m.end() :].lstrip()
        return f"{m.group(0)}{entry}{'' if rest.startswith('}') else ', '}"

    text = _STATIC_OUTPUT.sub("", text)
    return _STATIC_TARGET.sub(patch, text)


def flow_text_for(flow_file: Path, out: Path, target: Target) -> str:
    """A flow file's text as IREE must compile it into ``out`` for ``target``:
    checked to be lowered for the target; for static libraries the object's
    path (relative: iree-compile runs in a scratch directory) and the
    module's name fixed in the device target, where IREE recorded them at the
    flow phase. The library and its query function are named after the module."""
    text = _flow_text(flow_file)
    _check_lowered_for(text, flow_file, target)
    if target.links_static:
        name = library_name(out)
        rel_object = f"{name}{artifact_paths(out, target)['object'].suffix}"
        text = _set_module_name(_set_static_output(text, rel_object), name)
    return text


def compile_stream_artifacts(stream_file: Path, out: Path, target: Target) -> CompileResult:
    """Finishes a stream-phase module (``--compile-from=stream``) into ``out``."""
    return _compile(stream_file, "stream", out, target, ["--compile-from=stream"], "compiling from the stream phase")


def _compile(
    src: Path,
    phase: str,
    out: Path,
    target: Target,
    phase_flags: list[str] | None,
    what: str,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> CompileResult:
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    out.parent.mkdir(parents=True, exist_ok=True)
    final = artifact_paths(out, target)
    check_output_name(out, target)
    name = library_name(out)
    if not target.links_static and len(os.fsencode(name)) > _LONGEST_SCRATCH_STEM:
        # iree-compile writes through a temporary file named after its
        # output, longer still: a vmfb's name is not inside it, so a short
        # one serves (the file is renamed to ``out`` afterwards).
        name = "module"
    # iree-compile runs inside a scratch directory with relative output paths,
    # so no scratch path ends up in the outputs (IREE embeds the device
    # target, with the static library's path, in the module): the same input
    # gives the same bytes wherever and by whichever process it is built.
    tmpdir = hidden_sibling(out, folder=True)
    rel = {role: f"{name}{p.suffix}" for role, p in final.items()}
    main = rel.get("module") or rel["c_source"]
    flags = _absolute_paths([*target.flag_list(), *(phase_flags or [])])
    stdin: str | None = None
    (tmpdir / "src").mkdir()
    t0 = time.perf_counter()
    try:
        if phase == "flow":
            text = flow_text_for(src, out, target)
            src_copy = tmpdir / "src" / f"{name}.mlir"
            src_copy.write_text(text)
            # From standard input: the debug info names "<stdin>", not a scratch path.
            head, stdin = ["-", "--compile-from=flow"], text
        else:
            src_copy = tmpdir / "src" / f"{name}{''.join(src.suffixes[-1:]) or '.mlir'}"
            try:
                src_copy.symlink_to(src.resolve())
            except OSError:
                shutil.copyfile(src, src_copy)
            head = [str(src_copy.relative_to(tmpdir))]
            if target.links_static:
                flags.append(f"--iree-llvmcpu-static-library-output-path={rel['object']}")
        if target.output == "vm-c":
            flags.append("--output-format=vm-c")
        if not any(f.startswith("--iree-scheduling-dump-statistics") for f in target.iree_flags):
            flags += [
                "--iree-scheduling-dump-statistics-format=json",
                "--iree-scheduling-dump-statistics-file=stats.json",
            ]
        args = [*head, *flags, "-o", main]
        proc = _run_compile(args, tmpdir, stdin, src_copy, src, what, started)
        warnings = _target_warnings(proc.stderr, target)
        for role, r in rel.items():
            if not (tmpdir / r).is_file():
                raise InputError(
                    f"iree-compile wrote no {role} file ({r}) for target {target.name}: "
                    "was the input lowered with this target's flags?"
                )
        statistics = _read_statistics(tmpdir / "stats.json")
        lib = _header_library(tmpdir / rel["header"]) if "header" in rel else None
        # Sidecar files first, the main file last: a reader that sees the new
        # module also sees its new object and header.
        for role in sorted(rel, key=lambda r: r in ("module", "c_source")):
            os.replace(tmpdir / rel[role], final[role])
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return CompileResult(
        seconds=time.perf_counter() - t0,
        artifacts=final,
        statistics=statistics,
        library_name=lib,
        vm_module_name=name if target.links_static else "module",
        warnings=warnings,
    )


_MODULE_OP = re.compile(r'^module(?:\s+@(?:[\w$.]+|"[^"]*"))?(?=\s+attributes\b|\s*\{)', re.MULTILINE)
_PATH_FLAG = re.compile(r"^(--[\w-]*(?:path|file|dir|dump|output|to)[\w-]*=)(.+)$")


def _set_module_name(text: str, name: str) -> str:
    return _MODULE_OP.sub(f"module @{name}", text, count=1)


def _absolute_paths(flags: list[str]) -> list[str]:
    """iree-compile runs in a scratch directory: make relative paths in
    path-like flags (``--...-path=``, ``--...-file=``, ``--...-dir=``,
    ``--...dump...=``, ``--...-to=``) absolute, so they mean what they meant."""
    out = []
    for f in flags:
        m = _PATH_FLAG.match(f)
        if (
            m
            and not os.path.isabs(m.group(2))
            and m.group(2) not in ("-", "")
            and ("/" in m.group(2) or "." in m.group(2))
        ):
            f = m.group(1) + os.path.abspath(m.group(2))
        out.append(f)
    return out


def _run_compile(
    args: list[str],
    cwd: Path,
    stdin: str | None,
    src_copy: Path,
    src: Path,
    what: str,
    started: Callable[[subprocess.Popen[str]], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """iree-compile (through :func:`run_tool`: killed if this thread is
    interrupted, a failed start reported); ``started`` gets the process (to
    kill it from another thread)."""
    tool = tool_path("iree-compile")
    cmd = [tool, *args]
    proc = run_tool(what, cmd, cwd=cwd, stdin=stdin, check=False, started=started)
    if proc.returncode != 0:
        # The scratch directory goes: keep the exact input for the reproducer.
        if stdin is not None:
            kept = Path(tempfile.mkdtemp(prefix="serenity-compile-")) / src_copy.name
            kept.write_text(stdin)
        else:
            kept = src.resolve()
        raise CompilerToolError(what, [tool, str(kept), *args[1:]], proc.stderr)
    return proc


_HEADER_QUERY = re.compile(r"^(\w+)_library_query\(", re.MULTILINE)


def _header_library(header: Path) -> str | None:
    """The library name declared by IREE's generated header (``NAME_library_query``)."""
    try:
        m = _HEADER_QUERY.search(header.read_text())
    except OSError:
        return None
    return m.group(1) if m else None


def _target_warnings(stderr: str, target: Target) -> list[str]:
    """LLVM ignores an unknown CPU or feature with a warning: make it an error
    (a typo in a board file would otherwise build for a lesser CPU)."""
    bad = sorted({f"{kind} '{name}'" for name, kind in _LLVM_WARNING.findall(stderr)})
    if bad:
        where = f" (in {target.source})" if target.source else ""
        raise InputError(
            f"target {target.name}{where}: LLVM does not recognise {', '.join(bad)} for triple {target.triple}"
        )
    return [line for line in stderr.splitlines() if "warning:" in line]


def _read_statistics(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
