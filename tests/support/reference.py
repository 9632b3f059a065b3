"""A brute-force reference for who collides, written from the rules of the truth issue.

Slow on purpose and independent of `tower/engine`: it reads the policy and the tests as
plain values, builds the population's regions as explicit sets of positions, and tries
every pair, every day and every set of activities. The property tests hold the engine to
it on small generated organisations.

The rules:
- People sit in regions. A segment's own region is its size less its children's, plus
  what their branches share through overlaps (never below zero). A declared overlap
  (a, b, share) puts share x min(|a|, |b|) people at one position under `a` and one under
  `b`, spread in proportion to those positions' own regions; they leave their positions'
  own regions. A person belongs to their positions' segments and all their ancestors.
- A test's people are the regions with a position inside one of its targets (everyone
  when it names none) and none inside an excluded segment.
- Surface pair: two tests, not arms of one exclusion group, on nested surfaces, sharing
  a day and people. A test's affected share is the people both reach times the other's
  traffic over its own people (capped at 1); blocking unless each is under 1%.
- Funnel pair: two tests, not arms of one group, whose surfaces lie in different steps of
  a funnel and are not nested, sharing a day and people: a warning.
- Capacity: on a node and a day, the tests whose surfaces cover the node (a test covers
  its surfaces and everything inside them), one slot per exclusion group, over the limit.
- Contact cap: more than `max` activities on the channel within one window of `per_days`
  days, all reaching one person, at most one per exclusion group. Where three or more
  branches meet only through overlaps declared two by two, nobody sits in all of them, so
  the engine estimates (by independence) and says so: here any such set counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Any

TINY = 0.01  # a collision is a warning only while each test's affected share is under this


@dataclass(frozen=True)
class Activity:
    """One test as the reference sees it: days are integers, inclusive."""

    key: str
    surfaces: tuple[str, ...]
    targets: tuple[str, ...]
    excluded: tuple[str, ...]
    start: int
    end: int
    traffic: float  # a share, in (0, 1]
    group: str | None = None

    def days(self) -> range:
        return range(self.start, self.end + 1)


@dataclass(frozen=True)
class Region:
    positions: frozenset[str]
    people: float


@dataclass
class Organisation:
    """A policy as plain values: the segment tree, overlaps, surfaces, funnels, caps."""

    parents: dict[str, str | None]  # segment -> parent, in the policy's order
    sizes: dict[str, int]
    overlaps: list[tuple[str, str, float]]
    surfaces: list[str]  # slash paths
    funnels: dict[str, list[str]] = field(default_factory=dict)
    caps: list[tuple[str, int, int]] = field(default_factory=list)  # channel, max, per_days
    limit: int = 3  # tests on one surface at once
    # (first day, last day, surfaces (none: all), team kinds) of each freeze window
    freezes: list[tuple[int, int, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    send_days: dict[str, frozenset[int]] = field(default_factory=dict)  # path -> weekdays
    _regions: list[Region] | None = None
    _people: dict[tuple[tuple[str, ...], tuple[str, ...]], frozenset[int]] = field(
        default_factory=dict
    )

    @classmethod
    def from_policy(cls, data: dict[str, Any]) -> Organisation:
        parents: dict[str, str | None] = {}
        sizes: dict[str, int] = {}

        def walk(children: dict[str, Any], parent: str | None) -> None:
            for name, node in children.items():
                parents[name], sizes[name] = parent, node["size"]
                walk(node.get("children", {}), name)

        walk(data["audiences"], None)
        surfaces: list[str] = []

        def walk_surfaces(children: dict[str, Any], prefix: str) -> None:
            for name, node in children.items():
                path = f"{prefix}{name}"
                surfaces.append(path)
                walk_surfaces(node.get("children", {}), f"{path}/")

        walk_surfaces(data["surfaces"], "")
        weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        send_days: dict[str, frozenset[int]] = {}

        def walk_send_days(children: dict[str, Any], prefix: str) -> None:
            for name, node in children.items():
                path = f"{prefix}{name}"
                if "send_days" in node:
                    send_days[path] = frozenset(weekdays.index(d) for d in node["send_days"])
                walk_send_days(node.get("children", {}), f"{path}/")

        walk_send_days(data["surfaces"], "")
        freezes = [
            (
                freeze["start"].toordinal(),
                freeze["end"].toordinal(),
                tuple(freeze.get("surfaces", [])),
                tuple(freeze.get("team_kinds", ["agile", "bau"])),
            )
            for freeze in data.get("freeze_windows", [])
        ]
        return cls(
            freezes=freezes,
            send_days=send_days,
            parents=parents,
            sizes=sizes,
            overlaps=[(o["a"], o["b"], o["share"]) for o in data.get("overlaps", [])],
            surfaces=surfaces,
            funnels=dict(data.get("funnels", {})),
            caps=[
                (cap["channel"], cap["max"], cap["per_days"])
                for cap in data.get("contact_caps", [])
            ],
            limit=data.get("protocol", {}).get("max_concurrent_per_surface", 3),
        )

    # --- segments and regions -------------------------------------------------------

    def line(self, segment: str) -> list[str]:
        """The segment and its ancestors."""
        chain: list[str] = []
        at: str | None = segment
        while at is not None:
            chain.append(at)
            at = self.parents[at]
        return chain

    def under(self, segment: str) -> list[str]:
        """The segment and its descendants."""
        return [s for s in self.parents if segment in self.line(s)]

    def root(self) -> str:
        return next(s for s, parent in self.parents.items() if parent is None)

    def own(self, segment: str) -> float:
        children = [s for s, parent in self.parents.items() if parent == segment]
        people = float(self.sizes[segment] - sum(self.sizes[c] for c in children))
        for a, b, share in self.overlaps:
            branch_a = [c for c in children if c in self.line(a)]
            branch_b = [c for c in children if c in self.line(b)]
            if branch_a and branch_b and branch_a != branch_b:
                people += share * min(self.sizes[a], self.sizes[b])
        return max(0.0, people)

    def spread(self, segment: str) -> dict[str, float]:
        """The positions under `segment`, weighted by their own regions."""
        positions = self.under(segment)
        total = sum(self.own(p) for p in positions)
        if total <= 0:
            return {segment: 1.0}
        return {p: self.own(p) / total for p in positions if self.own(p) > 0}

    def regions(self) -> list[Region]:
        if self._regions is None:
            self._regions = self._work_out_regions()
        return self._regions

    def _work_out_regions(self) -> list[Region]:
        regions: list[Region] = []
        left = {s: self.own(s) for s in self.parents}
        for a, b, share in self.overlaps:
            people = share * min(self.sizes[a], self.sizes[b])
            for p, weight_p in self.spread(a).items():
                for q, weight_q in self.spread(b).items():
                    amount = people * weight_p * weight_q
                    left[p] -= amount
                    left[q] -= amount
                    regions.append(Region(frozenset({p, q}), amount))
        regions += [Region(frozenset({s}), max(0.0, n)) for s, n in left.items()]
        return [r for r in regions if r.people > 1e-9]

    def inside(self, position: str, segments: Iterable[str]) -> bool:
        line = self.line(position)
        return any(s in line for s in segments)

    def people_of(self, test: Activity) -> set[int]:
        """The test's regions, by index in `regions()`."""
        known = self._people.get((test.targets, test.excluded))
        if known is None:
            known = self._people[(test.targets, test.excluded)] = self._regions_of(test)
        return set(known)

    def _regions_of(self, test: Activity) -> frozenset[int]:
        targets = test.targets or (self.root(),)
        return frozenset(
            {
                index
                for index, region in enumerate(self.regions())
                if any(self.inside(p, targets) for p in region.positions)
                and not any(self.inside(p, test.excluded) for p in region.positions)
            }
        )

    def people(self, regions: Iterable[int]) -> float:
        everyone = self.regions()
        return sum(everyone[i].people for i in regions)

    # --- surfaces ---------------------------------------------------------------------

    @staticmethod
    def nested(a: str, b: str) -> bool:
        return a == b or a.startswith(b + "/") or b.startswith(a + "/")

    @staticmethod
    def channel(path: str) -> str:
        return path.split("/")[0]

    def frozen(self, surfaces: Sequence[str], team_kind: str, day: int) -> bool:
        """Whether a freeze holds a test of a `team_kind` team on `surfaces` on `day`: one
        naming no surface holds every one; one naming a surface holds the tests on it, inside
        it and above it."""
        return any(
            first <= day <= last
            and team_kind in kinds
            and (not paths or any(self.nested(s, p) for s in surfaces for p in paths))
            for first, last, paths, kinds in self.freezes
        )

    def may_start(self, surfaces: Sequence[str], day: int) -> bool:
        """Whether a test on `surfaces` may start on `day`: every surface allows its weekday
        (a node's send days, or its nearest ancestor's; none set: every day)."""
        weekday = date.fromordinal(day).weekday()
        for surface in surfaces:
            parts = surface.split("/")
            for depth in range(len(parts), 0, -1):
                allowed = self.send_days.get("/".join(parts[:depth]))
                if allowed is not None:
                    if weekday not in allowed:
                        return False
                    break
        return True


