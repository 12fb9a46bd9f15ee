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
thin layer over the same functions. A PyTorch module goes the same way
through ONNX: ``api.compile_torch(module, (x,), "out.vmfb")`` (the ``torch``
extra).
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iree.compiler import ir

from serenity_mlir.analysis import BodyGraph, build_body_graph, find_body_function
from serenity_mlir.backend.compile import compile_flow
from serenity_mlir.errors import InputError
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.ir.reflection import record_signature
from serenity_mlir.memory.slab import SlabPrediction
from serenity_mlir.passes.schedule import apply_order
from serenity_mlir.pipeline import driver
from serenity_mlir.pipeline.importer import Imported, import_model
from serenity_mlir.pipeline.lower import lower_to_flow, write_input
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.runtime.local import measure as _measure
from serenity_mlir.scheduler.graph import Graph
from serenity_mlir.scheduler.schedule import ScheduleResult, schedule
from serenity_mlir.settings import TIME_LIMIT, CompileSettings
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
    "compile_torch",
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
    """Imports an ONNX, TFLite or MLIR file (ONNX is checked, upgraded, shape-inferred; TFLite
    needs the `tflite` extra)."""
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


def schedule_graph(graph: Graph, scheduler: str = "serenity", time_limit: float | None = TIME_LIMIT) -> ScheduleResult:
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
    Options are :data:`serenity_mlir.settings.FLAT_OPTIONS`' names
    (``target``, ``scheduler``, ``time_limit``, ``rewrite``, ``placement``,
    ``measure``, ``seed`` ...), or ``settings=`` a whole
    :class:`~serenity_mlir.settings.CompileSettings` tree."""
    settings = options.pop("settings", None)
    if settings is None:
        options.setdefault("quiet", True)
        settings = CompileSettings.from_options(**options)
    elif options:
        raise InputError(f"compile_model: give settings= or options, not both (got {', '.join(options)})")
    return driver.compile_model(model, out, settings)


TORCH_INSTALL = "pip install 'serenity-mlir[torch]'"
# The ONNX opset IREE's importer handles best (the importer's MIN_OPSET).
TORCH_ONNX_OPSET = 17


def compile_torch(
    module: Any,
    example_inputs: Any,
    out: str | Path,
    target: str = "host",
    *,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    onnx_path: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Compiles a ``torch.nn.Module`` like :func:`compile_model`; returns the report.

    The module is exported with PyTorch's ONNX exporter (TorchScript-based,
    ``dynamo=False``, opset 17: it keeps the module paths as node names and
    the parameter names, and needs nothing beyond torch) in eval mode, then
    compiled from that ONNX file. ``example_inputs`` is a tensor or a tuple of
    tensors with the shapes the module will be called with (the compiled
    module has static shapes). ``input_names`` / ``output_names`` name the
    module's arguments and results (default ``input``/``output``, numbered
    when there are several); ``onnx_path`` keeps the exported ONNX file
    (default: a temporary file, removed). Other options are those of
    :func:`compile_model`.
    """
    try:
        import torch
    except ImportError:
        raise InputError(
            f"compile_torch needs PyTorch, the 'torch' extra: {TORCH_INSTALL} "
            "(in a checkout: pip install -e '.[torch]'; it pins the CPU build torch==2.13.0)"
        ) from None
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"compile_torch takes a torch.nn.Module, got {type(module).__name__}")
    args = tuple(example_inputs) if isinstance(example_inputs, list | tuple) else (example_inputs,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise InputError("compile_torch: example_inputs must be a tensor or a tuple of tensors")
    if input_names is None:
        input_names = ["input"] if len(args) == 1 else [f"input_{i}" for i in range(len(args))]
    if output_names is None:
        with torch.no_grad():
            results = module(*args)
        n = len(results) if isinstance(results, list | tuple) else 1
        output_names = ["output"] if n == 1 else [f"output_{i}" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="serenity-torch-") as d:
        dest = Path(onnx_path) if onnx_path is not None else Path(d) / f"{type(module).__name__}.onnx"
        was_training = module.training
        module.eval()
        try:
            with warnings.catch_warnings():
                # The TorchScript exporter is deprecated since torch 2.9 (it warns on every call).
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                torch.onnx.export(
                    module,
                    args,
                    str(dest),
                    dynamo=False,
                    opset_version=TORCH_ONNX_OPSET,
                    input_names=input_names,
                    output_names=output_names,
                )
        except Exception as e:  # noqa: BLE001 - the exporter raises many types
            raise InputError(f"exporting {type(module).__name__} to ONNX failed: {type(e).__name__}: {e}") from None
        finally:
            module.train(was_training)
        return compile_model(dest, out, target=target, **options)


# The first name of compile_model, kept for existing callers.
compile = compile_model  # noqa: A001


def targets() -> list[Target]:
    return available_targets()


def target(name_or_path: str) -> Target:
    return get_target(name_or_path)
