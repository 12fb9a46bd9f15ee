"""Identity graph rewriting on real networks: what it finds, and that a
rewritten module computes what the original did (IREE compiler and runtime).

The numerics tests force every rewritable site (the driver keeps only those
that lower the peak): the point is that a rewrite, wherever applied, keeps
the math.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_tool

from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.ir.tensors import TensorSpec
from serenity_mlir.ir.tools import iree_compile
from serenity_mlir.passes.rewrite import SerenityRewrite, find_module_sites
from serenity_mlir.pipeline.importer import import_model
from serenity_mlir.pipeline.lower import lower_to_linalg
from serenity_mlir.runtime.compare import REWRITE_RTOL, max_relative_error
from serenity_mlir.runtime.local import measure
from serenity_mlir.runtime.modules import random_inputs
from serenity_mlir.targets import get_target

HOST = get_target("host")


def _linalg(model: Path, workdir: Path) -> Path:
    imported = import_model(model, quiet=True)
    src = workdir / "model.input.mlir"
    src.write_bytes(imported.mlir if isinstance(imported.mlir, bytes) else imported.mlir.encode())
    return lower_to_linalg(src, workdir / "model.linalg.mlir", HOST)


def _sites(linalg: Path) -> list[dict]:
    module = mlir_io.load_module(linalg, mlir_io.new_context())  # outlives the sites' op handles
    return [s.describe().to_json() for s in find_module_sites(module)]


def _compile_linalg(linalg: Path, out: Path) -> None:
    iree_compile([str(linalg), "--compile-from=input", *HOST.flag_list(), "-o", str(out)], what="compiling")


def _force_rewrite(linalg: Path, out: Path) -> tuple[tuple[int, ...], int]:
    module = mlir_io.load_module(linalg, mlir_io.new_context())
    outcome = SerenityRewrite().apply(module)
    atomic_write(out, mlir_io.module_to_text(module))
    return outcome.applied, outcome.second_round


def concat_conv_model(path: Path) -> Path:
    """Four expanding 1x1 branches joined by a concat that feeds ReLU and a
    padded 3x3 conv with bias: the pattern the paper's rewrite targets, with
    the peak at the concat."""
    import onnx

    from serenity_mlir.samples._builder import GraphBuilder

    b = GraphBuilder("concat_conv", (1, 8, 32, 32), 7)
    branches = []
    for i in range(4):
        with b.scope(f"branch{i}"):
            branches.append(b.relu(b.conv(b.input_name, 32, 1, bias=True)))
    y = b.conv(b.relu(b.concat(branches)), 8, 3, bias=True, name="project")
    onnx.save(b.build(y), path)
    return path


def _forced(name: str, shape: str, d: Path) -> dict:
    """Every rewritable site of sample ``name`` rewritten, compiled and run
    beside the original on the same seeded input."""
    linalg = _linalg(ROOT / "samples" / f"{name}.onnx", d)
    sites = _sites(linalg)
    rewritten = d / "rewritten.mlir"
    applied, second_round = _force_rewrite(linalg, rewritten)
    _compile_linalg(linalg, d / "orig.vmfb")
    _compile_linalg(rewritten, d / "rw.vmfb")
    m_orig = measure(d / "orig.vmfb", name, inputs=[shape], seed=3, save_outputs=d / "orig.npz")
    m_rw = measure(d / "rw.vmfb", name, inputs=[shape], seed=3, save_outputs=d / "rw.npz")
    return {"dir": d, "sites": sites, "applied": applied, "second_round": second_round, "orig": m_orig,
            "rw": m_rw, "text": rewritten.read_text(),
            "name": name, "shape": shape}  # fmt: skip


@pytest.fixture(scope="module")
def darts_forced(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _forced("darts", "1x3x64x64xf32", tmp_path_factory.mktemp("darts-rewrite"))


@pytest.fixture(scope="module")
def swiftnet_forced(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _forced("swiftnet", "1x3x96x96xf32", tmp_path_factory.mktemp("swiftnet-rewrite"))


def test_darts_sites(darts_forced: dict) -> None:
    sites = darts_forced["sites"]
    # Five concats: two factorized reduces, three cell outputs, all
    # rewritable. The cell outputs of cells 0 and 1 reach only 1x1
    # convolutions (through ReLU and, for the factorized reduce, a one-pixel
    # spatial shift). The last cell feeds global average pooling, which works
    # channel by channel (kernel-wise). Each factorized reduce's concat feeds
    # the next cell's separable convolutions (depthwise: kernel-wise) and,
    # through the residual adds, that cell's output concat: flattened into it.
    assert len(sites) == 5
    assert all(s["applicable"] for s in sites)
    assert [s["kind"] for s in sites] == ["mixed", "channel-wise", "channel-wise", "mixed", "kernel-wise"]
    for fr in (sites[0], sites[3]):
        assert "tensor.concat" in fr["convolutions"] and "linalg.depthwise_conv_2d_nchw_chw" in fr["convolutions"]
    assert darts_forced["applied"] == (0, 1, 2, 3, 4)
    assert "tensor.extract_slice" in sites[1]["pushed_through"] or "tensor.extract_slice" in sites[2]["pushed_through"]
    assert sites[-1]["convolutions"] == ["linalg.pooling_nchw_sum"]
    # Second round: the depthwise pieces' concats feed 1x1 convolutions and
    # are partitioned too; only the pooled pieces' concat (read by the
    # classifier's matmul) is left.
    assert darts_forced["second_round"] == 4
    assert darts_forced["text"].count("tensor.concat") == 1


def test_darts_rewritten_outputs_within_tolerance(darts_forced: dict) -> None:
    d = darts_forced["dir"]
    assert max_relative_error(d / "rw.npz", d / "orig.npz") <= REWRITE_RTOL


def test_darts_rewritten_matches_onnxruntime(darts_forced: dict) -> None:
    ort = pytest.importorskip("onnxruntime")
    d = darts_forced["dir"]
    x = random_inputs([TensorSpec.parse("1x3x64x64xf32")], 3)[0]
    sess = ort.InferenceSession(str(ROOT / "samples" / "darts.onnx"), providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.savez(d / "ort.npz", ref)
    assert max_relative_error(d / "rw.npz", d / "ort.npz") <= REWRITE_RTOL


def test_swiftnet_sites(swiftnet_forced: dict) -> None:
    """SwiftNet's normal-cell concat reaches the reduction cell through the
    residual add (the cell input sliced per piece) and ReLU, and ends in its
    max pool, its 1x1 convolution and its depthwise 5x5. Each reduction concat
    and the next normal cell's concat meet in that cell's residual add, with
    different splits: they are rewritten together at a common split."""
    sites = swiftnet_forced["sites"]
    assert len(sites) == 7
    assert all(s["applicable"] for s in sites)
    assert "linalg.pooling_nchw_max" in sites[0]["convolutions"]
    groups = {tuple(s["group"]): s["split"] for s in sites if "group" in s}
    assert groups == {(1, 2): [8, 8, 8, 8], (3, 4): [16, 16, 16, 16], (5, 6): [32, 32, 32, 32]}
    assert sites[1]["channels"] == [16, 8, 8] and sites[2]["channels"] == [8, 8, 8, 8]
    assert swiftnet_forced["applied"] == (0, 1, 2, 3, 4, 5, 6)


def test_swiftnet_rewritten_outputs_within_tolerance(swiftnet_forced: dict) -> None:
    d = swiftnet_forced["dir"]
    assert max_relative_error(d / "rw.npz", d / "orig.npz") <= REWRITE_RTOL
    ort = pytest.importorskip("onnxruntime")
    x = random_inputs([TensorSpec.parse(swiftnet_forced["shape"])], 3)[0]
    sess = ort.InferenceSession(str(ROOT / "samples" / "swiftnet.onnx"), providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.savez(d / "ort.npz", ref)
    assert max_relative_error(d / "rw.npz", d / "ort.npz") <= REWRITE_RTOL


def test_randwire_has_no_concat(tmp_path: Path) -> None:
    """RandWire aggregates a node's inputs by a weighted sum, not a concat."""
    assert _sites(_linalg(ROOT / "samples" / "randwire_cifar10.onnx", tmp_path)) == []


