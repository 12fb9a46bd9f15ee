"""SERENITY places the slab itself (backend.stream), with the real IREE.

The bridging chain of the README (iree-import-onnx, iree-compile
--compile-to=flow, serenity-opt --serenity-schedule), then two builds of the
same scheduled module: IREE's own (``--compile-from=flow``) and ours with the
stream phase split and every pack placed by ``memory.placement``. Both run in
IREE's runtime: the placed module's measured peak is the inputs + results +
our slab, byte for byte; its outputs are bit-identical; its slab is never
above IREE's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT
from conftest import run_tool as run_script

from serenity_mlir.backend.compile import compile_flow
from serenity_mlir.backend.stream import compile_placed, predicted_peak
from serenity_mlir.errors import CompilerToolError, InputError
from serenity_mlir.ir.tools import run_tool, tool_path
from serenity_mlir.runtime.local import measure
from serenity_mlir.targets import get_target


def scheduled_flow(model: Path, tmp: Path) -> Path:
    target = get_target("host")
    imported = tmp / "input.mlir"
    flow = tmp / "flow.mlir"
    sched = tmp / "sched.mlir"
    try:
        run_tool("import", [tool_path("iree-import-onnx"), str(model), "-o", str(imported)])
    except CompilerToolError as e:
        pytest.skip(f"iree-import-onnx is not usable here: {e}")
    run_tool(
        "lower", [tool_path("iree-compile"), str(imported), "--compile-to=flow", *target.flag_list(), "-o", str(flow)]
    )
    p = run_script("serenity-opt", str(flow), "--serenity-schedule", "-o", str(sched))
    assert p.returncode == 0, p.stderr
    return sched


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """sample -> its scheduled flow file, made once for the module."""
    made: dict[str, Path] = {}

    def get(sample: str) -> Path:
        if sample not in made:
            made[sample] = scheduled_flow(ROOT / "samples" / f"{sample}.onnx", tmp_path_factory.mktemp(sample))
        return made[sample]

    return get


@pytest.mark.parametrize("sample", ["branches", "swiftnet"])
def test_placed_slab_measured_and_bit_identical(sample: str, scheduled: Callable[[str], Path], tmp_path: Path) -> None:
    sched = scheduled(sample)
    host = get_target("host")
    compile_flow(sched, tmp_path / "iree.vmfb", host)
    placed = compile_placed(sched, tmp_path / "placed.vmfb", host)
    before = measure(tmp_path / "iree.vmfb")
    after = measure(tmp_path / "placed.vmfb")

    assert placed.packs and all(p.placement is not None for p in placed.packs)
    for p in placed.packs:
        assert p.placement is not None
        assert p.placement.lower_bound <= p.placement.total <= p.placement.iree_total
    # IREE's own packer, as modelled, is what IREE's own build allocates.
    assert before["transient_bytes"] == placed.iree_slab_bytes
    assert after["transient_bytes"] == placed.slab_bytes
    assert after["device_bytes_peak"] == predicted_peak(placed, after["input_bytes"], after["output_bytes"])
    assert after["outputs_sha256"] == before["outputs_sha256"]
    assert after["device_bytes_peak"] <= before["device_bytes_peak"]
    if sample == "swiftnet":
        # IREE's greedy leaves holes (650,176 B for 589,824 live in the
        # SERENITY order of IREE 3.13); the placement none.
        assert placed.slab_bytes == placed.slab_live_bytes < placed.iree_slab_bytes


def test_place_pass_in_memory(scheduled: Callable[[str], Path]) -> None:
    """The serenity-place pass on the stream phase, as serenity-opt runs it."""
    from serenity_mlir.backend.packs import find_packs
    from serenity_mlir.backend.stream import lower_to_allocation
    from serenity_mlir.ir import mlir as mlir_io
    from serenity_mlir.passes.place import SerenityPlace

    text = lower_to_allocation(scheduled("swiftnet").read_text())
    module = mlir_io.parse_module(text, "stream", mlir_io.new_context())
    outcome = SerenityPlace().apply(module)
    assert outcome.slab_bytes == outcome.slab_live_bytes < outcome.iree_slab_bytes
    assert not find_packs(module)
    assert f"arith.constant {outcome.slab_bytes} : index" in mlir_io.module_to_text(module)
    # Report only: the packs stay for IREE.
    module = mlir_io.parse_module(text, "stream", mlir_io.new_context())
    outcome = SerenityPlace(placement="iree").apply(module)
    assert outcome.slab_bytes == outcome.iree_slab_bytes and len(find_packs(module)) == 1
    # Not at the stream phase: a clear error.
    flow = mlir_io.parse_module(scheduled("swiftnet").read_text(), "flow", mlir_io.new_context())
    with pytest.raises(InputError, match="stream.resource.pack"):
        SerenityPlace().apply(flow)


@pytest.mark.parametrize("sample", ["branches", "swiftnet"])
def test_ground_truth_slices_match_the_model(sample: str, scheduled: Callable[[str], Path]) -> None:
    """IREE's own slices (sizes, first and last dispatch) are the memory
    model's slab buffers for the scheduled order, one for one."""
    from serenity_mlir.analysis import build_body_graph, find_body_function
    from serenity_mlir.backend.stream import lower_to_allocation
    from serenity_mlir.ir import mlir as mlir_io
    from serenity_mlir.pipeline.place import compare_with_model

    flow_text = scheduled(sample).read_text()
    ctx = mlir_io.new_context()
    flow = mlir_io.parse_module(flow_text, "flow", ctx)
    stream = mlir_io.parse_module(lower_to_allocation(flow_text), "stream", ctx)
    truth = compare_with_model(build_body_graph(find_body_function(flow, None)[1]), stream)
    assert truth.ok, truth.differences
    assert truth.matched == truth.slices == truth.buffers > 0
