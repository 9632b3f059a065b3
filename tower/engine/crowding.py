"""Collisions of crowds rather than pairs: too much traffic, too many tests, too many contacts.

- `capacity`: an exclusion group's traffic shares add up to more than 100% on some day, or
  more tests cover one surface on one day than the protocol allows (tests of one exclusion
  group share a slot);
- `contact_cap`: more than `max` activities reach overlapping people on one channel within
  `per_days` consecutive days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from itertools import combinations, pairwise

import networkx as nx

from tower.collisions.kinds import CollisionKind, Severity
from tower.engine.findings import Finding, format_people, format_span
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.schedule import DaySchedule, SurfaceSchedule
from tower.policy.schema import ContactCap

_FULL = 1.0 + 1e-9  # traffic shares are fractions; allow for float rounding


def exclusion_group_overloads(footprints: Iterable[Footprint]) -> Iterator[Finding]:
    """A capacity finding for each exclusion group whose shares exceed 100% on some day."""
    groups: dict[str, list[Footprint]] = defaultdict(list)
    for footprint in footprints:
        if footprint.group is not None:
            groups[footprint.group].append(footprint)
    for group, members in sorted(groups.items()):
        over_days = [day for day, load in _daily_load(members) if load > _FULL]
        yield from _group_overload_runs(group, members, over_days)


def _group_overload_runs(
    group: str, members: Sequence[Footprint], over_days: list[int]
) -> Iterator[Finding]:
    for first, last in _runs(over_days):
        involved = _by_number(m for m in members if m.start <= last and m.end >= first)
        peak = max(load for _, load in _daily_load(involved))
        span = (date.fromordinal(first), date.fromordinal(last))
        yield Finding(
            kind=CollisionKind.CAPACITY,
            severity=Severity.BLOCKING,
            keys=tuple(m.key for m in involved),
            scope=f"group:{group}",
            surfaces=(),
            first_day=span[0],
            last_day=span[1],
            people_per_week=0,
            affected=tuple((m.key, 1.0) for m in involved),
            agile_vs_bau=_mixed(involved),
            explanation=(
                f"Exclusion group {group!r} splits one audience between "
                f"{', '.join(m.key for m in involved)}, but their traffic adds up to "
                f"{peak * 100:.0f}% {format_span(*span)}: shares in a group must fit in 100%."
            ),
        )


def surface_overloads(
    compiler: Compiler, schedule: SurfaceSchedule, limit: int
) -> Iterator[Finding]:
    """A capacity finding where more than `limit` tests cover one surface on one day.

    A test covers its surfaces and everything inside them. The crowd on a node is checked
    only on days one of its own tests runs: any other crowd there is also one on a parent.
    """
    surfaces = schedule.surfaces
    reported: set[tuple[str, ...]] = set()
    for node in schedule.occupied:
        own = schedule.by_node[node].footprints
        crowd = {f.key: f for f in own}
        for footprint in own:
            for ancestor in surfaces.ancestors[node][1:]:
                for other in schedule.on_node(ancestor, footprint.start, footprint.end):
                    crowd.setdefault(other.key, other)
        members = list(crowd.values())
        over_days = [day for day, slots in _daily_slots(members) if slots > limit]
        for first, last in _runs(over_days):
            involved = _by_number(m for m in members if m.start <= last and m.end >= first)
            keys = tuple(m.key for m in involved)
            if keys not in reported:
                reported.add(keys)
                yield _surface_overload(surfaces.paths[node], involved, first, last, limit)


def _surface_overload(
    path: str, involved: list[Footprint], first: int, last: int, limit: int
) -> Finding:
    keys = tuple(m.key for m in involved)
    peak = max(slots for _, slots in _daily_slots(involved))
    span = (date.fromordinal(first), date.fromordinal(last))
    return Finding(
        kind=CollisionKind.CAPACITY,
        severity=Severity.BLOCKING,
        keys=keys,
        scope=f"surface:{path}",
        surfaces=(path,),
        first_day=span[0],
        last_day=span[1],
        people_per_week=0,
        affected=tuple((m.key, 1.0) for m in involved),
        agile_vs_bau=_mixed(involved),
        explanation=(
            f"{peak} tests run on {path} at once {format_span(*span)} "
            f"({', '.join(keys)}); the protocol allows {limit} per surface."
        ),
    )


def contact_cap_breaches(
    compiler: Compiler, footprints: Iterable[Footprint], caps: Sequence[ContactCap]
) -> Iterator[Finding]:
    """A finding for each largest crowd of activities that reach the same people too often."""
    surfaces = compiler.graph.surfaces
    by_channel: dict[str, DaySchedule] = defaultdict(DaySchedule)
    for footprint in footprints:
        for channel in {surfaces.channel(node) for node in footprint.surfaces}:
            by_channel[channel].add(footprint)
    for cap in caps:
        schedule = by_channel.get(cap.channel)
        if schedule is None or len(schedule) <= cap.max:
            continue
        yield from _cap_breaches(compiler, schedule, cap)


def _cap_breaches(compiler: Compiler, schedule: DaySchedule, cap: ContactCap) -> Iterator[Finding]:
    audiences = compiler.audiences
    crowds: list[list[Footprint]] = []
    for anchor in schedule.footprints:
        # A crowd fits in some window of `per_days` days exactly when it fits in one that
        # ends on the latest start among its members: try every such window, and in it
        # every largest set of activities that all share people with each other.
        window = (anchor.start - cap.per_days + 1, anchor.start)
        neighbours = [
            other
            for other in schedule.running(*window)
            if other is not anchor
            and other.start <= anchor.start
            and audiences.shared(other.audience, anchor.audience) > 0
        ]
        if len(neighbours) < cap.max:
            continue
        overlaps = nx.Graph()
        overlaps.add_nodes_from(range(len(neighbours)))
        overlaps.add_edges_from(
            (i, j)
            for i, j in combinations(range(len(neighbours)), 2)
            if audiences.shared(neighbours[i].audience, neighbours[j].audience) > 0
        )
        for clique in nx.find_cliques(overlaps):
            if len(clique) + 1 > cap.max:
                crowds.append([anchor, *(neighbours[i] for i in clique)])
    for crowd in _largest(crowds):
        members = _by_number(crowd)
        first = max(m.start for m in members) - cap.per_days + 1
        first = max(first, min(m.start for m in members))
        last = max(m.start for m in members)
        people = min(audiences.shared(a.audience, b.audience) for a in members for b in members)
        span = (date.fromordinal(first), date.fromordinal(last))
        keys = tuple(m.key for m in members)
        yield Finding(
            kind=CollisionKind.CONTACT_CAP,
            severity=Severity.BLOCKING,
            keys=keys,
            scope=f"channel:{cap.channel}",
            surfaces=tuple(sorted({p for m in members for p in m.item.spec.surfaces})),
            first_day=span[0],
            last_day=span[1],
            people_per_week=round(people),
            affected=tuple((m.key, 1.0) for m in members),
            agile_vs_bau=_mixed(members),
            explanation=(
                f"{len(members)} {cap.channel} activities ({', '.join(keys)}) reach the same "
                f"people within {cap.per_days} days {format_span(*span)}: "
                f"{format_people(people)} people a week could get all of them, and the cap "
                f"is {cap.max} per {cap.per_days} days."
            ),
        )


def _largest(crowds: list[list[Footprint]]) -> Iterator[list[Footprint]]:
    """The crowds that are not part of a bigger one, each once."""
    kept: list[frozenset[str]] = []
    for crowd in sorted(crowds, key=len, reverse=True):
        keys = frozenset(m.key for m in crowd)
        if not any(keys <= bigger for bigger in kept):
            kept.append(keys)
            yield crowd


def _daily_load(members: Sequence[Footprint]) -> list[tuple[int, float]]:
    """(day, summed traffic share) for every day any member runs."""
    return [
        (day, sum(m.traffic for m in running))
        for first, after, running in _stretches(members)
        for day in range(first, after)
    ]


def _daily_slots(members: Sequence[Footprint]) -> list[tuple[int, int]]:
    """(day, tests running) for every day any member runs; one exclusion group is one slot."""
    return [
        (day, len({m.group or m.key for m in running}))
        for first, after, running in _stretches(members)
        for day in range(first, after)
    ]


def _stretches(members: Sequence[Footprint]) -> Iterator[tuple[int, int, list[Footprint]]]:
    """Stretches of days [first, after) over which the same members run."""
    boundaries = sorted({m.start for m in members} | {m.end + 1 for m in members})
    for first, after in pairwise(boundaries):
        running = [m for m in members if m.start <= first <= m.end]
        if running:
            yield first, after, running


def _runs(days: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive stretches (first, last) of a sorted list of day ordinals."""
    start = previous = None
    for day in days:
        if previous is None or day != previous + 1:
            if start is not None and previous is not None:
                yield start, previous
            start = day
        previous = day
    if start is not None and previous is not None:
        yield start, previous


def _by_number(footprints: Iterable[Footprint]) -> list[Footprint]:
    return sorted(footprints, key=lambda f: f.item.number)


def _mixed(footprints: Sequence[Footprint]) -> bool:
    return len({f.agile for f in footprints}) > 1
