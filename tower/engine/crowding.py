"""Collisions of crowds rather than pairs: too much traffic, too many tests, too many contacts.

- `capacity`: an exclusion group's traffic shares add up to more than 100% on some day, or
  more tests cover one surface on one day than the protocol allows (tests of one exclusion
  group share a slot);
- `contact_cap`: more than `max` activities reach overlapping people on one channel within
  `per_days` consecutive days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from functools import partial
from itertools import pairwise
from operator import attrgetter

from tower.collisions.kinds import CollisionKind, Severity
from tower.engine.audience import Audience
from tower.engine.cliques import maximal_cliques, vertices
from tower.engine.findings import Finding, format_people, format_span
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.schedule import DaySchedule, SurfaceSchedule
from tower.policy.schema import ContactCap

_FULL = 1.0 + 1e-9  # traffic shares are fractions; allow for float rounding
_AUDIENCE = attrgetter("audience")
_SELF: Callable[[Audience], Audience] = lambda audience: audience  # noqa: E731


def exclusion_group_overloads(footprints: Iterable[Footprint]) -> Iterator[Finding]:
    """A capacity finding for each exclusion group whose shares exceed 100% on some day."""
    groups: dict[str, list[Footprint]] = defaultdict(list)
    for footprint in footprints:
        if footprint.group is not None:
            groups[footprint.group].append(footprint)
    for group, members in sorted(groups.items()):
        over = [
            (first, after)
            for first, after, running in running_stretches(members)
            if sum(m.traffic for m in running) > _FULL
        ]
        yield from _group_overload_runs(group, members, _merged(over))


def _group_overload_runs(
    group: str, members: Sequence[Footprint], runs: list[tuple[int, int]]
) -> Iterator[Finding]:
    for first, last in runs:
        involved = _by_number(m for m in members if m.start <= last and m.end >= first)
        peak = max(sum(m.traffic for m in running) for _, _, running in running_stretches(involved))
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
            shares=(1.0,) * len(involved),
            agile_vs_bau=_mixed(involved),
            describe=partial(_group_text, group, tuple(m.key for m in involved), peak, span),
        )


def surface_overloads(
    compiler: Compiler, schedule: SurfaceSchedule, limit: int
) -> Iterator[Finding]:
    """A capacity finding where more than `limit` tests cover one surface on one day.

    A test covers its surfaces and everything inside them. The crowd on a node is checked
    only on days one of its own tests runs: any other crowd there is also one on a parent.
    """
    paths = schedule.surfaces.paths
    reported: set[tuple[str, ...]] = set()
    for node in schedule.occupied:
        members = _crowd_on(schedule, node)
        if len({m.group or m.key for m in members}) <= limit:
            continue  # too few tests here to pass the limit on any day
        for first, last, peak in _runs_over(members, limit):
            involved = _by_number(m for m in members if m.start <= last and m.end >= first)
            keys = tuple(m.key for m in involved)
            if keys not in reported:
                reported.add(keys)
                yield _surface_overload(paths[node], involved, first, last, peak, limit)


def surface_overloads_with(
    schedule: SurfaceSchedule, candidate: Footprint, limit: int
) -> Iterator[Finding]:
    """The capacity findings `candidate` would be part of, were it added to `schedule` (in
    place of a test of the same key): those `surface_overloads` would then report.

    Only nodes inside the candidate's surfaces can hold it in their crowd, and only runs of
    days that meet its window matter: each node's crowd is read over a window that starts as
    the candidate's and widens only while a run reaches its edge.
    """
    inside = (schedule.occupied_inside(node) for node in candidate.surfaces)
    reported: set[tuple[str, ...]] = set()
    for node in sorted({*candidate.surfaces}.union(*inside)):
        members, runs = _runs_through(schedule, node, candidate, limit)
        for first, last, peak in runs:
            involved = _by_number(m for m in members if m.start <= last and m.end >= first)
            keys = tuple(m.key for m in involved)
            if keys not in reported:
                reported.add(keys)
                path = schedule.surfaces.paths[node]
                yield _surface_overload(path, involved, first, last, peak, limit)


def _runs_through(
    schedule: SurfaceSchedule, node: int, candidate: Footprint, limit: int
) -> tuple[list[Footprint], list[tuple[int, int, int]]]:
    """The crowd on `node` read over a wide enough window, and its over-limit runs that
    meet the candidate's days (none when the candidate is not in the crowd)."""
    bounds = (
        min(candidate.start, schedule.first_day),
        max(candidate.end, schedule.last_day),
    )
    first, last = candidate.start, candidate.end
    while True:
        crowd = _crowd_between(schedule, node, candidate, first, last)
        if crowd.get(candidate.key) is not candidate:
            return [], []  # no test on the node shares a day with the candidate
        if len({m.group or m.key for m in crowd.values()}) <= limit:
            return [], []
        runs = [
            run
            for run in _runs_over(crowd.values(), limit, within=(first, last))
            if run[0] <= candidate.end and run[1] >= candidate.start
        ]
        widen_first = first > bounds[0] and any(run[0] == first for run in runs)
        widen_last = last < bounds[1] and any(run[1] == last for run in runs)
        if not (widen_first or widen_last):
            return list(crowd.values()), runs
        span = last - first + 1  # a run reaches the window's edge: look twice as far
        first = max(bounds[0], first - span) if widen_first else first
        last = min(bounds[1], last + span) if widen_last else last


