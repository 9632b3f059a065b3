"""When a freeze window holds a test back: one rule, for the release gate and the planner.

A window holds back a test of a team of one of its kinds whose days meet the window's,
on each of the test's surfaces that is one of the window's, inside one or around one (a
window naming no surface covers them all). The gate asks with dates and surface paths;
the planner with day numbers and the surface graph's node ids: the rule is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

from tower.policy.schema import FreezeWindow

Day = TypeVar("Day", date, int)
Surface = TypeVar("Surface", str, int)


@dataclass(frozen=True)
class Freeze(Generic[Day, Surface]):
    """A freeze window, its days and surfaces as the caller counts them."""

    name: str
    start: Day
    end: Day
    surfaces: tuple[Surface, ...] | None  # None: every surface
    kinds: frozenset[str]  # the team kinds it holds back

    def holds_back(
        self,
        kind: str,
        start: Day,
        end: Day,
        surfaces: Iterable[Surface],
        nested: Callable[[Surface, Surface], bool],
    ) -> list[Surface]:
        """Those of `surfaces` this freeze holds back for a test of a `kind` team running
        from `start` to `end` (inclusive); empty when it does not hold the test back.
        `nested(a, b)`: whether surfaces `a` and `b` are one, or one lies inside the other."""
        if kind not in self.kinds or self.end < start or self.start > end:
            return []
        if self.surfaces is None:
            return list(surfaces)
        frozen = self.surfaces
        return [mine for mine in surfaces if any(nested(mine, theirs) for theirs in frozen)]


def freeze_of(window: FreezeWindow) -> Freeze[date, str]:
    """`window` by dates and surface paths (`paths_nested` compares them)."""
    return Freeze(
        window.name,
        window.start,
        window.end,
        tuple(window.surfaces) or None,
        frozenset(window.team_kinds),
    )
