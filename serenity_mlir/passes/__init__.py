"""The passes serenity-opt and the pipeline run, by name.

Each pass is a frozen dataclass (see :mod:`serenity_mlir.passes.base`);
``REGISTRY`` is what ``serenity-opt -p`` looks names up in.
"""

from serenity_mlir.passes.patch import SerenityPatch
from serenity_mlir.passes.place import SerenityPlace
from serenity_mlir.passes.print_graph import SerenityPrintGraph
from serenity_mlir.passes.rewrite import SerenityRewrite
from serenity_mlir.passes.schedule import SerenitySchedule

REGISTRY: dict[str, type] = {
    p.name: p for p in (SerenityRewrite, SerenitySchedule, SerenityPlace, SerenityPrintGraph, SerenityPatch)
}

__all__ = ["REGISTRY", "SerenityPlace", "SerenityPrintGraph", "SerenityRewrite", "SerenitySchedule"]
