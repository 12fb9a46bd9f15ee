"""Fast, IREE-free checks of the ONNX sample generators."""

from __future__ import annotations

import functools
import os
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx.reference import ReferenceEvaluator

from serenity_mlir.samples import IRREGULAR, REGULAR, SAMPLES, write_sample
from serenity_mlir.samples.__main__ import main
from serenity_mlir.samples.darts import CONCAT, DARTS_V2_NORMAL
from serenity_mlir.samples.randwire import predecessors, stage_graphs, watts_strogatz

NAMES = sorted(SAMPLES)


@functools.cache
def model(name: str) -> onnx.ModelProto:
    """Build each default-size model once per test session."""
    return SAMPLES[name]()


def leading_int(pattern: str, text: str) -> int:
    match = re.match(pattern, text)
    assert match is not None, (pattern, text)
    return int(match.group(1))


def nodes_by_name(m: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in m.graph.node}


def test_registry() -> None:
    assert set(SAMPLES) == {"branches", "darts", "darts_cifar", "swiftnet", "randwire_cifar10",
                            "randwire_cifar100", "mobilenetv2", "resnet"}
    assert IRREGULAR == {"darts", "darts_cifar", "swiftnet", "randwire_cifar10", "randwire_cifar100"}
    assert REGULAR == {"mobilenetv2", "resnet"}
    assert not IRREGULAR & REGULAR


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str) -> None:
    assert SAMPLES[name]().SerializeToString() == model(name).SerializeToString()


@pytest.mark.parametrize("name", NAMES)
def test_valid_model(name: str) -> None:
    m = model(name)
    onnx.checker.check_model(m, full_check=True)
    assert m.ir_version == 8
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 17)]
    assert [i.name for i in m.graph.input] == ["input"]  # initializers are not inputs
    assert [o.name for o in m.graph.output] == ["output"]
    assert len(m.SerializeToString()) < 1_500_000
    names = [n.name for n in m.graph.node]
    assert len(set(names)) == len(names) and all(names)
    for init in m.graph.initializer:
        assert init.data_type in (TensorProto.FLOAT, TensorProto.INT64), init.name


@pytest.mark.parametrize("name", NAMES)
def test_static_shapes(name: str) -> None:
    m = onnx.shape_inference.infer_shapes(model(name), check_type=True, strict_mode=True)
    produced = {o for n in m.graph.node for o in n.output}
    infos = [*m.graph.input, *m.graph.output, *m.graph.value_info]
    assert {vi.name for vi in infos} >= produced
    for vi in infos:
        assert vi.type.tensor_type.elem_type == TensorProto.FLOAT, vi.name
        dims = vi.type.tensor_type.shape.dim
        assert dims and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims), vi.name
    in_dims = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert len(in_dims) == 4 and in_dims[0] == 1


@pytest.mark.parametrize("name", NAMES)
def test_output_finite_and_moderate(name: str) -> None:
    """BN statistics are calibrated, so a random input gives O(1) outputs."""
    m = model(name)
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    (y,) = ReferenceEvaluator(m).run(None, {"input": x})
    assert np.isfinite(y).all()
    assert 1e-3 < float(np.abs(y).max()) < 100.0


