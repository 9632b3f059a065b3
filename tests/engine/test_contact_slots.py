"""The next start within a contact cap agrees with the crowds the scan finds.

E-mail activities on the collision tests' policy, whose audiences do not all share people
(anonymous and logged_in are disjoint; app_users overlaps logged_in), so the sets that break
a cap are not just "everyone in the window".
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.engine_policy import POLICY
from tower.engine.contact_crowds import crowds_over_cap
from tower.engine.contact_slots import next_start_within_cap
from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.engine.schedule import DaySchedule
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.policy.schema import ContactCap

FIRST = date(2026, 6, 1)
AUDIENCES = [(), ("anonymous",), ("logged_in",), ("loyalty",), ("app_users",)]


def activity(number: int, offset: int, days: int, audiences: tuple[str, ...]) -> PortfolioItem:
    start = FIRST + timedelta(days=offset)
    spec = ExperimentSpec(
        title=f"Send {number}",
        team="crm",
        owner="U0OWNER",
        kind=ExperimentKind.CAMPAIGN,
        surfaces=("email/promo",),
        start=start,
        end=start + timedelta(days=days - 1),
        audiences=audiences,
    )
    return PortfolioItem(f"T-{number}", number, ExperimentStatus.APPROVED, spec)


activities = st.tuples(
    st.integers(min_value=0, max_value=30),
    st.sampled_from([1, 1, 1, 3, 7, 14]),
    st.sampled_from(AUDIENCES),
)


def scheduled(compiler: Compiler, *items: PortfolioItem) -> DaySchedule:
    schedule = DaySchedule()
    for item in items:
        schedule.add(compiler.compile(item))
    return schedule


def brute_force(
    compiler: Compiler, schedule: DaySchedule, cap: ContactCap, test: Footprint, latest: int
) -> int:
    """The first start, day by day, at which the scan's crowds hold none with the test."""
    start = test.start
    while start <= latest and crowds_over_cap(
        compiler, schedule, cap, including=test.shifted(start)
    ):
        start += 1
    return start


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    placed=st.lists(activities, max_size=12),
    test=activities,
    cap_max=st.integers(min_value=1, max_value=3),
    per_days=st.integers(min_value=1, max_value=7),
)
def test_the_next_start_within_the_cap_is_the_first_start_without_a_crowd(
    placed: list[tuple[int, int, tuple[str, ...]]],
    test: tuple[int, int, tuple[str, ...]],
    cap_max: int,
    per_days: int,
) -> None:
    compiler = Compiler(POLICY)
    cap = ContactCap(channel="email", max=cap_max, per_days=per_days)
    schedule = scheduled(
        compiler, *(activity(n, *drawn) for n, drawn in enumerate(placed, start=1))
    )
    candidate = compiler.compile(activity(99, *test))
    latest = candidate.start + 60
    until, block = next_start_within_cap(compiler, schedule, cap, candidate, latest=latest)
    expected = brute_force(compiler, schedule, cap, candidate, latest)
    assert min(until, latest + 1) == expected
    assert (block is None) == (expected == candidate.start)
    if block is not None:
        assert len(block.crowd) == cap_max  # with the test: one over the cap
        assert block.first <= candidate.start <= block.last
        keys = {m.key for m in block.crowd}
        found = crowds_over_cap(compiler, schedule, cap, including=candidate)
        assert any(keys <= {m.key for m in crowd.members} for crowd in found)


def send_to_everyone_on_day_2(cap: ContactCap, *placed: PortfolioItem) -> tuple[date, list[str]]:
    """Where a one-day send to everyone on day 2 can go, and who it would crowd there;
    checked against the scan's crowds on the day before and the day found."""
    compiler = Compiler(POLICY)
    schedule = scheduled(compiler, *placed)
    candidate = compiler.compile(activity(99, 2, 1, ()))
    latest = candidate.start + 400
    until, block = next_start_within_cap(compiler, schedule, cap, candidate, latest=latest)
    assert block is not None
    assert not crowds_over_cap(compiler, schedule, cap, including=candidate.shifted(until))
    assert crowds_over_cap(compiler, schedule, cap, including=candidate.shifted(until - 1))
    return date.fromordinal(until), sorted(m.key for m in block.crowd)


def test_a_set_that_ends_later_without_the_first_sends_blocks_longer() -> None:
    # Cap 2 per 7 days. T-1 (anonymous) ends last but shares nobody with T-2 and T-3
    # (logged_in): the latest-ending pair that shares people is T-2 and T-3.
    until, crowd = send_to_everyone_on_day_2(
        ContactCap(channel="email", max=2, per_days=7),
        activity(1, 0, 14, ("anonymous",)),
        activity(2, 0, 10, ("logged_in",)),
        activity(3, 1, 9, ("loyalty",)),
    )
    assert crowd == ["T-2", "T-3"]
    assert until == FIRST + timedelta(days=9 + 7)  # they end on day 9 (10 June)


def test_the_others_that_end_latest_must_share_people_with_each_other() -> None:
    # Cap 3 per 7 days. T-5 (everyone) starts last; with it, T-1 (anonymous) and T-2
    # (logged_in) end latest but share nobody; T-2 and T-3 (loyalty) do. The test breaks
    # the cap until 7 days after T-3 ends, not after T-2.
    until, crowd = send_to_everyone_on_day_2(
        ContactCap(channel="email", max=3, per_days=7),
        activity(1, 0, 14, ("anonymous",)),
        activity(2, 0, 13, ("logged_in",)),
        activity(3, 1, 11, ("loyalty",)),
        activity(5, 2, 13, ()),
    )
    assert crowd == ["T-2", "T-3", "T-5"]
    assert until == FIRST + timedelta(days=11 + 7)  # T-3 ends on day 11
