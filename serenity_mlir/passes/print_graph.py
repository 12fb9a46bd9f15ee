"""The ``serenity-print-graph`` pass: the body's dataflow graph as JSON.

For tests and for people who want to run the scheduler on their own: the
printed graph is what ``serenity-mlir schedule-graph`` reads.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from serenity_mlir.analysis import build_body_graph, find_body_function
from serenity_mlir.scheduler.graph import to_json


@dataclass(frozen=True)
class SerenityPrintGraph:
    """Prints the graph of the entry body to stderr; leaves the module as it is."""

    name: ClassVar[str] = "serenity-print-graph"
    function: str | None = None
    memory_model: str = "iree"

    def apply(self, module: Any) -> dict[str, object]:
        _, func = find_body_function(module, self.function)
        graph = to_json(build_body_graph(func, self.memory_model).graph)
        print(json.dumps(graph), file=sys.stderr)
        return graph
