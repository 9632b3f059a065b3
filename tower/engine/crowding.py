"""Capacity collisions, of crowds rather than pairs: too much traffic, too many tests.

An exclusion group's traffic shares add up to more than 100% on some day, or more tests
cover one surface on one day than the protocol allows (tests of one exclusion group share
a slot). Contact caps, the other crowd kind, are in `contact_crowds`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from functools import partial
from itertools import pairwise

from tower.collisions.kinds import CollisionKind, Severity
from tower.engine.findings import Finding, format_span
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.schedule import SurfaceSchedule

_FULL = 1.0 + 1e-9  # traffic shares are fractions; allow for float rounding


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
        involved = by_number(m for m in members if m.start <= last and m.end >= first)
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
            agile_vs_bau=mixed_teams(involved),
            describe=partial(_group_text, group, tuple(m.key for m in involved), peak, span),
        )


def surface_overloads(
    compiler: Compiler, schedule: SurfaceSchedule, limit: int
) -> Iterator[Finding]:
    """A capacity finding where more than `limit` tests cover one surface on one day.

    A test covers its surfaces and everything inside them. The crowd on a node is checked
    only on days one of its own tests runs: any other crowd there is also one on a parent.
    """
    reported: set[tuple[str, ...]] = set()
    for node in schedule.occupied:
        members = _crowd_on(schedule, node)
        if len({m.group or m.key for m in members}) <= limit:
            continue  # too few tests here to pass the limit on any day
        runs = _runs_over(members, limit)
        yield from _overloads(schedule.surfaces.paths[node], members, runs, limit, reported)


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
        yield from _overloads(schedule.surfaces.paths[node], members, runs, limit, reported)


def _overloads(
    path: str,
    members: Sequence[Footprint],
    runs: Iterable[tuple[int, int, int]],
    limit: int,
    reported: set[tuple[str, ...]],
) -> Iterator[Finding]:
    """A finding per over-limit run on `path`, unless one with the same tests was already
    `reported` (on a node above: the same crowd)."""
    for first, last, peak in runs:
        involved = by_number(m for m in members if m.start <= last and m.end >= first)
        keys = tuple(m.key for m in involved)
        if keys not in reported:
            reported.add(keys)
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
        agile_vs_bau=mixed_teams(involved),
        describe=partial(_surface_text, path, keys, peak, span, limit),
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


def by_number(footprints: Iterable[Footprint]) -> list[Footprint]:
    return sorted(footprints, key=lambda f: f.item.number)


def mixed_teams(footprints: Sequence[Footprint]) -> bool:
    return len({f.agile for f in footprints}) > 1
