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

Dynamic batch: TensorFlow's converter writes Keras models with a dynamic
batch (``shape_signature`` ``[-1, 96, 96, 3]``), PyTorch's ONNX exporter a
``dim_param`` batch axis. TFLite, TFLite Micro and onnxruntime run such
files at batch 1, and so does the import: a dynamic leading dimension of an
input is pinned to 1 (``Imported.input_shapes`` says so), other dimensions
are set with ``input_shapes={name: (1, 3, 224, 224)}`` (ONNX; a .tflite
file's tensors hold shapes for batch 1 only), and any dimension left dynamic
is an error naming the input.
"""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serenity_mlir.errors import InputError
from serenity_mlir.files import captured_stderr
from serenity_mlir.pipeline.onnx_shapes import ShapeInferenceFailed, static_shapes_of

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
    # Each input as it is compiled, e.g. "input_1: 1x96x96x3xf32 (batch pinned from ?)"
    # (ONNX and TFLite inputs; empty for MLIR files).
    input_shapes: list[str] = field(default_factory=list)
    # ONNX op type -> the names of the model's nodes of that type (ONNX
    # only): to name them when IREE cannot lower an op, or lowers one to
    # control flow.
    onnx_nodes: dict[str, list[str]] = field(default_factory=dict)

    def control_flow_hint(self) -> str | None:
        """The model's nodes that IREE lowers to loops or branches (ONNX LSTM,
        GRU, RNN, Loop, Scan, If), e.g. "LSTM '/lstm/LSTM'", or None."""
        nodes = [f"{op} '{n}'" for op in sorted(CONTROL_FLOW_ONNX_OPS) for n in self.onnx_nodes.get(op, [])]
        return _some(nodes) if nodes else None

    def unlowered_op_hint(self, stderr: str, imported_file: Path) -> str | None:
        """The model's node behind an error IREE reports at a line of the
        imported file (``imported_file``, as :func:`write_input` wrote it),
        or, for "failed to legalize operation 'torch.operator'" elsewhere,
        the model's nodes of that op; None when neither names one.

        IREE's importer writes one ``torch.operator "onnx.<Op>"`` per node,
        in graph order: the k-th such line of an op is the k-th node of
        that type."""
        lines: list[str] = []
        for m in _ERROR_AT.finditer(stderr):
            if Path(m.group(1)).resolve() != imported_file.resolve():
                continue
            if not lines:
                try:
                    lines = imported_file.read_text(errors="replace").splitlines()
                except OSError:
                    return None
            row = int(m.group(2)) - 1
            op = _ONNX_OPERATOR.search(lines[row]) if 0 <= row < len(lines) else None
            if op is None:
                continue
            marker = f'"onnx.{op.group(1)}"'
            k = sum(1 for ln in lines[: row + 1] if "torch.operator" in ln and marker in ln)
            names = self.onnx_nodes.get(op.group(1), [])
            if 0 < k <= len(names):
                return f"at the model's {op.group(1)} node '{names[k - 1]}'"
        unlowered = _UNLOWERED_ONNX_OP.search(stderr)
        names = self.onnx_nodes.get(unlowered.group(1), []) if unlowered is not None else []
        if unlowered is None or not names:
            return None
        shown = _some([f"'{n}'" for n in names])
        return f"IREE cannot lower the model's {unlowered.group(1)} node(s) {shown}"


def _some(items: list[str], shown: int = 3) -> str:
    """The first ``shown`` items, and how many more."""
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


# A diagnostic's location, and an ONNX node as IREE's importer writes it.
_ERROR_AT = re.compile(r"(\S+\.mlir):(\d+):\d+: error")
_ONNX_OPERATOR = re.compile(r'torch\.operator"?\(?.*?"onnx\.(\w+)"')

# What IREE says of an ONNX op its lowering has no pattern for.
_UNLOWERED_ONNX_OP = re.compile(r"failed to legalize operation 'torch\.operator'.*?name = \"onnx\.(\w+)\"")

# ONNX ops that IREE's importer turns into scf loops or branches.
CONTROL_FLOW_ONNX_OPS = frozenset({"LSTM", "GRU", "RNN", "Loop", "Scan", "If"})


def import_model(
    path: str | Path, quiet: bool = False, input_shapes: dict[str, tuple[int, ...]] | None = None
) -> Imported:
    """Imports ``path``. ``input_shapes`` sets an input's dynamic dimensions
    (by input name; a dynamic batch is pinned to 1 without it)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    suffix = p.suffix.lower()
    shapes = dict(input_shapes or {})
    for name, dims in shapes.items():
        if not dims or any(not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in dims):
            raise InputError(f"{p}: input shape for '{name}' must be positive sizes, got {dims!r}")
    if suffix == ".onnx":
        return _import_onnx(p, quiet, shapes)
    if suffix == ".tflite":
        return _import_tflite(p, quiet, shapes)
    if shapes:
        raise InputError(f"{p}: input shapes can be set for .onnx and .tflite models only, not {p.suffix} files")
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


