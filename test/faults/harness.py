"""The fault harness: run a console script as a careless user would, then
check that it failed cleanly.

Each run gets a fresh sandbox: ``work/`` (the current folder, where the case
puts its input files) and ``tmp/`` (the run's own ``TMPDIR``). A unique marker
in the run's environment finds every process it started (children inherit
the environment), however deep, without psutil.

The fault contract (issue 15), checked by :func:`fault_problems`:

- a non-zero exit, not a death by signal;
- stderr ends in ONE error line, ``error: ...`` (argparse's
  ``PROG: error: ...`` counts too), that names the problem: the case's
  patterns must match that line; no Python traceback anywhere;
- every file in ``work/`` byte-identical afterwards, with its mode and kind
  (a device node stays a device node), and no new file there: no output, no
  partial output, no hidden ``.NAME.*.tmp`` sibling;
- nothing left in ``TMPDIR`` unless the error line names it;
- no process of the run alive afterwards;
- optionally: the error came before any work (no progress line at all, or
  none past the import), in bounded time.

When the tests run as root, the commands run without CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH (``setpriv --bounding-set``), so a read-only folder is
read-only for them as it is for a user.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal as _signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "samples"
MARKER_VAR = "SERENITY_FAULT_MARKER"
TRACEBACK = "Traceback (most recent call last)"
# Progress lines of `compile` ("[2/4] lowering to the dispatch level ...").
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")
# The one error line: ours, or argparse's ("serenity-mlir compile: error: ...").
ERROR_LINE = re.compile(r"^(?:error: |serenity-(?:mlir|opt)(?: [\w-]+)?: error: )")
TOOLS = {"mlir": "serenity-mlir", "opt": "serenity-opt"}
# Processes whose survival after the run is the bug (reported by name).
CHILD_NAMES = ("iree-compile", "iree-run-module", "qemu", "python")


def _drop_dac() -> list[str]:
    """As root, run without the capabilities that ignore file modes."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    return []


PREFIX = _drop_dac()


# --------------------------------------------------------------------------
# Snapshots of a folder: every entry with its kind, mode and content hash


@dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir", "link", "char", "block", "fifo", "other"
    mode: int
    digest: str  # sha256 of a file, the target of a link, "" otherwise


def _kind(st: os.stat_result) -> str:
    m = st.st_mode
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "link"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISFIFO, "fifo"),
    ):
        if test(m):
            return name
    return "other"


def snapshot(root: Path) -> dict[str, Entry]:
    """Every entry under ``root`` (and ``root`` itself, as "."), not following links."""
    out: dict[str, Entry] = {}
    broot = os.fsencode(root)

    def visit(path: bytes, rel: str) -> None:
        st = os.lstat(path)
        kind = _kind(st)
        digest = ""
        if kind == "file":
            h = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                digest = h.hexdigest()
            except OSError as e:
                digest = f"unreadable: {e.strerror}"
        elif kind == "link":
            digest = os.fsdecode(os.readlink(path))
        out[rel] = Entry(kind, stat.S_IMODE(st.st_mode), digest)
        if kind == "dir":
            try:
                names = sorted(os.listdir(path))
            except OSError:
                return
            for n in names:
                name = n.decode("utf-8", "backslashreplace")
                visit(os.path.join(path, n), name if rel == "." else f"{rel}/{name}")

    visit(broot, ".")
    return out


def diff_snapshots(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    problems = []
    for rel, e in before.items():
        a = after.get(rel)
        if a is None:
            problems.append(f"input removed: {rel}")
        elif a.kind != e.kind:
            problems.append(f"input changed kind: {rel} was a {e.kind}, is a {a.kind}")
        elif a.digest != e.digest:
            problems.append(f"input modified: {rel}")
        elif a.mode != e.mode:
            problems.append(f"mode changed: {rel} {oct(e.mode)} -> {oct(a.mode)}")
    for rel in sorted(set(after) - set(before)):
        base = rel.rsplit("/", 1)[-1]
        what = "partial output (hidden temp sibling)" if base.startswith(".") and ".tmp" in base else "output left"
        problems.append(f"{what}: {rel}")
    return problems


# --------------------------------------------------------------------------
# Processes of a run, found by the marker in their environment


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    cmdline: str


def marked_processes(marker: str) -> list[Proc]:
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read()
            if needle not in env.split(b"\0"):
                continue
            with open(f"/proc/{d}/stat", "rb") as f:
                st = f.read()
            if st[st.rindex(b")") + 2 : st.rindex(b")") + 3] == b"Z":
                continue
            with open(f"/proc/{d}/comm", "rb") as f:
                name = f.read().decode(errors="replace").strip()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError):
            continue
        found.append(Proc(int(d), name, cmd[:200]))
    return found


