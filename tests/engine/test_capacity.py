"""Surface capacity crowds: the slots a crowd takes day by day, with and without one more test.

A check of a new test on a node above a crowd adds its slot to the crowd's counts rather
than counting again; these tests hold that shortcut to a recount.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.engine_policy import compile_all, item
from tests.support.engine_policy import day as june
from tower.engine.capacity import Crowd
from tower.engine.portfolio import Footprint

windows = st.tuples(st.integers(min_value=1, max_value=20), st.integers(min_value=0, max_value=9))


def crowd_and_candidate(
    spans: list[tuple[int, int]], groups: list[str | None], candidate: tuple[int, int]
) -> tuple[list[Footprint], Footprint]:
    items = [
        item(n, ["web/checkout/cart"], start, start + length, group=group)
        for n, ((start, length), group) in enumerate(zip(spans, groups, strict=True), start=1)
    ]
    start, length = candidate
    items.append(item(len(items) + 1, ["web"], start, start + length))
    _, footprints = compile_all(*items)
    return footprints[:-1], footprints[-1]


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.tuples(windows, st.sampled_from([None, None, "g", "h"])), max_size=8),
    windows,
    st.integers(min_value=1, max_value=3),
)
def test_one_more_slot_gives_the_runs_a_recount_gives(
    members: list[tuple[tuple[int, int], str | None]], candidate: tuple[int, int], limit: int
) -> None:
    spans, groups = [m[0] for m in members], [m[1] for m in members]
    footprints, new = crowd_and_candidate(spans, groups, candidate)
    recounted = [
        run
        for run in Crowd([*footprints, new], limit).runs_over(limit)
        if run[0] <= new.end and run[1] >= new.start
    ]
    assert Crowd(footprints, limit).runs_with_one_more(new.start, new.end, limit) == recounted


def test_a_run_over_the_limit_goes_on_past_the_new_test_on_both_sides() -> None:
    # Two tests fill days 1-20 (the limit); a third fills 5-15; the new test runs 8-10.
    footprints, new = crowd_and_candidate([(1, 19), (1, 19), (5, 10)], [None] * 3, (8, 2))
    crowd = Crowd(footprints, 2)
    assert crowd.runs_over(2) == [(day(5), day(15), 3)]
    assert crowd.runs_with_one_more(new.start, new.end, 2) == [(day(5), day(15), 4)]


def test_one_more_slot_at_the_limit_opens_runs_only_on_the_new_tests_days() -> None:
    footprints, new = crowd_and_candidate([(1, 19), (3, 4), (12, 8)], [None] * 3, (2, 14))
    crowd = Crowd(footprints, 2)
    assert crowd.runs_over(2) == []
    assert crowd.runs_with_one_more(new.start, new.end, 2) == [
        (day(3), day(7), 3),
        (day(12), day(16), 3),
    ]


def test_a_crowd_too_small_to_pass_the_limit_counts_nothing() -> None:
    footprints, new = crowd_and_candidate([(1, 19), (1, 19)], ["g", "g"], (1, 5))
    crowd = Crowd(footprints, 2)
    assert crowd.days == []
    assert crowd.runs_with_one_more(new.start, new.end, 2) == []


def day(n: int) -> int:
    return june(n).toordinal()
