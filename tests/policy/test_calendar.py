"""Business time on the small policy's calendar, checked against answers worked out by hand.

The calendar (tests/data/policy.yaml): Europe/London, 09:00-17:30 (8.5 hours a day), Monday to
Friday, GB public holidays, closed on 2026-12-24. GB holidays in the years used here:
Good Friday 2026-04-03 and 2027-03-26, May Day 2026-05-04, Christmas Friday 2026-12-25,
Boxing Day Saturday 2026-12-26 observed on Monday 2026-12-28, New Year Friday 2027-01-01.
British Summer Time starts on Sunday 2026-03-29 and 2027-03-28 (UTC+1) and ends on Sunday
2026-10-25 (back to UTC+0).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tower.policy import Policy
from tower.policy.calendar import BusinessCalendar

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def london(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in London."""
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def calendar_of(policy: Policy, **changes: Any) -> BusinessCalendar:
    """The calendar of `policy` with some of its calendar fields changed."""
    changed = policy.model_copy(update={"calendar": policy.calendar.model_copy(update=changes)})
    return BusinessCalendar.from_policy(changed)


@pytest.fixture(scope="module")
def calendar(small_policy: Policy) -> BusinessCalendar:
    return BusinessCalendar.from_policy(small_policy)


# add: worked examples


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        pytest.param(london(2026, 3, 6, 16, 30), 2, london(2026, 3, 9, 10), id="friday-to-monday"),
        pytest.param(london(2026, 3, 9, 7), 1, london(2026, 3, 9, 10), id="before-opening"),
        pytest.param(london(2026, 3, 9, 18), 1, london(2026, 3, 10, 10), id="after-closing"),
        pytest.param(london(2026, 3, 9, 17, 30), 1, london(2026, 3, 10, 10), id="at-closing"),
        pytest.param(london(2026, 3, 7, 12), 1, london(2026, 3, 9, 10), id="on-saturday"),
        pytest.param(london(2026, 3, 9, 9), 8.5, london(2026, 3, 9, 17, 30), id="whole-day"),
        pytest.param(london(2026, 3, 9, 9), 42.5, london(2026, 3, 13, 17, 30), id="whole-week"),
        pytest.param(london(2026, 3, 9, 9), 43, london(2026, 3, 16, 9, 30), id="week-and-more"),
        # 0.5 h on Wednesday 23rd; closed 24th; Christmas 25th; weekend; Boxing Day observed
        # on Monday 28th; the remaining 3.5 h on Tuesday 29th.
        pytest.param(london(2026, 12, 23, 17), 4, london(2026, 12, 29, 12, 30), id="christmas"),
        # 0.5 h on New Year's Eve; New Year's Day 2027 is a Friday; then the weekend.
        pytest.param(london(2026, 12, 31, 17), 1, london(2027, 1, 4, 9, 30), id="new-year"),
        pytest.param(london(2026, 5, 1, 17), 1, london(2026, 5, 5, 9, 30), id="may-day"),
    ],
)
def test_add_counts_only_working_hours(
    calendar: BusinessCalendar, start: datetime, hours: float, due: datetime
) -> None:
    assert calendar.add(start, hours) == due
    assert calendar.between(start, due) == pytest.approx(hours, abs=1e-9)


def test_add_returns_utc_whatever_the_zone_of_start(calendar: BusinessCalendar) -> None:
    # 11:30 in New York (EST, UTC-5) on Friday 2026-03-06 is 16:30 in London (GMT).
    due = calendar.add(datetime(2026, 3, 6, 11, 30, tzinfo=NEW_YORK), 2)
    assert due.tzinfo is UTC
    assert due == utc(2026, 3, 9, 10)


def test_add_across_the_spring_clock_change(calendar: BusinessCalendar) -> None:
    # 1.5 h on Friday (GMT), 1.5 h on Monday (BST): 10:30 London is 09:30 UTC.
    due = calendar.add(london(2026, 3, 27, 16), 3)
    assert due == london(2026, 3, 30, 10, 30)
    assert (due.hour, due.minute) == (9, 30)


def test_spring_clock_change_of_2027_follows_good_friday(calendar: BusinessCalendar) -> None:
    # Friday 2027-03-26 is Good Friday, so all 3 hours fall on Monday 29th (BST):
    # 12:00 London, 11:00 UTC. (GB's UK-wide list has no Easter Monday: see below.)
    assert calendar.add(london(2027, 3, 26, 16), 3) == utc(2027, 3, 29, 11)


def test_add_across_the_autumn_clock_change(calendar: BusinessCalendar) -> None:
    # 1.5 h on Friday (BST), 1.5 h on Monday (GMT): 10:30 London is 10:30 UTC.
    start = london(2026, 10, 23, 16)
    assert calendar.add(start, 3) == utc(2026, 10, 26, 10, 30)
    assert calendar.between(start, london(2026, 10, 26, 10, 30)) == 3


