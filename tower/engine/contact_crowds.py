"""Contact caps: more than `max` activities reach overlapping people on one channel within
`per_days` consecutive days.

A crowd is a set of activities that all share people with each other and fit in one window
of `per_days` days; a finding is a largest such crowd over the cap. The scan tries every
window that ends on an activity's start; a single test's check only those it can be in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from functools import partial
from operator import attrgetter

from tower.collisions.kinds import CollisionKind, Severity
from tower.engine.audience import Audience
from tower.engine.cliques import is_clique, is_complete, maximal_cliques, vertices
from tower.engine.crowding import by_number, mixed_teams
from tower.engine.findings import Finding, format_people, format_span
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.schedule import DaySchedule
from tower.policy.schema import ContactCap

AUDIENCE_OF = attrgetter("audience")  # for AudienceModel.sharing_with
_SELF: Callable[[Audience], Audience] = lambda audience: audience  # noqa: E731


def channel_schedules(
    compiler: Compiler, footprints: Iterable[Footprint]
) -> dict[str, DaySchedule]:
    """The activities on each channel, by start day."""
    surfaces = compiler.graph.surfaces
    by_channel: dict[str, DaySchedule] = defaultdict(DaySchedule)
    for footprint in footprints:
        for channel in {surfaces.channel(node) for node in footprint.surfaces}:
            by_channel[channel].add(footprint)
    return by_channel


def contact_cap_breaches(
    compiler: Compiler,
    by_channel: Mapping[str, DaySchedule],
    caps: Sequence[ContactCap],
    *,
    including: Footprint | None = None,
) -> Iterator[Finding]:
    """A finding for each largest crowd of activities that reach the same people too often
    (only the crowds `including` would be part of, when given: a single test's check; it
    need not be in the schedules, and replaces an activity of its key)."""
    for cap in caps:
        schedule = by_channel.get(cap.channel)
        if schedule is None or (including is None and len(schedule) <= cap.max):
            continue
        yield from _cap_breaches(compiler, schedule, cap, including)


def crowds_over_cap(
    compiler: Compiler,
    schedule: DaySchedule,
    cap: ContactCap,
    including: Footprint | None = None,
) -> list[list[Footprint]]:
    """Crowds of activities on one channel that break `cap` (only those holding
    `including`, when given).

    A crowd fits in some window of `per_days` days exactly when it fits in one that ends on
    the latest start among its members: every such window is tried, and in it every largest
    set of activities that all share people with each other.
    """
    crowds: list[list[Footprint]] = []
    if including is None:
        for anchor in schedule.footprints:
            first = anchor.start - cap.per_days + 1
            window = window_before(anchor, schedule.running(first, anchor.start), cap.per_days)
            if len(window) < cap.max:
                continue
            window = compiler.audiences.sharing_with(anchor.audience, window, AUDIENCE_OF)
            if len(window) < cap.max:
                continue
            cliques = SharingGraph(compiler, window).cliques(window)
            crowds += ([anchor, *clique] for clique in cliques if len(clique) >= cap.max)
        return crowds
    # Everyone in a crowd with `including` shares people with it and runs within
    # per_days of it: one sharing graph over those serves every window.
    reach = cap.per_days - 1
    pool = sharing_near(
        compiler, including, schedule, including.start - reach, including.end + reach
    )
    if len(pool) < cap.max:
        return []  # too few activities reach these people to break the cap
    graph = SharingGraph(compiler, [including, *pool])
    for anchor in [including, *pool]:
        if anchor is not including and not including.start <= anchor.start <= including.end + reach:
            continue  # the window ending on this start would not hold `including`
        others = window_before(anchor, pool, cap.per_days)
        fixed = [including] if anchor is including else [anchor, including]
        if len(others) + len(fixed) <= cap.max:
            continue
        if graph.complete:  # they all share people: the window is the crowd
            crowds.append([*fixed, *others])
            continue
        crowds.extend(_crowds_anchored(anchor, others, cap, including, graph))
    return crowds


def sharing_near(
    compiler: Compiler, footprint: Footprint, schedule: DaySchedule, first: int, last: int
) -> list[Footprint]:
    """The activities running in [first, last] that share people with `footprint` (an
    activity of its key aside): the only ones that can crowd it."""
    nearby = (f for f in schedule.running(first, last) if f.key != footprint.key)
    return compiler.audiences.sharing_with(footprint.audience, nearby, AUDIENCE_OF)


def window_before(
    anchor: Footprint, activities: Iterable[Footprint], per_days: int
) -> list[Footprint]:
    """Those of `activities` other than `anchor` that run in the `per_days` days ending on
    its start, and start no later: who can crowd with it as the latest to start."""
    first = anchor.start - per_days + 1
    return [
        other
        for other in activities
        if other is not anchor and other.start <= anchor.start and other.end >= first
    ]


def _crowds_anchored(
    anchor: Footprint,
    candidates: list[Footprint],
    cap: ContactCap,
    including: Footprint,
    graph: SharingGraph,
) -> Iterator[list[Footprint]]:
    """The crowds over `cap` of `anchor` and `including` (which runs in the window) with
    `candidates`, the others in the window that ends on the anchor's start, when they do
    not all share people (`graph` covers them all)."""
    fixed = [including] if including is anchor else [anchor, including]
    shares_with_fixed = graph.shares_with_all(fixed)
    neighbours = [other for other in candidates if shares_with_fixed(other)]
    if len(neighbours) + len(fixed) <= cap.max:
        return
    for clique in graph.cliques(neighbours):
        if len(clique) + len(fixed) > cap.max:
            yield [*fixed, *clique]


def _cap_breaches(
    compiler: Compiler, schedule: DaySchedule, cap: ContactCap, including: Footprint | None
) -> Iterator[Finding]:
    audiences = compiler.audiences
    crowds = crowds_over_cap(compiler, schedule, cap, including)
    for crowd in _largest(crowds):
        members = by_number(crowd)
        first = max(m.start for m in members) - cap.per_days + 1
        first = max(first, min(m.start for m in members))
        last = max(m.start for m in members)
        # People who could get them all: at most those the narrowest audience shares with
        # each of the others (whichever window found the crowd).
        narrowest = min(members, key=lambda m: m.audience.size)
        people = min(
            audiences.shared(narrowest.audience, m.audience) for m in members if m is not narrowest
        )
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
            shares=(1.0,) * len(members),
            agile_vs_bau=mixed_teams(members),
            describe=partial(_cap_text, cap, keys, people, span),
        )


def _cap_text(
    cap: ContactCap, keys: tuple[str, ...], people: float, span: tuple[date, date]
) -> str:
    return (
        f"{len(keys)} {cap.channel} activities ({', '.join(keys)}) reach the same people "
        f"within {cap.per_days} days {format_span(*span)}: {format_people(people)} people a "
        f"week could get all of them, and the cap is {cap.max} per {cap.per_days} days."
    )


class SharingGraph:
    """Which activities share people, by audience: vertices are distinct audiences (far
    fewer than tests, and tests with one audience always share people), edges join
    audiences with people in common; both as bit masks (bit i: the i-th audience)."""

    def __init__(self, compiler: Compiler, footprints: Iterable[Footprint]) -> None:
        self.vertex: dict[int, int] = {}  # audience id -> vertex
        audiences: list[Audience] = []
        for footprint in footprints:
            if footprint.audience.id not in self.vertex:
                self.vertex[footprint.audience.id] = len(audiences)
                audiences.append(footprint.audience)
        self.adjacency = [0] * len(audiences)
        sharing_with = compiler.audiences.sharing_with
        for i, audience in enumerate(audiences):
            for other in sharing_with(audience, audiences[i + 1 :], _SELF):
                j = self.vertex[other.id]
                self.adjacency[i] |= 1 << j
                self.adjacency[j] |= 1 << i
        # Everyone shares people with everyone (the usual case): every set is a clique.
        self.complete = is_complete(self.adjacency)

    def shares_with_all(self, footprints: Iterable[Footprint]) -> Callable[[Footprint], bool]:
        """A test: does an activity share people with every one of `footprints`?"""
        common = -1
        for footprint in footprints:
            vertex = self.vertex[footprint.audience.id]
            common &= self.adjacency[vertex] | 1 << vertex
        return lambda other: bool(common >> self.vertex[other.audience.id] & 1)

    def cliques(self, footprints: Sequence[Footprint]) -> Iterator[list[Footprint]]:
        """Every largest set of `footprints` whose audiences all share people."""
        if self.complete:
            yield list(footprints)
            return
        by_vertex: dict[int, list[Footprint]] = defaultdict(list)
        for footprint in footprints:
            by_vertex[self.vertex[footprint.audience.id]].append(footprint)
        within = sum(1 << vertex for vertex in by_vertex)
        if is_clique(self.adjacency, within):
            yield list(footprints)  # they all share people with each other
            return
        for clique in maximal_cliques(self.adjacency, within):
            yield [footprint for vertex in vertices(clique) for footprint in by_vertex[vertex]]


def _largest(crowds: list[list[Footprint]]) -> Iterator[list[Footprint]]:
    """The crowds that are not part of a bigger one, each once."""
    kept_with: dict[str, list[frozenset[str]]] = defaultdict(list)  # key -> kept crowds with it
    for crowd in sorted(crowds, key=len, reverse=True):
        keys = frozenset(m.key for m in crowd)
        # A bigger crowd holding all of these holds the first of them: look only there.
        if not any(keys <= bigger for bigger in kept_with[crowd[0].key]):
            for key in keys:
                kept_with[key].append(keys)
            yield crowd