def load_onnx(
    p: Path,
    quiet: bool = False,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    shapes_out: list[str] | None = None,
) -> tuple[object, list[str]]:
    """Loads, checks, upgrades and shape-infers an ONNX model (its dynamic
    input dimensions set first: :func:`pin_onnx_inputs`, whose lines go to
    ``shapes_out``)."""
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
        first = " ".join(str(e).split()) or "invalid model"  # the whole message, on one line
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
    shown = pin_onnx_inputs(model, p, input_shapes or {})
    try:
        model, shape_notes = static_shapes_of(model, p.name)
    except ShapeInferenceFailed as e:
        given = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in (input_shapes or {}).items())
        with_shapes = f" with --input-shape {given}" if given else ""
        raise InputError(f"{p}: ONNX shape inference failed{with_shapes}: {e}") from None
    notes.extend(shape_notes)
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
    notes.extend(f"input {line}" for line in shown if "(" in line)
    if shapes_out is not None:
        shapes_out.extend(shown)
    return model, notes


_ONNX_TYPES = {1: "f32", 2: "ui8", 3: "i8", 4: "ui16", 5: "i16", 6: "i32", 7: "i64", 9: "i1", 10: "f16", 11: "f64",
               12: "ui32", 13: "ui64", 16: "bf16"}  # fmt: skip


def _shape_text(name: str, dims: list[int], elem: str, why: str) -> str:
    return f"{name}: {'x'.join(str(d) for d in dims)}x{elem}" + (f" ({why})" if why else "")


def _check_given(p: Path, names: list[str], shapes: dict[str, tuple[int, ...]]) -> None:
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise InputError(
            f"{p}: no input named '{unknown[0]}' to set the shape of (the inputs: {', '.join(names) or 'none'})"
        )


