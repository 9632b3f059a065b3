"""The pipeline planner: the ranked list, greedily given room.

Tests are placed in rank order: live tests first (they are already running), drafts last (a
draft holds nothing). Each keeps its requested window unless something placed before it
blocks it: a blocking surface collision with a test placed earlier, an exclusion group over
100%, a contact cap its channel would break, a freeze window on its surfaces for its team
kind, or a surface already at the protocol's capacity. Then it moves to the next free slot:
the earliest later start that clears all of them, keeping its duration.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial

from tower.engine.collector import without_collector
from tower.engine.collisions import PairRules
from tower.engine.contact_slots import next_start_within_cap
from tower.engine.crowding import FULL_TRAFFIC, running_stretches
from tower.engine.findings import format_day
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.schedule import DaySchedule, SurfaceSchedule
from tower.experiments.spec import ExperimentStatus
from tower.policy.freezes import Freeze
from tower.policy.schema import WEEKDAYS

DEFAULT_HORIZON_DAYS = 365


@dataclass(frozen=True)
class Placement:
    """Where the planner put one test, and why it is not where it was asked to be."""

    key: str
    rank: int
    requested_start: date
    requested_end: date
    planned_start: date | None  # None: no free slot within the horizon, or by the deadline
    planned_end: date | None
    reasons: tuple[str, ...]
    horizon_days: int = DEFAULT_HORIZON_DAYS
    deadline: date | None = None  # the last day the test may run on
    misses_deadline: bool = False  # no slot ends by the deadline (a live test: it runs past)

    @property
    def moved_days(self) -> int:
        if self.planned_start is None:
            return 0
        return (self.planned_start - self.requested_start).days

    @property
    def explanation(self) -> str:
        if self.misses_deadline and self.deadline is not None:
            said = f"no slot ends by its deadline {format_day(self.deadline)}"
            if self.planned_start is not None:  # live: it runs where it runs
                return f"{said}: it is live and runs to {format_day(self.requested_end)}"
            if not self.reasons:
                return f"{said}: its window alone runs past it"
            return f"{said}: " + "; ".join(self.reasons)
        if self.planned_start is None:
            return f"no free slot within {self.horizon_days} days: " + "; ".join(self.reasons)
        if not self.moved_days:
            return "keeps its requested window"
        days = self.moved_days
        return f"moved {days} day{'s' if days != 1 else ''}: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class _Blocker:
    until: int  # the earliest start that could clear it
    reason: str
    never: bool = False  # no start clears it (the policy's doing, not the calendar's)


Supply = Callable[[Footprint, int, int], None]


class Planner:
    """Places ranked footprints one by one; reusable for what-if checks of one more test.

    A planner given `supply` calls it with a footprint and a stretch of days before it looks
    for what could block that footprint there; `supply` may then `reserve` windows placed
    earlier (a what-if check against a stored plan hands over only the windows it needs).
    """

    def __init__(
        self,
        compiler: Compiler,
        *,
        horizon_days: int = DEFAULT_HORIZON_DAYS,
        supply: Supply | None = None,
    ) -> None:
        self.compiler = compiler
        self.supply = supply
        self.rules = PairRules(compiler)
        self.surfaces = compiler.graph.surfaces
        self.placed = SurfaceSchedule(self.surfaces)
        self.by_channel: dict[str, DaySchedule] = defaultdict(DaySchedule)
        self.caps = compiler.policy.contact_caps
        self.groups: dict[str, list[Footprint]] = {}
        self.limit = compiler.policy.protocol.max_concurrent_per_surface
        self.horizon_days = horizon_days
        self.freezes = [
            Freeze(
                window.name,
                window.start.toordinal(),
                window.end.toordinal(),
                tuple(self.surfaces.ids[path] for path in window.surfaces) or None,
                frozenset(window.team_kinds),
            )
            for window in compiler.policy.freeze_windows
        ]
        self._rank_of: dict[str, int] = {}

    @without_collector
    def plan(self, ranked: Sequence[Footprint]) -> list[Placement]:
        """Placements in rank order. Live tests keep their windows and are placed first,
        then the tests sent for review by rank, then drafts by rank (a draft holds
        nothing another test needs)."""
        live = [f for f in ranked if f.item.status == ExperimentStatus.LIVE]
        others = [f for f in ranked if f.item.status != ExperimentStatus.LIVE]
        self._rank_of = {f.key: rank for rank, f in enumerate(ranked, start=1)}
        placements = [self.keep(f) for f in live]
        placements += [self.place(f) for f in sorted(others, key=is_draft)]
        return sorted(placements, key=lambda p: p.rank)

    def place(self, footprint: Footprint, *, rank: int | None = None) -> Placement:
        """Give `footprint` its requested window or the next free slot, and reserve it
        (`rank`: its rank, when it is placed outside `plan`)."""
        if rank is not None:
            self._rank_of[footprint.key] = rank
        planned, reasons, misses_deadline = self._next_free(footprint)
        if planned is not None:
            self.reserve(planned)
        return self._placement(footprint, planned, reasons, misses_deadline)

    def is_free(self, footprint: Footprint) -> bool:
        """Whether `footprint`'s own window clears everything placed so far."""
        return next(iter(self._blockers(footprint)), None) is None

    def free_slot(self, footprint: Footprint) -> tuple[date, date] | None:
        """The next free slot for `footprint` among what is placed, without reserving it."""
        planned, _, _ = self._next_free(footprint)
        if planned is None:
            return None
        return date.fromordinal(planned.start), date.fromordinal(planned.end)

    def _next_free(self, footprint: Footprint) -> tuple[Footprint | None, list[str], bool]:
        """The footprint moved to its earliest unblocked start, what it had to avoid, and
        whether its deadline (not the horizon) is why it has no slot.

        Each blocker blocks every start up to its `until`, so jumping to the latest `until`
        of the current blockers never skips a free slot. A window never ends after the
        test's deadline: past the last start that ends by it, there is no slot.
        """
        start, latest = footprint.start, footprint.start + self.horizon_days
        deadline = footprint.item.deadline
        by_deadline = False
        if deadline is not None and deadline.toordinal() - footprint.days + 1 < latest:
            latest, by_deadline = deadline.toordinal() - footprint.days + 1, True
        reasons: list[str] = []
        until: dict[str, int] = {}  # each reason: the first start it no longer blocks
        while start <= latest:
            moved = footprint.shifted(start)
            blockers = list(self._blockers(moved))
            if not blockers:
                return moved, reasons, False
            if any(blocker.never for blocker in blockers):
                return None, [b.reason for b in blockers if b.never], False
            for blocker in blockers:
                if blocker.reason not in until:
                    reasons.append(blocker.reason)
                until[blocker.reason] = max(until.get(blocker.reason, 0), blocker.until)
            start = max(b.until for b in blockers)
        if by_deadline:  # say how long each blocks: past the deadline
            reasons = [f"{r} until {_short_day(until[r] - 1)}" for r in reasons]
        return None, reasons, by_deadline

    def keep(self, footprint: Footprint, *, rank: int | None = None) -> Placement:
        """Leave `footprint` in its window (a live test), and reserve it."""
        if rank is not None:
            self._rank_of[footprint.key] = rank
        self.reserve(footprint)
        deadline = footprint.item.deadline
        runs_past = deadline is not None and footprint.end > deadline.toordinal()
        return self._placement(footprint, footprint, [], runs_past)

    def reserve(self, footprint: Footprint) -> None:
        """Hold `footprint`'s window, as placed (here, or by an earlier plan). Among windows
        starting the same day, the schedules keep number order, so what blocks a test (and
        the reasons it is told) never depends on the order windows were reserved in."""
        self.placed.insert(footprint)
        for channel in self._channels(footprint):
            self.by_channel[channel].insert(footprint)
        if footprint.group is not None:
            self.groups.setdefault(footprint.group, []).append(footprint)

    def _placement(
        self,
        requested: Footprint,
        planned: Footprint | None,
        reasons: list[str],
        misses_deadline: bool,
    ) -> Placement:
        return Placement(
            key=requested.key,
            rank=self._rank_of.get(requested.key, 0),
            requested_start=date.fromordinal(requested.start),
            requested_end=date.fromordinal(requested.end),
            planned_start=None if planned is None else date.fromordinal(planned.start),
            planned_end=None if planned is None else date.fromordinal(planned.end),
            reasons=tuple(reasons) if planned is None or planned.start != requested.start else (),
            horizon_days=self.horizon_days,
            deadline=requested.item.deadline,
            misses_deadline=misses_deadline,
        )

    def _blockers(self, footprint: Footprint) -> Iterator[_Blocker]:
        """What blocks this window, cheapest checks first; the costly ones only run once
        the cheap ones pass (any blocker alone is a safe jump)."""
        if self.supply is not None:
            self.supply(footprint, footprint.start, footprint.end)
        for check in (
            self._send_day_blockers,
            self._freeze_blockers,
            self._collision_blockers,
            self._group_blockers,
            self._capacity_blockers,
            self._contact_cap_blockers,
        ):
            found = list(check(footprint))
            if found:
                yield from found
                return

    def _channels(self, footprint: Footprint) -> set[str]:
        return {self.surfaces.channel(node) for node in footprint.surfaces}

    def _contact_cap_blockers(self, footprint: Footprint) -> Iterator[_Blocker]:
        channels = self._channels(footprint)
        supply = self.supply
        for cap in self.caps:
            if cap.channel not in channels:
                continue
            if supply is None and cap.channel not in self.by_channel:
                continue
            until, block = next_start_within_cap(
                self.compiler,
                self.by_channel[cap.channel],
                cap,
                footprint,
                latest=footprint.start + self.horizon_days,
                looking=None if supply is None else partial(supply, footprint),
            )
            if block is not None:
                yield _Blocker(
                    until,
                    f"{cap.channel} contact cap ({cap.max} per {cap.per_days} days) "
                    f"with {', '.join(sorted(m.key for m in block.crowd))}",
                )

    def _collision_blockers(self, footprint: Footprint) -> Iterator[_Blocker]:
        seen: set[str] = set()
        for other in self.placed.nested_with(footprint, footprint.start, footprint.end):
            if other.key in seen or other.key == footprint.key:
                continue
            seen.add(other.key)
            if self.rules.blocks(footprint, other):
                where = self._shared_path(footprint, other)
                if other.item.status == ExperimentStatus.LIVE:
                    why = "is already live"
                elif is_draft(footprint) and not is_draft(other):
                    why = f"is {other.item.status.value.replace('_', ' ')} (drafts come after)"
                else:
                    why = "ranks higher"
                yield _Blocker(other.end + 1, f"{other.key} {why} on {where}")

    def _send_day_blockers(self, footprint: Footprint) -> Iterator[_Blocker]:
        """A start on a day its surfaces do not send on: blocked until the next one that
        does (every start until then is blocked too)."""
        allowed = self.surfaces.allowed_starts(footprint.surfaces)
        if allowed is None or date.fromordinal(footprint.start).weekday() in allowed:
            return
        paths = ", ".join(self.surfaces.paths[node] for node in footprint.surfaces)
        if not allowed:
            yield _Blocker(footprint.start + 1, f"{paths} share no send day", never=True)
            return
        yield _Blocker(
            next_send_day(footprint.start, allowed), f"{paths} sends only on {day_names(allowed)}"
        )

    def _freeze_blockers(self, footprint: Footprint) -> Iterator[_Blocker]:
        kind = "agile" if footprint.agile else "bau"
        start, end, surfaces = footprint.start, footprint.end, footprint.surfaces
        for freeze in self.freezes:
            if freeze.holds_back(kind, start, end, surfaces, self.surfaces.nested):
                yield _Blocker(freeze.end + 1, f"freeze window {freeze.name!r}")

    def _group_blockers(self, footprint: Footprint) -> Iterator[_Blocker]:
        if footprint.group is None:
            return
        members = [
            m
            for m in self.groups.get(footprint.group, [])
            if m.start <= footprint.end and m.end >= footprint.start
        ]
        over = [
            day
            for day in range(footprint.start, footprint.end + 1)
            if footprint.traffic + sum(m.traffic for m in members if m.start <= day <= m.end)
            > FULL_TRAFFIC
        ]
        if over:
            # Every start up to the end of the first over-full stretch still covers a full day.
            yield _Blocker(
                _end_of_run(over) + 1,
                f"exclusion group {footprint.group!r} would pass 100% of traffic",
            )

    def _capacity_blockers(self, footprint: Footprint) -> Iterator[_Blocker]:
        for node in self._covered_nodes(footprint):
            crowd = {
                other.key: other
                for ancestor in self.surfaces.ancestors[node]
                for other in self.placed.on_node(ancestor, footprint.start, footprint.end)
                if other.key != footprint.key
            }
            own = footprint.group or footprint.key
            if len({own, *(o.group or o.key for o in crowd.values())}) <= self.limit:
                continue  # not enough tests around to pass the limit on any day
            over = [
                day
                for first, after, running in running_stretches([footprint, *crowd.values()])
                if footprint in running and len({o.group or o.key for o in running}) > self.limit
                for day in range(first, after)
            ]
            if over:
                path = self.surfaces.paths[node]
                yield _Blocker(
                    _end_of_run(over) + 1, f"{path} already has {self.limit} tests running"
                )
                return

    def _covered_nodes(self, footprint: Footprint) -> Iterable[int]:
        """The test's own nodes, and the nodes inside them where a test runs in its window
        (elsewhere inside, the crowd is the one on the test's own node)."""
        nodes = set(footprint.surfaces)
        for node in footprint.surfaces:
            nodes.update(
                inner
                for inner in self.placed.occupied_inside(node)
                if self.placed.on_node(inner, footprint.start, footprint.end)
            )
        return sorted(nodes)

    def _shared_path(self, a: Footprint, b: Footprint) -> str:
        nodes = sorted(
            self.surfaces.deeper(x, y)
            for x in a.surfaces
            for y in b.surfaces
            if self.surfaces.nested(x, y)
        )
        return self.surfaces.paths[nodes[0]] if nodes else "a shared surface"


def next_send_day(ordinal: int, allowed: frozenset[int]) -> int:
    """The first day from `ordinal` on whose weekday (Monday 0) is in `allowed` (not empty)."""
    weekday = date.fromordinal(ordinal).weekday()
    return ordinal + min((day - weekday) % 7 for day in allowed)


def day_names(allowed: frozenset[int]) -> str:
    """`Tue and Thu`."""
    names = [WEEKDAYS[day].capitalize() for day in sorted(allowed)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _short_day(ordinal: int) -> str:
    """`5 Sep`."""
    day = date.fromordinal(ordinal)
    return f"{day.day} {day:%b}"


def is_draft(footprint: Footprint) -> bool:
    """Whether the test is a draft: planned after every test sent for review."""
    return footprint.item.status == ExperimentStatus.DRAFT


def _end_of_run(days: list[int]) -> int:
    """The last day of the consecutive stretch that starts the sorted list `days`."""
    last = days[0]
    for day in days[1:]:
        if day != last + 1:
            break
        last = day
    return last
