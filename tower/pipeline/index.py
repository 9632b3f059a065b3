"""A warm index of the portfolio: every test compiled against the policy, the collision
engine over the active ones, and their scores, kept in step with the database.

`tower serve` and `tower worker` hold one per database and policy (`warm_index`), so a
change costs the checks of what it touches, not a reload. Before it is used for a write the
index catches up: when the registry's mark differs from the one it saw, it reloads the tests
whose (version, change stamp) differ, and drops those gone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.engine.detector import CollisionEngine
from tower.engine.planner import Placement
from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.engine.score import Score, ScoringError, score_item
from tower.experiments.models import Experiment
from tower.experiments.spec import format_key
from tower.pipeline import registry
from tower.pipeline.models import REGISTRY_STATE_ID, PlanEntry, RegistryState
from tower.pipeline.ranking import RankOrder
from tower.pipeline.registry import RegistryMark
from tower.policy import Policy

if TYPE_CHECKING:  # it builds on the index: imported for the type only
    from tower.pipeline.working_plan import WorkingPlan


def portfolio_item(experiment: Experiment) -> PortfolioItem:
    """One test as the engine's plain input."""
    return PortfolioItem(
        key=experiment.key,
        number=experiment.number,
        status=experiment.status,
        spec=experiment.spec(),
        lever=experiment.lever,
        deadline=experiment.deadline,
    )


def portfolio_items(session: Session, numbers: Iterable[int] | None = None) -> list[PortfolioItem]:
    """Registered tests as the engine's plain input, in number order (all, or `numbers`)."""
    query = select(Experiment).order_by(Experiment.number)
    if numbers is not None:
        query = query.where(Experiment.number.in_(list(numbers)))
    return [portfolio_item(experiment) for experiment in session.scalars(query)]