def pin_onnx_inputs(model: Any, p: Path, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Makes the graph inputs' shapes static, in place: the dimensions given in
    ``shapes`` (which must agree with the file's static ones), then a dynamic
    leading dimension (the batch) pinned to 1. Returns one line per input,
    ``name: 1x3x8x8xf32`` with what changed in parentheses. A dimension left
    dynamic is an error naming the input."""
    weights = {i.name for i in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in weights]
    _check_given(p, [vi.name for vi in inputs], shapes)
    lines = []
    for vi in inputs:
        tt = vi.type.tensor_type
        given = shapes.get(vi.name)
        if not tt.HasField("shape"):  # unknown rank
            if given is None:
                raise InputError(f"{p}: input '{vi.name}' has no shape: give it one with --input-shape {vi.name}=...")
            for _ in given:
                tt.shape.dim.add()
        dims = tt.shape.dim
        if given is not None and len(given) != len(dims):
            raise InputError(f"{p}: input '{vi.name}' has rank {len(dims)}, the shape given for it rank {len(given)}")
        why: list[str] = []
        for i, d in enumerate(dims):
            was = f"'{d.dim_param}'" if d.dim_param else "?"
            if d.HasField("dim_value"):
                if given is not None and given[i] != d.dim_value:
                    raise InputError(
                        f"{p}: input '{vi.name}' has dimension {i} fixed at {d.dim_value} in the file; "
                        f"the shape given says {given[i]}"
                    )
                continue
            if given is not None:
                d.Clear()
                d.dim_value = given[i]
                why.append(f"dim {i} set from {was}")
            elif i == 0:
                d.Clear()
                d.dim_value = 1
                why.append(f"batch pinned from {was}")
            else:
                raise InputError(
                    f"{p}: dynamic shapes are not supported: '{vi.name}' has a dynamic dimension {i} ({was}); "
                    f"set it with --input-shape {vi.name}="
                    + "x".join(str(x.dim_value) if x.HasField("dim_value") else "N" for x in dims)
                )
        elem = _ONNX_TYPES.get(tt.elem_type, f"type{tt.elem_type}")
        lines.append(_shape_text(vi.name, [d.dim_value for d in dims], elem, ", ".join(why)))
    return lines


def _import_onnx(p: Path, quiet: bool, shapes: dict[str, tuple[int, ...]] | None = None) -> Imported:
    from iree.compiler import ir
    from iree.compiler.extras import onnx_importer

    from serenity_mlir.ir.entry import record_entry_signature

    shown: list[str] = []
    model, notes = load_onnx(p, quiet, shapes, shown)
    context = ir.Context()
    try:
        info = onnx_importer.ModelInfo(model)  # type: ignore[arg-type]
        module = info.create_module(context=context).operation
        imp = onnx_importer.NodeImporter.define_function(info.main_graph, module)
        imp.import_all()
        record_entry_signature(module)
        module.verify()
    except ir.MLIRError as e:
        raise InputError(f"{p}: IREE's ONNX importer produced invalid IR: {e}") from None
    except Exception as e:  # noqa: BLE001 - the importer raises plain exceptions
        raise InputError(f"{p}: IREE's ONNX importer failed: {type(e).__name__}: {e}") from None
    by_type: dict[str, list[str]] = {}
    for i, n in enumerate(model.graph.node):  # type: ignore[attr-defined]
        by_type.setdefault(n.op_type, []).append(n.name or f"#{i}")
    return Imported(
        source=p,
        mlir=module.get_asm(),
        kind="onnx",
        notes=notes,
        input_shapes=shown,
        onnx_nodes=by_type,
    )


def _tosa_converter() -> Any:
    try:
        import tosa_converter_for_tflite
    except ImportError:
        raise InputError(
            "reading .tflite models needs Arm's TOSA converter, the 'tflite' extra: "
            f"{TFLITE_INSTALL} (in a checkout: pip install -e '.[tflite]')"
        ) from None
    return tosa_converter_for_tflite


# TFLite's TensorType enum (schema.fbs) as MLIR element types.
_TFLITE_TYPES = {0: "f32", 1: "f16", 2: "i32", 3: "ui8", 4: "i64", 6: "i1", 7: "i16", 9: "i8", 10: "f64",
                 12: "ui64", 15: "ui32", 16: "ui16", 17: "i4"}  # fmt: skip


class _FlatBuffer:
    """Just enough of the FlatBuffers wire format to read and patch a TFLite
    model's tensor shapes in place (tables, vectors of offsets, int32 vectors,
    strings); the fields are those of TFLite's schema.fbs."""

    def __init__(self, data: bytearray) -> None:
        self.data = data

    def u32(self, pos: int) -> int:
        return int.from_bytes(self.data[pos : pos + 4], "little")

    def i32(self, pos: int) -> int:
        return int.from_bytes(self.data[pos : pos + 4], "little", signed=True)

    def field(self, table: int, index: int) -> int | None:
        """Position of field ``index`` of the table at ``table``, or None when absent."""
        vtable = table - self.i32(table)
        vsize = int.from_bytes(self.data[vtable : vtable + 2], "little")
        slot = 4 + 2 * index
        if slot + 2 > vsize:
            return None
        off = int.from_bytes(self.data[vtable + slot : vtable + slot + 2], "little")
        return table + off if off else None

    def ref(self, pos: int | None) -> int | None:
        return None if pos is None else pos + self.u32(pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(position of the first element, length) of a vector field; (0, 0) when absent."""
        v = self.ref(self.field(table, index))
        return (0, 0) if v is None else (v + 4, self.u32(v))

    def tables(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        return [start + 4 * i + self.u32(start + 4 * i) for i in range(n)]

    def ints(self, table: int, index: int) -> list[int]:
        start, n = self.vector(table, index)
        return [self.i32(start + 4 * i) for i in range(n)]

    def string(self, table: int, index: int) -> str:
        start, n = self.vector(table, index)
        return bytes(self.data[start : start + n]).decode("utf-8", "replace")


def pin_tflite_inputs(data: bytes, p: Path, shapes: dict[str, tuple[int, ...]]) -> tuple[bytes, list[str]]:
    """A TFLite model with its dynamic dimensions pinned, as TFLite's
    interpreter runs it: TensorFlow's converter writes each tensor's
    ``shape`` at batch 1 and its ``shape_signature`` with -1 for a dynamic
    dimension, so every -1 becomes the ``shape`` value (the same bytes, patched
    in place). Only a dynamic leading dimension (the batch) of an input is
    pinned; another dynamic input dimension is an error, and so is a shape in
    ``shapes`` other than the file's batch-1 shape (the file's tensors hold
    shapes for that size only). Returns the bytes and one line per input."""
    fb = _FlatBuffer(bytearray(data))
    try:
        subgraphs = fb.tables(fb.u32(0), 2)  # Model.subgraphs
        if not subgraphs:
            raise InputError(f"{p}: the TFLite model has no subgraph")
        main = subgraphs[0]
        tensors = fb.tables(main, 0)  # SubGraph.tensors
        inputs = [tensors[i] for i in fb.ints(main, 1)]  # SubGraph.inputs
        names = [fb.string(t, 3) for t in inputs]  # Tensor.name
        _check_given(p, names, shapes)
        lines = []
        for t, name in zip(inputs, names, strict=True):
            shape, sig = fb.ints(t, 0), fb.ints(t, 7)  # Tensor.shape, Tensor.shape_signature
            dynamic = [i for i, d in enumerate(sig) if d < 0] if len(sig) == len(shape) else []
            for i in dynamic:
                if i != 0:
                    raise InputError(
                        f"{p}: dynamic shapes are not supported: '{name}' has a dynamic dimension {i} "
                        f"(shape_signature {sig}); a .tflite file's tensors hold shapes for one size only"
                    )
            given = shapes.get(name)
            if given is not None and tuple(given) != tuple(shape):
                raise InputError(
                    f"{p}: input '{name}' can only be {'x'.join(map(str, shape))} (the shape the file's tensors "
                    f"were converted for), not {'x'.join(map(str, given))}"
                )
            type_pos = fb.field(t, 1)  # Tensor.type (a byte; default FLOAT32)
            ttype = fb.data[type_pos] if type_pos is not None else 0
            why = "batch pinned from ?" if dynamic else ""
            lines.append(_shape_text(name, shape, _TFLITE_TYPES.get(ttype, f"type{ttype}"), why))
        for sg in subgraphs:
            for t in fb.tables(sg, 0):
                shape = fb.ints(t, 0)
                start, n = fb.vector(t, 7)
                if n != len(shape):
                    continue
                for i in range(n):
                    if fb.i32(start + 4 * i) < 0:
                        fb.data[start + 4 * i : start + 4 * i + 4] = shape[i].to_bytes(4, "little", signed=True)
    except (IndexError, ValueError, OverflowError):
        raise InputError(f"{p}: not a readable TFLite flatbuffer (its tensor table is cut short)") from None
    return bytes(fb.data), lines


def _import_tflite(p: Path, quiet: bool, shapes: dict[str, tuple[int, ...]] | None = None) -> Imported:
    import io

    from iree.compiler import ir

    conv = _tosa_converter()
    raw = p.read_bytes()
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise InputError(f"{p}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    pinned, shown = pin_tflite_inputs(raw, p, shapes or {})
    sink = io.BytesIO()

    def convert(path: str) -> None:
        # Locations on: TFLite's tensor names become the ops' locations in the imported module.
        conv.tflite_flatbuffer_to_tosa_mlir(path, sink, debug_info=conv.TosaConverterDebugInfo.Enable)

    with tempfile.TemporaryDirectory(prefix="serenity-tflite-") as d:
        source = str(p)
        if pinned != raw:  # the converter reads a file: give it the pinned copy
            source = str(Path(d) / p.name)
            Path(source).write_bytes(pinned)
        outcome, log = captured_stderr(lambda: convert(source))
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
    notes = [f"input {line}" for line in shown if "(" in line]
    if "tosa.rescale" in text or "!quant." in text:
        note = (
            f"{p.name} is quantized: its TOSA rescales were seen to saturate differently from TFLite's "
            "interpreter on int8 models; compare the outputs with TFLite before relying on them"
        )
        notes.append(note)
        if not quiet:
            print(f"note: {note}", file=sys.stderr)
    return Imported(source=p, mlir=data, kind="tflite", notes=notes, input_shapes=shown)
