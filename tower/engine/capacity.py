"""Surface capacity: more tests cover one surface on one day than the protocol allows.

A test covers its surfaces and everything inside them; the tests of one exclusion group share
a slot. The crowd on a node is its own tests and the tests on nodes above it that share a day
with one of them: any other crowd there is also one on a node above, and is reported there.

Each node's crowd, and the slots it takes day by day, is worked out once and kept. A scan
reads every node; a check of a new test only adds its slot, over its days, to the crowds of
the nodes inside it, and works a crowd out afresh only on its own nodes (where it brings
tests above into the crowd) or where it replaces a test or shares a group's slot. A test
joining or leaving the schedule drops the crowds it can change, to be worked out again.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from functools import cache, partial

from tower.engine.crowding import by_number, mixed_teams
from tower.engine.findings import Finding, format_span
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.portfolio import Footprint
from tower.engine.schedule import SurfaceSchedule, insert_by_number
from tower.engine.scope import Scope, ScopeKind

Run = tuple[int, int, int]  # first day, last day, most slots taken on one of them


class Crowd:
    """The tests counted on one node, and how many slots they take: from `days[i]` to the
    day before `days[i + 1]`, `slots[i]` (none after the last day)."""

    __slots__ = ("days", "groups", "keys", "members", "slots")

    def __init__(self, members: Iterable[Footprint], limit: int) -> None:
        self.members = by_number(members)
        self.keys = frozenset(m.key for m in self.members)
        self.groups = frozenset(m.group for m in self.members if m.group is not None)
        self.days: list[int] = []
        self.slots: list[int] = []
        if len({m.group or m.key for m in self.members}) < limit:
            return  # even one more test could not pass the limit: no need to count
        changes: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for m in self.members:
            slot = m.group or m.key
            changes[m.start].append((1, slot))
            changes[m.end + 1].append((-1, slot))
        taken: dict[str, int] = defaultdict(int)
        for day in sorted(changes):
            for step, slot in changes[day]:
                taken[slot] += step
                if not taken[slot]:
                    del taken[slot]
            if self.slots and self.slots[-1] == len(taken):
                continue
            self.days.append(day)
            self.slots.append(len(taken))

    def runs_over(self, limit: int) -> list[Run]:
        """Each run of days on which more than `limit` slots are taken."""
        runs: list[Run] = []
        days, slots = self.days, self.slots
        for i, taken in enumerate(slots):
            if taken <= limit:
                continue
            if runs and runs[-1][1] == days[i] - 1:
                first, _, peak = runs[-1]
                runs[-1] = (first, days[i + 1] - 1, max(peak, taken))
            else:
                runs.append((days[i], days[i + 1] - 1, taken))
        return runs

    def runs_with_one_more(self, first: int, last: int, limit: int) -> list[Run]:
        """The runs over `limit` that meet [first, last] once one more slot is taken on
        those days (by a test not yet in the crowd, with a slot of its own)."""
        days, slots = self.days, self.slots
        # The steps meeting the window; with the extra slot, one with `limit` taken is over.
        # (No step with a slot taken is the last, so each has a next; the limit is at least 1.)
        low, high = max(bisect_right(days, first) - 1, 0), bisect_right(days, last)
        if low >= high or max(slots[low:high]) < limit:
            return []
        runs: list[Run] = []
        over = -1  # the first step of the run going on, if any
        peak = 0
        for i, taken in enumerate(slots[low:high], low):
            if taken >= limit:
                if over < 0:
                    over, peak = i, taken
                elif taken > peak:
                    peak = taken
            elif over >= 0:
                runs.append((max(days[over], first), days[i] - 1, peak + 1))
                over = -1
        if over >= 0:
            runs.append((max(days[over], first), min(days[high] - 1, last), peak + 1))
        if runs and runs[0][0] == first:  # the run goes on before the window while over
            run_first, run_last, peak = runs[0]
            i = bisect_right(days, first - 1) - 1
            while i >= 0 and slots[i] > limit:
                run_first, peak = days[i], max(peak, slots[i])
                i -= 1
            runs[0] = (run_first, run_last, peak)
        if runs and runs[-1][1] == last:  # ... and after it
            run_first, run_last, peak = runs[-1]
            i = bisect_right(days, last + 1) - 1
            while i >= 0 and slots[i] > limit:
                run_last, peak = days[i + 1] - 1, max(peak, slots[i])
                i += 1
            runs[-1] = (run_first, run_last, peak)
        return runs

    def running(self, first: int, last: int) -> list[Footprint]:
        """The members with a day in [first, last], by number."""
        return [m for m in self.members if m.start <= last and m.end >= first]


class CapacityIndex:
    """The crowd on every node of a schedule, each worked out when first asked for."""

    def __init__(self, schedule: SurfaceSchedule, limit: int) -> None:
        self.schedule = schedule
        self.limit = limit
        self._crowds: dict[int, Crowd] = {}

    def crowd(self, node: int) -> Crowd:
        crowd = self._crowds.get(node)
        if crowd is None:
            crowd = self._crowds[node] = Crowd(self._members(node), self.limit)
        return crowd

    def forget(self, footprint: Footprint) -> None:
        """Drop the crowds that `footprint` joining or leaving the schedule can change: on
        its nodes, and on the nodes inside them (where it counts when it shares a day with a
        test of theirs). Those are worked out again when next asked for."""
        crowds = self._crowds
        if not crowds:
            return
        for node in footprint.surfaces:
            crowds.pop(node, None)
            for inside in self.schedule.occupied_inside(node):
                crowds.pop(inside, None)

    def build(self) -> None:
        """Work out every node's crowd now, rather than when first asked for."""
        for node in self.schedule.occupied:
            self.crowd(node)

    def overloads(self) -> list[Finding]:
        """A capacity finding for each run of days over the limit on each node (a crowd
        already reported on a node above is not reported again)."""
        found: list[Finding] = []
        reported: set[tuple[str, ...]] = set()
        paths = self.schedule.surfaces.paths
        for node in self.schedule.occupied:
            crowd = self.crowd(node)
            if crowd.days:
                runs = crowd.runs_over(self.limit)
                self._report(found, reported, paths[node], runs, crowd)
        return found

    def overloads_with(self, candidate: Footprint, *, indexed: bool = False) -> list[Finding]:
        """The capacity findings `candidate` would be part of, were it added to the schedule
        (in place of a test of the same key): those `overloads` would then report.
        `indexed`: `candidate` is the very footprint the schedule holds, so each kept crowd
        already counts it (a test re-checked after a neighbour changed)."""
        schedule, limit = self.schedule, self.limit
        paths, by_node = schedule.surfaces.paths, schedule.by_node
        first, last = candidate.start, candidate.end
        key, group = candidate.key, candidate.group
        found: list[Finding] = []
        reported: set[tuple[str, ...]] = set()
        if indexed:
            for node in self._nodes_taking(candidate):
                kept = self.crowd(node)
                if kept.days and any(m is candidate for m in kept.members):
                    runs = [r for r in kept.runs_over(limit) if r[0] <= last and r[1] >= first]
                    self._report(found, reported, paths[node], runs, kept)
            return found
        for node in self._nodes_taking(candidate):
            crowd = self.crowd(node) if node in by_node else None
            if (
                crowd is None
                or node in candidate.surfaces
                or key in crowd.keys
                or group in crowd.groups
            ):
                # Worked out afresh: on its own node the candidate brings the tests above
                # that share its days; elsewhere it replaces a member or shares a slot.
                crowd = Crowd(self._members(node, candidate), limit)
                if candidate in crowd.members:
                    runs = [
                        run for run in crowd.runs_over(limit) if run[0] <= last and run[1] >= first
                    ]
                    self._report(found, reported, paths[node], runs, crowd)
            elif crowd.days:
                runs = crowd.runs_with_one_more(first, last, limit)
                if runs:
                    self._report(found, reported, paths[node], runs, crowd, candidate)
        return found

    def _nodes_taking(self, candidate: Footprint) -> list[int]:
        """The nodes whose crowd would hold `candidate`, and maybe a few more, in preorder:
        its own, and those inside them with a test of their own running on one of its days
        (`candidate` joins a crowd below it only by sharing a day with one of those)."""
        surfaces, nested = self.schedule.surfaces, self.schedule.index_nested()
        key = candidate.key
        nodes = set(candidate.surfaces)
        for top in candidate.surfaces:
            schedule = nested.get(top)
            if schedule is None:
                continue
            taken = {
                node
                for other in schedule.running(candidate.start, candidate.end)
                if other.key != key
                for node in other.surfaces
            }
            end = surfaces.end[top]
            nodes.update(node for node in taken if top < node < end)
        return sorted(nodes)

    def _report(
        self,
        found: list[Finding],
        reported: set[tuple[str, ...]],
        path: str,
        runs: Iterable[Run],
        crowd: Crowd,
        extra: Footprint | None = None,
    ) -> None:
        """Add to `found` a finding per run, of the crowd's members running then (and
        `extra`), unless one with the same tests was already `reported` (on a node above:
        the same crowd)."""
        place = (Scope(ScopeKind.SURFACE, path), (path,))  # the findings' scope and surfaces
        for first, last, peak in runs:
            involved = crowd.running(first, last)
            if extra is not None:
                insert_by_number(involved, extra)
            keys = tuple([m.key for m in involved])
            if keys not in reported:
                reported.add(keys)
                found.append(_overload(place, keys, involved, (first, last, peak), self.limit))

    def _members(self, node: int, extra: Footprint | None = None) -> list[Footprint]:
        """The tests on `node` and those on nodes above that share a day with one of them;
        with `extra` added to the schedule (in place of a test of the same key)."""
        schedule = self.schedule
        above = schedule.surfaces.ancestors[node][1:]
        replaced = None if extra is None else extra.key
        own_schedule = schedule.by_node.get(node)
        own = [] if own_schedule is None else own_schedule.footprints
        own = [f for f in own if f.key != replaced]
        if extra is not None and node in extra.surfaces:
            own.append(extra)
        crowd = {f.key: f for f in own}
        for footprint in own:
            for ancestor in above:
                for other in schedule.on_node(ancestor, footprint.start, footprint.end):
                    if other.key != replaced:
                        crowd.setdefault(other.key, other)
                if extra is not None and ancestor in extra.surfaces and extra.overlaps(footprint):
                    crowd.setdefault(extra.key, extra)
        return list(crowd.values())


@cache
def _whole_shares(count: int) -> tuple[float, ...]:
    """Each test's whole traffic, for `count` tests: one tuple shared by the findings."""
    return (1.0,) * count


def _overload(
    place: tuple[Scope, tuple[str]],
    keys: tuple[str, ...],
    involved: Sequence[Footprint],
    run: Run,
    limit: int,
) -> Finding:
    scope, surfaces = place
    first, last, peak = run
    first_day, last_day = date.fromordinal(first), date.fromordinal(last)
    return Finding(
        kind=CollisionKind.CAPACITY,
        severity=Severity.BLOCKING,
        keys=keys,
        scope=scope,
        surfaces=surfaces,
        first_day=first_day,
        last_day=last_day,
        people_per_week=0,
        shares=_whole_shares(len(keys)),
        agile_vs_bau=mixed_teams(involved),
        describe=partial(_overload_text, surfaces[0], keys, peak, first_day, last_day, limit),
    )


def _overload_text(
    path: str, keys: tuple[str, ...], peak: int, first: date, last: date, limit: int
) -> str:
    return (
        f"{peak} tests run on {path} at once {format_span(first, last)} ({', '.join(keys)}); "
        f"the protocol allows {limit} per surface."
    )
