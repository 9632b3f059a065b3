"""What the collision engine reports: one `Finding` per clash, with its numbers and its story."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache

from tower.engine.kinds import CollisionKind, Severity
from tower.engine.scope import Scope

# The collisions table keeps fingerprints in 255 characters.
FINGERPRINT_KEYS_LENGTH = 120
FINGERPRINT_SCOPE_LENGTH = 100

# Below this share of either test's eligible traffic, a clash is a warning, not a blocker.
TINY_OVERLAP_SHARE = 0.01


@dataclass(frozen=True, init=False)
class Finding:
    """A clash between tests: which, where, when, how many people, and what it means."""

    kind: CollisionKind
    severity: Severity
    keys: tuple[str, ...]  # in registration order
    scope: Scope  # the surface, channel, funnel or exclusion group it is about
    surfaces: tuple[str, ...]
    first_day: date
    last_day: date
    people_per_week: int
    shares: tuple[float, ...]  # per key, the share of that test's eligible traffic affected
    agile_vs_bau: bool
    # Writes the explanation: words cost time, so they are only written when read.
    describe: Callable[[], str] = field(compare=False, repr=False)

    def __init__(
        self,
        *,
        kind: CollisionKind,
        severity: Severity,
        keys: tuple[str, ...],
        scope: Scope,
        surfaces: tuple[str, ...],
        first_day: date,
        last_day: date,
        people_per_week: int,
        shares: tuple[float, ...],
        agile_vs_bau: bool,
        describe: Callable[[], str],
    ) -> None:
        # Written straight into the instance: a frozen dataclass's own __init__ sets each
        # field through object.__setattr__, at twice the cost, and a scan makes tens of
        # thousands of findings. Frozen still holds: assignment raises.
        vars(self).update(
            kind=kind,
            severity=severity,
            keys=keys,
            scope=scope,
            surfaces=surfaces,
            first_day=first_day,
            last_day=last_day,
            people_per_week=people_per_week,
            shares=shares,
            agile_vs_bau=agile_vs_bau,
            describe=describe,
        )

    @cached_property
    def explanation(self) -> str:
        """The plain-language, quantified story of the clash."""
        return self.describe()

    @property
    def affected(self) -> tuple[tuple[str, float], ...]:
        """(key, share of that test's eligible traffic) for each test involved."""
        return tuple(zip(self.keys, self.shares, strict=True))

    @property
    def fingerprint(self) -> str:
        """Identifies the same clash across re-checks, whatever its numbers become.

        Readable for a few tests; a crowd of many is named by a digest of its keys, so the
        fingerprint always fits its column.
        """
        keys = "+".join(self.keys)
        if len(keys) > FINGERPRINT_KEYS_LENGTH:
            digest = hashlib.sha256(keys.encode()).hexdigest()[:32]
            keys = f"{len(self.keys)}-tests-{digest}"
        return f"{self.kind.value}:{str(self.scope)[:FINGERPRINT_SCOPE_LENGTH]}:{keys}"

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def involves(self, key: str) -> bool:
        return key in self.keys


@lru_cache(maxsize=4096)
def format_day(day: date) -> str:
    """`Mon 11 Jan 2027`: unambiguous in every locale."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def format_span(first: date, last: date) -> str:
    """`from Mon 11 Jan 2027 to Sun 31 Jan 2027 (21 days)`, or `on Mon 11 Jan 2027`."""
    if first == last:
        return f"on {format_day(first)}"
    days = (last - first).days + 1
    return f"from {format_day(first)} to {format_day(last)} ({days} days)"


def format_people(people: float) -> str:
    """A weekly head count, rounded the way people say it: `about 12,300`."""
    if people < 1:
        return "fewer than one"
    if people < 1000:
        return f"about {round(people):,}"
    magnitude = 10 ** (len(str(int(people))) - 3)
    return f"about {round(people / magnitude) * magnitude:,}"


def format_share(share: float) -> str:
    """A share of traffic as a percent people can read: `45%`, `0.4%`, `<0.1%`."""
    percent = share * 100
    if percent >= 10 or percent == 0:
        return f"{percent:.0f}%"
    if percent >= 0.1:
        return f"{percent:.1f}%"
    return "<0.1%"