class PortfolioIndex:
    """The registry compiled for the engine, as of `mark`; `lock` guards every change."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.compiler = Compiler(policy)
        self.items: dict[int, PortfolioItem] = {}  # every registered test, by number
        self.footprints: dict[str, Footprint] = {}  # the active ones, by key
        self.scores: dict[str, Score | ScoringError] = {}  # the active ones, by key
        self.order = RankOrder()  # their ranks
        self._plan: tuple[object, StoredPlan] | None = None  # the stored plan, as of its mark
        self.scored_on: date | None = None
        self.engine = CollisionEngine(self.compiler, ())
        self.mark: RegistryMark | None = None
        self.rows: dict[int, tuple[int, str]] = {}  # (version, change stamp) by number
        # The numbers of the rows that changed, in order: a reader remembers how far it
        # read (`RowJournal.at`) and later reads only what changed since. Replaced, not
        # emptied, when every row may have changed.
        self.journal: list[int] = []
        self.lock = threading.RLock()
        # Every slot as of the last one worked out (`working_plan`), guarded by its own lock
        # so that a slot, worked out on a `view`, never holds up a change.
        self.working_plan: WorkingPlan | None = None
        self.plan_lock = threading.Lock()
        # Whether a thread of this process settles the working plan with every change soon
        # after it (a server's keep-up): a slot asked for may then leave the rest to it.
        self.kept_up = False

    def catch_up(self, session: Session, mark: RegistryMark) -> None:
        """Reload what changed since this index last matched the database: the tests the
        registry's recent changes name, or, when those cannot tell, every test whose row
        differs."""
        if mark == self.mark:
            return
        changed = None if self.mark is None else registry.changed_since(session, self.mark, mark)
        if changed is None:
            rows = registry.row_marks(session)
            reloaded = self._apply(session, rows, gone=self.rows.keys() - rows.keys())
            self.rows = rows
            if reloaded is None:
                self.journal = []  # a new journal: every row may have changed
            else:
                self.journal.extend(reloaded)
        else:
            rows = registry.row_marks(session, changed)
            self._apply(session, rows, gone=changed - rows.keys())
            self.rows.update(rows)
            self.journal.extend(rows)
        self.mark = mark

    def _apply(
        self, session: Session, rows: dict[int, tuple[int, str]], gone: set[int]
    ) -> list[int] | None:
        """Drop the tests `gone`; reload those of `rows` this index holds at another
        version (all of them afresh when that is most of the portfolio: then None)."""
        for number in gone:
            self._remove(number)
        stale = [number for number, row in rows.items() if self.rows.get(number) != row]
        if len(stale) > len(self.items) // 2 and len(stale) > 100:
            self._rebuild(portfolio_items(session))
            return None
        for item in portfolio_items(session, stale):
            self.put(item)
        return stale

    def put(self, item: PortfolioItem) -> None:
        """The test as it now is: it joins, changes in, or leaves the active portfolio."""
        self.items[item.number] = item
        footprint = self.compiler.compile(item) if self.compiler.placeable(item) else None
        if footprint is None:
            self.footprints.pop(item.key, None)
            self.scores.pop(item.key, None)
            self.order.remove(item.key)
        else:
            self.footprints[item.key] = footprint
            self._set_score(footprint)
        self.engine.replace(item.key, footprint)

    def remember(self, experiments: Iterable[Experiment], mark: RegistryMark) -> None:
        """This process wrote `experiments` at `mark`: the index holds them as written."""
        for experiment in experiments:
            self.rows[experiment.number] = (experiment.version, experiment.change_stamp)
            self.journal.append(experiment.number)
        self.mark = mark

    def forget(self) -> None:
        """Whatever this index applied may not have committed: compare every row with the
        database next time. A row applied from a transaction that rolled back carries that
        transaction's stamp, which no committed row has, so exactly those tests are read
        again; they go in the journal, and the working plan replays them like any change."""
        self.mark = None

    def rescore(self, today: date) -> None:
        """Scores as of `today` (urgency counts from it)."""
        if today != self.scored_on:
            self.scored_on = today
            self._score_all()

    def view(self) -> IndexView:
        """The index as it is now, apart from later changes (take it holding `lock`)."""
        return IndexView(
            self.policy,
            self.compiler,
            dict(self.footprints),
            dict(self.scores),
            self.order.copy(),
            dict(self.rows),
            self.scored_on,
            RowJournal(self.journal, len(self.journal)),
        )

    def ranks(self) -> RankOrder:
        """Each active test's rank (1 = first); unscored tests come after every ranked one."""
        return self.order

    def placements(self, session: Session) -> Mapping[str, Placement]:
        """The stored plan's placements by key."""
        return self.stored_plan(session).placements

    def stored_plan(self, session: Session) -> StoredPlan:
        """The stored plan, read again only when a new plan is stored."""
        state = registry.plan_mark(session)
        if self._plan is None or self._plan[0] != state:
            self._plan = (state, read_plan(session))
        return self._plan[1]

    def _set_score(self, footprint: Footprint) -> None:
        score = self._score(footprint)
        self.scores[footprint.key] = score
        self.order.put(footprint.key, footprint.item.number, score)

    def _score_all(self) -> None:
        self.scores = {}
        self.order = RankOrder()
        for footprint in self.footprints.values():
            self._set_score(footprint)

    def _score(self, footprint: Footprint) -> Score | ScoringError:
        today = self.scored_on or date.today()
        try:
            return score_item(footprint.item, footprint, self.compiler, today=today)
        except ScoringError as error:
            return error

    def _remove(self, number: int) -> None:
        item = self.items.pop(number, None)
        self.rows.pop(number, None)
        self.journal.append(number)
        if item is not None:
            self.footprints.pop(item.key, None)
            self.scores.pop(item.key, None)
            self.order.remove(item.key)
            self.engine.replace(item.key, None)

    def _rebuild(self, items: list[PortfolioItem]) -> None:
        self.items = {item.number: item for item in items}
        active = self.compiler.compile_active(items)
        self.footprints = {f.key: f for f in active}
        self._score_all()
        self.engine = CollisionEngine(self.compiler, active)
        self.engine.prepare_checks()

    @classmethod
    def load(cls, session: Session, policy: Policy, today: date) -> PortfolioIndex:
        """The whole registry, indexed now."""
        index = cls(policy)
        index.scored_on = today
        mark = registry.peek(session)
        index.rows = registry.row_marks(session)
        index._rebuild(portfolio_items(session))
        index.mark = mark
        return index


