"""Plots: live bytes over the schedule, and measured peaks side by side.

``live_bytes_plot`` draws the memory live while each dispatch runs for one
or more orders of a model, each with horizontal levels in its colour (the
slab IREE will allocate, a measured peak), the scheduler's lower bound and
the dispatch at the peak; ``bench`` draws one per model
(:mod:`.results`), ``serenity-mlir compile --plot`` one per compile
(:func:`compile_plot`). ``peaks_bar_plot`` is the bench's bar chart.
matplotlib is the ``plots`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iree.compiler import ir

from serenity_mlir.analysis import BodyGraph, build_body_graph, find_body_function
from serenity_mlir.errors import InputError
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.memory.slab import peak_position, slices_for_order
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.scheduler.graph import live_profile

PLOTS_INSTALL = "pip install 'serenity-mlir[plots]'"
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def require_matplotlib(what: str = "plotting") -> None:
    """Raises InputError naming the install command when matplotlib is missing."""
    if not have_matplotlib():
        raise InputError(f"{what} needs matplotlib, the 'plots' extra: {PLOTS_INSTALL}")


def _pyplot():  # type: ignore[no-untyped-def]
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class Level:
    """A horizontal line in a curve's colour: bytes the whole run holds."""

    label: str
    bytes: int
    style: str = "--"


@dataclass(frozen=True)
class Curve:
    """Bytes live while each dispatch of an order runs (inputs and results included)."""

    label: str
    profile: Sequence[int]
    style: str = "-"
    levels: Sequence[Level] = ()


@dataclass(frozen=True)
class PeakMark:
    """An arrow to the dispatch at the peak: ``step`` counts from 1."""

    step: int
    bytes: int
    text: str


@dataclass(frozen=True)
class Span:
    """A stretch of dispatches shaded behind the curves: steps ``first`` to
    ``last``, counted from 1 and inclusive."""

    first: int
    last: int
    label: str


@dataclass
class LivePlot:
    title: str
    curves: list[Curve] = field(default_factory=list)
    bound: int | None = None  # the scheduler's proven lower bound, inputs and results included
    peak: PeakMark | None = None
    subtitle: str = ""
    from_zero: bool = True  # the y axis starts at 0 (else where matplotlib puts it)
    span: Span | None = None  # a shaded stretch of the schedule (the patch stage)


def live_bytes_plot(plot: LivePlot, out: Path, size: tuple[float, float] = (7, 3.5), dpi: int = 100) -> Path:
    """Draws ``plot`` into ``out`` (the format from its suffix); returns ``out``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size)
    try:
        for c in plot.curves:
            if not c.profile:
                continue
            steps = range(1, len(c.profile) + 1)
            line = ax.plot(steps, [x / 1024 for x in c.profile], c.style, label=c.label)
            for lv in c.levels:
                ax.axhline(lv.bytes / 1024, ls=lv.style, lw=0.8, color=line[0].get_color(), label=lv.label)
        if plot.span is not None:
            ax.axvspan(plot.span.first - 0.5, plot.span.last + 0.5, color="0.88", zorder=0, label=plot.span.label)
        if plot.bound is not None:
            ax.axhline(plot.bound / 1024, ls="-.", lw=0.8, color="0.45", label=f"lower bound ({_kib(plot.bound)})")
        if plot.peak is not None:
            ax.plot([plot.peak.step], [plot.peak.bytes / 1024], "o", color="black", ms=4)
            top = max((x for c in plot.curves for x in c.profile), default=plot.peak.bytes) / 1024
            left = plot.peak.step <= max(len(c.profile) for c in plot.curves) / 2
            ax.annotate(
                plot.peak.text,
                xy=(plot.peak.step, plot.peak.bytes / 1024),
                xytext=(12 if left else -12, -28),
                textcoords="offset points",
                ha="left" if left else "right",
                fontsize=7,
                arrowprops={"arrowstyle": "->", "lw": 0.7},
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.7", "lw": 0.5},
            )
            ax.set_ylim(top=max(ax.get_ylim()[1], top * 1.05))
        if plot.from_zero:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("dispatch (in execution order)")
        ax.set_ylabel("live KiB (predicted)")
        ax.set_title(plot.title + (f"\n{plot.subtitle}" if plot.subtitle else ""), fontsize=9 if plot.subtitle else 12)
        ax.legend(fontsize=7)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi)
    finally:
        plt.close(fig)
    return out


def peaks_bar_plot(
    models: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], out: Path, title: str, ylabel: str
) -> Path:
    """One group of bars per model, one bar per series (label, bytes per model)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(models)), 4))
    try:
        width = 0.16
        for i, (label, values) in enumerate(series):
            xs = [j + (i - 2) * width for j in range(len(models))]
            ax.bar(xs, [v / 1024 for v in values], width, label=label)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(list(models), rotation=20)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
    return out


