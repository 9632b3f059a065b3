"""Collision detection between pairs of tests: same surface (or nested) and funnel neighbours.

A `surface` collision needs all of: a shared day, nested surfaces (same node, or one inside
the other), people both can reach, and no shared exclusion group. A `funnel` warning is two
tests on different steps of one funnel with shared days and people: the upstream test changes
who reaches the downstream one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from functools import cached_property, partial
from typing import NamedTuple

from tower.engine.findings import (
    TINY_OVERLAP_SHARE,
    Finding,
    format_people,
    format_share,
    format_span,
)
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.portfolio import AUDIENCE_OF, Compiler, Footprint, outermost
from tower.engine.schedule import (
    DaySchedule,
    SurfaceSchedule,
    insert_by_number,
    remove_by_number,
)
from tower.engine.scope import PAIR_SCOPE, Scope, ScopeKind


class PairRules:
    """Decides whether two tests collide and describes how; knows nothing of the portfolio."""

    def __init__(self, compiler: Compiler) -> None:
        self.compiler = compiler
        self.surfaces = compiler.graph.surfaces
        self._path_alone = [(path,) for path in self.surfaces.paths]  # a finding's surfaces
        self._funnel_scopes = {
            name: Scope(ScopeKind.FUNNEL, name) for name in compiler.graph.funnels
        }
        self._team_names = {team.key: team.name for team in compiler.policy.teams}
        # Funnel steps per footprint object (kept with it, so an id is never reused wrongly).
        self._steps: dict[int, tuple[Footprint, list[tuple[str, int]]]] = {}
        self._step_places: dict[int, list[tuple[str, int]]] = {}
        self._step_order: dict[tuple[str, int], int] = {}
        for name, steps in compiler.graph.funnels.items():
            for index, step in enumerate(steps):
                self._step_order[(name, index)] = len(self._step_order)
                self._step_places.setdefault(step, []).append((name, index))

    def surface_overlap(self, a: Footprint, b: Footprint) -> _Overlap | None:
        """Where, when and how much `a` and `b` overlap, if the four conditions all hold."""
        if a.group is not None and a.group == b.group:
            return None
        first, last = max(a.start, b.start), min(a.end, b.end)
        if first > last:
            return None
        people = self.compiler.audiences.shared(a.audience, b.audience)
        if people <= 0:
            return None
        surfaces = self.surfaces
        if len(a.surfaces) == len(b.surfaces) == 1:  # the usual case: one node each
            x, y = a.surfaces[0], b.surfaces[0]
            if not surfaces.nested(x, y):
                return None
            nodes = [surfaces.deeper(x, y)]
        else:
            shared_nodes = {
                surfaces.deeper(x, y)
                for x in a.surfaces
                for y in b.surfaces
                if surfaces.nested(x, y)
            }
            if not shared_nodes:
                return None
            nodes = (
                list(shared_nodes) if len(shared_nodes) == 1 else outermost(shared_nodes, surfaces)
            )
        common = self._on_surfaces(people, nodes)
        shares = (self._share(a, common, b), self._share(b, common, a))
        return _Overlap(first, last, nodes, common, shares)

    def blocks(self, a: Footprint, b: Footprint) -> bool:
        """Whether `a` and `b` are in a blocking surface collision."""
        overlap = self.surface_overlap(a, b)
        return overlap is not None and max(overlap.shares) >= TINY_OVERLAP_SHARE

    def surface_collision(self, a: Footprint, b: Footprint) -> Finding | None:
        """The surface collision between `a` and `b`, if the four conditions hold."""
        overlap = self.surface_overlap(a, b)
        if overlap is None:
            return None
        first, last, nodes, common, shares = overlap
        severity = Severity.BLOCKING if max(shares) >= TINY_OVERLAP_SHARE else Severity.WARNING
        paths: tuple[str, ...]
        if len(nodes) == 1:  # the usual case: one tuple per node, shared by its findings
            paths = self._path_alone[nodes[0]]
        else:
            paths = tuple([self.surfaces.paths[node] for node in nodes])
        first_day, last_day = date.fromordinal(first), date.fromordinal(last)
        describe = partial(self._surface_text, a, b, paths, first_day, last_day, common, shares)
        return Finding(
            kind=CollisionKind.SURFACE,
            severity=severity,
            keys=(a.key, b.key),
            scope=PAIR_SCOPE,
            surfaces=paths,
            first_day=first_day,
            last_day=last_day,
            people_per_week=round(common),
            shares=shares,
            agile_vs_bau=a.agile != b.agile,
            describe=describe,
        )

    def funnel_collision(self, funnel: str, a: Footprint, b: Footprint) -> Finding | None:
        """A warning for tests on different steps of `funnel` with shared days and people.
        Upstream is the one with the earlier first step (on a tie, the first registered)
        unless only the other way round is one step before another: either order of `a`
        and `b` gives the same finding."""
        steps_a, steps_b = self._step_range(funnel, a), self._step_range(funnel, b)
        if (steps_b[0], b.item.number) < (steps_a[0], a.item.number):
            (a, steps_a), (b, steps_b) = (b, steps_b), (a, steps_a)
        if steps_b[1] <= steps_a[0]:  # b's steps all come first: it is upstream
            (a, steps_a), (b, steps_b) = (b, steps_b), (a, steps_a)
        upstream, downstream = a, b
        up_step, down_step = steps_a[0], steps_b[1]
        if down_step <= up_step:
            return None  # both on one step
        if upstream.group is not None and upstream.group == downstream.group:
            return None
        if any(self.surfaces.nested(x, y) for x in upstream.surfaces for y in downstream.surfaces):
            return None  # a surface collision already covers them
        first, last = max(upstream.start, downstream.start), min(upstream.end, downstream.end)
        if first > last:
            return None
        people = self.compiler.audiences.shared(upstream.audience, downstream.audience)
        if people <= 0:
            return None
        steps = self.compiler.graph.funnels[funnel]
        common = self._on_surfaces(people, [steps[down_step]])
        shares = (
            self._share(upstream, common, downstream),
            self._share(downstream, common, upstream),
        )
        span = (date.fromordinal(first), date.fromordinal(last))
        up_path, down_path = (
            self.surfaces.paths[steps[up_step]],
            self.surfaces.paths[steps[down_step]],
        )
        describe = partial(
            self._funnel_text,
            funnel,
            (upstream, up_path, up_step),
            (downstream, down_path, down_step),
            span,
            common,
        )
        keys, paths = (upstream.key, downstream.key), (up_path, down_path)
        if upstream.item.number > downstream.item.number:  # keys in registration order
            keys, paths, shares = keys[::-1], paths[::-1], shares[::-1]
        return Finding(
            kind=CollisionKind.FUNNEL,
            severity=Severity.WARNING,
            keys=keys,
            scope=self._funnel_scopes[funnel],
            surfaces=paths,
            first_day=span[0],
            last_day=span[1],
            people_per_week=round(common),
            shares=shares,
            agile_vs_bau=upstream.agile != downstream.agile,
            describe=describe,
        )

    def _on_surfaces(self, people: float, nodes: Iterable[int]) -> float:
        """People per week of an audience overlap who actually visit the given surfaces."""
        population = self.compiler.graph.segments.population
        all_visitors = self.surfaces.visitors
        total = 0.0
        for node in nodes:
            visitors = all_visitors[node]
            total += people if visitors is None else visitors * people / population
        return min(total, people)

    def _share(self, footprint: Footprint, common: float, other: Footprint) -> float:
        """Share of `footprint`'s eligible traffic that `other` also reaches."""
        reach = footprint.reach
        return min(1.0, common * other.traffic / reach) if reach else 0.0

    # The explanations, written only when read (a partial holds far fewer objects than a
    # closure: a scan keeps tens of thousands of them).

    def _surface_text(
        self,
        a: Footprint,
        b: Footprint,
        paths: tuple[str, ...],
        first: date,
        last: date,
        common: float,
        shares: tuple[float, float],
    ) -> str:
        return (
            f"{self._who(a)} and {self._who(b)} both run on {', '.join(paths)} "
            f"{format_span(first, last)}. {format_people(common).capitalize()} people a week are "
            f"eligible for both: {format_share(shares[0])} of {a.key}'s traffic and "
            f"{format_share(shares[1])} of {b.key}'s."
        )

    def _funnel_text(
        self,
        funnel: str,
        upstream: tuple[Footprint, str, int],
        downstream: tuple[Footprint, str, int],
        span: tuple[date, date],
        common: float,
    ) -> str:
        (up, up_path, up_step), (down, down_path, down_step) = upstream, downstream
        return (
            f"{self._who(up)} on {up_path} (step {up_step + 1} of the {funnel} funnel) "
            f"changes who reaches {self._who(down)} on {down_path} (step {down_step + 1}) "
            f"{format_span(*span)}: {format_people(common)} people a week can see both."
        )

    def _who(self, footprint: Footprint) -> str:
        team = footprint.item.spec.team
        name = self._team_names.get(team, team)
        return f"{footprint.key} ({name}, {'agile' if footprint.agile else 'BAU'})"

    def _step_range(self, funnel: str, footprint: Footprint) -> tuple[int, int]:
        """The first and last step of `funnel` the test is on."""
        on = [step for name, step in self.steps_of(footprint) if name == funnel]
        return min(on), max(on)

    def steps_of(self, footprint: Footprint) -> list[tuple[str, int]]:
        """(funnel, step index) for each funnel step a surface of `footprint` lies in."""
        cached = self._steps.get(id(footprint))
        if cached is not None and cached[0] is footprint:
            return cached[1]
        # A surface lies in a step when the step is on its ancestor chain.
        found = sorted(
            {
                place
                for node in footprint.surfaces
                for ancestor in self.surfaces.ancestors[node]
                for place in self._step_places.get(ancestor, ())
            },
            key=self._step_order.__getitem__,
        )
        self._steps[id(footprint)] = (footprint, found)
        return found

    def forget(self, footprint: Footprint) -> None:
        """Drop what is kept about `footprint` (a test that left the portfolio)."""
        cached = self._steps.get(id(footprint))
        if cached is not None and cached[0] is footprint:
            del self._steps[id(footprint)]