def kill_marked(marker: str) -> None:
    for p in marked_processes(marker):
        try:
            os.kill(p.pid, _signal.SIGKILL)
        except OSError:
            pass


# --------------------------------------------------------------------------
# Runs


@dataclass
class Trigger:
    """When to send a signal: after a stderr line matches ``line`` (None: at
    once), and then, if ``process`` is set, once a process of the run with
    that name is alive (or ``wait`` seconds have passed), plus ``delay``."""

    line: str | None = None
    process: str | None = None
    wait: float = 20.0
    delay: float = 0.0


@dataclass
class Result:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    # Signal runs: when the (first) signal went, what was running then, and
    # how long the run took to end after it.
    signal_at: float | None = None
    running_at_signal: list[Proc] = field(default_factory=list)
    seconds_after_signal: float | None = None
    timed_out: bool = False
    survivors: list[Proc] = field(default_factory=list)
    tmp_left: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    @property
    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""

    def describe(self) -> str:
        tail = "\n      ".join(self.lines[-4:]) or "(empty)"
        return f"exit {self.returncode} after {self.seconds:.1f} s; stderr tail:\n      {tail}"


class Sandbox:
    """A fresh folder for one run: ``work/`` (cwd, inputs) and ``tmp/`` (TMPDIR)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.work = base / "work"
        self.tmp = base / "tmp"
        self.work.mkdir(parents=True)
        self.tmp.mkdir()
        self.marker = uuid.uuid4().hex
        self.before: dict[str, Entry] | None = None
        self.mounts: list[Path] = []

    # -- building the inputs --------------------------------------------------

    def path(self, name: str | bytes) -> Path:
        return Path(os.fsdecode(os.path.join(os.fsencode(self.work), os.fsencode(name))))

    def write(self, name: str | bytes, data: str | bytes) -> Path:
        p = self.path(name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def copy(self, src: Path, name: str | bytes | None = None) -> Path:
        p = self.path(name if name is not None else src.name)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, p)
        return p

    def mkdir(self, name: str, mode: int | None = None) -> Path:
        p = self.path(name)
        p.mkdir(parents=True, exist_ok=True)
        if mode is not None:
            p.chmod(mode)
        return p

    def char_device(self, name: str, like: str) -> Path:
        """A character device node like ``/dev/full`` (own copy when root may
        make one: an accidental replace must not hit the machine's)."""
        p = self.path(name)
        st = os.stat(like)
        try:
            os.mknod(p, 0o666 | stat.S_IFCHR, st.st_rdev)
            p.chmod(0o666)
        except OSError:
            os.symlink(like, p)
        return p

    # -- running --------------------------------------------------------------

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["TMPDIR"] = str(self.tmp)
        env[MARKER_VAR] = self.marker
        env.pop("PYTHONWARNINGS", None)
        for k, v in (extra or {}).items():
            env[k] = v.replace("{work}", str(self.work)).replace("{tmp}", str(self.tmp))
        return env

    def small_fs(self, name: str, size: str = "64k", fill: int = 0) -> Path:
        """A tmpfs of ``size`` mounted at ``work/NAME`` (root only; else the
        case is skipped), with a file ``filler`` of ``fill`` bytes in it
        (``fill < 0``: the file fills the device). Unmounted by the fixture."""
        import pytest

        p = self.mkdir(name)
        if os.geteuid() != 0 or not shutil.which("mount"):
            pytest.skip("mounting a small file system needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(p)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")
        self.mounts.append(p)
        if fill:
            with open(p / "filler", "wb") as f:
                try:
                    f.write(b"\0" * (fill if fill > 0 else 1 << 30))
                    f.flush()
                except OSError:
                    pass  # full: what was asked for
        return p

    def unmount(self) -> None:
        for p in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(p)], capture_output=True)
        self.mounts.clear()

    def run(
        self,
        tool: str,
        args: Sequence[str | bytes],
        *,
        cwd: Path | None = None,
        signals: Sequence[tuple[int, float]] = (),
        trigger: Trigger | None = None,
        to_group: bool = False,
        timeout: float = 180.0,
        grace: float = 2.0,
        stdout: str | Path = "pipe",
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        """Runs ``tool`` (serenity-mlir / serenity-opt) with ``args``.

        ``signals``: (signal, seconds after the trigger) pairs, sent to the
        process (or its process group with ``to_group``, as a terminal's
        Ctrl-C is). ``stdout``: "pipe" (read by the harness), "closed" (a
        pipe whose reader is gone, as in ``| head -0``) or a path to write
        to (``/dev/full``, a file on a full disk). ``stdin``: bytes to feed
        (default: none). ``env``: further variables ({work}, {tmp} expanded).
        The snapshot of ``work/`` is taken just before the run."""
        exe = BIN / TOOLS.get(tool, tool)
        argv = [*PREFIX, str(exe), *(os.fsdecode(a) if isinstance(a, bytes) else a for a in args)]
        self.before = snapshot(self.work)
        out_target: int | None = subprocess.PIPE
        close_after: list[int] = []
        if stdout == "closed":
            r, w = os.pipe()
            os.close(r)
            out_target = w
            close_after.append(w)
        elif stdout != "pipe":
            fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            out_target = fd
            close_after.append(fd)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=cwd or self.work,
            env=self.env(env),
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=out_target,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for fd in close_after:
            os.close(fd)
        if stdin is not None:
            assert proc.stdin is not None

            def feed() -> None:
                try:
                    proc.stdin.write(stdin)  # type: ignore[union-attr]
                    proc.stdin.close()  # type: ignore[union-attr]
                except OSError:
                    pass

            threading.Thread(target=feed, daemon=True).start()
        err_lines: list[str] = []
        out_chunks: list[bytes] = []
        seen = threading.Condition()

        def read_err() -> None:
            assert proc.stderr is not None
            for raw in iter(proc.stderr.readline, b""):
                with seen:
                    err_lines.append(raw.decode("utf-8", "backslashreplace"))
                    seen.notify_all()

        def read_out() -> None:
            if proc.stdout is None:
                return
            for raw in iter(lambda: proc.stdout.read(65536), b""):  # type: ignore[union-attr]
                out_chunks.append(raw)

        threads = [threading.Thread(target=read_err, daemon=True), threading.Thread(target=read_out, daemon=True)]
        for t in threads:
            t.start()
        res = Result(argv=argv, returncode=None, stdout="", stderr="", seconds=0.0)
        try:
            if signals:
                self._signal(proc, res, err_lines, seen, signals, trigger or Trigger(), to_group, t0, timeout, grace)
            else:
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    res.timed_out = True
        finally:
            if proc.poll() is None:
                res.timed_out = True
                try:
                    os.killpg(proc.pid, _signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
            for t in threads:
                t.join(timeout=5)
        res.seconds = time.monotonic() - t0
        res.returncode = proc.returncode
        res.stderr = "".join(err_lines)
        res.stdout = b"".join(out_chunks).decode("utf-8", "backslashreplace")
        # Children killed by the run's own cleanup may take a moment to go.
        deadline = time.monotonic() + 1.0
        res.survivors = marked_processes(self.marker)
        while res.survivors and time.monotonic() < deadline:
            time.sleep(0.05)
            res.survivors = marked_processes(self.marker)
        kill_marked(self.marker)
        res.tmp_left = sorted(os.listdir(self.tmp))
        return res

    def _signal(
        self,
        proc: subprocess.Popen[bytes],
        res: Result,
        err_lines: list[str],
        seen: threading.Condition,
        signals: Sequence[tuple[int, float]],
        trigger: Trigger,
        to_group: bool,
        t0: float,
        timeout: float,
        grace: float,
    ) -> None:
        if trigger.line is not None:
            pat = re.compile(trigger.line)
            end = time.monotonic() + timeout
            with seen:
                # Polled: a run that ends without the line prints nothing more to wake us.
                while not (proc.poll() is not None or any(pat.search(ln) for ln in err_lines)):
                    if time.monotonic() > end:
                        break
                    seen.wait(timeout=0.1)
            if proc.poll() is not None or not any(pat.search(ln) for ln in err_lines):
                return  # ended (or hung) before the step: the check reports it
        if trigger.process is not None:
            end = time.monotonic() + trigger.wait
            while time.monotonic() < end and proc.poll() is None:
                if any(p.name.startswith(trigger.process) for p in marked_processes(self.marker)):
                    break
                time.sleep(0.02)
        if trigger.delay:
            time.sleep(trigger.delay)
        if proc.poll() is not None:
            return
        res.running_at_signal = marked_processes(self.marker)
        start = time.monotonic()
        res.signal_at = start - t0
        sent = 0.0
        for sig, after in signals:
            wait = start + after - time.monotonic()
            if wait > 0:
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    pass
            try:
                if to_group:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
            except OSError:
                break
            sent = time.monotonic()
        try:
            proc.wait(timeout=grace + 3.0)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is not None:
            res.seconds_after_signal = time.monotonic() - max(sent, start)


# --------------------------------------------------------------------------
# The contract


@dataclass
class Expect:
    """What a clean failure of one case looks like."""

    # Regexes (case-insensitive) the final error line must match, each.
    message: Sequence[str] = ()
    # "import": fails before any progress line; "lowering": before any step
    # past the import (no iree-compile ran).
    before: str | None = None
    # The run must end within this many seconds (wall clock).
    max_seconds: float | None = None
    # Signal runs: end within this long after the (last) signal.
    after_signal: float | None = None


def fault_problems(sb: Sandbox, res: Result, expect: Expect) -> list[str]:
    """Every way ``res`` breaks the fault contract (empty: a clean failure)."""
    problems: list[str] = []
    if res.timed_out:
        problems.append("did not end (killed by the harness)")
    if res.returncode == 0:
        problems.append("exit 0")
    elif res.returncode is not None and res.returncode < 0:
        problems.append(f"killed by signal {-res.returncode}, no message")
    if TRACEBACK in res.stderr:
        exc = [ln for ln in res.lines if re.match(r"^\w+(\.\w+)*(Error|Exception|Interrupt)\b", ln)]
        problems.append(f"Python traceback ({exc[-1].strip() if exc else 'see stderr'})")
    last = res.last_line
    errors = [ln for ln in res.lines if ERROR_LINE.match(ln)]
    if not ERROR_LINE.match(last):
        problems.append(f"last stderr line is not an error line: {last[:160]!r}")
    elif len(errors) > 1:
        problems.append(f"{len(errors)} error lines, not one")
    # The message is judged on the last error line, wherever it is.
    said = errors[-1] if errors else ""
    missing = [m for m in expect.message if not re.search(m, said, re.IGNORECASE)]
    if missing and said:
        problems.append(f"error line does not match {missing}: {said[:200]!r}")
    if sb.before is not None:
        problems += diff_snapshots(sb.before, snapshot(sb.work))
    named = [n for n in res.tmp_left if n not in res.stderr]
    if named:
        problems.append(f"left in TMPDIR, unnamed: {', '.join(named)}")
    if res.survivors:
        problems.append("processes left running: " + ", ".join(f"{p.name}[{p.pid}]" for p in res.survivors))
    progress = [PROGRESS.match(ln) for ln in res.lines]
    steps = [m.group(3) for m in progress if m]
    if expect.before == "import" and steps:
        problems.append(f"not rejected up front: progress reached '{steps[-1][:60]}'")
    if expect.before == "lowering" and any(not s.startswith("importing") for s in steps):
        problems.append(f"not rejected before the compile: progress reached '{steps[-1][:60]}'")
    if expect.max_seconds is not None and res.seconds > expect.max_seconds:
        problems.append(f"took {res.seconds:.1f} s (limit {expect.max_seconds} s)")
    if expect.after_signal is not None:
        if res.signal_at is None:
            problems.append("the run ended before the signal could be sent (trigger never reached)")
        elif res.seconds_after_signal is None:
            problems.append(f"still running {expect.after_signal + 3:.0f} s after the signal")
        elif res.seconds_after_signal > expect.after_signal:
            problems.append(f"ended {res.seconds_after_signal:.1f} s after the signal (limit {expect.after_signal} s)")
    return problems


def clean_success_problems(sb: Sandbox, res: Result, outputs: Sequence[str]) -> list[str]:
    """A run that succeeded must still leave nothing behind but its outputs."""
    problems: list[str] = []
    if TRACEBACK in res.stderr:
        problems.append("Python traceback")
    after = snapshot(sb.work)
    for o in outputs:
        if o not in after:
            problems.append(f"exit 0 but no output {o}")
    extra = {k: v for k, v in after.items() if k not in outputs}
    if sb.before is not None:
        problems += diff_snapshots(sb.before, extra)
    if res.tmp_left:
        problems.append(f"left in TMPDIR: {', '.join(res.tmp_left)}")
    if res.survivors:
        problems.append("processes left running: " + ", ".join(f"{p.name}[{p.pid}]" for p in res.survivors))
    return problems


def record(case_id: str, res: Result, problems: list[str]) -> None:
    """With FAULTS_RECORD=FILE, appends what the case saw (JSON lines): the
    material of the status table."""
    path = os.environ.get("FAULTS_RECORD")
    if not path:
        return
    import json

    row = {
        "id": case_id,
        "exit": res.returncode,
        "seconds": round(res.seconds, 2),
        "after_signal": None if res.seconds_after_signal is None else round(res.seconds_after_signal, 2),
        "running_at_signal": sorted({p.name for p in res.running_at_signal}),
        "tail": res.lines[-3:],
        "error_line": next((ln for ln in reversed(res.lines) if ERROR_LINE.match(ln)), None),
        "tmp_left": res.tmp_left,
        "survivors": [p.name for p in res.survivors],
        "problems": problems,
    }
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def assert_no_problems(res: Result, problems: list[str], case_id: str | None = None) -> None:
    if case_id is not None:
        record(case_id, res, problems)
    if problems:
        lines = "\n  - ".join(problems)
        raise AssertionError(f"{len(problems)} problem(s):\n  - {lines}\n  run: {res.describe()}")


Setup = Callable[[Sandbox], None]