def _body(flow: Path, function: str | None, model: str, keep: list[ir.Operation] | None = None) -> BodyGraph:
    """The body graph of ``flow``'s entry; ``keep`` receives the module when
    the caller reads the graph's ops (they die with the module)."""
    if not flow.is_file():
        raise InputError(f"{flow}: the compile's flow-level module is missing (was it run with --keep-temps?)")
    module = mlir_io.load_module(flow, mlir_io.new_context())
    _, func = find_body_function(module, function)
    if keep is not None:
        keep.append(module)
    return build_body_graph(func, model)


def _peak_text(report: dict[str, Any]) -> str:
    """The dispatch at the peak, without a location inside a (removed) work folder."""
    site = str(report.get("peak_at") or "")
    name, _, where = site.partition(" at ")
    if where and "model." not in Path(where.split(":")[0]).name:
        return f"peak: {name}\n({where})"
    return f"peak: {name}"


def _kib(n: int) -> str:
    k = n / 1024
    return f"{k:,.0f} KiB" if k == int(k) else f"{k:,.1f} KiB"


def compile_plot(report: dict[str, Any], temps: Path, out: Path) -> Path:
    """Live bytes over the schedule of one ``serenity-mlir compile``: the
    imported order and the chosen order, each with the slab IREE allocates
    for it (predicted), the lower bound, and the dispatch at the peak.

    ``report`` is what ``compile_model`` returned; ``temps`` the folder its
    intermediate files were kept in (``--keep-temps``): the graphs are read
    from the flow-level modules there, the orders from the report."""
    function = report.get("entry_function")
    model = str(report.get("memory_model") or "iree")
    work = WorkFolder(temps)
    imported = _body(work.flow, function, model)
    chosen = imported
    alive: list[ir.Operation] = []  # the patched module, while its ops are read
    patches = report.get("patches") or {}
    if patches.get("grid"):
        # The patched module (pipeline.patches: the work folder's "patched"
        # variant) is the graph the order is of.
        chosen = _body(work.variant("patched", "flow"), function, model, alive)
    rewritten = bool(report.get("rewrite_sites_applied"))
    if rewritten:
        tag = "rw" + "_".join(str(s["index"]) for s in report.get("rewrite_sites", []) if s.get("accepted"))
        chosen = _body(work.variant(tag, "flow"), function, model, alive)
    index = {name: i for i, name in enumerate(chosen.graph.names)}
    names = list(report.get("order") or [])
    if sorted(names) != sorted(index):
        raise InputError("the report's order does not name the dispatches of the compiled module")
    order = [index[n] for n in names]
    program = list(range(imported.graph.num_nodes))

    def curve(body: BodyGraph, seq: list[int], label: str, style: str, levels: list[Level]) -> Curve:
        fixed = body.fixed_bytes
        slab = body.predict(seq).slab_bytes + fixed
        return Curve(label, [x + fixed for x in live_profile(body.graph, seq)], style,
                     [Level(f"{label}: slab, predicted ({_kib(slab)})", slab), *levels])  # fmt: skip

    scheduler = str(report.get("scheduler") or "serenity")
    label = "SERENITY order" if scheduler == "serenity" else f"'{scheduler}' order"
    if rewritten:
        label += f" after rewriting {report['rewrite_sites_applied']} site(s)"
    if patches.get("grid"):
        label += f", {patches['grid']} patches"
    measured = report.get("measured_peak_bytes")
    levels = []
    if measured is not None and measured != report.get("predicted_peak_bytes"):
        levels.append(Level(f"measured peak ({_kib(int(measured))})", int(measured), ":"))
    c_imported = curve(imported, program, "imported order" + (", no patches" if patches.get("grid") else ""), ":", [])
    c_chosen = curve(chosen, order, label, "-", levels)
    plot = LivePlot(
        title=f"{Path(str(report.get('model', 'model'))).name} on {report.get('target', '?')}: "
        "memory over the schedule",
        curves=[c_imported, c_chosen],
        bound=report.get("lower_bound_bytes"),
    )
    if patches.get("grid"):
        plot.span = _patch_span(chosen, order, patches)
    pos = peak_position(slices_for_order(chosen.buffers, order))
    if pos is not None:
        plot.peak = PeakMark(pos + 1, c_chosen.profile[pos], _peak_text(report))
    parts = [f"peak predicted {_kib(c_chosen.levels[0].bytes)} (imported order {_kib(c_imported.levels[0].bytes)})"]
    if measured is not None:
        parts.append(f"measured {_kib(int(measured))}")
    ref = report.get("reference_measured_peak_bytes")
    if ref:
        parts.append(f"IREE default {_kib(int(ref))}")
    if report.get("shipped") == "iree-default":
        parts.append("shipped: IREE's default build (it measured lower)")
    plot.subtitle = ", ".join(parts)
    return live_bytes_plot(plot, out, size=(8, 4.2))


