"""Patch-based inference end to end: the compile-job stage chooses a split
op and a grid on a MobileNetV2-like first stage, the normal compile builds
the patched module, and IREE's runtime measures it below the same compile
of the unpatched model, with the outputs of IREE's default build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serenity_mlir import api
from serenity_mlir.ir.tools import iree_compile
from serenity_mlir.pipeline.importer import import_model
from serenity_mlir.pipeline.patches import PatchRecord, patch_stage
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.runtime.compare import max_relative_error
from serenity_mlir.runtime.local import measure
from serenity_mlir.settings import ScheduleSettings
from serenity_mlir.targets import get_target

HOST = get_target("host")
RTOL = 1e-5
NAME = "mbv2_stage"


def mobilenetv2_stage(path: Path, size: int = 64) -> Path:
    """The first stage of MobileNetV2 (conv 3x3 s2 3->16, dw 3x3, pw 16->8,
    pw 8->48, dw 3x3 s2, pw 48->16, then a residual block 16->96->16), each
    layer with batch norm and ReLU6 as PyTorch exports them, then a stride-2
    block and a classifier (not spatial: the stage ends there)."""
    import onnx

    from serenity_mlir.samples._builder import GraphBuilder

    b = GraphBuilder(NAME, (1, 3, size, size), 11)

    def cbr(x: str, out: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> str:
        y = b.batch_norm(b.conv(x, out, k, stride=stride, groups=groups))
        return b.relu6(y) if act else y

    x = cbr(b.input_name, 16, 3, 2)
    x = cbr(cbr(x, 16, 3, groups=16), 8, 1, act=False)
    x = cbr(cbr(cbr(x, 48, 1), 48, 3, 2, groups=48), 16, 1, act=False)
    y = cbr(cbr(cbr(x, 96, 1), 96, 3, groups=96), 16, 1, act=False)
    x = b.add(x, y)
    x = cbr(cbr(cbr(x, 32, 1), 32, 3, 2, groups=32), 24, 1, act=False)
    onnx.save(b.build(b.classifier(x, 10)), path)
    return path


def _stage(model: Path, d: Path, mode: str) -> PatchRecord:
    d.mkdir(parents=True, exist_ok=True)
    imported = import_model(model, quiet=True)
    src = d / "model.input.mlir"
    src.write_text(imported.mlir if isinstance(imported.mlir, str) else "")
    return patch_stage(src, WorkFolder(d), HOST, ScheduleSettings(time_limit=10), mode=mode, overhead=0.2)


@pytest.fixture(scope="module")
def auto(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("patches")
    model = mobilenetv2_stage(d / "mbv2.onnx")
    record = _stage(model, d / "work", "auto")
    patched = api.compile_model(record.file, d / "patched.vmfb", time_limit=10)
    plain = api.compile_model(model, d / "plain.vmfb", time_limit=10)
    # IREE's default build of the unpatched model: the outputs' reference
    iree_compile([str(d / "work" / "model.input.mlir"), *HOST.flag_list(), "-o", str(d / "default.vmfb")])
    shape = "1x3x64x64xf32"
    ours = measure(d / "patched.vmfb", NAME, inputs=[shape], seed=5, save_outputs=d / "patched.npz")
    ref = measure(d / "default.vmfb", NAME, inputs=[shape], seed=5, save_outputs=d / "default.npz")
    return {"d": d, "record": record, "patched": patched, "plain": plain, "ours": ours, "ref": ref}


def test_auto_chooses_patches_within_the_mac_cap(auto: dict) -> None:
    r = auto["record"]
    assert r.applied, r.reason
    assert 0 < r.patch_mac_overhead <= 0.2
    assert r.patched_macs > r.macs > 0
    assert r.predicted_peak_bytes < r.baseline_predicted_peak_bytes
    assert r.costed >= 1 and r.candidates >= r.costed
    assert r.split_op is not None and r.split_op.startswith("linalg.")
    assert r.predicted_peak_bytes is not None and r.baseline_predicted_peak_bytes is not None
    assert "linalg.depthwise_conv_2d_nchw_chw" in r.stage_ops
    fields = r.report_fields()
    assert fields["patches"]["grid"] == r.grid and fields["macs"] == r.macs


def test_patched_compile_measures_below_the_unpatched_one(auto: dict) -> None:
    patched, plain, r = auto["patched"], auto["plain"], auto["record"]
    assert r.predicted_peak_bytes is not None and r.baseline_predicted_peak_bytes is not None
    assert patched["prediction_exact"] is True
    assert patched["measured_peak_bytes"] < plain["measured_peak_bytes"]
    # the patch stage's cost is what the compile then builds (or better: the
    # placement stage adds CP-SAT to the cheap part the cost used)
    assert patched["predicted_peak_bytes"] <= r.predicted_peak_bytes
    assert plain["predicted_peak_bytes"] <= r.baseline_predicted_peak_bytes
    print(f"patched {patched['measured_peak_bytes']:,} B ({r.grid} at split {r.split}, "
          f"{r.patch_mac_overhead:.1%} more MACs), unpatched {plain['measured_peak_bytes']:,} B, "
          f"IREE default {plain['reference_measured_peak_bytes']:,} B; schedule "
          f"{patched['schedule_seconds']} s, optimal {patched['optimal']}")  # fmt: skip


def test_patched_outputs_equal_iree_default_build(auto: dict) -> None:
    d = auto["d"]
    a, b = np.load(d / "patched.npz"), np.load(d / "default.npz")
    assert sorted(a.files) == sorted(b.files)
    same = all(np.array_equal(a[k], b[k]) for k in a.files)
    err = max_relative_error(d / "patched.npz", d / "default.npz")
    assert same or err <= RTOL, err
    print(f"outputs {'bit-identical' if same else f'within {err:.3g} relative'} to IREE's default build")


def test_fixed_grid_and_split(tmp_path: Path) -> None:
    """``RxC@N`` applies that grid at that split op, without costing."""
    model = mobilenetv2_stage(tmp_path / "m.onnx", size=32)
    r = _stage(model, tmp_path / "w", "3x2@4")
    assert (r.grid, r.split, r.costed) == ("3x2", 4, 0)
    text = Path(r.file).read_text()
    assert text.count("tensor.insert_slice") == 6
    bad = _stage(model, tmp_path / "w2", "40x40@0")
    assert not bad.applied and "finer" in bad.reason


def test_auto_keeps_the_model_when_patches_do_not_pay(tmp_path: Path) -> None:
    """The peak is after the stage (a wide linear layer on the flattened
    map), so no split or grid can lower it: auto keeps the module as it was
    and says why, after costing candidates against the unpatched graph."""
    import onnx

    from serenity_mlir.samples._builder import GraphBuilder

    b = GraphBuilder("late_peak", (1, 3, 16, 16), 3)
    x = b.relu(b.conv(b.input_name, 4, 3, bias=True))
    x = b.gemm(b.flatten(b.max_pool(x, 3, 2, 1)), 8192)
    onnx.save(b.build(b.gemm(x, 10)), tmp_path / "late.onnx")
    r = _stage(tmp_path / "late.onnx", tmp_path / "w", "auto")
    assert not r.applied and r.grid is None
    # The stage holds far less than the graph's peak: no candidate is even
    # lowered (the unpatched graph is, to know its peak).
    assert r.costed == 0 and r.candidates >= 1 and r.baseline_predicted_peak_bytes is not None
    assert "the peak is past the input stage" in r.reason
    assert r.file.name == "model.patch_input.linalg.mlir"


def test_auto_wants_a_real_gain(tmp_path: Path) -> None:
    """Patches that lower the predicted peak by less than ``min_gain`` are
    not taken: the same stage that patches well at the default is left
    alone when nothing short of a 99% cut would do, and says why."""
    model = mobilenetv2_stage(tmp_path / "m.onnx", size=32)
    imported = import_model(model, quiet=True)
    src = tmp_path / "model.input.mlir"
    src.write_text(imported.mlir if isinstance(imported.mlir, str) else "")
    r = patch_stage(src, WorkFolder(tmp_path), HOST, ScheduleSettings(time_limit=10), min_gain=0.99)
    assert not r.applied and r.costed >= 1
    assert r.predicted_peak_bytes is not None and r.baseline_predicted_peak_bytes is not None
    assert r.predicted_peak_bytes < r.baseline_predicted_peak_bytes  # a gain, but not 99%
    assert "less than 99% below the unpatched graph" in r.reason


def test_compile_patches_auto_through_the_api(tmp_path: Path) -> None:
    """The compile job's --patches auto on the MobileNetV2 sample: a grid is
    chosen within the MAC cap, the patched module measures what it predicts,
    below IREE's default build and below the same compile without patches."""
    model = Path(__file__).resolve().parents[2] / "samples" / "mobilenetv2.onnx"
    plain = api.compile_model(model, tmp_path / "plain.vmfb", verify_outputs=False)
    rep = api.compile_model(model, tmp_path / "patched.vmfb", patches="auto")
    assert rep["patches"]["grid"] is not None and rep["patches"]["reason"] == ""
    assert 0 < rep["patch_mac_overhead"] <= 0.2
    assert rep["prediction_exact"] and rep["measured_peak_bytes"] == rep["predicted_peak_bytes"]
    assert rep["measured_peak_bytes"] < plain["measured_peak_bytes"] < rep["reference_measured_peak_bytes"]
    assert rep["outputs_within_tolerance"] and rep["shipped"] == "serenity"


