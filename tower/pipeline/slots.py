"""A test's rank and next free slot right after a change, without planning the portfolio.

What a registrant is told at once (the DM) and where *Move to next free slot* proposes to
go. The slot is the one a full plan would give, worked out from the stored plan: only the
tests that changed since it was last brought up to date, or whose slot a changed window
could change, are placed again (`_Replay` says exactly when a slot still stands).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.engine.planner import Placement, Planner
from tower.engine.portfolio import Footprint
from tower.engine.score import Score, ScoringError
from tower.experiments.spec import ExperimentStatus, format_key
from tower.pipeline import registry
from tower.pipeline.index import IndexView, PortfolioIndex, warm_index
from tower.pipeline.ranking import Position
from tower.pipeline.working_plan import (
    FIRST,
    Slot,
    WorkingPlan,
    in_plan_order,
    plan_position,
    window_of,
    working_plan,
)


@dataclass(frozen=True)
class StandingNow:
    """Where a test stands right after a change: what its registrant is told at once."""

    rank: int | None  # None: it cannot be scored
    scored: int  # how many tests have a rank
    score: Score | ScoringError
    placement: Placement


def standing_now(session: Session, ctx: ServiceContext, key: str) -> StandingNow | None:
    """Rank, score and slot of test `key` from the warm index (None if it is not in the
    pipeline). Reads only."""
    index = warm_index(session, ctx.policy, ctx.today)
    with index.lock:  # held briefly: changes wait for it
        index.catch_up(session, registry.peek(session))
        if key not in index.ranks():
            return None
        view = index.view()
    score = view.scores[key]
    rank = view.ranks()[key] if isinstance(score, Score) else None
    with index.plan_lock:
        placement = _placement(session, index, view, key)
    return StandingNow(rank, view.ranks().scored, score, placement)


def keep_up(session: Session, ctx: ServiceContext) -> bool:
    """Catch this process's index and working plan up with the changes other processes
    made, and the working plan with those a slot asked for here left to replay (whether
    there were any), so the next change here does not pay for them. Reads only."""
    index = warm_index(session, ctx.policy, ctx.today)
    mark = registry.peek(session)
    if mark == index.mark and not _plan_lags(index):
        return False
    with index.lock:
        index.catch_up(session, mark)
        view = index.view()
    with index.plan_lock:
        _Replay(view, working_plan(index, view, lambda: index.stored_plan(session))).settle()
    return True


def _plan_lags(index: PortfolioIndex) -> bool:
    """Whether the working plan misses changes the index took in (a slot asked for left
    them to be replayed later)."""
    plan = index.working_plan
    if plan is None:
        return False  # filed on first use
    filed, taken = plan.journal, index.journal
    return filed is None or filed.numbers is not taken or filed.at != len(taken)


def placement_now(session: Session, ctx: ServiceContext, key: str) -> Placement | None:
    """Where the plan would put test `key` now (None if it is not in the pipeline). Reads
    only."""
    standing = standing_now(session, ctx, key)
    return None if standing is None else standing.placement


def _placement(session: Session, index: PortfolioIndex, view: IndexView, key: str) -> Placement:
    """The slot of `key` (in `view`, of `index`) as a full plan would give it."""
    own = view.footprints[key]
    rank = view.ranks()[key]
    if _is_live(own):  # kept where it runs, whatever else is planned
        return Planner(view.compiler).keep(own, rank=rank)
    plan = working_plan(index, view, lambda: index.stored_plan(session))
    return _Replay(view, plan).run(key, rank, settled_later=index.kept_up)


# Why a test is placed again, weakest first (a stronger reason replaces a weaker).
_MET_NEW_WINDOW = 1  # a window appeared where it could block it: it may have to move
_MET_LEFT_WINDOW = 2  # a window left where it blocked it: it may move earlier
_CHANGED = 3  # it, or the order before it, changed since the plan
_ASKED = 4  # the test whose slot is asked for


class _Replay:
    """The planner's greedy pass over the working plan, replaying only what changed.

    The planner keeps live tests where they run, then places the others in rank order,
    each at the earliest start that clears what was placed before it. So a test keeps its
    slot unless, since the working plan was brought up to date:
    - it changed, was registered, or the order before it no longer holds: it is placed
      again;
    - a window appeared that could block it somewhere from its requested start to its
      slot (a test registered or placed elsewhere): it keeps its slot if that is still
      free, since every earlier start was blocked and still is;
    - a window left from there (a test moved, changed or gone): it is placed again, as an
      earlier start may be free.
    Tests are replayed in the planner's order (a heap), so each sees every change ahead of it. A
    window leaving or appearing on a live test reaches every test after the live ones.
    The planner is handed a slot's window only when it looks at the days and the things
    that window could block (`_supply`), so a replay costs what it touches, not the
    portfolio. At the end, the working plan takes every new slot.
    """

    def __init__(self, index: IndexView, plan: WorkingPlan) -> None:
        self.index, self.plan = index, plan
        self.ranks = index.ranks()
        self.planner = Planner(index.compiler, supply=self._supply)
        self.placing: Position = FIRST  # where the test being placed stands
        self.reserved: set[str] = set()  # windows from the working plan, handed over
        # How far each week's list of windows was read (by the list's id: the lists stay
        # in the working plan while this replay runs), and the live ones handed over.
        self.handed_to: dict[int, int] = {}
        self.live_handed: set[int] = set()
        self.stale: set[str] = set()  # tests whose slot no longer stands as it is filed
        self.placed: dict[str, Footprint | None] = {}  # new windows, by key
        self.before: dict[str, Footprint | None] = {}  # the windows they left
        self.queue: list[tuple[Position, str]] = []
        self.why: dict[str, int] = {}

    def run(self, key: str, rank: int, *, settled_later: bool) -> Placement:
        """The slot of `key`. The tests after it cannot change it, so with `settled_later`
        (a thread of this process settles the working plan soon), the replay stops once
        it is placed and the working plan stays as it was, unless nothing was left."""
        self._find_changes()
        self._queue(key, self._position(key), _ASKED)
        answer: Placement | None = None
        while self.queue:
            position, next_key = heapq.heappop(self.queue)
            if next_key in self.placed:
                continue
            placement = self._replay(position, next_key, rank if next_key == key else None)
            if next_key == key:
                assert placement is not None  # asked for: placed, whatever came before it
                answer = placement
                if settled_later and self.queue:
                    return answer
        self._keep_result()
        assert answer is not None
        return answer

    def settle(self) -> None:
        """Bring the working plan up to date with every change, no slot asked for."""
        self._find_changes()
        while self.queue:
            position, next_key = heapq.heappop(self.queue)
            if next_key not in self.placed:
                self._replay(position, next_key, None)
        self._keep_result()

    def _find_changes(self) -> None:
        """Queue what changed since the working plan was brought up to date, and what the
        windows they left or took could move (once every changed test is known, so none
        of them is taken for one that stands)."""
        slots, footprints, rows = self.plan.slots, self.index.footprints, self.index.rows
        numbers = self.index.journal.since(self.plan.journal)
        candidates: Iterable[tuple[str, Slot]]
        if numbers is None:  # the rows that changed are not known: look at every slot
            candidates = slots.items()
        else:
            keys = (format_key(number) for number in numbers)
            candidates = [(key, slots[key]) for key in keys if key in slots]
        changed = [
            (slot, footprints.get(key))
            for key, slot in candidates
            if key not in footprints or rows.get(footprints[key].item.number) != slot.row
        ]
        new = footprints.keys() - slots.keys() - self.plan.unknown.keys()
        self.stale.update(slot.key for slot, _ in changed)
        self.stale.update(self.plan.unknown)
        self.stale.update(new)
        for slot, footprint in changed:
            self._changed(slot, footprint)
        replay_from: Position | None = None
        for key, since in self.plan.unknown.items():
            footprint = footprints.get(key)
            here = since if footprint is None else min(since, self._position(key))
            replay_from = here if replay_from is None else min(replay_from, here)
            if footprint is not None and _is_live(footprint):
                self._keep(footprint)
        for key in new:
            footprint = footprints[key]
            if _is_live(footprint):
                self._keep(footprint)
            else:
                self.before[key] = None
                self._queue(key, self._position(key), _CHANGED)
        if replay_from is not None:
            for key in in_plan_order(self.ranks, footprints):
                position = self._position(key)
                if position >= replay_from and not _is_live(footprints[key]):
                    self.before.setdefault(key, None)
                    self._queue(key, position, _CHANGED)

    def _changed(self, slot: Slot, footprint: Footprint | None) -> None:
        """Test `slot.key` changed (`footprint`: as it is now; None: it left)."""
        after = None if slot.live else slot.position
        position = None if footprint is None else self._position(slot.key)
        if footprint is None or _is_live(footprint) or slot.live or position != slot.position:
            # Its window leaves for every test after where it stood.
            if slot.window is not None:
                self._met(slot.window, _MET_LEFT_WINDOW, after=after)
            self.before[slot.key] = None
        else:  # in the same place: what moves depends on where it lands
            self.before[slot.key] = slot.window
        if footprint is None:
            return
        if _is_live(footprint):
            self._keep(footprint)
        else:
            assert position is not None
            self._queue(slot.key, position, _CHANGED)

    def _keep(self, footprint: Footprint) -> None:
        """A live test not kept as the working plan has it: kept where it runs."""
        self.planner.keep(footprint)
        self.placed[footprint.key] = footprint
        self._met(footprint, _MET_NEW_WINDOW, after=None)

    def _replay(self, position: Position, key: str, rank: int | None) -> Placement | None:
        footprint = self.index.footprints[key]
        self.placing = position
        slot = self.plan.slots.get(key)
        before = self.before.get(key, None if slot is None else slot.window)
        if self.why[key] == _MET_NEW_WINDOW and (before is None or self.planner.is_free(before)):
            return None  # only blockers were added: every earlier start is still blocked
        placement = self.planner.place(footprint, rank=rank)
        after = window_of(footprint, placement)
        self.placed[key] = after
        if before is not None and after is not None and _same_window(before, after):
            return placement
        if before is not None:
            self._met(before, _MET_LEFT_WINDOW, after=position)
        if after is not None:
            self._met(after, _MET_NEW_WINDOW, after=position)
        return placement

    def _met(self, window: Footprint, why: int, *, after: Position | None) -> None:
        """Queue the tests after `after` (None: after the live ones) whose slot `window`,
        appearing or leaving, could change."""
        shelves = self.plan.freed_by if why == _MET_LEFT_WINDOW else self.plan.blocked_by
        for slot in shelves.find(window):
            if after is not None and slot.position <= after:
                continue
            if slot.key in self.stale or slot.key in self.placed:
                continue
            self._queue(slot.key, slot.position, why)

    def _position(self, key: str) -> Position:
        return plan_position(self.ranks, self.index.footprints[key])

    def _queue(self, key: str, position: Position, why: int) -> None:
        if self.why.get(key, 0) >= why:
            return
        self.why[key] = why
        heapq.heappush(self.queue, (position, key))

    def _supply(self, footprint: Footprint, first: int, last: int) -> None:
        """Hand the planner the filed windows that could block `footprint` in days
        [first, last] and stand where they are: live ones, and those ahead of the test
        being placed that are not placed again. Tests are placed in rank order, so each
        week of windows is read on from where the last hand-over stopped."""
        placing, handed_to = self.placing, self.handed_to
        for live, ranked in self.plan.windows.around(footprint, first, last):
            if live and id(live) not in self.live_handed:
                self.live_handed.add(id(live))
                for slot in live:
                    self._hand_over(slot)
            at = handed_to.get(id(ranked), 0)
            while at < len(ranked) and ranked[at].position < placing:
                self._hand_over(ranked[at])
                at += 1
            handed_to[id(ranked)] = at

    def _hand_over(self, slot: Slot) -> None:
        key = slot.key
        if key in self.reserved or key in self.stale or key in self.placed:
            return  # handed over already, or not where it was filed
        self.reserved.add(key)
        assert slot.window is not None
        self.planner.reserve(slot.window)

    def _keep_result(self) -> None:
        """The working plan takes the new slots: it now holds the portfolio as it is."""
        footprints, rows = self.index.footprints, self.index.rows
        for key in self.stale | self.placed.keys():
            footprint = footprints.get(key)
            if footprint is None:
                self.plan.drop(key)
                continue
            if key not in self.placed:  # kept (a window appeared, the slot still free)
                continue
            row = rows.get(footprint.item.number)
            self.plan.put(Slot(key, footprint, self._position(key), self.placed[key], row))
        self.plan.journal = self.index.journal  # the slots now stand as of this view


def _same_window(a: Footprint, b: Footprint) -> bool:
    """Whether the planner would see the two windows alike."""
    return (
        a.start == b.start
        and a.end == b.end
        and a.surfaces == b.surfaces
        and a.audience == b.audience
        and a.traffic == b.traffic
        and a.group == b.group
        and a.agile == b.agile
        and a.reach == b.reach
        and _is_live(a) == _is_live(b)
    )


def _is_live(footprint: Footprint) -> bool:
    return footprint.item.status == ExperimentStatus.LIVE
