"""What a collision record keeps of its finding, as a typed value.

The record stores it as JSON (`Collision.details`, unchanged on disk and in `tower
conflicts --format json`); code reads it through `CollisionDetails` rather than looking up
keys in the dict, and writes it through `CollisionDetails.stored()`. A record a re-check
just opened (`OpenedRecord`) keeps only what announcing it needs: the rest reads as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypedDict


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


@dataclass(frozen=True)
class CollisionDetails:
    """A collision's tests and their teams (in the same order), where and when it happens,
    how many people it reaches, and what it costs and could be done about it."""

    keys: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    scope: str = ""  # `Scope` as text: "surface:web/home", "channel:email", "group:xg-1"
    surfaces: tuple[str, ...] = ()
    first_day: date | None = None
    last_day: date | None = None
    days: int | None = None
    people_per_week: float | None = None
    affected: Mapping[str, float] = field(default_factory=dict)  # share of each test's people
    fixes: tuple[str, ...] = ()
    days_to_mde: Mapping[str, Any] | None = None  # for clashes that share traffic
    mde_cost: str | None = None

    @classmethod
    def of(cls, record: HasDetails) -> CollisionDetails:
        """The details `record` keeps (what it lacks reads as absent)."""
        return cls.parse(record.details)

    @classmethod
    def parse(cls, stored: Mapping[str, Any]) -> CollisionDetails:
        """The details as stored in a record's JSON."""
        return cls(
            keys=tuple(str(key) for key in stored.get("keys") or ()),
            teams=tuple(str(team) for team in stored.get("teams") or ()),
            scope=str(stored.get("scope") or ""),
            surfaces=tuple(str(surface) for surface in stored.get("surfaces") or ()),
            first_day=_day(stored.get("first_day")),
            last_day=_day(stored.get("last_day")),
            days=None if stored.get("days") is None else int(stored["days"]),
            people_per_week=stored.get("people_per_week"),
            affected=dict(stored.get("affected") or {}),
            fixes=tuple(str(fix) for fix in stored.get("fixes") or ()),
            days_to_mde=stored.get("days_to_mde"),
            mde_cost=stored.get("mde_cost") or None,
        )

    def stored(self) -> dict[str, Any]:
        """The JSON a record keeps (the cost keys only for a clash that has them)."""
        data: dict[str, Any] = {**self.listed(), "fixes": list(self.fixes)}
        if self.days_to_mde is not None or self.mde_cost is not None:
            data["days_to_mde"] = self.days_to_mde
            data["mde_cost"] = self.mde_cost
        return data

    def listed(self) -> ListedDetails:
        """The fields a listing (`tower conflicts --format json`) shows, as it shows them."""
        return {
            "keys": list(self.keys),
            "teams": list(self.teams),
            "scope": self.scope,
            "surfaces": list(self.surfaces),
            "first_day": _iso(self.first_day),
            "last_day": _iso(self.last_day),
            "days": self.days,
            "people_per_week": self.people_per_week,
            "affected": dict(self.affected),
        }

    @property
    def window(self) -> str:
        """Its days as people read them: `2027-01-04 to 2027-01-10`."""
        return f"{_iso(self.first_day)} to {_iso(self.last_day)}"


def _day(value: object) -> date | None:
    return None if not value else date.fromisoformat(str(value))


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
