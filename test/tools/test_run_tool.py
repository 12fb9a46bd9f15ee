"""``run_tool``: the one runner of every external tool (issue 21, item 5):
a tool that cannot start, fails, hangs or is cancelled from another thread
ends in a CompilerToolError, and no child outlives the call. And the
one-line summary of a failed tool gives its first cause (issue 24, 8)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from serenity_mlir.errors import CompilerToolError
from serenity_mlir.ir.tools import run_tool

PY = sys.executable


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_output_and_stdin() -> None:
    r = run_tool("echo", [PY, "-c", "import sys; print(sys.stdin.read().upper())"], stdin="abc")
    assert r.returncode == 0 and r.stdout.strip() == "ABC"


def test_a_tool_that_cannot_start() -> None:
    with pytest.raises(CompilerToolError, match=r"could not start /no/such/tool: No such file"):
        run_tool("running the tool", ["/no/such/tool", "x"])


def test_a_failing_tool_names_its_first_error() -> None:
    code = "import sys; sys.stderr.write('note: a\\nerror: the cause\\nerror: later\\n'); sys.exit(3)"
    with pytest.raises(CompilerToolError, match=r"^compiling failed: error: the cause") as e:
        run_tool("compiling", [PY, "-c", code])
    assert "error: later" in e.value.details


def test_check_false_returns_the_failure() -> None:
    r = run_tool("x", [PY, "-c", "import sys; sys.exit(4)"], check=False)
    assert r.returncode == 4


def test_undecodable_output_is_replaced() -> None:
    r = run_tool("x", [PY, "-c", "import sys; sys.stdout.buffer.write(bytes([0xff, 0x41]))"])
    assert r.stdout == "\ufffdA"


def test_timeout_kills_the_tool() -> None:
    pids: list[int] = []
    t0 = time.monotonic()
    with pytest.raises(CompilerToolError, match=r"timed out after 0.5 s"):
        run_tool(
            "sleeping", [PY, "-c", "import time; time.sleep(60)"], timeout=0.5, started=lambda p: pids.append(p.pid)
        )
    assert time.monotonic() - t0 < 10
    assert pids and not _alive(pids[0])


def test_cancel_from_another_thread() -> None:
    """What BackgroundCompile.cancel does: kill the process handed to
    ``started``; the waiting call ends with the tool's failure."""
    procs: list[subprocess.Popen[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_tool("compiling in the background", [PY, "-c", "import time; time.sleep(60)"], started=procs.append)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 20
    while not procs and time.monotonic() < deadline:
        time.sleep(0.01)
    assert procs, "the tool did not start"
    procs[0].kill()
    t.join(timeout=20)
    assert not t.is_alive()
    assert errors and isinstance(errors[0], CompilerToolError)
    assert not _alive(procs[0].pid)


def test_an_interrupt_kills_the_tool() -> None:
    """An exception in the waiting thread (the CLI's signal handlers raise
    one) kills the child before it propagates."""
    pids: list[int] = []

    class Stop(Exception):
        pass

    def interrupt(p: subprocess.Popen[str]) -> None:
        pids.append(p.pid)
        raise Stop  # as if a signal arrived while the call waits

    with pytest.raises(Stop):
        run_tool("waiting", [PY, "-c", "import time; time.sleep(60)"], started=interrupt)
    time.sleep(0.1)
    assert pids and not _alive(pids[0])


@pytest.mark.parametrize(
    ("stderr", "cause"),
    [
        (
            "Unknown CPU for target architecture x86_64.\nList of accepted CPUs: core2, nehalem\n"
            "'foo' is not a recognized processor for this target (ignoring processor)\n"
            "'foo' is not a recognized processor for this target (ignoring processor)\n"
            "LLVM ERROR: 64-bit code requested on a subtarget that doesn't support it!\n",
            "'foo' is not a recognized processor for this target",
        ),
        (
            "failed to generate temporary file: File name too longPlease report issues to "
            "https://github.com/iree-org/iree/issues and include the crash backtrace.\nStack dump:\n"
            "LLVM ERROR: IO failure on output stream: Bad file descriptor\n",
            "failed to generate temporary file: File name too long",
        ),
        ("a.mlir:1:1: error: expected operation name\nerror: second\n", "a.mlir:1:1: error: expected operation name"),
        ("just one line\n", "just one line"),
    ],
)
def test_summary_takes_the_first_cause(stderr: str, cause: str) -> None:
    e = CompilerToolError("compiling", ["iree-compile"], stderr)
    assert str(e) == f"compiling failed: {cause} (reproduce with the command above)"
