"""The plan as of the index's last slot: every active test's window, filed for what-ifs.

A registrant's slot is the one a full plan gives, but planning 10,000 tests per change is
what made a registration slow. So each warm index keeps a working plan: every active test's
slot, exactly as the planner's greedy pass would give it for the portfolio the index held
when the plan was last brought up to date (`tower.pipeline.slots` replays only what
changed since, then keeps the result). It starts from the stored plan, and again whenever
the ranks are scored for another day.

Two questions must be answered fast, without walking the portfolio:
- which windows could block a footprint somewhere in a stretch of days (the planner is
  handed them only then);
- whose slot a window appearing or leaving could change (`WorkingPlan` says which).

What a footprint could meet in the planner is what it shares: a surface (or one inside the
other), its exclusion group, or a capped channel, where the contact cap counts sends within
its days, so a window that many days away (minus one) still shares a stretch with it.
Entries are filed under those, week by week.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from tower.engine.planner import Placement, is_draft
from tower.engine.portfolio import Compiler, Footprint
from tower.experiments.spec import ExperimentStatus
from tower.pipeline.index import IndexView, PortfolioIndex, RowJournal, StoredPlan
from tower.pipeline.ranking import Position, RankOrder
from tower.pipeline.registry import policy_fingerprint

WEEK = 7
BUCKET_DAYS = 14  # windows are filed by fortnight: fewer lists, a few more windows per read
Shelf = tuple[str, int | str]  # ("at" | "within", surface) or ("channel" | "group", name)
FIRST: Position = (-1,)  # before every test
LAST: Position = (2,)  # after every test


@dataclass(frozen=True, eq=False)
class Slot:
    """One test in the working plan: the footprint it was planned with, where it stood in
    the rank order, its window (None: no free slot) and its row's (version, change stamp)
    then."""

    key: str
    footprint: Footprint
    position: Position
    window: Footprint | None
    row: tuple[int, str] | None
    live: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "live", self.footprint.item.status == ExperimentStatus.LIVE)


class _Filing:
    """Where a footprint is filed, and where what it could meet is read: each of its
    surfaces and every one around them, its capped channels and its group."""

    def __init__(self, compiler: Compiler) -> None:
        self.surfaces = compiler.graph.surfaces
        self.margins: dict[str, int] = {}  # per capped channel: days around a window
        for cap in compiler.policy.contact_caps:
            self.margins[cap.channel] = max(self.margins.get(cap.channel, 0), cap.per_days - 1)
        self._memo: dict[tuple[bool, tuple[int, ...], str | None], list[Shelf]] = {}

    def shelves(self, footprint: Footprint, *, filing: bool) -> list[Shelf]:
        """Filing: where what `footprint` covers goes (each of its surfaces, and each one
        around them). Reading: where what it could meet is (at or inside each of its
        surfaces, at each one around them). Then its capped channels and its group."""
        memo = (filing, footprint.surfaces, footprint.group)
        found = self._memo.get(memo)
        if found is None:
            found = self._memo[memo] = list(self._shelves(footprint, filing=filing))
        return found

    def _shelves(self, footprint: Footprint, *, filing: bool) -> Iterator[Shelf]:
        own, around = ("at", "within") if filing else ("within", "at")
        seen: set[Shelf] = set()
        for node in footprint.surfaces:
            shelves: list[Shelf] = [(own, node)]
            shelves += ((around, outer) for outer in self.surfaces.ancestors[node])
            channel = self.surfaces.channel(node)
            if channel in self.margins:
                shelves.append(("channel", channel))
            for shelf in shelves:
                if shelf not in seen:
                    seen.add(shelf)
                    yield shelf
        if footprint.group is not None:
            yield ("group", footprint.group)


class WindowShelves:
    """Windows by what they could block and by week; each week's windows of tests not
    live in rank order, so handing the planner those ahead of a test is reading each week
    on from where the last hand-over stopped."""

    def __init__(self, filing: _Filing) -> None:
        self.filing = filing
        self.ranked: dict[Shelf, dict[int, list[Slot]]] = defaultdict(dict)
        self.live: dict[Shelf, dict[int, list[Slot]]] = defaultdict(dict)

    def file(self, slot: Slot, window: Footprint) -> None:
        for shelf in self.filing.shelves(window, filing=True):
            weeks = (self.live if slot.live else self.ranked)[shelf]
            for week in _weeks(window.start, window.end):
                filed = weeks.get(week)
                if filed is None:
                    weeks[week] = [slot]
                elif slot.live or not filed or filed[-1].position < slot.position:
                    filed.append(slot)  # filed in rank order
                else:
                    insort(filed, slot, key=_position)

    def remove(self, slot: Slot, window: Footprint) -> None:
        for shelf in self.filing.shelves(window, filing=True):
            weeks = (self.live if slot.live else self.ranked)[shelf]
            for week in _weeks(window.start, window.end):
                filed = weeks[week]
                if slot.live:
                    filed.remove(slot)
                else:
                    del filed[bisect_left(filed, slot.position, key=_position)]

    def around(
        self, footprint: Footprint, first: int, last: int
    ) -> Iterator[tuple[list[Slot], list[Slot]]]:
        """The weeks of the windows `footprint` could meet in days [first, last]: for
        each, the live ones and the others in rank order."""
        for shelf in self.filing.shelves(footprint, filing=False):
            ranked, live = self.ranked.get(shelf), self.live.get(shelf)
            if ranked or live:
                for week in _weeks(first, last):
                    yield (
                        _NONE if live is None else live.get(week, _NONE),
                        _NONE if ranked is None else ranked.get(week, _NONE),
                    )


_NONE: list[Slot] = []  # read only


Span = Callable[["Slot"], tuple[int, int | None]]


class ReachShelves:
    """Slots by the days where a window could change them (`span`: from the first to the
    last; None: for good), on what they could meet."""

    def __init__(self, filing: _Filing, span: Span, *, weeks: int) -> None:
        self.filing, self.span = filing, span
        self.days = weeks * WEEK  # a bucket's
        self._by_week: dict[Shelf, dict[int, list[Slot]]] = defaultdict(lambda: defaultdict(list))
        self._for_good: dict[Shelf, list[Slot]] = defaultdict(list)

    def file(self, slot: Slot) -> None:
        for filed in self._lists(slot):
            filed.append(slot)

    def remove(self, slot: Slot) -> None:
        for filed in self._lists(slot):
            filed.remove(slot)

    def _lists(self, slot: Slot) -> Iterator[list[Slot]]:
        """The lists `slot` is filed in: per shelf, its weeks, or those for good."""
        first, last = self.span(slot)
        for shelf in self.filing.shelves(slot.footprint, filing=True):
            if last is None:
                yield self._for_good[shelf]
            else:
                weeks = self._by_week[shelf]
                yield from (
                    weeks[week] for week in range(first // self.days, last // self.days + 1)
                )

    def find(self, window: Footprint) -> Iterator[Slot]:
        """Slots `window` could reach (on a capped channel: within its margin of days); a
        slot may come more than once."""
        margins, span = self.filing.margins, self.span
        for kind, name in self.filing.shelves(window, filing=False):
            margin = margins.get(str(name), 0) if kind == "channel" else 0
            low, high = window.start - margin, window.end + margin
            for slot in self._for_good.get((kind, name), ()):
                if span(slot)[0] <= high:
                    yield slot
            weeks = self._by_week.get((kind, name))
            if not weeks:
                continue
            for week in range(low // self.days, high // self.days + 1):
                for slot in weeks.get(week, ()):
                    first, last = span(slot)
                    if first <= high and last is not None and last >= low:
                        yield slot


def _weeks(first: int, last: int) -> range:
    return range(first // BUCKET_DAYS, last // BUCKET_DAYS + 1)


def _position(slot: Slot) -> Position:
    return slot.position


def _window_days(slot: Slot) -> tuple[int, int | None]:
    assert slot.window is not None
    return slot.window.start, slot.window.end


def _requested_start_to_slot_end(slot: Slot) -> tuple[int, int | None]:
    return slot.footprint.start, None if slot.window is None else slot.window.end


class WorkingPlan:
    """Every active test's slot, filed three ways:
    - `windows`: each window, for the planner to be handed when it looks there;
    - `blocked_by`: each non-live test with a slot, over the days of its window: a window
      appearing there may block it (every earlier start was blocked and still is);
    - `freed_by`: each non-live test that could not keep its requested window, over the
      days from that start to the end of its slot (no slot: from its start on): a window
      leaving there may free an earlier start. A test in its requested window cannot move
      earlier.
    """

    def __init__(self, compiler: Compiler, scored_on: object) -> None:
        self.scored_on = scored_on
        self.slots: dict[str, Slot] = {}
        filing = _Filing(compiler)
        self.windows = WindowShelves(filing)
        # Spans from a requested start to a slot run long: they are filed a month at a time.
        self.blocked_by = ReachShelves(filing, _window_days, weeks=2)
        self.freed_by = ReachShelves(filing, _requested_start_to_slot_end, weeks=4)
        # Tests that changed before the plan was filed, so what their slot held is unknown:
        # from where each stood (or the first test after it), everything is placed again.
        self.unknown: dict[str, Position] = {}
        # The index's row journal as of the view the slots were last brought in line with:
        # the next replay looks only at the rows changed since (None: at every slot).
        self.journal: RowJournal | None = None

    def put(self, slot: Slot) -> None:
        self.drop(slot.key)
        self.slots[slot.key] = slot
        self._file(slot, add=True)

    def drop(self, key: str) -> None:
        slot = self.slots.pop(key, None)
        self.unknown.pop(key, None)
        if slot is not None:
            self._file(slot, add=False)

    def _file(self, slot: Slot, *, add: bool) -> None:
        window = slot.window
        if window is not None:
            (self.windows.file if add else self.windows.remove)(slot, window)
        if slot.live:
            return
        if window is not None:
            (self.blocked_by.file if add else self.blocked_by.remove)(slot)
        if window is None or window.start != slot.footprint.start:
            (self.freed_by.file if add else self.freed_by.remove)(slot)


def working_plan(
    index: PortfolioIndex, view: IndexView, stored: Callable[[], StoredPlan]
) -> WorkingPlan:
    """The index's working plan (take it holding `index.plan_lock`), filed from the
    `stored` plan for `view` on first use and when the ranks were scored for another day
    since."""
    plan = index.working_plan
    if plan is None or plan.scored_on != view.scored_on:
        plan = _from_stored(view, stored())
        index.working_plan = plan
    return plan


def _from_stored(index: IndexView, stored: StoredPlan) -> WorkingPlan:
    """The stored plan as a working plan. A stored slot stands where its test is at the
    version planned and the stored order still holds; from the first test where it does
    not, and from each test changed since (where it stood, or where it stands now, the
    earlier), everything is placed again."""
    plan = WorkingPlan(index.compiler, index.scored_on)
    if stored.policy != policy_fingerprint(index.policy):
        return plan  # planned under another policy: nothing in it stands
    ranks = index.ranks()
    # Each slot's place in the stored plan's pass: (draft, rank). A test whose row is as
    # planned was a draft then as it is now; one changed since may have been anything, so
    # it is taken as early as it could have stood.
    standing: list[tuple[tuple[bool, int], Position]] = []  # of the slots that stand
    changed: list[tuple[str, tuple[bool, int]]] = []
    last = (False, 0)
    for key in in_plan_order(ranks, index.footprints):
        placement = stored.placements.get(key)
        if placement is None:
            continue
        footprint = index.footprints[key]
        row = index.rows.get(footprint.item.number)
        version = stored.row_versions.get(key)
        position = plan_position(ranks, footprint)
        passed = (is_draft(footprint), placement.rank)
        if row is None or row[0] != version or passed < last:
            changed.append((key, (False, placement.rank)))
            continue
        last = passed
        standing.append((passed, position))
        plan.put(Slot(key, footprint, position, window_of(footprint, placement), row))
    plan.journal = index.journal
    standing.sort()
    # Tests in the stored plan that left the pipeline since count as changed too.
    changed += [
        (k, (False, p.rank)) for k, p in stored.placements.items() if k not in index.footprints
    ]
    for key, stored_at in changed:
        if key in stored.live:
            plan.unknown[key] = FIRST  # its window reached every test
            continue
        at = bisect_right(standing, (stored_at, LAST))
        plan.unknown[key] = standing[at][1] if at < len(standing) else LAST
    return plan


def plan_position(ranks: RankOrder, footprint: Footprint) -> Position:
    """Where the planner's greedy pass takes a test that is not live: those sent for
    review in rank order, then drafts in rank order (`Planner.plan`)."""
    return (is_draft(footprint), *ranks.position(footprint.key))


def in_plan_order(ranks: RankOrder, footprints: Mapping[str, Footprint]) -> list[str]:
    """Every key of `ranks` in the order of `plan_position`."""
    keys = ranks.in_order()
    return [k for k in keys if not is_draft(footprints[k])] + [
        k for k in keys if is_draft(footprints[k])
    ]


def window_of(footprint: Footprint, placement: Placement) -> Footprint | None:
    """`footprint` where `placement` puts it (None: nowhere; itself where it asked)."""
    if placement.planned_start is None:
        return None
    start = placement.planned_start.toordinal()
    return footprint if start == footprint.start else footprint.shifted(start)
