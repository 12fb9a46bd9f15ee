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
    baseline, full, best, without = choose_sites((0, 1, 2), evaluate, _peak)
    assert baseline == ((), 100) and full == ((0, 1, 2), 60)
    assert best == ((0, 1, 2), 60)
    assert without == {0: 100, 1: 100, 2: 100}
    assert len(calls) == 3 + 2  # n + 2 evaluations


def test_a_site_that_hurts_is_dropped() -> None:
    """Site 3 lengthens an accumulator's life: rewriting it costs 30."""
    evaluate, _ = _driver(lambda s: max(60 if i in s else 100 for i in range(3)) + (30 if 3 in s else 0))
    _, full, best, without = choose_sites((0, 1, 2, 3), evaluate, _peak)
    assert full is not None and full[1] == 90
    assert best == ((0, 1, 2), 60)
    assert without[3] == 60


def test_sites_that_change_nothing_are_left_out() -> None:
    """Only site 1 matters: the others are dropped (fewer rewrites, same peak)."""
    evaluate, _ = _driver(lambda s: 50 if 1 in s else 80)
    _, _, best, _ = choose_sites((0, 1, 2), evaluate, _peak)
    assert best == ((1,), 50)


def test_ties_keep_the_original_graph() -> None:
    evaluate, calls = _driver(lambda s: 70)
    baseline, _, best, _ = choose_sites((0, 1), evaluate, _peak)
    assert best is baseline


def test_no_site_is_one_evaluation() -> None:
    evaluate, calls = _driver(lambda s: 70)
    baseline, full, best, without = choose_sites((), evaluate, _peak)
    assert full is None and best is baseline and without == {} and calls == [()]