def patch_stage_nodes(body: BodyGraph, tiles: int) -> set[int]:
    """The dispatches of a patched graph's patch stage: the R x C patches'
    dispatches and everything upstream of the assembled split output.

    The patch rewrite assembles the split op's output by inserting each
    patch into one empty tensor; IREE emplaces those inserts, so in the flow
    module they are a chain of ``tiles`` dispatches, each writing in place
    (a tied result) into the previous one's result, the first into a
    ``flow.tensor.empty``. The stage is that chain's last dispatch and its
    ancestors. Empty when no such chain is found (nothing is marked then)."""
    node_of = {op: i for i, op in enumerate(body.node_ops)}
    tied_to: dict[int, ir.Operation | None] = {}  # node -> the owner of the operand its result is tied to
    for i, op in enumerate(body.node_ops):
        if op.name != "flow.dispatch" or "tied_operands" not in op.attributes:
            continue
        workload = ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"])[0]
        for t in ir.ArrayAttr(op.attributes["tied_operands"]):
            k = ir.IntegerAttr(t).value
            if k >= 0:
                owner = op.operands[workload + k].owner
                tied_to[i] = owner if isinstance(owner, ir.Operation | ir.OpView) else None
    for i, owner in tied_to.items():
        if owner is None or owner.name != "flow.tensor.empty":
            continue
        chain = [i]
        while len(chain) < tiles:
            nxt = [j for j, o in tied_to.items() if o is not None and node_of.get(o) == chain[-1]]
            if len(nxt) != 1:
                break
            chain.append(nxt[0])
        if len(chain) == tiles:
            stage, todo = {chain[-1]}, [chain[-1]]
            while todo:
                for p in body.graph.preds[todo.pop()]:
                    if p not in stage:
                        stage.add(p)
                        todo.append(p)
            return stage
    return set()


def _patch_span(body: BodyGraph, order: list[int], patches: dict[str, Any]) -> Span | None:
    """The patch stage's stretch of ``order`` (first to last of its dispatches)."""
    rows, cols = (int(x) for x in str(patches["grid"]).split("x"))
    stage = patch_stage_nodes(body, rows * cols)
    steps = [k + 1 for k, v in enumerate(order) if v in stage]
    if not steps:
        return None
    where = f" @ layer {patches['split']}" if patches.get("split") is not None else ""
    return Span(min(steps), max(steps), f"patch stage: {patches['grid']}{where}, {len(stage)} dispatches")