def test_compile_patches_bad_value_is_refused_before_work(tmp_path: Path) -> None:
    from serenity_mlir.errors import InputError

    model = Path(__file__).resolve().parents[2] / "samples" / "branches.onnx"
    for bad in ("3", "2x", "0x2", "auto@1"):
        with pytest.raises(InputError, match="--patches"):
            api.compile_model(model, tmp_path / "x.vmfb", patches=bad)
    with pytest.raises(InputError, match="--patch-overhead"):
        api.compile_model(model, tmp_path / "x.vmfb", patches="auto", patch_overhead=float("nan"))
    assert not (tmp_path / "x.vmfb").exists()


def test_plot_marks_the_patch_stage(tmp_path: Path) -> None:
    """``compile --patches RxC --plot``: the chosen curve is the patched
    graph's (its order names the patched dispatches) and the patch stage is
    found in it: the R x C in-place inserts that assemble the split op's
    output, and everything upstream, a stretch at the start of the order."""
    pytest.importorskip("matplotlib")
    from serenity_mlir.bench import plots
    from serenity_mlir.tools.cli import main

    model = Path(__file__).resolve().parents[2] / "samples" / "mobilenetv2.onnx"
    keep, png = tmp_path / "kept", tmp_path / "m.png"
    args = ["compile", str(model), "-o", str(tmp_path / "m.vmfb"), "--report", str(tmp_path / "r.json"),
            "--patches", "2x2@8", "--no-measure", "-q", "--keep-temps", str(keep), "--plot", str(png)]  # fmt: skip
    assert main(args) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["patches"]["grid"] == "2x2"
    kept: list = []
    body = plots._body(keep / "model.patched.flow.mlir", report["entry_function"], "iree", kept)
    stage = plots.patch_stage_nodes(body, 4)
    # 2x2 patches of the stage plus what follows: the stage is a strict,
    # non-empty part of the graph, closed under predecessors.
    assert 4 <= len(stage) < body.graph.num_nodes
    assert all(p in stage for v in stage for p in body.graph.preds[v])
    # A 3x3 chain is not in a 2x2 patched graph: nothing is marked.
    assert plots.patch_stage_nodes(body, 9) == set()


