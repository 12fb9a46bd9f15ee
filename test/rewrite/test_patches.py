"""Patch-based inference computes what the whole stage computes.

Random small chains of convolutions, depthwise convolutions and poolings
(stride 1 and 2, kernels 1/3/5, odd image sizes, bias, ReLU, residual adds) are written
as linalg on tensors, NCHW (ONNX's layout) and NHWC (TFLite's); each chain is one function, copied once per split op
and grid (unequal border patches included) and patched with
:func:`serenity_mlir.rewrite.patch_rewrite.apply_patches`. The whole module is
compiled once by IREE and every function runs in IREE's runtime on the same
seeded input: each patched function must equal the whole one. They are
compared bit for bit; the test reports (and tolerates, up to 1e-5 normwise
relative error) a difference where IREE's vectorisation sums in another
order for another patch size.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.ir.tools import iree_compile
from serenity_mlir.rewrite.patch_plan import plan
from serenity_mlir.rewrite.patch_rewrite import apply_patches
from serenity_mlir.rewrite.patches import NotPatchable, find_stage
from serenity_mlir.targets import get_target

HOST = get_target("host")
RTOL = 1e-5


IDM = "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>"
PARALLEL = ", ".join(['"parallel"'] * 4)
ADD = """  %a{i} = linalg.generic {{indexing_maps = [{idm}, {idm}, {idm}], iterator_types = [{par}]}} ins({x}, {v} : {t}, {t}) outs(%e{i} : {t}) {{
  ^bb0(%in: f32, %in2: f32, %o: f32):
    %s = arith.addf %in, %in2 : f32
    linalg.yield %s : f32
  }} -> {t}"""  # noqa: E501
RELU = """  %r{i} = linalg.generic {{indexing_maps = [{idm}, {idm}], iterator_types = [{par}]}} ins({v} : {t}) outs(%e{i} : {t}) {{
  ^bb0(%in: f32, %o: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  }} -> {t}"""  # noqa: E501


IDM5 = "affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>"
PARALLEL5 = ", ".join(['"parallel"'] * 5)


def lrn_lines(i: int, v: str, shape: tuple[int, int, int, int], size: int) -> list[str]:
    """ONNX LocalResponseNormalization over the channels of the NCHW value
    ``v``, written as IREE's ONNX import writes it: the squares expanded to
    5-D, padded over channels, transposed to NDHWC, summed by a pooling whose
    window covers channels only, transposed back, divided by the size,
    collapsed to 4-D, then ``v / (bias + alpha * sum / size) ** beta``."""
    _, c, h, w = shape
    t, t5 = _tt(shape), _tt((1, 1, c, h, w))
    lo, hi = (size - 1) // 2, size // 2
    t5p, tt = _tt((1, 1, c + lo + hi, h, w)), _tt((1, c + lo + hi, h, w, 1))
    ts, tk = _tt((1, c, h, w, 1)), _tt((size, 1, 1))

    def gen(name: str, ins: list[str], ts_: str, outs: str, body: str, rank: int = 4) -> list[str]:
        idm, par = (IDM5, PARALLEL5) if rank == 5 else (IDM, PARALLEL)
        args = ", ".join(f"%in{k}: f32" for k in range(len(ins)))
        return [f"  {name} = linalg.generic {{indexing_maps = [{', '.join([idm] * (len(ins) + 1))}], "
                f"iterator_types = [{par}]}} ins({', '.join(ins)} : {', '.join([ts_] * len(ins))})"
                f" outs({outs} : {ts_}) {{",
                f"  ^bb0({args}, %o: f32):", *[f"    {b}" for b in body.split(";")], f"  }} -> {ts_}"]  # fmt: skip

    return [
        f"  %le{i} = tensor.empty() : {t}",
        *gen(f"%lsq{i}", [v, v], t, f"%le{i}", "%m = arith.mulf %in0, %in1 : f32;linalg.yield %m : f32"),
        f"  %lx{i} = tensor.expand_shape %lsq{i} [[0], [1, 2], [3], [4]] output_shape [1, 1, {c}, {h}, {w}]"
        f" : {t} into {t5}",
        f"  %lp{i} = tensor.pad %lx{i} low[0, 0, {lo}, 0, 0] high[0, 0, {hi}, 0, 0] {{",
        "  ^bb0(%a: index, %b: index, %c: index, %d: index, %e: index):",
        "    tensor.yield %zero : f32", f"  }} : {t5} to {t5p}",
        f"  %lte{i} = tensor.empty() : {tt}",
        f"  %lt{i} = linalg.transpose ins(%lp{i} : {t5p}) outs(%lte{i} : {tt}) permutation = [0, 2, 3, 4, 1]",
        f"  %lse{i} = tensor.empty() : {ts}",
        f"  %lsf{i} = linalg.fill ins(%zero : f32) outs(%lse{i} : {ts}) -> {ts}",
        f"  %lk{i} = tensor.empty() : {tk}",
        f"  %ls{i} = linalg.pooling_ndhwc_sum"
        " {dilations = dense<1> : vector<3xi64>, strides = dense<1> : vector<3xi64>}"
        f" ins(%lt{i}, %lk{i} : {tt}, {tk}) outs(%lsf{i} : {ts}) -> {ts}",
        f"  %lbe{i} = tensor.empty() : {t5}",
        f"  %lb{i} = linalg.transpose ins(%ls{i} : {ts}) outs(%lbe{i} : {t5}) permutation = [0, 4, 1, 2, 3]",
        *gen(f"%ld{i}", [f"%lb{i}"], t5, f"%lbe{i}",
             f"%n = arith.constant {float(size)} : f32;%m = arith.divf %in0, %n : f32;linalg.yield %m : f32", 5),
        f"  %lc{i} = tensor.collapse_shape %ld{i} [[0, 1], [2], [3], [4]] : {t5} into {t}",
        *gen(f"%lden{i}", [f"%lc{i}"], t, f"%le{i}",
             "%al = arith.constant 2.0e-2 : f32;%bi = arith.constant 1.0 : f32;%be = arith.constant 0.75 : f32;"
             "%m = arith.mulf %in0, %al : f32;%a = arith.addf %m, %bi : f32;%p = math.powf %a, %be : f32;"
             "linalg.yield %p : f32"),
        *gen(f"%l{i}", [v, f"%lden{i}"], t, f"%le{i}", "%m = arith.divf %in0, %in1 : f32;linalg.yield %m : f32"),
    ]


def _tt(shape: tuple[int, ...]) -> str:
    return "tensor<" + "x".join(map(str, shape)) + "xf32>"



def _dense(a: np.ndarray) -> str:
    return "dense<" + np.array2string(a.astype(np.float32), separator=", ", threshold=1 << 30,
                                      floatmode="unique").replace("\n", "") + ">"  # fmt: skip


def random_chain(rng: np.random.Generator, layers: int) -> tuple[list[dict], tuple[int, int, int, int]]:
    c = int(rng.integers(1, 4))
    shape = (1, c, int(rng.integers(9, 24)) | 1, int(rng.integers(9, 24)) | 1)  # odd sizes
    spec = []
    cur = shape
    for _ in range(layers):
        kind = str(rng.choice(["conv", "depthwise", "maxpool", "sumpool"], p=[0.45, 0.3, 0.15, 0.1]))
        k = int(rng.choice([1, 3, 3, 5])) if kind == "conv" else int(rng.choice([3, 5]))
        s = int(rng.choice([1, 2]))
        p = int(rng.integers(0, k // 2 + 1))
        residual = kind == "depthwise" and bool(rng.integers(0, 2))
        if residual:  # same size in and out, so the block's input can be added
            s, p = 1, k // 2
        ho, wo = (cur[2] + 2 * p - k) // s + 1, (cur[3] + 2 * p - k) // s + 1
        if ho < 3 or wo < 3:
            break
        f = int(rng.integers(2, 7)) if kind == "conv" else cur[1]
        layer = {"kind": kind, "k": k, "s": s, "p": p, "in": cur, "out": (1, f, ho, wo),
                 "relu": bool(rng.integers(0, 2)),
                 # a residual add of the layer's input (MobileNetV2's blocks)
                 "residual": residual}  # fmt: skip
        if kind == "conv":
            layer["w"] = rng.normal(0, 0.5, (f, cur[1], k, k))
            layer["b"] = rng.normal(0, 0.1, (f,))
        elif kind == "depthwise":
            layer["w"] = rng.normal(0, 0.5, (cur[1], k, k))
            layer["b"] = rng.normal(0, 0.1, (cur[1],))
        spec.append(layer)
        cur = (1, f, ho, wo)
    return spec, shape


def render(spec: list[dict], shape: tuple[int, ...], name: str, layout: str = "nchw") -> str:
    """The chain as one function, NCHW (as from ONNX) or NHWC (as from TFLite)."""
    nhwc = layout == "nhwc"

    def _t(sh: tuple[int, ...]) -> str:  # the chain's shapes are NCHW
        return _tt((sh[0], sh[2], sh[3], sh[1]) if nhwc and len(sh) == 4 else sh)

    out_t = _t(spec[-1]["out"])
    lines = [f"func.func @{name}(%x: {_t(shape)}) -> {out_t} {{",
             "  %zero = arith.constant 0.0 : f32", "  %ninf = arith.constant 0xFF800000 : f32"]  # fmt: skip
    v = "%x"
    for i, L in enumerate(spec):
        block_input = v
        k, s, p, cin, cout = L["k"], L["s"], L["p"], L["in"], L["out"]
        pad_value = "%ninf" if L["kind"] == "maxpool" else "%zero"
        if p:
            padded = (1, cin[1], cin[2] + 2 * p, cin[3] + 2 * p)
            lohi = f"[0, {p}, {p}, 0]" if nhwc else f"[0, 0, {p}, {p}]"
            lines += [f"  %p{i} = tensor.pad {v} low{lohi} high{lohi} {{",
                      "  ^bb0(%a: index, %b: index, %c: index, %d: index):",
                      f"    tensor.yield {pad_value} : f32", f"  }} : {_t(cin)} to {_t(padded)}"]  # fmt: skip
            v, cin = f"%p{i}", padded
        attrs = f"{{dilations = dense<1> : vector<2xi64>, strides = dense<{s}> : vector<2xi64>}}"
        lines.append(f"  %e{i} = tensor.empty() : {_t(cout)}")
        if L["kind"] in ("conv", "depthwise"):
            w = L["w"]
            if nhwc:  # fchw -> hwcf, chw -> hwc
                w = w.transpose(2, 3, 1, 0) if L["kind"] == "conv" else w.transpose(1, 2, 0)
            wt = _tt(w.shape)
            lines += [f"  %w{i} = arith.constant {_dense(w)} : {wt}",
                      f"  %b{i} = arith.constant {_dense(L['b'])} : {_t(L['b'].shape)}",
                      f"  %i{i} = linalg.broadcast ins(%b{i} : {_t(L['b'].shape)}) outs(%e{i} : {_t(cout)})"
                      f" dimensions = {'[0, 1, 2]' if nhwc else '[0, 2, 3]'}"]  # fmt: skip
            if nhwc:
                op = "linalg.conv_2d_nhwc_hwcf" if L["kind"] == "conv" else "linalg.depthwise_conv_2d_nhwc_hwc"
            else:
                op = "linalg.conv_2d_nchw_fchw" if L["kind"] == "conv" else "linalg.depthwise_conv_2d_nchw_chw"
            operands = f"ins({v}, %w{i} : {_t(cin)}, {wt}) outs(%i{i} : {_t(cout)})"
            lines.append(f"  %y{i} = {op} {attrs} {operands} -> {_t(cout)}")
        else:
            init = "%ninf" if L["kind"] == "maxpool" else "%zero"
            op = f"linalg.pooling_{layout}_{'max' if L['kind'] == 'maxpool' else 'sum'}"
            lines += [f"  %i{i} = linalg.fill ins({init} : f32) outs(%e{i} : {_t(cout)}) -> {_t(cout)}",
                      f"  %k{i} = tensor.empty() : {_t((k, k))}",
                      f"  %y{i} = {op} {attrs} ins({v}, %k{i} : {_t(cin)}, {_t((k, k))})"
                      f" outs(%i{i} : {_t(cout)}) -> {_t(cout)}"]  # fmt: skip
        v = f"%y{i}"
        if L["relu"]:
            lines.append(RELU.format(i=i, idm=IDM, par=PARALLEL, v=v, t=_t(cout)))
            v = f"%r{i}"
        if L.get("lrn"):  # NCHW only, as from ONNX
            lines += lrn_lines(i, v, cout, L["lrn"])
            v = f"%l{i}"
        if L["residual"]:
            lines.append(ADD.format(i=i, idm=IDM, par=PARALLEL, x=block_input, v=v, t=_t(cout)))
            v = f"%a{i}"
    lines += [f"  return {v} : {out_t}", "}"]
    return "\n".join(lines)


def _variants(spec: list[dict], rng: np.random.Generator) -> list[tuple[int, tuple[int, int]]]:
    """Every split op with a few grids (1x1, a square one, a lopsided one,
    the finest the split's output allows up to 5x5)."""
    out = []
    for split, L in enumerate(spec):
        _, _, h, w = L["out"]
        grids = {(1, 1), (2, 2), (min(h, 3), min(w, 2)), (min(h, 5), min(w, 5)),
                 (int(rng.integers(1, h + 1)) % 6 or 1, int(rng.integers(1, w + 1)) % 6 or 1)}  # fmt: skip
        out += [(split, g) for g in sorted(grids)]
    return out


def _run_all(src: Path, vmfb: Path, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    import iree.runtime as rt

    iree_compile([str(src), *HOST.flag_list(), "-o", str(vmfb)], what="compiling the patch test module")
    config = rt.Config("local-sync")
    ctx = rt.SystemContext(config=config)
    ctx.add_vm_module(rt.VmModule.copy_buffer(config.vm_instance, vmfb.read_bytes()))
    mod = ctx.modules.module
    return {n: np.asarray(mod[n](x).to_host()) for n in names}


@pytest.mark.parametrize("seed, layout", [(s, "nchw") for s in range(6)] + [(s, "nhwc") for s in (0, 4)])
def test_every_split_and_grid_computes_the_whole_stage(seed: int, layout: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1000 + seed)
    spec, shape = random_chain(rng, int(rng.integers(2, 5)))
    _check_every_variant(spec, shape, layout, seed, rng, tmp_path)


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_lrn_in_the_stage(seed: int, tmp_path: Path) -> None:
    """LRN (AlexNet, ZFNet, GoogLeNet) after some layers, as IREE's ONNX
    import writes it (5-D reshapes, a channel pad, transposes, a pooling over
    channels only): the stage runs through it and every split and grid
    computes what the whole stage computes."""
    rng = np.random.default_rng(2000 + seed)
    spec, shape = random_chain(rng, int(rng.integers(2, 5)))
    for L in spec:
        if rng.integers(0, 2) or L is spec[0]:
            L["lrn"] = int(rng.choice([3, 4, 5]))
    text = render(spec, shape, "f")
    module = mlir_io.parse_module(text, "f.mlir", mlir_io.new_context())
    stage = find_stage(next(iter(module.regions[0].blocks[0].operations)))
    assert len(stage.layers) == len(spec), stage.end_reason
    assert {n.kind for n in stage.nodes} >= {"reshape", "transpose", "pool_pointwise", "pad"}
    _check_every_variant(spec, shape, "nchw", seed, rng, tmp_path)


def _check_every_variant(
    spec: list[dict], shape: tuple[int, int, int, int], layout: str, seed: int, rng: np.random.Generator, tmp_path: Path
) -> None:
    assert len(spec) >= 1
    variants = _variants(spec, rng)
    names = ["whole"] + [f"s{s}_g{g[0]}x{g[1]}" for s, g in variants]
    text = "\n".join(render(spec, shape, n, layout) for n in names)
    ctx = mlir_io.new_context()
    module = mlir_io.parse_module(text, "chain.mlir", ctx)
    funcs = {mlir_io_name(o): o for o in module.regions[0].blocks[0].operations}
    done = []
    for (split, grid), name in zip(variants, names[1:], strict=True):
        func = funcs[name]
        try:
            outcome = apply_patches(func, split, grid)
        except NotPatchable as e:  # pragma: no cover - every generated chain is patchable
            pytest.fail(f"{name}: {e}")
        assert outcome.plan.grid == grid
        done.append((name, outcome.plan))
    module.verify()
    src = tmp_path / "chain.mlir"
    src.write_text(mlir_io.module_to_text(module))
    patched_text = src.read_text()
    assert patched_text.count("tensor.insert_slice") == sum(p.grid[0] * p.grid[1] for _, p in done)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if layout == "nhwc":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    outs = _run_all(src, tmp_path / "chain.vmfb", names, x)
    whole = outs["whole"]
    assert np.isfinite(whole).all()
    mismatched = []
    for name, p in done:
        got = outs[name]
        assert got.shape == whole.shape
        if not np.array_equal(got, whole):
            err = float(np.linalg.norm(got - whole) / max(np.linalg.norm(whole), 1e-30))
            mismatched.append((name, err))
            assert err <= RTOL, f"{name} ({p.describe()}): relative error {err:.3g}"
    # One patch computes only what the cut reads (a stride-2 layer may skip
    # the last row of its input), never more than the whole ops. (More
    # patches may compute less than one: a 1x1 stride-2 layer reads every
    # other column, and a column between two patches' windows is skipped.)
    for _, p in done:
        assert 0 < p.patched_macs
        if p.grid == (1, 1):
            assert p.patched_macs <= p.macs
    print(f"seed {seed} {layout}: {len(done)} patched functions, {len(done) - len(mismatched)} bit-identical, "
          f"others {mismatched}")  # fmt: skip


def mlir_io_name(op: object) -> str:
    from iree.compiler import ir

    return ir.StringAttr(op.operation.attributes["sym_name"]).value  # type: ignore[attr-defined]


def test_stage_stops_at_an_unsupported_op() -> None:
    """A stage's layers end where a non-spatial op reads it; a grid finer
    than the split's output is refused with a reason."""
    rng = np.random.default_rng(7)
    spec, shape = random_chain(rng, 2)
    text = render(spec, shape, "f")
    out_t = _tt(spec[-1]["out"])
    n = int(np.prod(spec[-1]["out"]))
    text = text.replace(f"-> {out_t} {{", f"-> tensor<{n}xf32> {{", 1)
    last = text.rstrip().splitlines()[-2].split()[1]
    text = text.replace(f"  return {last} : {out_t}",
                        f"  %flat = tensor.collapse_shape {last} [[0, 1, 2, 3]] : {out_t} into tensor<{n}xf32>\n"
                        f"  return %flat : tensor<{n}xf32>")  # fmt: skip
    module = mlir_io.parse_module(text, "f.mlir", mlir_io.new_context())
    func = next(iter(module.regions[0].blocks[0].operations))
    stage = find_stage(func)
    assert len(stage.layers) == len(spec)
    assert "collapse_shape" in stage.end_reason
    _, _, h, w = spec[0]["out"]
    with pytest.raises(NotPatchable, match="finer"):
        plan(stage, 0, (h + 1, 1))
    for split, grid in itertools.product(range(len(spec)), [(2, 2)]):
        assert plan(stage, split, grid).patched_macs > 0