def test_compile_rewrite_lowers_peak_where_concat_dominates(tmp_path: Path) -> None:
    """End to end on a network whose peak sits at a concat -> conv: the
    rewrite is kept, the measured peak drops, the outputs stay within
    tolerance of IREE's default compile."""
    model = concat_conv_model(tmp_path / "concat_conv.onnx")
    r = run_tool(
        "serenity-mlir", "compile", str(model), "-o", str(tmp_path / "rw.vmfb"), "--rewrite",
        "--report", str(tmp_path / "rw.json"), "-q", "--rewrite-rtol", "2e-5",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rw.json").read_text())
    assert rep["rewrite_sites_found"] == 1
    assert rep["rewrite_sites_applied"] == 1
    assert rep["rewrite_sites"][0]["accepted"] is True
    assert rep["rewrite_predicted_peak_bytes"] < rep["rewrite_baseline_predicted_peak_bytes"]
    assert rep["outputs_within_tolerance"] is True and rep["outputs_rtol"] == 2e-5
    assert rep["outputs_max_rel_error"] <= REWRITE_RTOL
    # The compute barriers between partial convolutions are gone after
    # dispatch formation: one execution region, one slab, as predicted.
    assert rep["transient_bytes"] == rep["predicted_transient_bytes"]
    assert rep["measured_peak_bytes"] == rep["predicted_peak_bytes"]
    # Without the rewrite (the same schedule otherwise): the concat's 512 KiB.
    base = tmp_path / "base.vmfb"
    r0 = run_tool("serenity-mlir", "compile", str(model), "-o", str(base), "--report", str(tmp_path / "b.json"), "-q")
    assert r0.returncode == 0, r0.stderr
    rep0 = json.loads((tmp_path / "b.json").read_text())
    assert rep["measured_peak_bytes"] * 2 <= rep0["measured_peak_bytes"]


def two_round_model(path: Path) -> Path:
    """The second-round pattern: a concat of three 32-channel branches ->
    depthwise 3x3 (96 groups) -> ReLU -> 1x1 convolution 96 -> 16. The
    kernel-wise rewrite alone moves the concat below the depthwise
    convolution, where it still joins 96 channels for the 1x1 convolution;
    only the second round (that concat partitioned channel-wise) frees the
    pieces one by one."""
    import onnx

    from serenity_mlir.samples._builder import GraphBuilder

    b = GraphBuilder("two_round", (1, 8, 32, 32), 11)
    branches = []
    for i in range(3):
        with b.scope(f"branch{i}"):
            branches.append(b.relu(b.conv(b.input_name, 32, 1, bias=True)))
    dw = b.conv(b.concat(branches), 96, 3, groups=96, name="depthwise")
    y = b.conv(b.relu(dw), 16, 1, bias=True, name="project")
    onnx.save(b.build(y), path)
    return path


def test_compile_rewrite_second_round(tmp_path: Path) -> None:
    """concat -> depthwise -> ReLU -> 1x1 conv: the rewrite is kept with its
    second round, the measured peak drops below the DP-only module's, and the
    outputs stay within tolerance of IREE's default compile."""
    model = two_round_model(tmp_path / "two_round.onnx")
    r = run_tool(
        "serenity-mlir", "compile", str(model), "-o", str(tmp_path / "rw.vmfb"), "--rewrite",
        "--report", str(tmp_path / "rw.json"), "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rw.json").read_text())
    (site,) = rep["rewrite_sites"]
    assert site["kind"] == "kernel-wise" and site["accepted"] is True
    assert site["second_round_rewrites"] == 1
    assert rep["outputs_within_tolerance"] is True
    assert rep["measured_peak_bytes"] == rep["predicted_peak_bytes"]
    # The DP-only module's measured peak (its outputs are checked elsewhere).
    r0 = run_tool("serenity-mlir", "compile", str(model), "-o", str(tmp_path / "d.vmfb"), "--report",
                  str(tmp_path / "d.json"), "-q", "--no-verify-outputs")  # fmt: skip
    assert r0.returncode == 0, r0.stderr
    rep0 = json.loads((tmp_path / "d.json").read_text())
    assert rep["measured_peak_bytes"] < rep0["measured_peak_bytes"]