@pytest.mark.parametrize("change_day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_a_working_day_keeps_its_length_when_the_clocks_change(
    small_policy: Policy, change_day: date
) -> None:
    every_day = calendar_of(
        small_policy, working_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    )
    midnight = datetime.combine(change_day, time(0), tzinfo=LONDON)
    assert every_day.between(midnight, midnight + timedelta(days=1)) == 8.5
    assert every_day.add(london(change_day.year, change_day.month, change_day.day, 9), 8.5) == (
        london(change_day.year, change_day.month, change_day.day, 17, 30)
    )


def test_adding_nothing_waits_for_the_next_opening(calendar: BusinessCalendar) -> None:
    inside = london(2026, 3, 9, 11, 15)
    assert calendar.add(inside, 0) == inside
    assert calendar.add(london(2026, 3, 9, 17, 30), 0) == london(2026, 3, 10, 9)
    assert calendar.add(london(2026, 12, 23, 18), 0) == london(2026, 12, 29, 9)


@pytest.mark.parametrize("hours", [-1, float("nan"), float("inf")])
def test_add_refuses_hours_that_are_not_a_duration(
    calendar: BusinessCalendar, hours: float
) -> None:
    with pytest.raises(ValueError, match="hours must be"):
        calendar.add(london(2026, 3, 9, 10), hours)


# next_opening


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        (london(2026, 3, 9, 9), london(2026, 3, 9, 9)),
        (london(2026, 3, 9, 12, 34), london(2026, 3, 9, 12, 34)),
        (london(2026, 3, 9, 8, 59), london(2026, 3, 9, 9)),
        (london(2026, 3, 9, 17, 30), london(2026, 3, 10, 9)),
        (london(2026, 3, 6, 20), london(2026, 3, 9, 9)),
        (london(2026, 3, 8, 9), london(2026, 3, 9, 9)),
        (london(2026, 4, 3, 10), london(2026, 4, 6, 9)),
    ],
)
def test_next_opening(calendar: BusinessCalendar, moment: datetime, opening: datetime) -> None:
    assert calendar.next_opening(moment) == opening


# between


def test_between_a_weekend_is_nothing(calendar: BusinessCalendar) -> None:
    assert calendar.between(london(2026, 3, 6, 17, 30), london(2026, 3, 9, 9)) == 0
    assert calendar.between(london(2026, 3, 7, 0), london(2026, 3, 8, 23, 59)) == 0


def test_between_is_negative_backwards(calendar: BusinessCalendar) -> None:
    assert calendar.between(london(2026, 3, 9, 10), london(2026, 3, 6, 16, 30)) == -2
    assert calendar.between(london(2026, 3, 9, 10), london(2026, 3, 9, 10)) == 0


def test_between_counts_part_days(calendar: BusinessCalendar) -> None:
    # 1 h on Monday, 8.5 h on Tuesday, 0.25 h on Wednesday.
    assert calendar.between(london(2026, 3, 9, 16, 30), london(2026, 3, 11, 9, 15)) == 9.75


starts = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2027, 12, 31, 23, 59),
    timezones=st.sampled_from([UTC, LONDON, NEW_YORK]),
)


@settings(deadline=None)
@given(start=starts, hours=st.floats(min_value=0, max_value=200))
def test_between_is_the_inverse_of_add(
    calendar: BusinessCalendar, start: datetime, hours: float
) -> None:
    due = calendar.add(start, hours)
    assert due >= start
    assert abs(calendar.between(start, due) - hours) <= 1e-9
    assert calendar.between(start, calendar.next_opening(start)) == 0


@settings(deadline=None)
@given(first=starts, second=starts, third=starts)
def test_between_adds_up(
    calendar: BusinessCalendar, first: datetime, second: datetime, third: datetime
) -> None:
    whole = calendar.between(first, third)
    parts = calendar.between(first, second) + calendar.between(second, third)
    assert abs(whole - parts) <= 1e-9


# Business days


def test_business_days(calendar: BusinessCalendar) -> None:
    assert calendar.is_business_day(date(2026, 3, 9))
    assert not calendar.is_business_day(date(2026, 3, 7))  # Saturday
    assert not calendar.is_business_day(date(2026, 4, 3))  # Good Friday
    assert not calendar.is_business_day(date(2026, 12, 24))  # closed by the policy
    assert not calendar.is_business_day(date(2026, 12, 28))  # Boxing Day observed
    assert not calendar.is_business_day(date(2027, 12, 27))  # Christmas 2027 observed


def test_gb_means_the_uk_wide_holidays_only(calendar: BusinessCalendar) -> None:
    # The holidays package's GB without a subdivision leaves out bank holidays that are not
    # UK-wide, like Easter Monday and the August bank holiday in England.
    assert calendar.is_business_day(date(2026, 4, 6))
    assert calendar.is_business_day(date(2026, 8, 31))


