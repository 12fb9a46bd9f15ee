"""SERENITY's memory-aware scheduler: pure Python over a small graph, no MLIR.

- :mod:`.graph`: the graph, its buffers and the memory model (``peak``);
- :mod:`.orders`: cheap valid orders (program, Kahn, greedy, random, DFS);
- :mod:`.problem`: the bitset view the searches work on;
- :mod:`.levels`: the level-by-level DP (exact, beam, anytime);
- :mod:`.search`: the budgeted threshold search;
- :mod:`.bounds`: proven lower bounds;
- :mod:`.engine`: divide and conquer and the meta-search over the budget;
- :mod:`.schedule`: ``schedule(g, name)``, the entry point.
"""

from serenity_mlir.scheduler.bounds import closure_lower_bound, working_set_bound
from serenity_mlir.scheduler.budget import DEFAULT_WORK_LIMIT
from serenity_mlir.scheduler.graph import (
    Buffer,
    Graph,
    check_order,
    from_edges,
    live_profile,
    load_graph_json,
    peak,
    to_json,
)
from serenity_mlir.scheduler.orders import (
    greedy_order,
    kahn_order,
    program_order,
    random_topo_order,
)
from serenity_mlir.scheduler.schedule import (
    SCHEDULERS,
    ScheduleResult,
    brute_force,
    dp_schedule,
    lower_bound,
    schedule,
)

__all__ = [
    "DEFAULT_WORK_LIMIT",
    "SCHEDULERS",
    "Buffer",
    "Graph",
    "ScheduleResult",
    "brute_force",
    "check_order",
    "closure_lower_bound",
    "dp_schedule",
    "from_edges",
    "greedy_order",
    "kahn_order",
    "live_profile",
    "load_graph_json",
    "lower_bound",
    "peak",
    "program_order",
    "random_topo_order",
    "schedule",
    "to_json",
    "working_set_bound",
]