@dataclass(frozen=True)
class Pair:
    keys: tuple[str, str]
    severity: str  # "blocking" or "warning"
    first_day: int
    last_day: int


def _ordered(a: Activity, b: Activity, order: Sequence[str]) -> tuple[Activity, Activity]:
    return (a, b) if order.index(a.key) < order.index(b.key) else (b, a)


def shared_days(a: Activity, b: Activity) -> tuple[int, int] | None:
    first, last = max(a.start, b.start), min(a.end, b.end)
    return (first, last) if first <= last else None


def surface_pairs(org: Organisation, tests: Sequence[Activity]) -> set[Pair]:
    """Every surface collision, keys in registration order (the order of `tests`)."""
    order = [t.key for t in tests]
    found: set[Pair] = set()
    for a, b in combinations(tests, 2):
        a, b = _ordered(a, b, order)
        if a.group is not None and a.group == b.group:
            continue
        days = shared_days(a, b)
        if days is None or not any(org.nested(x, y) for x in a.surfaces for y in b.surfaces):
            continue
        mine, theirs = org.people_of(a), org.people_of(b)
        both = org.people(mine & theirs)
        if both <= 1e-9:
            continue
        # Each test's affected share: the people both reach, times the other's traffic,
        # over its own people.
        share_a = min(1.0, both * b.traffic / org.people(mine))
        share_b = min(1.0, both * a.traffic / org.people(theirs))
        severity = "blocking" if max(share_a, share_b) >= TINY else "warning"
        found.add(Pair((a.key, b.key), severity, *days))
    return found