def _crowd_on(schedule: SurfaceSchedule, node: int) -> list[Footprint]:
    """The tests on `node` and those on its ancestors that run on a day one of them runs."""
    ancestors = schedule.surfaces.ancestors[node][1:]
    own = schedule.by_node[node].footprints
    crowd = {f.key: f for f in own}
    for footprint in own:
        for ancestor in ancestors:
            for other in schedule.on_node(ancestor, footprint.start, footprint.end):
                crowd.setdefault(other.key, other)
    return list(crowd.values())


def _crowd_between(
    schedule: SurfaceSchedule, node: int, extra: Footprint, first: int, last: int
) -> dict[str, Footprint]:
    """The members of `_crowd_on(node)` that run on a day in [first, last], were `extra`
    added to the schedule in place of a test of the same key."""
    replaced = extra.key
    own_schedule = schedule.by_node.get(node)
    extra_is_own = node in extra.surfaces

    def meets_own(footprint: Footprint) -> bool:
        if extra_is_own and footprint.overlaps(extra):
            return True
        if own_schedule is None:
            return False
        return any(f.key != replaced for f in own_schedule.running(footprint.start, footprint.end))

    crowd: dict[str, Footprint] = {}
    if own_schedule is not None:
        crowd.update((f.key, f) for f in own_schedule.running(first, last) if f.key != replaced)
    if extra.start <= last and extra.end >= first and (extra_is_own or meets_own(extra)):
        crowd[replaced] = extra
    for ancestor in schedule.surfaces.ancestors[node][1:]:
        for other in schedule.on_node(ancestor, first, last):
            if other.key != replaced and other.key not in crowd and meets_own(other):
                crowd[other.key] = other
    return crowd


def _runs_over(
    members: Iterable[Footprint], limit: int, *, within: tuple[int, int] | None = None
) -> list[tuple[int, int, int]]:
    """(first, last, peak) of each run of days on which more than `limit` slots are taken
    (tests of one exclusion group share a slot): one sweep over starts and ends. With
    `within`, only those days count (the members must include all that run on them)."""
    changes: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for m in members:
        slot = m.group or m.key
        changes[m.start].append((1, slot))
        changes[m.end + 1].append((-1, slot))
    if within is not None:
        changes.setdefault(within[0], [])
        changes.setdefault(within[1] + 1, [])
    taken: dict[str, int] = defaultdict(int)
    runs: list[tuple[int, int, int]] = []
    run_first, peak = 0, 0
    for day in sorted(changes):
        for step, slot in changes[day]:
            taken[slot] += step
            if not taken[slot]:
                del taken[slot]
        if within is not None and not within[0] <= day <= within[1]:
            if peak and day > within[1]:
                runs.append((run_first, within[1], peak))
                peak = 0
            continue
        if len(taken) > limit:
            if not peak:
                run_first = day
            peak = max(peak, len(taken))
        elif peak:
            runs.append((run_first, day - 1, peak))
            peak = 0
    return runs


