"""The report of one ``serenity-mlir compile``: every field in one place.

The JSON report is a contract (users and outside checks read its keys), so
its fields are declared here once, in the order they are written, and the
CLI's summary and the tests read them from here. A field left at
:data:`ABSENT` is not written at all (a rewrite field without ``--rewrite``,
the static library's sections on a vmfb target, the measurement with
``--no-measure``); ``None`` is written as ``null`` (e.g. a measured peak on a
target that cannot run here).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final[Any] = _Absent()


@dataclass
class Report:
    # What was compiled, and how.
    model: str
    target: str
    scheduler: str
    entry_function: str
    scheduled_function: str
    num_nodes: int
    memory_model: str
    # The memory model's prediction: IREE's slab for the chosen order (its
    # packer simulated) plus the inputs and results, which live outside the
    # slab for the whole call.
    predicted_peak_bytes: int
    program_order_predicted_peak_bytes: int
    predicted_transient_bytes: int
    predicted_live_transient_bytes: int
    program_order_predicted_transient_bytes: int
    schedule_peak_bytes: int
    program_order_schedule_peak_bytes: int
    lower_bound_bytes: int
    peak_at: str
    optimal: bool
    schedule_method: str
    schedule_states: int
    schedule_seconds: float
    compile_seconds: float
    order: list[str]
    notes: list[str]
    output: str
    # What IREE itself computed for the target (scheduling statistics).
    iree_arena_bytes: int | None
    code_size_bytes: int | None
    ram_bytes: int | None
    sram_bytes: int | None
    fits_sram: bool | None
    artifacts: dict[str, str]
    output_kind: str
    inputs: list[str] | None
    outputs: list[str] | None
    input_bytes: int | None
    output_bytes: int | None
    # Who laid out the transient slab ("serenity": pipeline/place.py; "iree"),
    # the slab the module allocates, the most bytes IREE's own slices hold at
    # one time (aligned as IREE aligns them: no layout can do better), and
    # what IREE's own packer gives for the same order.
    placement: str = ABSENT
    slab_bytes: int = ABSENT
    slab_live_bytes: int = ABSENT
    iree_slab_bytes: int = ABSENT
    placement_seconds: float = ABSENT
    placement_methods: list[str] = ABSENT
    model_matches_iree_slices: bool = ABSENT
    # --rewrite (pipeline.rewrite.RewriteChoice.report_fields)
    rewrite: bool = ABSENT
    rewrite_sites_found: int = ABSENT
    rewrite_sites_rewritable: int = ABSENT
    rewrite_sites_applied: int = ABSENT
    rewrite_predicted_peak_bytes: int = ABSENT
    rewrite_baseline_predicted_peak_bytes: int = ABSENT
    rewrite_decision: str = ABSENT
    rewrite_all_sites_predicted_peak_bytes: int | None = ABSENT
    rewrite_evaluations: int = ABSENT
    rewrite_search_complete: bool = ABSENT
    rewrite_search_seconds: float = ABSENT
    rewrite_sites: list[dict[str, Any]] = ABSENT
    # Static libraries (backend.build.build_for_target)
    sections: dict[str, Any] = ABSENT
    elf: dict[str, Any] = ABSENT
    library_query_symbol: str = ABSENT
    undefined_symbols: list[str] = ABSENT
    # IREE's arena holds the slab and the results.
    iree_transient_bytes: int = ABSENT
    memory_budget_bytes: int = ABSENT
    # The measurement (the module run here; input/output bytes above are
    # then the measured ones).
    measured_peak_bytes: int | None = ABSENT
    constant_bytes: int | None = ABSENT
    transient_bytes: int | None = ABSENT
    measured_non_constant_bytes: int = ABSENT
    predicted_vs_measured_non_constant: float | None = ABSENT
    outputs_sha256: str = ABSENT
    # measured == predicted, byte for byte
    prediction_exact: bool = ABSENT
    # The reference: IREE's default compile of the same model, run on the
    # same inputs.
    reference_measured_peak_bytes: int = ABSENT
    outputs_bit_identical: bool = ABSENT
    outputs_max_rel_error: float = ABSENT
    outputs_within_tolerance: bool = ABSENT
    outputs_rtol: float = ABSENT
    # What the output file holds: "serenity", or "iree-default" when IREE's
    # own build of the model measured a lower peak (it is never worse), and
    # that module's measured peak.
    shipped: str = ABSENT
    shipped_peak_bytes: int = ABSENT

    def set(self, **values: Any) -> None:
        """Sets fields by name (an unknown name is a bug, not a new key)."""
        for k, v in values.items():
            if k not in FIELDS:
                raise KeyError(f"unknown report field '{k}'")
            setattr(self, k, v)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not ABSENT}


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Report))

# What ``serenity-mlir compile`` prints on stdout (the rewrite fields only
# with --rewrite).
SUMMARY_FIELDS = (
    "model",
    "target",
    "scheduler",
    "num_nodes",
    "predicted_peak_bytes",
    "program_order_predicted_peak_bytes",
    "measured_peak_bytes",
    "reference_measured_peak_bytes",
    "optimal",
    "outputs_bit_identical",
    "prediction_exact",
    "shipped",
    "rewrite_sites_found",
    "rewrite_sites_applied",
    "rewrite_predicted_peak_bytes",
    "outputs_max_rel_error",
)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The summary of a report: every summary field, the optional ones
    (rewrite, tolerance) only when present."""
    optional = ("rewrite_", "outputs_max", "prediction_", "shipped")
    return {k: report.get(k) for k in SUMMARY_FIELDS if k in report or not k.startswith(optional)}