def funnel_pairs(org: Organisation, tests: Sequence[Activity]) -> set[tuple[str, str]]:
    """Every funnel warning's keys, in registration order."""
    order = [t.key for t in tests]
    found: set[tuple[str, str]] = set()
    for steps in org.funnels.values():

        def step_of(test: Activity, steps: list[str] = steps) -> set[int]:
            """The steps the test's surfaces lie in (the step on their ancestor chain)."""
            return {
                i
                for i, step in enumerate(steps)
                for s in test.surfaces
                if s == step or s.startswith(step + "/")
            }

        for a, b in combinations(tests, 2):
            a, b = _ordered(a, b, order)
            if a.group is not None and a.group == b.group:
                continue
            if any(org.nested(x, y) for x in a.surfaces for y in b.surfaces):
                continue
            if not any(i != j for i in step_of(a) for j in step_of(b)):
                continue
            if shared_days(a, b) is None:
                continue
            if org.people(org.people_of(a) & org.people_of(b)) > 1e-9:
                found.add((a.key, b.key))
    return found


def capacity_breaches(
    org: Organisation, tests: Sequence[Activity]
) -> dict[tuple[str, int], set[str]]:
    """(node, day) over the limit -> the keys of the tests covering the node that day."""
    breaches: dict[tuple[str, int], set[str]] = {}
    days = sorted({d for t in tests for d in t.days()})
    for node in org.surfaces:
        for day in days:
            crowd = [
                t
                for t in tests
                if t.start <= day <= t.end
                and any(node == s or node.startswith(s + "/") for s in t.surfaces)
            ]
            if len({t.group or t.key for t in crowd}) > org.limit:
                breaches[(node, day)] = {t.key for t in crowd}
    return breaches


