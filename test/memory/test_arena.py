"""The input/output rule of an arena entry point on synthetic intervals
(``memory.arena``; pure, no MLIR): a slice may share the input's bytes only
if it starts strictly after the input's last read, a result's only if it
ends strictly before the result's first write."""

from __future__ import annotations

import pytest

from serenity_mlir.errors import InternalError
from serenity_mlir.memory.arena import IoBuffer, check_io_rule, io_interval, place_arena, step_bounds
from serenity_mlir.memory.placement import max_live
from serenity_mlir.settings import PlacementSettings

# Steps 0..3. A chain: step 0 reads the input and writes a, step 1 reads a
# and writes b, step 2 reads b and writes c, step 3 reads c and writes the
# result.
SLICES = [(0, 1, 1024), (1, 2, 1024), (2, 3, 1024)]
INPUT = IoBuffer("x", "input", 1024, 0)
OUTPUT = IoBuffer("y", "output", 1024, 3)


def test_pseudo_slices() -> None:
    assert io_interval(INPUT, 3) == (0, 0, 1024)
    assert io_interval(OUTPUT, 3) == (3, 3, 1024)
    # No step touches them: an input lives at step 0, a result the whole region.
    assert io_interval(IoBuffer("x", "input", 8, None), 5) == (0, 0, 8)
    assert io_interval(IoBuffer("y", "output", 8, None), 5) == (0, 5, 8)


def test_placement_reuses_the_input_and_reaches_the_bound() -> None:
    ap = place_arena(SLICES, [INPUT, OUTPUT], 3)
    # At most two 1 KiB buffers are alive at any step, input and result included.
    assert ap.total == ap.lower_bound == max_live([*SLICES, (0, 0, 1024), (3, 3, 1024)]) == 2048
    assert all(o % 64 == 0 for o in (*ap.slab_offsets, *ap.io_offsets))
    # Without reuse it would need input + result + two slices.
    assert ap.total < 1024 * 4


def test_slice_starting_after_the_last_read_may_take_the_input() -> None:
    # b starts at step 1, after the input's last read (step 0): same bytes allowed.
    check_io_rule(SLICES, [1024, 0, 1024], [INPUT, OUTPUT], [0, 0], 3, 2048)


def test_slice_starting_at_the_last_read_may_not() -> None:
    # a starts at step 0, while step 0 still reads the input.
    with pytest.raises(InternalError, match="slice 0 .* input x"):
        check_io_rule(SLICES, [0, 1024, 0], [INPUT, OUTPUT], [0, 2048], 3, 3072)


def test_slice_ending_before_the_first_write_may_share_the_result() -> None:
    # b ends at step 2, before the result's first write (step 3).
    check_io_rule(SLICES, [0, 1024, 0], [IoBuffer("x", "input", 1024, 0), OUTPUT], [2048, 1024], 3, 3072)


def test_slice_ending_at_the_first_write_may_not() -> None:
    # c is read at step 3, the step that writes the result.
    with pytest.raises(InternalError, match="slice 2 .* output y"):
        check_io_rule(SLICES, [0, 1024, 2048], [INPUT, OUTPUT], [3072, 2048], 3, 4096)


def test_io_outside_or_misaligned() -> None:
    with pytest.raises(InternalError, match="not aligned or not inside"):
        check_io_rule(SLICES, [0, 1024, 0], [INPUT, OUTPUT], [32, 1024], 3, 2048)
    with pytest.raises(InternalError, match="not aligned or not inside"):
        check_io_rule(SLICES, [0, 1024, 0], [INPUT, OUTPUT], [2048, 1024], 3, 2048)


def test_input_and_result_alive_together_may_not_overlap() -> None:
    late = IoBuffer("x", "input", 1024, 3)
    with pytest.raises(InternalError, match="overlap while both alive"):
        check_io_rule([], [], [late, OUTPUT], [0, 0], 3, 1024)
    # The input read for the last time before the result is written: allowed.
    check_io_rule([], [], [IoBuffer("x", "input", 1024, 2), OUTPUT], [0, 0], 3, 1024)


@pytest.mark.parametrize("placement", ["iree", "heuristic", "serenity"])
def test_every_placer_respects_the_rule(placement: str) -> None:
    # A wider random-ish set: every answer passes the rule check inside place_arena.
    slices = [(i % 7, i % 7 + (i * 5) % 4, 64 * (1 + (i * 13) % 9)) for i in range(30)]
    io = [IoBuffer("x", "input", 500, 2), IoBuffer("y", "output", 300, 8), IoBuffer("z", "output", 64, 9)]
    ap = place_arena(slices, io, 10, PlacementSettings(placement=placement))
    assert ap.total >= ap.lower_bound
    assert len(ap.io_offsets) == 3 and len(ap.slab_offsets) == 30


def test_step_bounds_exact_when_every_op_is_a_command() -> None:
    # Four commands, lifetimes over four async ops: each command's index is exact.
    lower, upper = step_bounds([{0}, {0, 1}, {1, 2}, {2}], SLICES, 3)
    assert lower == upper == [0, 1, 2, 3]


def test_step_bounds_with_elided_ops() -> None:
    # Five async ops, three commands: op 2 (an in-place concat update) left no
    # command. Command 1 reads slice 0 (last use 1) and writes slice 1 (from
    # 1); command 2 reads slice 1 up to op 4.
    slices = [(0, 1, 64), (1, 4, 64), (3, 4, 64)]
    lower, upper = step_bounds([{0}, {0, 1}, {1, 2}], slices, 4)
    assert lower == [0, 1, 3] and upper == [0, 1, 4]
    for k in range(3):
        assert lower[k] <= upper[k]
    # Bounds that contradict one op per command fall back to non-decreasing ones.
    lower, upper = step_bounds([{0}, {0}, {0}], [(0, 1, 64)], 1)
    assert all(lo <= hi for lo, hi in zip(lower, upper, strict=True))
