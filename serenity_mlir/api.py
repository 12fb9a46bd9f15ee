"""The Python API: the same steps as the CLI, for notebooks and other tools.

    from serenity_mlir import api

    model = api.load_model("samples/branches.onnx")        # import
    flow = api.lower(model, target="host")                   # IREE's flow phase
    graph = api.dataflow_graph(flow)                         # the scheduler's graph
    result = api.schedule_graph(graph.graph, "serenity")     # optimal order
    api.apply_schedule(flow, graph, result)                  # reorder the module
    api.compile_module(flow, "branches.vmfb", target="host")
    print(api.measure("branches.vmfb")["device_bytes_peak"])

or all at once: ``api.compile_model("samples/branches.onnx", "out.vmfb")``
(``api.compile`` is the same function under its first name). The CLI is a
thin layer over the same functions.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iree.compiler import ir

from serenity_mlir.analysis import BodyGraph, build_body_graph, find_body_function
from serenity_mlir.backend.compile import compile_flow
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.ir.reflection import record_signature
from serenity_mlir.memory.slab import SlabPrediction
from serenity_mlir.passes.schedule import apply_order
from serenity_mlir.pipeline import driver
from serenity_mlir.pipeline.driver import CompileOptions
from serenity_mlir.pipeline.importer import Imported, import_model
from serenity_mlir.pipeline.lower import lower_to_flow, write_input
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.runtime.local import measure as _measure
from serenity_mlir.scheduler.graph import Graph
from serenity_mlir.scheduler.schedule import ScheduleResult, schedule
from serenity_mlir.targets import Target, available_targets, get_target

__all__ = [
    "FlowModule",
    "load_model",
    "lower",
    "dataflow_graph",
    "schedule_graph",
    "apply_schedule",
    "predict",
    "compile_module",
    "measure",
    "compile_model",
    "compile",
    "targets",
    "target",
]


@dataclass
class FlowModule:
    """A model at IREE's flow phase, held as an MLIR module in memory."""

    module: ir.Operation
    target: Target
    function: str | None = None

    def text(self) -> str:
        return mlir_io.module_to_text(self.module)


def load_model(path: str | Path) -> Imported:
    """Imports an ONNX or MLIR file (ONNX is checked, upgraded, shape-inferred)."""
    return import_model(path, quiet=True)


def lower(model: Imported, target: str | Target = "host", function: str | None = None) -> FlowModule:
    """Runs IREE up to the flow phase for ``target``."""
    t = get_target(target) if isinstance(target, str) else target
    with tempfile.TemporaryDirectory(prefix="serenity-") as d:
        work = WorkFolder(Path(d))
        lower_to_flow(write_input(model, work), work.flow, t)
        module = mlir_io.load_module(work.flow, mlir_io.new_context())
    return FlowModule(module, t, function)


def dataflow_graph(flow: FlowModule, model: str = "iree") -> BodyGraph:
    """The scheduling graph of the entry function body (ops <-> nodes)."""
    _, func = find_body_function(flow.module, flow.function)
    return build_body_graph(func, model)


def schedule_graph(graph: Graph, scheduler: str = "serenity", time_limit: float | None = 60.0) -> ScheduleResult:
    """Schedules a graph; the order is always a checked topological order."""
    return schedule(graph, scheduler, time_limit=time_limit)


def apply_schedule(flow: FlowModule, body: BodyGraph, result: ScheduleResult, serial: bool = True) -> None:
    """Moves the ops into the schedule's order and keeps it alive in IREE
    (serial stream partitioning); verifies the module."""
    apply_order(body, result.order)
    if serial:
        mlir_io.set_serial_partitioning(flow.module)
    flow.module.verify()


def predict(body: BodyGraph, result: ScheduleResult) -> SlabPrediction:
    """IREE's slab for the order (its packer simulated)."""
    return body.predict(result.order)


def compile_module(flow: FlowModule, out: str | Path, target: str | Target | None = None) -> float:
    """Finishes compiling a flow-level module into a .vmfb; returns seconds."""
    t = flow.target if target is None else (get_target(target) if isinstance(target, str) else target)
    fname, func = find_body_function(flow.module, flow.function)
    record_signature(flow.module, fname, func)
    with tempfile.TemporaryDirectory(prefix="serenity-") as d:
        src = Path(d) / "scheduled.flow.mlir"
        src.write_text(flow.text())
        return compile_flow(src, Path(out), t)


def measure(vmfb: str | Path, function: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Runs the module in a fresh process on local-sync; returns the peak and its parts."""
    return _measure(vmfb, function, seed=seed)


def compile_model(model: str | Path, out: str | Path, **options: Any) -> dict[str, Any]:
    """The whole ``serenity-mlir compile`` job; returns the report.
    Options are the fields of :class:`serenity_mlir.pipeline.driver.CompileOptions`."""
    options.setdefault("quiet", True)
    return driver.compile_model(model, out, CompileOptions(**options))


# The first name of compile_model, kept for existing callers.
compile = compile_model  # noqa: A001


def targets() -> list[Target]:
    return available_targets()


def target(name_or_path: str) -> Target:
    return get_target(name_or_path)
