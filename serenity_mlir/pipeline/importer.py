"""Step 1, import: a model file becomes MLIR text.

ONNX goes through IREE's own ONNX importer in process (what
``iree-import-onnx`` does), after the checker and shape inference (without
shapes the importer emits untyped values). IREE's importer needs opset >= 17
in practice (older MaxPool and friends are not legalized), while much of the
model zoo is opset 7-12: such files are upgraded with onnx's version
converter first, and the user is told. MLIR files are taken as they are.

TFLite flatbuffers go through Arm's TOSA converter (``tosa-converter-for-tflite``,
the ``tflite`` extra) in process, into TOSA 1.0 bytecode that IREE reads.
IREE's own ``iree-import-tflite`` cannot serve: with TensorFlow >= 2.19 it
calls a binding TensorFlow no longer has, and TensorFlow 2.18 emits TOSA from
before 1.0, which IREE 3.13 rejects (``'tosa.const' op requires attribute
'values'``). TFLite's tensor names become the ops' locations.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError

MIN_OPSET = 17
MLIR_SUFFIXES = (".mlir", ".mlirbc")
TFLITE_INSTALL = "pip install 'serenity-mlir[tflite]'"


@dataclass
class Imported:
    """MLIR text (or bytecode) of the model and what happened on the way."""

    source: Path
    mlir: str | bytes
    kind: str  # "onnx", "tflite" or "mlir"
    notes: list[str] = field(default_factory=list)


def import_model(path: str | Path, quiet: bool = False) -> Imported:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return _import_onnx(p, quiet)
    if suffix == ".tflite":
        return _import_tflite(p, quiet)
    if suffix in MLIR_SUFFIXES:
        data = p.read_bytes()
        return Imported(source=p, mlir=data if suffix == ".mlirbc" else data.decode("utf-8", "replace"), kind="mlir")
    raise InputError(f"{p}: unknown model format '{p.suffix}' (expected .onnx, .tflite, .mlir or .mlirbc)")


def model_files(path: Path) -> list[Path]:
    """Files besides ``path`` that the model reads: an ONNX model's external
    weights (so no output can overwrite them). Unreadable models give none
    here; the import reports them."""
    if path.suffix.lower() != ".onnx" or not path.is_file():
        return []
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - protobuf raises several types; the import names the problem
        return []
    files = []
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            for entry in t.external_data:
                if entry.key == "location":
                    files.append(path.parent / entry.value)
    return sorted(set(files))


def load_onnx(p: Path, quiet: bool = False) -> tuple[object, list[str]]:
    """Loads, checks, upgrades and shape-infers an ONNX model."""
    import onnx
    import onnx.version_converter

    notes: list[str] = []
    try:
        model = onnx.load(str(p))
    except Exception as e:  # noqa: BLE001 - protobuf raises several types
        raise InputError(f"{p}: not a readable ONNX model: {e}") from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
        raise InputError(f"{p}: the ONNX checker rejects the model: {first}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset < MIN_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
        except Exception as e:  # noqa: BLE001
            raise InputError(
                f"{p}: opset {opset} is too old for IREE and could not be upgraded to {MIN_OPSET}: {e}"
            ) from None
        # Initializers listed as graph inputs (IR < 4 style) would become
        # runtime arguments; keep them as weights.
        init_names = {i.name for i in model.graph.initializer}
        keep = [i for i in model.graph.input if i.name not in init_names]
        del model.graph.input[:]
        model.graph.input.extend(keep)
        model.ir_version = max(model.ir_version, 8)
        note = f"upgraded {p.name} from ONNX opset {opset} to {MIN_OPSET} (IREE's importer rejects older opsets)"
        notes.append(note)
        if not quiet:
            print(f"note: {note}", file=sys.stderr)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{p}: ONNX shape inference failed: {e}") from None
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            if not d.HasField("dim_value"):
                what = d.dim_param or "?"
                raise InputError(
                    f"{p}: dynamic shapes are not supported: '{vi.name}' has a dynamic dimension {i} ('{what}')"
                )
            if d.dim_value == 0:
                shape = "x".join(str(x.dim_value) for x in dims)
                raise InputError(f"{p}: '{vi.name}' has a zero-size dimension {i} ({shape}): an empty tensor")
    return model, notes


def _import_onnx(p: Path, quiet: bool) -> Imported:
    from iree.compiler import ir
    from iree.compiler.extras import onnx_importer

    model, notes = load_onnx(p, quiet)
    context = ir.Context()
    try:
        info = onnx_importer.ModelInfo(model)  # type: ignore[arg-type]
        module = info.create_module(context=context).operation
        imp = onnx_importer.NodeImporter.define_function(info.main_graph, module)
        imp.import_all()
        module.verify()
    except ir.MLIRError as e:
        raise InputError(f"{p}: IREE's ONNX importer produced invalid IR: {e}") from None
    except Exception as e:  # noqa: BLE001 - the importer raises plain exceptions
        raise InputError(f"{p}: IREE's ONNX importer failed: {type(e).__name__}: {e}") from None
    return Imported(source=p, mlir=module.get_asm(), kind="onnx", notes=notes)


def _tosa_converter() -> Any:
    try:
        import tosa_converter_for_tflite
    except ImportError:
        raise InputError(
            "reading .tflite models needs Arm's TOSA converter, the 'tflite' extra: "
            f"{TFLITE_INSTALL} (in a checkout: pip install -e '.[tflite]')"
        ) from None
    return tosa_converter_for_tflite


def _captured_stderr(run: Callable[[], object]) -> tuple[object, str]:
    """Runs ``run()`` with file descriptor 2 sent to a temporary file (the
    converter's C++ diagnostics go there, not to ``sys.stderr``); returns
    ``(result or exception, text)``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            try:
                result: object = run()
            except Exception as e:  # noqa: BLE001 - reported with the diagnostics below
                result = e
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        return result, f.read().decode("utf-8", "replace")


def _import_tflite(p: Path, quiet: bool) -> Imported:
    import io

    from iree.compiler import ir

    conv = _tosa_converter()
    head = p.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise InputError(f"{p}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    sink = io.BytesIO()

    def convert() -> None:
        # Locations on: TFLite's tensor names become the ops' locations in the imported module.
        conv.tflite_flatbuffer_to_tosa_mlir(str(p), sink, debug_info=conv.TosaConverterDebugInfo.Enable)

    outcome, log = _captured_stderr(convert)
    if isinstance(outcome, Exception):
        said = [line.strip() for line in log.splitlines() if "error:" in line]
        # absl's own lines: 'E0000 00:00:... file.cc:31] message'
        said = said or [line.split("] ", 1)[1] for line in log.splitlines() if line[:1] == "E" and "] " in line]
        detail = "; ".join(said[:3]) or f"{type(outcome).__name__}: {outcome}"
        raise InputError(f"{p}: the TOSA converter for TFLite failed: {detail}") from None
    data = sink.getvalue()
    version = getattr(conv, "__version__", "?")
    try:
        with ir.Context():
            module = ir.Module.parse(data)
            module.operation.verify()
            text = module.operation.get_asm(large_elements_limit=16)
    except ir.MLIRError as e:
        raise InputError(
            f"{p}: IREE cannot read the TOSA that tosa-converter-for-tflite {version} produced: {e}"
        ) from None
    notes = []
    if "tosa.rescale" in text or "!quant." in text:
        note = (
            f"{p.name} is quantized: its TOSA rescales were seen to saturate differently from TFLite's "
            "interpreter on int8 models; compare the outputs with TFLite before relying on them"
        )
        notes.append(note)
        if not quiet:
            print(f"note: {note}", file=sys.stderr)
    return Imported(source=p, mlir=data, kind="tflite", notes=notes)
