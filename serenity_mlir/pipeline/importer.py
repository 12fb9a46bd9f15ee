"""Step 1, import: a model file becomes MLIR text.

ONNX goes through IREE's own ONNX importer in process (what
``iree-import-onnx`` does), after the checker and shape inference (without
shapes the importer emits untyped values). IREE's importer needs opset >= 17
in practice (older MaxPool and friends are not legalized), while much of the
model zoo is opset 7-12: such files are upgraded with onnx's version
converter first, and the user is told. MLIR files are taken as they are.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from serenity_mlir.errors import InputError

MIN_OPSET = 17
MLIR_SUFFIXES = (".mlir", ".mlirbc")


@dataclass
class Imported:
    """MLIR text (or bytecode) of the model and what happened on the way."""

    source: Path
    mlir: str | bytes
    kind: str  # "onnx" or "mlir"
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
    if suffix in MLIR_SUFFIXES:
        data = p.read_bytes()
        return Imported(source=p, mlir=data if suffix == ".mlirbc" else data.decode("utf-8", "replace"), kind="mlir")
    raise InputError(f"{p}: unknown model format '{p.suffix}' (expected .onnx, .mlir or .mlirbc)")


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