def group_overloads(tests: Sequence[Activity]) -> dict[tuple[str, int], set[str]]:
    """(group, day) whose arms' traffic passes 100% -> the keys of the arms running."""
    found: dict[tuple[str, int], set[str]] = {}
    for group in {t.group for t in tests if t.group is not None}:
        arms = [t for t in tests if t.group == group]
        for day in sorted({d for t in arms for d in t.days()}):
            running = [t for t in arms if t.start <= day <= t.end]
            if sum(t.traffic for t in running) > 1 + 1e-9:
                found[(group, day)] = {t.key for t in running}
    return found


def reach_one_person(org: Organisation, activities: Sequence[Activity]) -> bool:
    """Whether some region is in every activity's people (no two arms of one group), or,
    estimated, three or more of them (none holding another's people) share people two by
    two, each two through a region an overlap placed."""
    groups = [a.group for a in activities if a.group is not None]
    if len(groups) != len(set(groups)):
        return False
    sets = [frozenset(org.people_of(a)) for a in activities]
    common = set(sets[0]).intersection(*sets[1:])
    if org.people(common) > 1e-9:
        return True
    essential = {s for s in sets if not any(other < s for other in sets)}
    if len(essential) < 3:
        return False
    regions = org.regions()
    return all(
        any(len(regions[i].positions) == 2 for i in x & y) for x, y in combinations(essential, 2)
    )


def fit_one_window(activities: Sequence[Activity], per_days: int) -> bool:
    """Whether some `per_days` consecutive days hold a day of each activity."""
    return max(a.start for a in activities) - min(a.end for a in activities) <= per_days - 1


def smallest_cap_breaches(
    org: Organisation, tests: Sequence[Activity]
) -> Iterator[tuple[str, frozenset[str]]]:
    """(channel, keys) of every set of max + 1 activities that breaks a cap."""
    for channel, most, per_days in org.caps:
        on_channel = [t for t in tests if any(org.channel(s) == channel for s in t.surfaces)]
        for crowd in combinations(on_channel, most + 1):
            if fit_one_window(crowd, per_days) and reach_one_person(org, crowd):
                yield channel, frozenset(t.key for t in crowd)


def breaks_cap(org: Organisation, channel: str, activities: Sequence[Activity]) -> bool:
    cap = next(c for c in org.caps if c[0] == channel)
    return fit_one_window(activities, cap[2]) and reach_one_person(org, activities)


# --- who yields (item 4) -------------------------------------------------------------------
#
# A test yields only to live tests and to tests sent for review (not drafts) with a score
# that rank above it: higher score, then higher confidence, then registered first. A live
# test never yields, and never moves: it keeps every day it runs. Drafts and unscored
# tests hold nothing. Where a limit lets L share, the L best-ranked units keep the slot,
# counted day by day: a test keeps its place only if it fits on every day it runs; an
# exclusion group is one unit, ranked as its best arm holding a place. A group's arms
# keep their traffic in rank order while it stays within 100% on every day.

FULL = 1 + 1e-9  # shares may add up to 100%, not past it


