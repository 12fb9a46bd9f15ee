"""The ``serenity-rewrite`` pass: identity graph rewriting on linalg-on-tensors.

Runs on a module after IREE's ``input`` phase (``iree-compile
--compile-to=input``), before dispatch formation, so it serves every frontend.
The matching and rewriting live in ``serenity_mlir.rewrite.sites`` and ``.apply``; this pass picks
the function, applies the chosen sites and verifies the module afterwards (a
rewrite that breaks the IR is an error, never a silently written output).

Which sites pay off is a scheduling question (a split can also lengthen the
life of the accumulator): ``serenity_mlir.pipeline.rewrite`` schedules with
and without each site and passes the winners here through ``sites``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from iree.compiler import ir

from serenity_mlir.analysis import FUNC_OPS, find_body_function, func_name
from serenity_mlir.errors import InputError, InternalError
from serenity_mlir.ir.phases import detect_phase
from serenity_mlir.rewrite.apply import rewrite_to_fixed_point
from serenity_mlir.rewrite.sites import Site, SiteInfo, find_sites


@dataclass(frozen=True)
class SerenityRewrite:
    """Channel-wise / kernel-wise partitioning of concat -> convolution, and
    flattening of concat -> concat; to a fixed point (a concat produced by a
    kernel-wise rewrite is rewritten in turn where it can be)."""

    name: ClassVar[str] = "serenity-rewrite"
    function: str | None = None
    # Indices (in ``find_sites`` order) of the sites to rewrite; None: every
    # applicable site.
    sites: tuple[int, ...] | None = None

    def apply(self, module: ir.Operation) -> RewriteOutcome:
        phase = detect_phase(module)
        if phase not in ("linalg", "unknown"):
            raise InputError(
                "serenity-rewrite works on linalg on tensors (iree-compile --compile-to=input), "
                f"but this module is at the {phase} phase"
            )
        funcs = _functions(module, self.function)
        found = _sites_of(funcs)
        if self.sites is None:
            chosen = [s for s in found if s.applicable]
        else:
            by_index = {s.index: s for s in found}
            chosen = []
            for i in self.sites:
                if i not in by_index:
                    raise InputError(f"no concat site {i} in the module (it has {len(found)})")
                if not by_index[i].applicable:
                    s = by_index[i]
                    raise InputError(f"concat site {i} at {s.location} cannot be rewritten: {s.reason}")
                chosen.append(by_index[i])
        descriptions = [s.describe() for s in found]  # before the rewrite erases the ops
        log = rewrite_to_fixed_point([f for _, f in funcs], lambda: _sites_of(funcs), [s.index for s in chosen])
        for d in descriptions:
            d.second_round_rewrites = log.second_round.get(d.index)
            d.skipped = log.skipped.get(d.index)
        try:
            module.verify()
        except ir.MLIRError as e:
            raise InternalError(f"the rewritten module does not verify: {e}") from None
        return RewriteOutcome(
            functions=[name for name, _ in funcs],
            sites=descriptions,
            applied=tuple(log.applied),
            second_round=sum(log.second_round.values()),
        )


@dataclass
class RewriteOutcome:
    """What the pass found and did (site descriptions as in ``Site.describe``)."""

    functions: list[str]
    sites: list[SiteInfo] = field(default_factory=list)
    applied: tuple[int, ...] = ()
    second_round: int = 0  # concats produced by kernel-wise rewrites, rewritten in turn

    @property
    def found(self) -> int:
        return len([s for s in self.sites if s.applicable])


def _functions(module: ir.Operation, function: str | None) -> list[tuple[str, ir.Operation]]:
    """The functions to rewrite: the body of ``function`` (IREE's ``$async``
    twin after the input phase), or, when none is named, every function with
    a body (the rewrite is local, unlike a schedule it needs no entry)."""
    if function is not None:
        fname, func = find_body_function(module, function)
        return [(fname, func)]
    out = []
    for op in module.regions[0].blocks[0].operations:
        o = op.operation
        if o.name in FUNC_OPS and len(o.regions) > 0 and len(o.regions[0].blocks) > 0:
            out.append((func_name(o), o))
    return out


def _sites_of(funcs: list[tuple[str, ir.Operation]]) -> list[Site]:
    """Sites of all ``funcs``, numbered across the module in order."""
    sites: list[Site] = []
    for _, func in funcs:
        sites.extend(find_sites(func, first_index=len(sites)))
    return sites


def find_module_sites(module: ir.Operation, function: str | None = None) -> list[Site]:
    """The sites of the module (for reports and the driver)."""
    return _sites_of(_functions(module, function))
