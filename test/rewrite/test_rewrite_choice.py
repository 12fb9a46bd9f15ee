"""The rewrite driver's choice of sites, on synthetic peaks (no IREE)."""

from __future__ import annotations

from collections.abc import Callable

from serenity_mlir.rewrite.choice import choose_sites

Evaluate = Callable[[tuple[int, ...]], tuple[tuple[int, ...], int]]


def _driver(peak_of: Callable[[set[int]], int]) -> tuple[Evaluate, list[tuple[int, ...]]]:
    """An ``evaluate`` whose variant is (sites, peak), and the calls it got."""
    calls: list[tuple[int, ...]] = []

    def evaluate(sites: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
        calls.append(sites)
        return sites, peak_of(set(sites))

    return evaluate, calls


def _peak(v: tuple[tuple[int, ...], int]) -> int:
    return v[1]


def test_repeated_cells_need_every_site() -> None:
    """Three cells peak alike: no site alone lowers the maximum, all do."""
    evaluate, calls = _driver(lambda s: max(60 if i in s else 100 for i in range(3)))
    c = choose_sites((0, 1, 2), evaluate, _peak)
    assert c.baseline == ((), 100) and c.full == ((0, 1, 2), 60)
    assert c.best == ((0, 1, 2), 60)
    assert c.without == {0: 100, 1: 100, 2: 100}
    assert c.complete
    # baseline, full, then the halves {0} and {1, 2} (raises), then {1}, {2}
    assert len(calls) == 2 + 4 and c.evaluations == 5


def test_a_site_that_hurts_is_dropped() -> None:
    """Site 3 lengthens an accumulator's life: rewriting it costs 30."""
    evaluate, _ = _driver(lambda s: max(60 if i in s else 100 for i in range(3)) + (30 if 3 in s else 0))
    c = choose_sites((0, 1, 2, 3), evaluate, _peak)
    assert c.full is not None and c.full[1] == 90
    assert c.best == ((0, 1, 2), 60)
    assert c.without[3] == 60


def test_sites_that_change_nothing_are_left_out() -> None:
    """Only site 1 matters: the others are dropped (fewer rewrites, same peak)."""
    evaluate, _ = _driver(lambda s: 50 if 1 in s else 80)
    c = choose_sites((0, 1, 2), evaluate, _peak)
    assert c.best == ((1,), 50)


def test_idle_sites_go_in_few_blocks() -> None:
    """32 sites, one at the peak: bisection needs far fewer than the 32
    evaluations that dropping one site at a time took."""
    evaluate, calls = _driver(lambda s: 50 if 17 in s else 80)
    c = choose_sites(tuple(range(32)), evaluate, _peak)
    assert c.best == ((17,), 50)
    assert c.evaluations <= 12, calls


def test_the_deadline_keeps_the_best_so_far() -> None:
    """Out of time after the full graph: all sites stay, reported incomplete."""
    evaluate, calls = _driver(lambda s: 50 if 1 in s else 80)
    ticks = iter(range(100))
    c = choose_sites((0, 1, 2), evaluate, _peak, deadline=1, clock=lambda: next(ticks))
    assert not c.complete
    assert c.best[1] == 50 and c.best[1] <= c.full[1]  # type: ignore[index]
    assert len(calls) < 5


def test_ties_keep_the_original_graph() -> None:
    evaluate, calls = _driver(lambda s: 70)
    c = choose_sites((0, 1), evaluate, _peak)
    assert c.best is c.baseline


def test_no_site_is_one_evaluation() -> None:
    evaluate, calls = _driver(lambda s: 70)
    c = choose_sites((), evaluate, _peak)
    assert c.full is None and c.best is c.baseline and c.without == {} and calls == [()]


def test_a_half_after_its_dropped_sibling_is_not_evaluated() -> None:
    """Dropping {0,1,2,3} raised the peak, dropping {0,1} did not: dropping
    {2,3} next is the same graph as the first, known to raise it, so it is
    split without an evaluation (likewise {3} after {2})."""
    evaluate, calls = _driver(lambda s: 50 if 3 in s else 80)
    c = choose_sites((0, 1, 2, 3), evaluate, _peak)
    assert c.best == ((3,), 50)
    assert c.without[3] == 80
    assert calls == [(), (0, 1, 2, 3), (2, 3), (3,)] and c.evaluations == 3
