"""PyTorch modules in: ``api.compile_torch`` (the 'torch' extra) exports
through PyTorch's ONNX exporter and compiles with the real IREE compiler and
runtime."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from serenity_mlir import api
from serenity_mlir.errors import InputError

INSTALL = "pip install 'serenity-mlir[torch]'"


def _torch():  # type: ignore[no-untyped-def]
    return pytest.importorskip("torch", reason=f"PyTorch is not installed (the 'torch' extra: {INSTALL})")


def _module():  # type: ignore[no-untyped-def]
    """Three branches of different widths off one input (1x1 conv up,
    ReLU, 3x3 conv down), concatenated and mixed by a 1x1 conv."""
    torch = _torch()
    nn = torch.nn

    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.branches = nn.ModuleList(
                nn.Sequential(nn.Conv2d(8, w, 1), nn.ReLU(), nn.Conv2d(w, 8, 3, padding=1)) for w in (32, 48, 64)
            )
            self.mix = nn.Conv2d(24, 8, 1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.mix(torch.cat([b(x) for b in self.branches], dim=1))

    torch.manual_seed(0)
    return Branches()


def _assert_computes_as_torch(out: Path, report: dict, module, x, rtol: float) -> None:  # type: ignore[no-untyped-def]
    """The compiled module gives what PyTorch gives on ``x`` (the module left in eval mode)."""
    torch = _torch()
    import iree.runtime as rt

    vm = rt.load_vm_flatbuffer_file(str(out), driver="local-sync")
    got = np.asarray(getattr(vm, report["entry_function"])(x.numpy()))
    with torch.no_grad():
        want = module.eval()(x).numpy()
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-5)


def test_compile_torch(tmp_path: Path) -> None:
    torch = _torch()
    import onnx

    module = _module()
    x = torch.randn(1, 8, 32, 32)
    out = tmp_path / "branches.vmfb"
    report = api.compile_torch(module, (x,), out, onnx_path=tmp_path / "branches.onnx", output_names=["logits"])
    assert report["num_nodes"] >= 7
    assert report["predicted_peak_bytes"] < report["program_order_predicted_peak_bytes"]
    assert report["measured_peak_bytes"] == report["predicted_peak_bytes"]
    assert report["measured_peak_bytes"] < report["reference_measured_peak_bytes"]
    assert report["outputs_bit_identical"] is True
    assert module.training, "compile_torch leaves the module's mode as it was"
    # The names survive the export: the argument, the result, the module paths.
    graph = onnx.load(str(tmp_path / "branches.onnx")).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["logits"]
    assert any(n.name.startswith("/branches.2/") for n in graph.node)
    # The compiled module computes what PyTorch does.
    _assert_computes_as_torch(out, report, module, x, rtol=1e-5)


def test_compile_torch_without_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(InputError, match=r"pip install 'serenity-mlir\[torch\]'"):
        api.compile_torch(object(), (), tmp_path / "m.vmfb")
    assert not (tmp_path / "m.vmfb").exists()


def test_compile_torch_checks_its_arguments(tmp_path: Path) -> None:
    _torch()
    with pytest.raises(InputError, match="torch.nn.Module"):
        api.compile_torch(object(), (), tmp_path / "m.vmfb")
    with pytest.raises(InputError, match="tensor"):
        api.compile_torch(_module(), ([1.0],), tmp_path / "m.vmfb")


def test_compile_torch_attention(tmp_path: Path) -> None:
    """A transformer encoder layer: the exporter computes the attention's
    reshape target at run time (Shape, Slice, Concat), which leaves ONNX shape
    inference without the reshaped tensor's rank and fails IREE's importer on
    its own; the import folds that arithmetic (pipeline.onnx_shapes) and the
    module computes what PyTorch does."""
    torch = _torch()

    nn = torch.nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(16, 32)
            self.layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
            self.head = nn.Linear(32, 5)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.head(self.layer(self.embed(x)).mean(1))

    torch.manual_seed(0)
    module = Encoder()
    x = torch.randn(1, 12, 16)
    out = tmp_path / "encoder.vmfb"
    report = api.compile_torch(module, (x,), out)
    assert any("shape-computation node(s)" in n for n in report["notes"]), report["notes"]
    assert report["measured_peak_bytes"] == report["predicted_peak_bytes"]
    assert report["outputs_bit_identical"] is True
    _assert_computes_as_torch(out, report, module, x, rtol=1e-4)


def test_compile_torch_vit_class_token(tmp_path: Path) -> None:
    """A GroupNorm stem (its export leaves the result's batch dimension to a
    computed reshape, which made the model's result dynamic), patch
    embeddings concatenated after a learned class token (IREE writes them
    into a copy of a constant, outside the slab: the memory model must count
    that copy for the prediction to hold) and attention."""
    torch = _torch()

    nn = torch.nn

    class TinyViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.norm = nn.GroupNorm(2, 8)
            self.patch = nn.Conv2d(8, 32, 8, 8)
            self.cls = nn.Parameter(torch.randn(1, 1, 32))
            self.pos = nn.Parameter(torch.randn(1, 17, 32))
            self.attn = nn.MultiheadAttention(32, 2, batch_first=True)
            self.head = nn.Linear(32, 10)

        def forward(self, x):  # type: ignore[no-untyped-def]
            t = self.patch(torch.relu(self.norm(self.stem(x)))).flatten(2).transpose(1, 2)
            t = torch.cat([self.cls.expand(1, -1, -1), t], 1) + self.pos
            a, _ = self.attn(t, t, t, need_weights=False)
            return self.head((t + a)[:, 0])

    torch.manual_seed(0)
    module = TinyViT()
    x = torch.randn(1, 3, 32, 32)
    out = tmp_path / "vit.vmfb"
    report = api.compile_torch(module, (x,), out)
    assert any("shape-computation node(s)" in n for n in report["notes"]), report["notes"]
    assert report["prediction_exact"] is True, (report["predicted_peak_bytes"], report["measured_peak_bytes"])
    assert report["model_matches_iree_slices"] is True
    assert report["outputs_bit_identical"] is True
    _assert_computes_as_torch(out, report, module, x, rtol=1e-4)
