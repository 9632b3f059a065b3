"""The synthetic organisation's portfolio: tests that look like a real pipeline, reproducible
from a seed.

Most tests sit on pages and slots, a few on a whole channel; one or two surfaces, zero to
two target segments, sometimes an exclusion, about 10% in exclusion groups (members share a
surface and split its traffic), windows of one to six weeks on pages and scripts (mostly a
single day's send on e-mail, push, SMS and direct mail) starting over `YEAR_START`'s year,
and valid scoring inputs. Everything is drawn from `random.Random` streams named after the
seed, so the same seed gives the same tests, and the first N tests of a bigger portfolio
are the N tests of a smaller one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tower.bench.synthetic.policy import CHANNELS, YEAR_START
from tower.engine.portfolio import PortfolioItem
from tower.experiments.spec import (
    CONFIDENCE_SCALE,
    IMPACT_SCALE,
    ExperimentKind,
    ExperimentSpec,
    ExperimentStatus,
    format_key,
)

YEAR_DAYS = 365  # tests start on one of this many days from YEAR_START, by default

# Channels whose tests are mostly single sends (a newsletter, a push), not weeks-long.
MESSAGE_CHANNELS = frozenset({"email", "push", "sms", "direct_mail"})
ONE_SEND_SHARE = 0.7
# How deep a test's surface sits: 1 is a whole channel, 4 a slot on a page.
_DEPTH_WEIGHTS = {1: 0.002, 2: 0.02, 3: 0.28, 4: 0.48, 5: 0.218}


@dataclass
class _Catalogue:
    """What drawing a test needs from the policy data: surfaces by depth, segments, teams."""

    surfaces: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    segments: dict[int, list[str]] = field(default_factory=dict)
    inside: dict[str, list[str]] = field(default_factory=dict)  # segment -> its descendants
    teams: list[tuple[str, list[str]]] = field(default_factory=list)
    kpis: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, policy: dict[str, Any]) -> _Catalogue:
        catalogue = cls()

        def surfaces(path: str, node: dict[str, Any], depth: int) -> None:
            channel = path.split("/", 1)[0]
            catalogue.surfaces.setdefault((channel, depth), []).append(path)
            for name, child in node.get("children", {}).items():
                surfaces(f"{path}/{name}", child, depth + 1)

        def segments(name: str, node: dict[str, Any], line: list[str]) -> None:
            catalogue.segments.setdefault(len(line), []).append(name)
            catalogue.inside[name] = []
            for upper in line:
                catalogue.inside[upper].append(name)
            for child_name, child in node.get("children", {}).items():
                segments(child_name, child, [*line, name])

        for channel, node in policy["surfaces"].items():
            surfaces(channel, node, 1)
        segments("all", policy["audiences"]["all"], [])
        catalogue.teams = [(team["key"], team["members"]) for team in policy["teams"]]
        catalogue.kpis = sorted(policy["kpis"])
        return catalogue


@dataclass
class _Group:
    name: str
    surfaces: tuple[str, ...]
    start: date
    members: int = 1


class PortfolioGenerator:
    """Draws tests one by one from a random stream; group members share surfaces and days."""

    def __init__(
        self,
        policy: dict[str, Any],
        rng: random.Random,
        days: int = YEAR_DAYS,
        *,
        group_prefix: str = "xg",
    ) -> None:
        self.catalogue = _Catalogue.of(policy)
        self.rng = rng
        self.group_prefix = group_prefix  # new groups are named PREFIX-1, PREFIX-2 ...
        self.days = days  # tests start on one of this many days from YEAR_START
        self.groups: list[_Group] = []

    def item(self, number: int) -> PortfolioItem:
        rng, catalogue = self.rng, self.catalogue
        team, members = rng.choice(catalogue.teams)
        surfaces = self._surfaces()
        start = YEAR_START + timedelta(days=rng.randrange(self.days))
        traffic = float(rng.choice((10, 20, 25, 30, 50, 50, 50, 80, 100, 100)))
        group = None
        if rng.random() < 0.10:
            group, surfaces, start = self._group(surfaces, start)
            traffic = float(rng.choice((20, 25, 30, 40, 50)))
        days = self._duration(surfaces[0].split("/")[0])  # after a group gave its surfaces
        targets, excluded = self._audience()
        baseline = round(rng.uniform(0.01, 0.4), 3)
        spec = ExperimentSpec(
            title=f"Test {number} on {surfaces[0]}",
            team=team,
            owner=rng.choice(members),
            kind=rng.choice(list(ExperimentKind)),
            surfaces=surfaces,
            start=start,
            end=start + timedelta(days=days - 1),
            audiences=targets,
            exclude_audiences=excluded,
            traffic=traffic,
            exclusion_group=group,
            primary_kpi=rng.choice(catalogue.kpis),
            baseline=baseline,
            mde=rng.choice((0.02, 0.05, 0.05, 0.1, 0.1, 0.2)),
            hypothesis=f"If we change {surfaces[0]}, then {team} sees its KPI move.",
            impact=rng.choice(IMPACT_SCALE),
            confidence=rng.choice(CONFIDENCE_SCALE),
            effort_weeks=rng.choice((0.5, 1.0, 1.0, 2.0, 3.0, 4.0, 6.0)),
        )
        status = rng.choices(
            (ExperimentStatus.SUBMITTED, ExperimentStatus.APPROVED, ExperimentStatus.LIVE),
            weights=(0.4, 0.35, 0.25),
        )[0]
        lever = rng.choice((0.5, 0.75, 1.5, 2.0)) if rng.random() < 0.1 else 1.0
        deadline = start + timedelta(days=rng.randint(0, 60)) if rng.random() < 0.15 else None
        return PortfolioItem(format_key(number), number, status, spec, lever, deadline)

    def _duration(self, channel: str) -> int:
        """Days a test runs: pages and scripts 1 to 6 weeks; a message is mostly one send."""
        if channel in MESSAGE_CHANNELS and self.rng.random() < ONE_SEND_SHARE:
            return 1
        return 7 * self.rng.randint(1, 6 if channel not in MESSAGE_CHANNELS else 3)

    def _surface(self, channel: str) -> str:
        depths = [d for d in _DEPTH_WEIGHTS if (channel, d) in self.catalogue.surfaces]
        depth = self.rng.choices(depths, weights=[_DEPTH_WEIGHTS[d] for d in depths])[0]
        return self.rng.choice(self.catalogue.surfaces[(channel, depth)])

    def _surfaces(self) -> tuple[str, ...]:
        channel = self.rng.choices(CHANNELS, weights=[c.share for c in CHANNELS])[0].name
        first = self._surface(channel)
        if self.rng.random() >= 0.3:
            return (first,)
        # A second surface: mostly in the same channel, sometimes an omnichannel campaign.
        if self.rng.random() < 0.25:
            channel = self.rng.choices(CHANNELS, weights=[c.share for c in CHANNELS])[0].name
        second = self._surface(channel)
        return (first,) if second == first else (first, second)

    def _group(self, surfaces: tuple[str, ...], start: date) -> tuple[str, tuple[str, ...], date]:
        """Join a recent exclusion group (same surfaces, nearby start) or open a new one."""
        recent = [g for g in self.groups[-20:] if g.members < 4]
        if recent and self.rng.random() < 0.65:
            group = self.rng.choice(recent)
            group.members += 1
            day = group.start + timedelta(days=self.rng.randint(-7, 7))
            return group.name, group.surfaces, max(day, YEAR_START)
        group = _Group(f"{self.group_prefix}-{len(self.groups) + 1}", surfaces, start)
        self.groups.append(group)
        return group.name, surfaces, start

    def _audience(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        rng, segments = self.rng, self.catalogue.segments
        count = rng.choices((0, 1, 2), weights=(0.15, 0.55, 0.3))[0]
        targets: list[str] = []
        while len(targets) < count:
            depths = [d for d in (1, 2, 3, 4) if d in segments]
            depth = rng.choices(depths, weights=[(0.1, 0.3, 0.4, 0.2)[d - 1] for d in depths])[0]
            name = rng.choice(segments[depth])
            if name not in targets:
                targets.append(name)
        excluded: tuple[str, ...] = ()
        if rng.random() < 0.15:
            inner = [s for t in targets for s in self.catalogue.inside[t]]
            pool = inner or [s for s in segments.get(1, []) + segments.get(2, [])]
            choice = rng.choice(pool)
            if choice not in targets:
                excluded = (choice,)
        return tuple(targets), excluded


def synthetic_portfolio(
    policy: dict[str, Any], tests: int, seed: int, *, days: int = YEAR_DAYS
) -> list[PortfolioItem]:
    """Tests T-1 … T-`tests` of the organisation `policy` (from `synthetic_policy(seed)`),
    starting over `days` days (a year by default: more tests, more crowded)."""
    generator = PortfolioGenerator(policy, random.Random(f"{seed}:tests"), days)
    return [generator.item(number) for number in range(1, tests + 1)]


def fresh_tests(
    policy: dict[str, Any], count: int, seed: int, *, first_number: int
) -> list[PortfolioItem]:
    """`count` more tests numbered from `first_number`, drawn from their own stream; the
    exclusion groups they open are new ones (`xg-new-1` ...), not the portfolio's."""
    generator = PortfolioGenerator(policy, random.Random(f"{seed}:fresh"), group_prefix="xg-new")
    return [generator.item(number) for number in range(first_number, first_number + count)]