def lrn_stage(path: Path, size: int = 48) -> Path:
    """AlexNet's first stage in small: conv 5x5 s2 3->16 with ReLU, ONNX
    LRN (size 5), max pool 3x3 s2, conv 3x3 16->24 with ReLU, LRN (size 3),
    max pool, then a classifier."""
    import onnx

    from serenity_mlir.samples._builder import GraphBuilder

    b = GraphBuilder("lrn_stage", (1, 3, size, size), 17)

    def lrn(x: str, n: int) -> str:
        v = b.values[x]
        sq = np.pad(v * v, ((0, 0), ((n - 1) // 2, n // 2), (0, 0), (0, 0)))
        win = sum(sq[:, i : i + v.shape[1]] for i in range(n))
        y = v / (1.0 + 1e-4 / n * win) ** 0.75
        return b._emit("LRN", [x], "lrn", y, size=n, alpha=1e-4, beta=0.75, bias=1.0)

    x = b.max_pool(lrn(b.relu(b.conv(b.input_name, 16, 5, stride=2, bias=True)), 5), 3, 2, 0)
    x = b.max_pool(lrn(b.relu(b.conv(x, 24, 3, bias=True)), 3), 3, 2, 0)
    onnx.save(b.build(b.classifier(x, 10)), path)
    return path


@pytest.mark.parametrize("patches", ["auto", "3x2@1", "2x3@3"])
def test_lrn_stage_patches_and_matches_iree_default(patches: str, tmp_path: Path) -> None:
    """LRN (IREE's import: 5-D reshapes, a channel pad, transposes, a
    pooling over channels) no longer ends the stage: patches run through it,
    the compile measures what it predicts and its outputs are IREE's default
    build's on the same seeded inputs."""
    model = lrn_stage(tmp_path / "lrn.onnx")
    rep = api.compile_model(model, tmp_path / "lrn.vmfb", patches=patches)
    p = rep["patches"]
    assert p["grid"] is not None and p["reason"] == "", p
    assert "linalg.pooling_ndhwc_sum" in p["stage_ops"] or p["split"] == 0
    assert rep["prediction_exact"] and rep["measured_peak_bytes"] == rep["predicted_peak_bytes"]
    assert rep["outputs_bit_identical"] or rep["outputs_within_tolerance"], rep
    print(f"{patches}: {p['grid']}@{p['split']}, {rep['measured_peak_bytes']:,} B (IREE default "
          f"{rep['reference_measured_peak_bytes']:,} B), bit-identical {rep['outputs_bit_identical']}")  # fmt: skip