@dataclass(frozen=True)
class Contestant:
    """A test in a contested slot, as item 4 weighs it: days are integers, inclusive."""

    key: str
    number: int  # registration order
    state: str  # "draft", "submitted", "changes_requested", "approved", "live"
    score: float | None  # None: it cannot be scored
    confidence: float
    share: float  # of the eligible traffic
    group: str | None
    start: int
    end: int

    @property
    def live(self) -> bool:
        return self.state == "live"

    @property
    def holds(self) -> bool:
        """Live, or sent for review with a score."""
        return self.live or (self.state != "draft" and self.score is not None)

    def days(self, first: int, last: int) -> set[int]:
        return set(range(max(self.start, first), min(self.end, last) + 1))


def standing(test: Contestant) -> tuple[float, ...]:
    """Best first: live; then by score, confidence, registration; unscored last."""
    if test.live:
        return (0,)
    if test.score is None:
        return (2, test.number)
    return (1, -test.score, -test.confidence, test.number)


def outranks(test: Contestant, other: Contestant) -> bool:
    """Whether `other` yields to `test` where only one of them fits."""
    return test.holds and not other.live and standing(test) < standing(other)


def _unit(test: Contestant) -> str:
    return test.group or test.key


def _unit_standing(me: Contestant, tests: Sequence[Contestant]) -> tuple[float, ...]:
    """Where `me`'s unit ranks among `tests`: as its best arm holding a place (`me`'s own
    standing when none holds)."""
    holding = [t for t in tests if _unit(t) == _unit(me) and t.holds]
    return min(standing(t) for t in holding) if holding else standing(me)


def yields_in_cap_crowd(me: Contestant, crowd: Sequence[Contestant], limit: int) -> bool:
    """A crowd over a contact cap (one window, one person): `me` yields when `limit`
    units of the others rank above its own."""
    if me.live:
        return False
    mine = _unit_standing(me, [me, *crowd])
    above = {_unit(t) for t in crowd if _unit(t) != _unit(me) and t.holds and standing(t) < mine}
    return len(above) >= limit


def yields_on_a_full_surface(
    me: Contestant, crowd: Sequence[Contestant], limit: int, first: int, last: int
) -> bool:
    """A surface over capacity on days `first` to `last`: the units ranked above `me`'s
    take their places best first, each of their tests only where it fits on every day
    (live ones everywhere: they never move); `me` yields when on a day it runs `limit`
    other units are there."""
    if me.live:
        return False
    tests = [me, *crowd]
    mine = _unit_standing(me, tests)
    running: dict[int, set[str]] = {d: set() for d in range(first, last + 1)}
    for test in crowd:
        if test.live and _unit(test) != _unit(me):
            for day in test.days(first, last):
                running[day].add(_unit(test))
    # The others' arms holding a place, in their units' order (arms of units that tie,
    # ranked as live, by their own standing).
    arms = sorted(
        (t for t in crowd if _unit(t) != _unit(me) and t.holds and not t.live),
        key=lambda t: (_unit_standing(t, crowd), standing(t)),
    )
    for arm in arms:
        if _unit_standing(arm, crowd) >= mine:
            continue
        unit, days = _unit(arm), arm.days(first, last)
        if all(unit in running[d] or len(running[d]) < limit for d in days):
            for day in days:
                running[day].add(unit)
    return any(len(running[d]) >= limit for d in me.days(first, last))


def yields_in_a_full_group(
    me: Contestant, arms: Sequence[Contestant], first: int, last: int
) -> bool:
    """An exclusion group over 100% on days `first` to `last`: live arms keep their
    traffic, the others ranked above `me` keep theirs best first where it fits on every
    day; `me` yields when on a day it runs its share no longer fits."""
    if me.live:
        return False
    taken = {d: 0.0 for d in range(first, last + 1)}
    for arm in arms:
        if arm.live:
            for day in arm.days(first, last):
                taken[day] += arm.share
    for arm in sorted((a for a in arms if outranks(a, me) and not a.live), key=standing):
        days = arm.days(first, last)
        if all(taken[d] + arm.share <= FULL for d in days):
            for day in days:
                taken[day] += arm.share
    return any(taken[d] + me.share > FULL for d in me.days(first, last))