@pytest.mark.parametrize(
    ("day", "days", "result"),
    [
        (date(2026, 3, 9), 0, date(2026, 3, 9)),
        (date(2026, 4, 3), 0, date(2026, 4, 3)),
        (date(2026, 3, 9), 4, date(2026, 3, 13)),
        (date(2026, 3, 9), 5, date(2026, 3, 16)),
        (date(2026, 3, 7), 1, date(2026, 3, 9)),
        (date(2026, 4, 2), 1, date(2026, 4, 6)),
        (date(2026, 5, 1), 1, date(2026, 5, 5)),
        (date(2026, 12, 23), 1, date(2026, 12, 29)),
        (date(2026, 12, 22), 3, date(2026, 12, 30)),
        (date(2026, 12, 31), 1, date(2027, 1, 4)),
    ],
)
def test_add_business_days(calendar: BusinessCalendar, day: date, days: int, result: date) -> None:
    assert calendar.add_business_days(day, days) == result
    assert calendar.count_business_days(day, result) == days


def test_count_business_days(calendar: BusinessCalendar) -> None:
    assert calendar.count_business_days(date(2026, 3, 6), date(2026, 3, 13)) == 5
    assert calendar.count_business_days(date(2026, 12, 21), date(2027, 1, 4)) == 6
    assert calendar.count_business_days(date(2026, 12, 23), date(2026, 12, 28)) == 0
    assert calendar.count_business_days(date(2026, 12, 29), date(2026, 12, 23)) == -1
    assert calendar.count_business_days(date(2026, 3, 9), date(2026, 3, 9)) == 0


@given(
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
    days=st.integers(min_value=0, max_value=60),
)
def test_count_business_days_inverts_add_business_days(
    calendar: BusinessCalendar, day: date, days: int
) -> None:
    assert calendar.count_business_days(day, calendar.add_business_days(day, days)) == days


def test_add_business_days_refuses_going_back(calendar: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        calendar.add_business_days(date(2026, 3, 9), -1)


# Other calendars


def test_without_holidays_christmas_is_a_working_day(small_policy: Policy) -> None:
    no_holidays = calendar_of(small_policy, holidays=None)
    assert no_holidays.add(london(2026, 12, 23, 17), 4) == london(2026, 12, 25, 12, 30)
    assert not no_holidays.is_business_day(date(2026, 12, 24))  # still closed


def test_saturday_can_be_a_working_day(small_policy: Policy) -> None:
    six_days = calendar_of(small_policy, working_days=["mon", "tue", "wed", "thu", "fri", "sat"])
    assert six_days.add(london(2026, 3, 6, 16, 30), 2) == london(2026, 3, 7, 10)
    assert six_days.add_business_days(date(2026, 3, 6), 1) == date(2026, 3, 7)
    assert six_days.count_business_days(date(2026, 3, 6), date(2026, 3, 13)) == 6


def test_hours_follow_the_policy_zone(small_policy: Policy) -> None:
    new_york = BusinessCalendar.from_policy(
        small_policy.model_copy(update={"timezone": "America/New_York"})
    )
    # 09:00 is 14:00 UTC in winter (EST), 13:00 UTC once US summer time starts on 8 March.
    assert new_york.next_opening(utc(2026, 3, 2, 12)) == utc(2026, 3, 2, 14)
    assert new_york.next_opening(utc(2026, 3, 9, 12)) == utc(2026, 3, 9, 13)


def test_a_calendar_that_never_opens_is_reported() -> None:
    saturdays = [date(2026, 1, 3) + timedelta(weeks=week) for week in range(200)]
    never = BusinessCalendar(
        zone=LONDON, opens=time(9), closes=time(17), working_days=["sat"], closed=saturdays
    )
    with pytest.raises(ValueError, match="no business day"):
        never.add(london(2026, 1, 1, 9), 1)


# Refusals


def test_naive_datetimes_are_refused(calendar: BusinessCalendar) -> None:
    naive = datetime(2026, 3, 9, 10)
    aware = london(2026, 3, 9, 10)
    with pytest.raises(ValueError, match="no time zone"):
        calendar.add(naive, 1)
    with pytest.raises(ValueError, match="no time zone"):
        calendar.between(naive, aware)
    with pytest.raises(ValueError, match="no time zone"):
        calendar.between(aware, naive)
    with pytest.raises(ValueError, match="no time zone"):
        calendar.next_opening(naive)


def test_a_datetime_is_not_a_day(calendar: BusinessCalendar) -> None:
    with pytest.raises(TypeError, match="must be a date"):
        calendar.is_business_day(datetime(2026, 12, 24, 10))


def test_a_holiday_region_adds_its_bank_holidays(small_policy: Policy) -> None:
    england = small_policy.model_copy(
        update={"calendar": small_policy.calendar.model_copy(update={"holiday_region": "ENG"})}
    )
    calendar = BusinessCalendar.from_policy(england)
    assert not calendar.is_business_day(date(2026, 4, 6))  # Easter Monday, England
    assert not calendar.is_business_day(date(2026, 8, 31))  # Summer bank holiday, England
    assert calendar.is_business_day(date(2026, 4, 7))
