"""Business time: the policy calendar's working hours, walked day by day in its time zone.

SLA targets ("acknowledge within 4 business hours") and lead times ("submit 3 business days
before start") count only working time. Each business day contributes the real time between
its local opening and closing (`datetime.combine(day, time, tzinfo=zone)`), so DST changes,
which happen at night, never stretch or shrink a working day. Non-working weekdays, the
country's public holidays (the `holidays` package, computed per year on first use) and the
policy's extra closed dates are skipped.

Working hours are half-open, [opens, closes): at closing time sharp the business is closed.
Every datetime taken must be timezone-aware (any zone); every datetime returned is in UTC.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from tower.policy.schema import WEEKDAYS, Policy, Weekday

ONE_DAY = timedelta(days=1)
ONE_HOUR = timedelta(hours=1)
# A calendar with no business day for this long is a mistake, not a long holiday.
LONGEST_CLOSURE_DAYS = 3 * 366


class BusinessCalendar:
    """When the business works, and how much working time separates two moments."""

    def __init__(
        self,
        *,
        zone: ZoneInfo,
        opens: time,
        closes: time,
        working_days: Iterable[Weekday],
        holiday_country: str | None = None,
        holiday_region: str | None = None,
        closed: Iterable[date] = (),
    ) -> None:
        if opens >= closes:
            raise ValueError(f"opening {opens:%H:%M} must come before closing {closes:%H:%M}")
        self.zone = zone
        self.opens = opens
        self.closes = closes
        self.working_weekdays = frozenset(WEEKDAYS.index(name) for name in working_days)
        if not self.working_weekdays:
            raise ValueError("a calendar needs at least one working day")
        self.holiday_country = holiday_country
        self.holiday_region = holiday_region
        self.closed = frozenset(closed)

    @classmethod
    def from_policy(cls, policy: Policy) -> BusinessCalendar:
        """The calendar a policy describes: its time zone, hours, days, holidays and closures."""
        calendar = policy.calendar
        opens, closes = calendar.working_hours
        return cls(
            zone=ZoneInfo(policy.timezone),
            opens=opens,
            closes=closes,
            working_days=calendar.working_days,
            holiday_country=calendar.holidays,
            holiday_region=calendar.holiday_region,
            closed=calendar.closed,
        )

    # Days

    def is_business_day(self, day: date) -> bool:
        """Whether `day` is a working weekday that is neither a public holiday nor closed."""
        _require_date(day, "day")
        return (
            day.weekday() in self.working_weekdays
            and day not in self.closed
            and day not in self._holidays(day.year)
        )

    def add_business_days(self, day: date, days: int) -> date:
        """The day `days` business days after `day` (`day` itself for 0), for lead times.

        Inverse of `count_business_days`: `count_business_days(day, result) == days`.
        """
        _require_date(day, "day")
        if days < 0:
            raise ValueError(f"days must be 0 or more, got {days}")
        result = day
        for _ in range(days):
            result = self._next_business_day(result + ONE_DAY)
        return result

    def count_business_days(self, first: date, last: date) -> int:
        """How many business days fall after `first` and up to `last` (first < d <= last).

        Negative, by the same count, when `last` comes before `first`.
        """
        _require_date(first, "first")
        _require_date(last, "last")
        if last < first:
            return -self.count_business_days(last, first)
        return sum(1 for day in _days(first + ONE_DAY, last) if self.is_business_day(day))

    # Moments

    def add(self, start: datetime, hours: float) -> datetime:
        """The instant, in UTC, when `hours` business hours have elapsed after `start`.

        Time outside working hours does not count, so `add(start, 0)` is `start` when it falls
        inside working hours and the next opening otherwise. A target that is reached exactly
        at closing time is due at closing time, not at the next opening.
        """
        cursor = to_utc(start, "start")
        if not math.isfinite(hours) or hours < 0:
            raise ValueError(f"hours must be a finite number, 0 or more, got {hours!r}")
        remaining = timedelta(hours=hours)
        day = self._next_business_day(self._local_day(cursor))
        while True:
            opening, closing = self._working_interval(day)
            if cursor < closing:
                cursor = max(cursor, opening)
                if remaining <= closing - cursor:
                    return cursor + remaining
                remaining -= closing - cursor
            day = self._next_business_day(day + ONE_DAY)

    def between(self, start: datetime, end: datetime) -> float:
        """Business hours in [start, end); negative when `end` comes before `start`.

        The exact inverse of `add`: `between(start, add(start, hours)) == hours`.
        """
        begin, finish = to_utc(start, "start"), to_utc(end, "end")
        if finish < begin:
            return -self.between(end, start)
        worked = timedelta()
        for day in _days(self._local_day(begin), self._local_day(finish)):
            if self.is_business_day(day):
                opening, closing = self._working_interval(day)
                overlap = min(finish, closing) - max(begin, opening)
                worked += max(overlap, timedelta())
        return worked / ONE_HOUR

    def next_opening(self, moment: datetime) -> datetime:
        """`moment` (in UTC) if it falls inside working hours, else the next opening."""
        return self.add(moment, 0)

    # Internals

    def _holidays(self, year: int) -> frozenset[date]:
        """The country's public holidays in `year`."""
        if self.holiday_country is None:
            return frozenset()
        return public_holidays(self.holiday_country, self.holiday_region, year)

    def _next_business_day(self, day: date) -> date:
        """`day` if it is a business day, else the first business day after it."""
        for candidate in _days(day, day + timedelta(days=LONGEST_CLOSURE_DAYS)):
            if self.is_business_day(candidate):
                return candidate
        raise ValueError(
            f"the calendar has no business day in the {LONGEST_CLOSURE_DAYS} days from "
            f"{day.isoformat()}: check the policy's working_days, holidays and closed dates"
        )

    def _working_interval(self, day: date) -> tuple[datetime, datetime]:
        """The opening and closing instants of `day`, in UTC."""
        opening = datetime.combine(day, self.opens, tzinfo=self.zone).astimezone(UTC)
        closing = datetime.combine(day, self.closes, tzinfo=self.zone).astimezone(UTC)
        return opening, max(opening, closing)

    def _local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


def _days(first: date, last: date) -> Iterator[date]:
    """Every day from `first` to `last`, both included."""
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


def to_utc(moment: datetime, name: str) -> datetime:
    """`moment` in UTC; a naive datetime, whose instant is unknown, is refused."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.utcoffset() is None:
        raise ValueError(
            f"{name} {moment.isoformat()} has no time zone: pass an aware datetime, "
            "e.g. datetime.now(UTC) or one with tzinfo=ZoneInfo('Europe/London')"
        )
    return moment.astimezone(UTC)


def _require_date(day: date, name: str) -> None:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"{name} must be a date (not a datetime), got {day!r}")


@functools.cache
def public_holidays(country: str, region: str | None, year: int) -> frozenset[date]:
    """`country`'s (and `region`'s) public holidays in `year`, worked out once per process:
    each change makes its own calendar, and the `holidays` package takes milliseconds."""
    found = holidays.country_holidays(country, subdiv=region, years=year)
    return frozenset(day for day in found if day.year == year)
