"""``serenity-mlir bench-scheduler``: the scheduler alone, on the dispatch
graphs of the sample networks and on random Watts-Strogatz DAGs.

Each graph is scheduled twice in the same run: by ``serenity`` (divide and
conquer, bounds, adaptive soft budgeting) and by the plain level-by-level DP
(``dp_schedule``: no division, no budget), so the speed ratio is measured
side by side on this machine's current load. The plain DP gets its own time
limit so the bench finishes; a row says when it did not.

The random graphs follow RandWire's generator: a Watts-Strogatz ring
WS(N, k=4, p=0.75) (each node joined to its 2 neighbours on each side, each
edge rewired with probability 0.75), edges oriented from the lower to the
higher index, random tensor sizes (1..256 KiB in 1 KiB steps), every sink a
graph output. Seeds are fixed: the same N gives the same graph everywhere.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serenity_mlir.analysis import build_body_graph, find_body_function
from serenity_mlir.errors import InputError
from serenity_mlir.files import atomic_write
from serenity_mlir.ir import mlir as mlir_io
from serenity_mlir.pipeline.importer import import_model
from serenity_mlir.pipeline.lower import lower
from serenity_mlir.pipeline.paths import check_writable
from serenity_mlir.pipeline.workdir import WorkFolder
from serenity_mlir.scheduler import Graph, dp_schedule, from_edges, schedule
from serenity_mlir.settings import TIME_LIMIT
from serenity_mlir.targets import get_target
from serenity_mlir.units import nonneg_int_arg, seconds_arg

WS_SIZES = (16, 32, 64, 128)
SAMPLES = (
    "branches",
    "darts",
    "darts_cifar",
    "swiftnet",
    "randwire_cifar10",
    "randwire_cifar100",
    "mobilenetv2",
    "resnet",
)


def watts_strogatz_dag(n: int, k: int = 4, p: float = 0.75, seed: int = 0) -> Graph:
    """WS(n, k, p) as a DAG oriented low-to-high index (see the module
    docstring); deterministic for a given seed."""
    rng = random.Random(seed)
    adj: set[frozenset[int]] = set()
    for i in range(n):
        for j in range(1, k // 2 + 1):
            adj.add(frozenset((i, (i + j) % n)))
    for a, b in sorted(tuple(sorted(e)) for e in adj):
        if rng.random() < p:
            choices = [w for w in range(n) if w != a and frozenset((a, w)) not in adj]
            if choices:
                adj.discard(frozenset((a, b)))
                adj.add(frozenset((a, rng.choice(choices))))
    names = [f"n{i}" for i in range(n)]
    edges = sorted((min(e), max(e)) for e in adj)
    sizes = [rng.randint(1, 256) * 1024 for _ in range(n)]
    has_succ = {a for a, _ in edges}
    outputs = [names[i] for i in range(n) if i not in has_succ]
    return from_edges(names, sizes, [(names[a], names[b]) for a, b in edges], outputs)


def sample_graph(name: str, samples_dir: Path) -> Graph:
    """The dispatch-level graph of a sample network (needs IREE: seconds)."""
    with tempfile.TemporaryDirectory(prefix="serenity-") as d:
        work = WorkFolder(Path(d))
        lowered = lower(import_model(samples_dir / f"{name}.onnx", quiet=True), work, get_target("host"))
        _, func = find_body_function(mlir_io.load_module(lowered.flow_file, mlir_io.new_context()), None)
        return build_body_graph(func).graph


def bench_graph(
    name: str, g: Graph, time_limit: float, dp_time_limit: float, dp_state_limit: int | None = None
) -> dict[str, Any]:
    """One row: serenity and the plain DP on the same graph, same run."""
    r = schedule(g, "serenity", time_limit=time_limit, state_limit=None)
    t0 = time.perf_counter()
    d = dp_schedule(g, time_limit=dp_time_limit, state_limit=dp_state_limit)
    dp_seconds = time.perf_counter() - t0
    gap = (r.peak_bytes - r.lower_bound_bytes) / r.lower_bound_bytes if r.lower_bound_bytes else 0.0
    row: dict[str, Any] = {
        "graph": name,
        "nodes": g.num_nodes,
        "segments": r.segments,
        "states": r.states,
        "seconds": round(r.seconds, 3),
        "peak_bytes": r.peak_bytes,
        "lower_bound_bytes": r.lower_bound_bytes,
        "gap": round(gap, 5),
        "optimal": r.optimal,
        "tau_bytes": r.tau_bytes,
        "method": r.method,
        "dp_finished": d.optimal,
        "dp_seconds": round(dp_seconds, 3),
        "dp_states": d.states,
        "dp_peak_bytes": d.peak_bytes,
        # A lower bound on the speed-up when the DP did not finish.
        "speedup": round(dp_seconds / max(r.seconds, 1e-6), 1),
    }
    if d.optimal and r.optimal and d.peak_bytes != r.peak_bytes:
        row["error"] = f"serenity {r.peak_bytes} B != plain DP {d.peak_bytes} B"
    return row


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| graph | nodes | segs | states | seconds | peak B | lower bound B | gap | optimal "
        "| plain DP seconds | plain DP states | speed-up |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        dp = f"{r['dp_seconds']:.2f}" if r["dp_finished"] else f"{r['dp_seconds']:.0f} (not finished)"
        sp = f"{r['speedup']:.1f}x" if r["dp_finished"] else f">{r['speedup']:.1f}x"
        lines.append(
            f"| {r['graph']} | {r['nodes']} | {r['segments']} | {r['states']:,} | {r['seconds']:.3f} "
            f"| {r['peak_bytes']:,} | {r['lower_bound_bytes']:,} | {100 * r['gap']:.2f}% "
            f"| {'yes' if r['optimal'] else 'no'} | {dp} | {r['dp_states']:,} | {sp} |"
        )
    return "\n".join(lines)


def _ws_sizes(text: str) -> list[int]:
    """``--ws``: comma-separated node counts, each above the ring's k (4)."""
    sizes = []
    for x in filter(None, (x.strip() for x in text.split(","))):
        try:
            n = int(x)
        except ValueError:
            n = -1
        if n <= 4:
            raise argparse.ArgumentTypeError(f"expected node counts > 4, comma-separated (e.g. 16,32), got '{x}'")
        sizes.append(n)
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="serenity-mlir bench-scheduler", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write the rows as JSON here")
    ap.add_argument(
        "--time-limit",
        type=seconds_arg,
        default=TIME_LIMIT,
        help=f"serenity's limit per graph (default {TIME_LIMIT:g} s)",
    )
    ap.add_argument(
        "--dp-time-limit",
        type=seconds_arg,
        default=TIME_LIMIT,
        help=f"the plain DP's limit per graph (default {TIME_LIMIT:g} s)",
    )
    ap.add_argument(
        "--dp-state-limit",
        type=nonneg_int_arg,
        default=6_500_000,
        help="the plain DP's state limit (default 6,500,000: under 2 GB of Python dicts)",
    )
    ap.add_argument("--ws", type=_ws_sizes, default=list(WS_SIZES), help="WS sizes N, comma-separated ('' for none)")
    ap.add_argument("--seed", type=nonneg_int_arg, default=1, help="seed of the WS graphs (default 1)")
    ap.add_argument("--samples", default=",".join(SAMPLES), help="sample networks, comma-separated ('' for none)")
    # The repository's samples/ (this file is serenity_mlir/bench/scheduler.py).
    ap.add_argument("--samples-dir", type=Path, default=Path(__file__).resolve().parents[2] / "samples")
    a = ap.parse_args(argv)
    # Every argument checked before the first graph.
    names = [x.strip() for x in a.samples.split(",") if x.strip()]
    for name in names:
        if not (a.samples_dir / f"{name}.onnx").is_file():
            raise InputError(
                f"--samples: no sample '{name}' ({a.samples_dir / (name + '.onnx')} does not exist; "
                f"known: {', '.join(SAMPLES)})"
            )
    if a.out is not None:
        check_writable(a.out, "--out", devices=True)
    jobs: list[tuple[str, Any]] = []
    for name in names:
        jobs.append((name, lambda name=name: sample_graph(name, a.samples_dir)))
    for n in a.ws:
        jobs.append((f"WS({n},4,0.75) seed {a.seed}", lambda n=n: watts_strogatz_dag(n, seed=a.seed)))
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i, (name, make) in enumerate(jobs, 1):
        elapsed = time.perf_counter() - t0
        print(f"[{i}/{len(jobs)} {elapsed:6.1f}s] {name}: building the graph", file=sys.stderr, flush=True)
        try:
            g = make()
        except Exception as e:  # noqa: BLE001 - a sample that cannot be lowered is reported, not fatal
            print(f"  skipped: {e}", file=sys.stderr, flush=True)
            continue
        print(f"  {g.num_nodes} nodes: scheduling (serenity, then the plain DP)", file=sys.stderr, flush=True)
        row = bench_graph(name, g, a.time_limit, a.dp_time_limit, a.dp_state_limit)
        print(
            f"  serenity {row['seconds']:.2f}s optimal={row['optimal']} gap={100 * row['gap']:.2f}%; "
            f"plain DP {row['dp_seconds']:.2f}s finished={row['dp_finished']}",
            file=sys.stderr,
            flush=True,
        )
        rows.append(row)
    print(markdown_table(rows))
    if a.out:
        atomic_write(a.out, json.dumps(rows, indent=2) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
