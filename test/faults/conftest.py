"""Fixtures of the fault suite: a fresh sandbox per case, and the inputs the
cases need (built once per session, lazily, with the console scripts and
IREE's own tools; all from samples/branches.onnx, the smallest model)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from serenity_mlir.bench.scheduler import watts_strogatz_dag
from serenity_mlir.scheduler.graph import to_json

from .harness import BIN, SAMPLES, Sandbox

# Flags that put a module on the host's CPU (what pipelines/host.toml gives).
HOST_FLAGS = [
    "--iree-hal-target-device=local",
    "--iree-hal-local-target-device-backends=llvm-cpu",
    "--iree-llvmcpu-target-triple=x86_64-unknown-unknown-eabi-elf",
    "--iree-llvmcpu-target-cpu=generic",
]

# Two public functions at the input (linalg/arith on tensors) level.
TWO_FUNCS_MLIR = """\
func.func @first(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %a, %a : tensor<4xf32>
  %1 = arith.mulf %0, %a : tensor<4xf32>
  return %1 : tensor<4xf32>
}
func.func @second(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.mulf %a, %a : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a fault case that compiles and signals (seconds, not milliseconds)")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    base = tmp_path / "sb"
    sb = Sandbox(base)
    yield sb
    sb.unmount()
    # Undo read-only folders so pytest can clean up.
    for dirpath, dirnames, _ in os.walk(base):
        for d in dirnames:
            try:
                os.chmod(os.path.join(dirpath, d), 0o755)
            except OSError:
                pass


class Artifacts:
    """Inputs built once: each method returns a path in the session cache."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, Path] = {}

    def _run(self, argv: list[str]) -> None:
        env = dict(os.environ, TMPDIR=str(self.tmp))
        r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=self.root)
        if r.returncode != 0:
            raise RuntimeError(f"building a fault-suite input failed: {' '.join(argv)}\n{r.stderr[-3000:]}")

    def _once(self, key: str, build) -> Path:  # type: ignore[no-untyped-def]
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # -- ONNX -----------------------------------------------------------------

    def branches(self) -> Path:
        return SAMPLES / "branches.onnx"

    def onnx_external(self) -> tuple[Path, Path]:
        """branches.onnx with its weights in ext.bin beside ext.onnx."""

        def build() -> Path:
            import onnx

            d = self.root / "external"
            d.mkdir(exist_ok=True)
            m = onnx.load(str(self.branches()))
            onnx.save_model(
                m,
                str(d / "ext.onnx"),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location="ext.bin",
                size_threshold=0,
            )
            assert (d / "ext.bin").stat().st_size > 0
            return d / "ext.onnx"

        p = self._once("external", build)
        return p, p.parent / "ext.bin"

    def onnx_dynamic(self, axis: int = 0) -> Path:
        """branches.onnx with input dimension ``axis`` dynamic (0: the batch)."""

        def build() -> Path:
            import onnx

            m = onnx.load(str(self.branches()))
            dim = m.graph.input[0].type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = "batch" if axis == 0 else "height"
            p = self.root / f"dynamic{axis}.onnx"
            onnx.save(m, str(p))
            return p

        return self._once(f"dynamic{axis}", build)

    def onnx_dynamic_inner(self) -> Path:
        return self.onnx_dynamic(axis=2)

    def _tiny(self, name: str, graph_inputs: bool, shape: list[int]) -> Path:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
        if graph_inputs:
            inp = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
            nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "x"], ["y"])]
            inits = []
        else:
            inp = []
            w = numpy_helper.from_array(np.arange(np.prod(shape), dtype=np.float32).reshape(shape), "w")
            nodes = [helper.make_node("Relu", ["w"], ["r"]), helper.make_node("Add", ["r", "w"], ["y"])]
            inits = [w]
        g = helper.make_graph(nodes, name, inp, [out], initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        p = self.root / f"{name}.onnx"
        onnx.save(m, str(p))
        return p

    def onnx_no_inputs(self) -> Path:
        return self._once("noinputs", lambda: self._tiny("noinputs", False, [1, 4, 8, 8]))

    def onnx_zero_dim(self) -> Path:
        return self._once("zerodim", lambda: self._tiny("zerodim", True, [1, 0, 8]))

    # -- modules built by serenity-mlir ---------------------------------------

    def _compile(self, key: str, target: str, keep: bool = False, extra: tuple[str, ...] = ()) -> Path:
        def build() -> Path:
            d = self.root / key
            d.mkdir(exist_ok=True)
            out = d / f"{key}.vmfb"
            argv = [str(BIN / "serenity-mlir"), "compile", str(self.branches()), "-o", str(out)]
            argv += ["--target", target, "--no-measure", "-q", *extra]
            if keep:
                argv += ["--keep-temps", str(d / "temps")]
            self._run(argv)
            return out

        return self._once(key, build)

    def host_vmfb(self) -> Path:
        return self._compile("host", "host", keep=True)

    def arena_vmfb(self) -> Path:
        """A host module built with --arena-entry (its one argument is the arena)."""
        return self._compile("arena", "host", extra=("--arena-entry",))

    def cortex_m4_vmfb(self) -> Path:
        return self._compile("m4", "cortex-m4")

    def cortex_a53_vmfb(self) -> Path:
        return self._compile("a53", "cortex-a53")

    def temps(self) -> Path:
        self.host_vmfb()
        return self.root / "host" / "temps"

    def torch_mlir(self) -> Path:
        """The ONNX importer's output (torch dialect)."""
        return self.temps() / "model.input.mlir"

    def flow_mlir(self) -> Path:
        return self.temps() / "model.flow.mlir"

    def scheduled_flow_mlir(self) -> Path:
        return self.temps() / "model.scheduled.flow.mlir"

    # -- other phases, with IREE's own tools -----------------------------------

    def _iree(self, key: str, src: Path, *flags: str) -> Path:
        def build() -> Path:
            out = self.root / f"{key}.mlir"
            self._run([str(BIN / "iree-compile"), str(src), *flags, "-o", str(out)])
            return out

        return self._once(key, build)

    def linalg_mlir(self) -> Path:
        return self._iree("linalg", self.torch_mlir(), "--compile-to=input")

    def stream_mlir(self) -> Path:
        """IREE's stream phase of the unscheduled model (parses as it prints)."""
        return self._iree("stream", self.torch_mlir(), "--compile-to=stream", *HOST_FLAGS)

    def stream_favor_debug_mlir(self) -> Path:
        """IREE's stream phase of a scheduled module: prints `<favor-debug>`."""
        p = self._iree(
            "stream_fd", self.scheduled_flow_mlir(), "--compile-from=flow", "--compile-to=stream", *HOST_FLAGS
        )
        assert "favor-debug" in p.read_text()
        return p

    def hal_favor_debug_mlir(self) -> Path:
        p = self._iree("hal_fd", self.scheduled_flow_mlir(), "--compile-from=flow", "--compile-to=hal", *HOST_FLAGS)
        assert "favor-debug" in p.read_text()
        return p

    def two_funcs_mlir(self) -> Path:
        def build() -> Path:
            p = self.root / "two_funcs.mlir"
            p.write_text(TWO_FUNCS_MLIR)
            return p

        return self._once("two_funcs", build)

    def two_funcs_flow_mlir(self) -> Path:
        return self._iree("two_funcs_flow", self.two_funcs_mlir(), "--compile-to=flow", *HOST_FLAGS)

    # -- graphs ----------------------------------------------------------------

    def wide_graph(self) -> Path:
        """A random wide DAG the exact scheduler cannot finish quickly."""

        def build() -> Path:
            p = self.root / "wide.json"
            p.write_text(json.dumps(wide_graph(400, seed=7)))
            return p

        return self._once("wide", build)

    def ws_graph(self) -> Path:
        """WS(300, 4, 0.75): unbounded, the search passes 100 MB in 8 s here."""

        def build() -> Path:
            p = self.root / "ws.json"
            p.write_text(json.dumps(ws_graph(300, seed=1)))
            return p

        return self._once("ws", build)


def ws_graph(n: int, seed: int, k: int = 4, p: float = 0.75) -> dict[str, object]:
    """A Watts-Strogatz graph WS(n, k, p) as a DAG (edges low to high index),
    random sizes: the scheduler's hard case (its exact search grows for
    seconds on a few hundred nodes). The bench's own generator."""
    return to_json(watts_strogatz_dag(n, k, p, seed))


def wide_graph(n: int, seed: int, width: int = 40) -> dict[str, object]:
    """Layered random DAG: ``n`` nodes, layers of ``width``, each node reading
    2-3 random nodes of the layers above; random sizes."""
    rng = random.Random(seed)
    nodes = [{"name": f"n{i}", "bytes": rng.randrange(1, 64) * 1024} for i in range(n)]
    edges = []
    for i in range(width, n):
        layer = i // width
        lo = max(0, (layer - 2) * width)
        for j in rng.sample(range(lo, layer * width), k=rng.choice((2, 3))):
            edges.append([f"n{j}", f"n{i}"])
    users = {e[0] for e in edges}
    outputs = [nd["name"] for nd in nodes if nd["name"] not in users]
    return {"nodes": nodes, "edges": edges, "outputs": outputs}


@pytest.fixture(scope="session")
def art(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Artifacts]:
    root = tmp_path_factory.mktemp("fault-artifacts")
    yield Artifacts(root)
    shutil.rmtree(root, ignore_errors=True)