def _surface_overload(
    path: str, involved: list[Footprint], first: int, last: int, peak: int, limit: int
) -> Finding:
    keys = tuple(m.key for m in involved)
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
        shares=(1.0,) * len(involved),
        agile_vs_bau=_mixed(involved),
        describe=partial(_surface_text, path, keys, peak, span, limit),
    )


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
            window = _earlier_in_window(schedule.running, anchor, cap)
            if len(window) < cap.max:
                continue
            window = compiler.audiences.sharing_with(anchor.audience, window, _AUDIENCE)
            if len(window) < cap.max:
                continue
            cliques = SharingGraph(compiler, window).cliques(window)
            crowds += ([anchor, *clique] for clique in cliques if len(clique) >= cap.max)
        return crowds
    # Everyone in a crowd with `including` shares people with it and runs within
    # per_days of it: one sharing graph over those serves every window.
    reach = cap.per_days - 1
    nearby = schedule.running(including.start - reach, including.end + reach)
    pool = compiler.audiences.sharing_with(
        including.audience, (f for f in nearby if f.key != including.key), _AUDIENCE
    )
    if len(pool) < cap.max:
        return []  # too few activities reach these people to break the cap
    graph = SharingGraph(compiler, [including, *pool])
    for anchor in [including, *pool]:
        if anchor is not including and not including.start <= anchor.start <= including.end + reach:
            continue  # the window ending on this start would not hold `including`
        others = [
            f
            for f in pool
            if f is not anchor and f.start <= anchor.start and f.end >= anchor.start - reach
        ]
        fixed = [including] if anchor is including else [anchor, including]
        if len(others) + len(fixed) <= cap.max:
            continue
        if graph.complete:  # they all share people: the window is the crowd
            crowds.append([*fixed, *others])
            continue
        crowds.extend(_crowds_anchored(anchor, others, cap, including, graph))
    return crowds


def _earlier_in_window(
    activities: Callable[[int, int], Iterable[Footprint]] | Iterable[Footprint],
    anchor: Footprint,
    cap: ContactCap,
) -> list[Footprint]:
    """The activities other than `anchor` that run in the `per_days` window ending on its
    start, and start no later (from a schedule's `running`, or a list to filter)."""
    first, last = anchor.start - cap.per_days + 1, anchor.start
    found = activities(first, last) if callable(activities) else activities
    return [
        other
        for other in found
        if other is not anchor and other.start <= last and other.end >= first
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
        members = _by_number(crowd)
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
            agile_vs_bau=_mixed(members),
            describe=partial(_cap_text, cap, keys, people, span),
        )


def _group_text(group: str, keys: tuple[str, ...], peak: float, span: tuple[date, date]) -> str:
    return (
        f"Exclusion group {group!r} splits one audience between {', '.join(keys)}, but their "
        f"traffic adds up to {peak * 100:.0f}% {format_span(*span)}: shares in a group must "
        "fit in 100%."
    )


def _surface_text(
    path: str, keys: tuple[str, ...], peak: int, span: tuple[date, date], limit: int
) -> str:
    return (
        f"{peak} tests run on {path} at once {format_span(*span)} ({', '.join(keys)}); "
        f"the protocol allows {limit} per surface."
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
        everyone = (1 << len(audiences)) - 1
        # Everyone shares people with everyone (the usual case): every set is a clique.
        self.complete = all(mask | 1 << i == everyone for i, mask in enumerate(self.adjacency))

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
        if all(within & ~(self.adjacency[v] | 1 << v) == 0 for v in by_vertex):
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


def running_stretches(members: Sequence[Footprint]) -> Iterator[tuple[int, int, list[Footprint]]]:
    """Stretches of days [first, after) over which the same members run."""
    boundaries = sorted({m.start for m in members} | {m.end + 1 for m in members})
    for first, after in pairwise(boundaries):
        running = [m for m in members if m.start <= first <= m.end]
        if running:
            yield first, after, running


def _merged(stretches: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Day stretches [first, after) joined where they touch, as (first, last) days."""
    runs: list[tuple[int, int]] = []
    for first, after in stretches:
        if runs and runs[-1][1] + 1 == first:
            runs[-1] = (runs[-1][0], after - 1)
        else:
            runs.append((first, after - 1))
    return runs


def _by_number(footprints: Iterable[Footprint]) -> list[Footprint]:
    return sorted(footprints, key=lambda f: f.item.number)


def _mixed(footprints: Sequence[Footprint]) -> bool:
    return len({f.agile for f in footprints}) > 1