def test_branches_structure() -> None:
    m = model("branches")
    assert [n.op_type for n in m.graph.node] == ["Conv", "Relu", "Conv"] * 4 + ["Sum"]
    assert [n.name for n in m.graph.node][:3] == ["b0/conv0", "b0/relu", "b0/conv1"]
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    assert all(len(c.input) == 2 for c in convs)  # no bias
    total = m.graph.node[-1]
    assert len(total.input) == 4 and list(total.output) == ["output"]
    out_dims = [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == [1, 8, 32, 32]


def test_darts_cells() -> None:
    m = model("darts")
    by_name = nodes_by_name(m)
    for i in range(3):  # normal, reduction, normal
        concat = by_name[f"cells.{i}/concat"]
        assert concat.op_type == "Concat"
        assert list(concat.input) == [f"cells.{i}/node{k}" for k in CONCAT]
        assert all(by_name[f"cells.{i}/node{k}"].op_type == "Add" for k in CONCAT)
    ops = [n.op_type for n in m.graph.node if n.name.startswith("cells.0/")]
    assert ops.count("Concat") == 2  # FactorizedReduce preprocess0 + the cell output
    assert sum(n.op_type == "MaxPool" for n in m.graph.node if n.name.startswith("cells.1/")) == 5
    # Normal cell: sep_conv = 2 depthwise convs, dil_conv = 1 (dilation 2).
    dws = [n for n in m.graph.node if n.name.startswith("cells.0/ops.") and n.op_type == "Conv"
           and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    n_sep = sum(op == "sep_conv_3x3" for op, _ in DARTS_V2_NORMAL)
    assert len(dws) == 2 * n_sep + 1


def test_darts_cifar_cells() -> None:
    """NetworkCIFAR: a full-resolution stem, 8 cells with reductions at 2 and 5;
    each cell's output concat is read by the next two cells' preprocessing."""
    m = model("darts_cifar")
    by_name = nodes_by_name(m)
    stem = by_name["stem/conv"]
    assert [a.i for a in stem.attribute if a.name == "group"] == [1]
    assert [list(a.ints) for a in stem.attribute if a.name == "strides"] == [[1, 1]]
    readers: dict[str, list[str]] = {}
    for n in m.graph.node:
        for x in n.input:
            readers.setdefault(x, []).append(n.name)
    for i in range(8):
        concat = by_name[f"cells.{i}/concat"]
        assert list(concat.input) == [f"cells.{i}/node{k}" for k in CONCAT]
        users = readers[concat.output[0]]
        if i < 6:
            assert len(users) == 2 and all(by_name[u].op_type == "Relu" for u in users), users
    reductions = [i for i in range(8) if any(n.op_type == "MaxPool" for n in m.graph.node
                                             if n.name.startswith(f"cells.{i}/"))]
    assert reductions == [2, 5]


def test_darts_forward_order() -> None:
    """Within a cell: preprocessing, then each node's two ops and its Add, in order."""
    names = [n.name for n in model("darts").graph.node if n.name.startswith("cells.0/")]

    def key(name: str) -> float:
        part = name.split("/")[1]
        if part.startswith("preprocess"):
            return -2 + int(part[-1])
        if part.startswith("ops."):
            return 2 + int(part[4:]) // 2 - 0.5
        if part.startswith("node"):
            return int(part[4:])
        return 100  # the final concat

    keys = [key(n) for n in names]
    assert keys == sorted(keys)


def test_watts_strogatz_properties() -> None:
    ring = watts_strogatz(32, 4, 0.0, np.random.default_rng(0))
    assert ring == sorted({tuple(sorted((u, (u + j) % 32))) for u in range(32) for j in (1, 2)})
    for p in (0.75, 1.0):
        edges = watts_strogatz(32, 4, p, np.random.default_rng(1))
        assert len(edges) == 32 * 4 // 2 == len(set(edges))
        assert all(0 <= u < v < 32 for u, v in edges)
    with pytest.raises(ValueError):
        watts_strogatz(8, 3, 0.5, np.random.default_rng(0))


@pytest.mark.parametrize("name", ["randwire_cifar10", "randwire_cifar100"])
def test_randwire_structure(name: str) -> None:
    """Each stage is WS(32, 4, 0.75) oriented low -> high and wired as the graph says."""
    seed = 10 if name == "randwire_cifar10" else 100
    m = model(name)
    by_name = nodes_by_name(m)
    stages = sorted({leading_int(r"stage(\d+)/", n) for n in by_name if n.startswith("stage")})
    assert stages == list(range(len(stages))) and len(stages) >= 2
    graphs = stage_graphs(len(stages), 32, 4, 0.75, seed)
    for s, edges in enumerate(graphs):
        assert len(edges) == 64 == len(set(edges))
        assert all(0 <= u < v < 32 for u, v in edges)  # DAG: edges go low -> high
        preds = predecessors(32, edges)
        dws = [n for n in by_name if n.startswith(f"stage{s}/node") and n.endswith("/dw")]
        assert len(dws) == 32
        for i, ps in enumerate(preds):
            dw = by_name[f"stage{s}/node{i}/dw"]
            stride = next(a.ints for a in dw.attribute if a.name == "strides")
            relu = by_name[f"stage{s}/node{i}/relu"]
            if not ps:
                assert list(stride) == [2, 2]
            elif len(ps) == 1:
                assert list(relu.input) == [f"stage{s}/node{ps[0]}/bn"]
            else:
                total = by_name[f"stage{s}/node{i}/sum"]
                assert list(total.input) == [f"stage{s}/node{j}/bn" for j in ps]
                assert list(relu.input) == [total.name]
        sinks = [i for i in range(32) if all(u != i for u, _ in edges)]
        mean_sum = by_name.get(f"stage{s}/output_node_sum")
        if len(sinks) > 1:
            assert mean_sum is not None
            assert list(mean_sum.input) == [f"stage{s}/node{i}/bn" for i in sinks]
    # Emission order follows node index within each stage.
    order = [leading_int(r"stage0/node(\d+)/", n.name)
             for n in m.graph.node if n.name.startswith("stage0/node")]
    assert order == sorted(order)


def test_randwire_variants_differ() -> None:
    assert stage_graphs(2, 32, 4, 0.75, 10) != stage_graphs(2, 32, 4, 0.75, 100)


def test_size_parameters() -> None:
    small = SAMPLES["randwire_cifar10"](nodes=8, stages=1, channels=4)
    assert sum(n.name.endswith("/dw") for n in small.graph.node) == 8
    onnx.checker.check_model(small, full_check=True)
    r = SAMPLES["resnet"](widths=(8, 16), blocks=(1, 1), resolution=32)
    onnx.checker.check_model(r, full_check=True)


def test_write_sample_atomic(tmp_path: os.PathLike[str]) -> None:
    path = write_sample("branches", os.path.join(tmp_path, "sub", "b.onnx"))
    assert path.read_bytes() == model("branches").SerializeToString()
    assert os.listdir(path.parent) == ["b.onnx"]  # no temp file left behind
    in_dir = write_sample("resnet", tmp_path)
    assert in_dir.name == "resnet.onnx" and in_dir.stat().st_size > 0
    with pytest.raises(KeyError):
        write_sample("nope", tmp_path)


def test_cli(tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([os.fspath(tmp_path), "branches", "mobilenetv2"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["branches.onnx", "mobilenetv2.onnx"]
    assert "branches.onnx" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([os.fspath(tmp_path), "bogus"])
