"""What a collision record keeps of its finding, as a typed value.

The record stores it as JSON (`Collision.details`, unchanged on disk and in `tower
conflicts --format json`); code reads it through `CollisionDetails` rather than looking up
keys in the dict, and writes it through `CollisionDetails.new(...).stored()`. A record a
re-check just opened (`OpenedRecord`) keeps only what announcing it needs: the rest reads
as absent.

Reading is lazy: a field is worked out from the JSON when first asked for, so code that
wants one field of thousands of records (the tests of each crowd a change may touch, the
first day of each alert) pays for that field only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import cached_property
from typing import Any, Protocol, TypedDict

from tower.json_text import iso


class HasDetails(Protocol):
    """A stored record, a row read without one, or a record a re-check just opened."""

    @property
    def details(self) -> dict[str, Any]: ...


class ListedDetails(TypedDict):
    """The details a listing shows (`CollisionDetails.listed`)."""

    keys: list[str]
    teams: list[str]
    scope: str
    surfaces: list[str]
    first_day: str | None
    last_day: str | None
    days: int | None
    people_per_week: float | None
    affected: dict[str, float]


class CollisionDetails:
    """A collision's tests and their teams (in the same order), where and when it happens,
    how many people it reaches, and what it costs and could be done about it."""

    def __init__(self, stored: Mapping[str, Any]) -> None:
        """The details as stored in a record's JSON (read lazily, field by field)."""
        self._stored = stored

    @classmethod
    def of(cls, record: HasDetails) -> CollisionDetails:
        """The details `record` keeps (what it lacks reads as absent)."""
        return cls(record.details)

    @classmethod
    def new(
        cls,
        *,
        keys: Sequence[str],
        teams: Sequence[str],
        scope: str,
        surfaces: Sequence[str],
        first_day: date,
        last_day: date,
        days: int,
        people_per_week: float | None,
        affected: Mapping[str, float],
        fixes: Sequence[str],
        cost: tuple[Mapping[str, Any], str] | None = None,
    ) -> CollisionDetails:
        """The details of a finding, as a record keeps them (`cost`: days to each test's
        MDE and its sentence, for a clash that shares traffic)."""
        stored: dict[str, Any] = {
            "keys": list(keys),
            "teams": list(teams),
            "scope": scope,
            "surfaces": list(surfaces),
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
            "days": days,
            "people_per_week": people_per_week,
            "affected": dict(affected),
            "fixes": list(fixes),
        }
        if cost is not None:
            stored["days_to_mde"], stored["mde_cost"] = cost
        return cls(stored)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        return tuple(str(key) for key in self._stored.get("keys") or ())

    @cached_property
    def teams(self) -> tuple[str, ...]:
        return tuple(str(team) for team in self._stored.get("teams") or ())

    @cached_property
    def scope(self) -> str:
        """`Scope` as text: "surface:web/home", "channel:email", "group:xg-1"."""
        return str(self._stored.get("scope") or "")

    @cached_property
    def surfaces(self) -> tuple[str, ...]:
        return tuple(str(surface) for surface in self._stored.get("surfaces") or ())

    @cached_property
    def first_day(self) -> date | None:
        return _day(self._stored.get("first_day"))

    @cached_property
    def last_day(self) -> date | None:
        return _day(self._stored.get("last_day"))

    @cached_property
    def days(self) -> int | None:
        days = self._stored.get("days")
        return None if days is None else int(days)

    @cached_property
    def fixes(self) -> tuple[str, ...]:
        return tuple(str(fix) for fix in self._stored.get("fixes") or ())

    @cached_property
    def days_to_mde(self) -> Mapping[str, Any] | None:
        """Per test, days to its MDE alone and sharing (clashes that share traffic)."""
        cost: Mapping[str, Any] | None = self._stored.get("days_to_mde")
        return cost

    @cached_property
    def mde_cost(self) -> str | None:
        return self._stored.get("mde_cost") or None

    def stored(self) -> dict[str, Any]:
        """The JSON a record keeps."""
        return dict(self._stored)

    def listed(self) -> ListedDetails:
        """The fields a listing (`tower conflicts --format json`) shows, as it shows them."""
        stored = self._stored
        return {
            "keys": list(stored.get("keys") or []),
            "teams": list(stored.get("teams") or []),
            "scope": stored.get("scope") or "",
            "surfaces": list(stored.get("surfaces") or []),
            "first_day": stored.get("first_day"),
            "last_day": stored.get("last_day"),
            "days": stored.get("days"),
            "people_per_week": stored.get("people_per_week"),
            "affected": stored.get("affected") or {},
        }

    @property
    def window(self) -> str:
        """Its days as people read them: `2027-01-04 to 2027-01-10`."""
        return f"{iso(self.first_day)} to {iso(self.last_day)}"


def _day(value: object) -> date | None:
    return None if not value else date.fromisoformat(str(value))