_warm: dict[tuple[str, str], PortfolioIndex] = {}
_warm_lock = threading.Lock()


def warm_index(session: Session, policy: Policy, today: date) -> PortfolioIndex:
    """This process's index of the session's database under `policy` (loaded on first use;
    the caller catches it up under its lock)."""
    bind = session.get_bind()
    url = bind.engine.url.render_as_string(hide_password=True)
    key = (url, registry.policy_fingerprint(policy))
    with _warm_lock:
        index = _warm.get(key)
        if index is None:
            # A policy taken in place of another (a worker reading an edited file): the
            # index under the old one is no longer asked for here.
            for older in [k for k in _warm if k[0] == url]:
                del _warm[older]
            index = _warm[key] = PortfolioIndex.load(session, policy, today)
    return index


@dataclass(frozen=True)
class RowJournal:
    """How far the index's journal of changed rows had been written at one moment."""

    numbers: list[int]  # the index's journal (only ever appended to)
    at: int

    def since(self, earlier: RowJournal | None) -> list[int] | None:
        """The numbers of the rows changed between `earlier` and this moment, either way
        round; None when the two cannot tell (another journal: every row may differ)."""
        if earlier is None or earlier.numbers is not self.numbers:
            return None
        low, high = sorted((earlier.at, self.at))
        return list(dict.fromkeys(self.numbers[low:high]))


@dataclass(frozen=True)
class IndexView:
    """A copy of the index's tests, scores, ranks and row marks at one moment."""

    policy: Policy
    compiler: Compiler
    footprints: dict[str, Footprint]
    scores: dict[str, Score | ScoringError]
    order: RankOrder
    rows: dict[int, tuple[int, str]]
    scored_on: date | None
    journal: RowJournal

    def ranks(self) -> RankOrder:
        return self.order


@dataclass(frozen=True)
class StoredPlan:
    """The last plan stored, by key: each placement, the test's version it planned, and
    which tests were live then."""

    placements: dict[str, Placement] = field(default_factory=dict)
    row_versions: dict[str, int | None] = field(default_factory=dict)
    live: frozenset[str] = frozenset()
    policy: str | None = None  # the fingerprint of the policy it was made under


def read_plan(session: Session) -> StoredPlan:
    """The stored plan (what a change's fixes cite and a registrant's slot builds on)."""
    # Columns, not entities: at 10,000 tests this is read whenever a new plan is stored.
    query = select(
        Experiment.number,
        Experiment.start,
        Experiment.end,
        PlanEntry.rank,
        PlanEntry.planned_start,
        PlanEntry.planned_end,
        PlanEntry.row_version,
        PlanEntry.live,
        Experiment.deadline,
        PlanEntry.misses_deadline,
    ).join(PlanEntry, PlanEntry.experiment_id == Experiment.id)
    placements: dict[str, Placement] = {}
    versions: dict[str, int | None] = {}
    live: set[str] = set()
    for row in session.execute(query):
        number, start, end, rank, first, last, row_version, was_live, deadline, misses = row
        key = format_key(number)
        placements[key] = Placement(
            key, rank, start, end, first, last, (), deadline=deadline, misses_deadline=misses
        )
        versions[key] = row_version
        if was_live:
            live.add(key)
    made_under = session.scalar(
        select(RegistryState.checked_policy).where(RegistryState.id == REGISTRY_STATE_ID)
    )
    return StoredPlan(placements, versions, frozenset(live), made_under)