class _Overlap(NamedTuple):  # a tuple: made once per colliding pair, so made cheaply
    first: int
    last: int
    nodes: list[int]
    people: float
    shares: tuple[float, float]


class PairDetector:
    """Finds pairwise collisions in a portfolio through a surface/day index."""

    def __init__(self, compiler: Compiler, footprints: Iterable[Footprint]) -> None:
        self.rules = PairRules(compiler)
        self.footprints = list(footprints)  # in number order, for `replace`
        self.schedule = SurfaceSchedule(compiler.graph.surfaces, self.footprints)

    def replace(self, old: Footprint | None, new: Footprint | None) -> None:
        """Put `new` in the portfolio in place of `old` (None: no test), each index as if
        built anew from the portfolio in number order."""
        funnels: dict[str, list[DaySchedule]] | None = vars(self).get("_funnel_steps")
        if old is not None:
            remove_by_number(self.footprints, old)
            self.schedule.remove(old)
            if funnels is not None:
                for name, step in self.rules.steps_of(old):
                    funnels[name][step].remove(old)
            self.rules.forget(old)
        if new is not None:
            insert_by_number(self.footprints, new)
            self.schedule.insert(new)
            if funnels is not None:
                for name, step in self.rules.steps_of(new):
                    funnels[name][step].insert(new)

    def index_funnels(self) -> None:
        """Index the tests on each funnel step now rather than on the first funnel check."""
        self._funnel_steps  # noqa: B018 (a cached property, built by reading it)

    @cached_property
    def _funnel_steps(self) -> dict[str, list[DaySchedule]]:
        """Per funnel, the tests on each step (indexed when funnels are first asked about)."""
        funnels = self.rules.compiler.graph.funnels
        steps = {name: [DaySchedule() for _ in nodes] for name, nodes in funnels.items()}
        for footprint in self.footprints:
            for name, step in self.rules.steps_of(footprint):
                steps[name][step].add(footprint)
        return steps

    def surface_pairs(self) -> Iterator[tuple[Footprint, Footprint]]:
        """Every pair of distinct tests that share a day and a surface subtree, once each.

        Each test looks up from its own nodes. Two tests on one node each find the other:
        the one registered first keeps the pair. A test on a node above finds nothing below
        it, so no other pair can come twice, unless a test has several surfaces.
        """
        seen: set[tuple[str, str]] = set()
        ancestors, on_node = self.schedule.surfaces.ancestors, self.schedule.on_node
        for footprint in self.footprints:
            single = len(footprint.surfaces) == 1
            for node in footprint.surfaces:
                for ancestor in ancestors[node]:
                    for other in on_node(ancestor, footprint.start, footprint.end):
                        if other is footprint:
                            continue
                        pair = _ordered(footprint, other)
                        if single and len(other.surfaces) == 1:
                            if ancestor != node or pair[0] is footprint:
                                yield pair
                            continue
                        ids = (pair[0].key, pair[1].key)
                        if ids not in seen:
                            seen.add(ids)
                            yield pair

    def surface_neighbours(self, footprint: Footprint) -> Iterator[Footprint]:
        """Tests sharing a day and a surface subtree with `footprint` (which may be new)."""
        seen = {footprint.key}
        for other in self.schedule.nested_with(footprint, footprint.start, footprint.end):
            if other.key not in seen:
                seen.add(other.key)
                yield other

    def scan(self) -> list[Finding]:
        """Every surface collision and funnel warning in the portfolio."""
        findings = [
            finding
            for a, b in self.surface_pairs()
            if (finding := self.rules.surface_collision(a, b)) is not None
        ]
        findings.extend(self._funnel_scan())
        return findings

    def check(self, footprint: Footprint) -> list[Finding]:
        """The pairwise findings that involve `footprint`, each once."""
        rules = self.rules
        # Most neighbours of a wide test share nobody with it: a cached look-up turns them away.
        neighbours = rules.compiler.audiences.sharing_with(
            footprint.audience, self.surface_neighbours(footprint), AUDIENCE_OF
        )
        findings = [  # each neighbour comes once, so each pair does
            finding
            for other in neighbours
            if (finding := rules.surface_collision(*_ordered(footprint, other))) is not None
        ]
        funnels: dict[tuple[str, ...], Finding] = {}  # by funnel and keys: each once
        for name, step in rules.steps_of(footprint):
            for other_step, schedule in enumerate(self._funnel_steps[name]):
                if other_step == step:
                    continue
                for other in schedule.running(footprint.start, footprint.end):
                    if other.key != footprint.key:
                        pair = (footprint, other) if step < other_step else (other, footprint)
                        finding = rules.funnel_collision(name, *pair)
                        if finding is not None:
                            funnels[(name, *finding.keys)] = finding
        findings.extend(funnels.values())
        return findings

    def _funnel_scan(self) -> Iterator[Finding]:
        for name, schedules in self._funnel_steps.items():
            seen: set[tuple[str, str]] = set()
            for up_step, upstream_schedule in enumerate(schedules):
                for upstream in upstream_schedule.footprints:
                    for down_step in range(up_step + 1, len(schedules)):
                        for downstream in schedules[down_step].running(
                            upstream.start, upstream.end
                        ):
                            ids = _ordered_keys(upstream, downstream)
                            if downstream.key == upstream.key or ids in seen:
                                continue
                            seen.add(ids)
                            finding = self.rules.funnel_collision(name, upstream, downstream)
                            if finding is not None:
                                yield finding


def _ordered_keys(a: Footprint, b: Footprint) -> tuple[str, str]:
    first, second = _ordered(a, b)
    return first.key, second.key


def _ordered(a: Footprint, b: Footprint) -> tuple[Footprint, Footprint]:
    return (a, b) if a.item.number <= b.item.number else (b, a)