def test_compile_rewrite_never_worse_on_darts(tmp_path: Path) -> None:
    """On DARTS the peak is in the stem, before any concat: the driver tries
    the five rewritable sites, keeps none, and the module is the DP-only one."""
    r = run_tool(
        "serenity-mlir", "compile", str(ROOT / "samples" / "darts.onnx"), "-o", str(tmp_path / "d.vmfb"),
        "--rewrite", "--no-measure", "--report", str(tmp_path / "d.json"), "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "d.json").read_text())
    assert rep["rewrite_sites_rewritable"] == 5
    assert rep["rewrite_sites_applied"] == 0
    assert rep["predicted_peak_bytes"] <= rep["rewrite_baseline_predicted_peak_bytes"]


def test_compile_rewrite_on_darts_cifar(tmp_path: Path) -> None:
    """DARTS' CIFAR network peaks in its cells, where each cell's 4C-channel
    output concat waits for the next two cells' 1x1 convolutions: the driver
    keeps rewritten sites, the measured peak drops well below the DP-only
    module's (same run of the same tools), and the outputs stay within
    tolerance of IREE's default compile and of onnxruntime."""
    model = ROOT / "samples" / "darts_cifar.onnx"
    out = tmp_path / "rw.vmfb"
    r = run_tool(
        "serenity-mlir", "compile", str(model), "-o", str(out), "--rewrite", "--report", str(tmp_path / "rw.json"), "-q"
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rw.json").read_text())
    assert rep["rewrite_sites_rewritable"] == 10
    assert rep["rewrite_sites_applied"] >= 1
    assert rep["rewrite_predicted_peak_bytes"] < rep["rewrite_baseline_predicted_peak_bytes"]
    assert rep["measured_peak_bytes"] == rep["predicted_peak_bytes"]
    assert rep["outputs_within_tolerance"] is True
    # The DP-only module's measured peak (its outputs are checked elsewhere).
    r0 = run_tool("serenity-mlir", "compile", str(model), "-o", str(tmp_path / "d.vmfb"), "--report",
                  str(tmp_path / "d.json"), "-q", "--no-verify-outputs")  # fmt: skip
    assert r0.returncode == 0, r0.stderr
    rep0 = json.loads((tmp_path / "d.json").read_text())
    assert rep["measured_peak_bytes"] * 1.2 <= rep0["measured_peak_bytes"]
    ort = pytest.importorskip("onnxruntime")
    m = measure(out, "darts_cifar", inputs=["1x3x32x32xf32"], seed=5, save_outputs=tmp_path / "rw.npz")
    x = random_inputs([TensorSpec.parse("1x3x32x32xf32")], 5)[0]
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (ref,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.savez(tmp_path / "ort.npz", ref)
    assert m["device_bytes_peak"] == rep["measured_peak_bytes"]
    assert max_relative_error(tmp_path / "rw.npz", tmp_path / "ort.npz") <= REWRITE_RTOL
