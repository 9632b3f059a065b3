"""The read side: the ranked pipeline, the plan and one test's standing, from stored state.

Nothing here computes collisions or writes: writes and the worker keep the read model
current (`tower.pipeline.flows`, `tower.pipeline.resync`). `Standing` says how current it
is, so a reader can tell people ("planned as of 10:42", "run `tower resync`").
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Subquery, func, or_, select
from sqlalchemy.orm import Session

from tower.engine.score import ScoreRecord
from tower.experiments.models import Experiment
from tower.experiments.spec import ACTIVE_STATUSES, ExperimentStatus, format_key
from tower.json_text import iso
from tower.paging import Page, first_rows
from tower.pipeline import registry
from tower.pipeline.models import REGISTRY_STATE_ID, PipelineScore, PlanEntry, RegistryState
from tower.pipeline.records import CheckRecord, PipelineRecord, PlacementRecord
from tower.policy import Policy


@dataclass(frozen=True)
class Standing:
    """How current the stored records, scores and plan are."""

    policy_changed: bool  # records were last fully checked against another policy
    never_checked: bool  # no full check has run on this database yet
    scored_on: date | None
    planned_at: datetime | None
    changes_since_plan: int

    def stale(self, today: date) -> bool:
        """Whether a resync has something to bring up to date."""
        return (
            self.policy_changed
            or self.never_checked
            or self.changes_since_plan > 0
            or (self.scored_on is not None and self.scored_on != today)
        )

    def notes(self) -> list[str]:
        """What a reader should know before trusting what it shows, in words."""
        notes = []
        if self.policy_changed:
            notes.append(
                "the collision records were checked against an older policy: run "
                "`tower resync` (the worker does it within 15 minutes)"
            )
        elif self.never_checked:
            notes.append("the portfolio was never fully checked: run `tower resync`")
        if self.changes_since_plan and self.planned_at is not None:
            notes.append(
                f"planned as of {self.planned_at:%Y-%m-%d %H:%M} UTC, "
                f"{self.changes_since_plan} change(s) ago"
            )
        return notes


def standing(session: Session, policy: Policy) -> Standing:
    row = session.get(RegistryState, REGISTRY_STATE_ID)
    if row is None:
        return Standing(False, False, None, None, 0)
    fingerprint = registry.policy_fingerprint(policy)
    planned = row.planned_version
    return Standing(
        policy_changed=row.checked_policy is not None and row.checked_policy != fingerprint,
        never_checked=row.checked_policy is None and row.version > 0,
        scored_on=row.scored_on,
        planned_at=row.planned_at,
        changes_since_plan=row.version - planned if planned is not None else 0,
    )


class StoredScore(NamedTuple):
    """One active test with its stored score (value None: it cannot be scored)."""

    number: int
    title: str
    team: str
    status: ExperimentStatus
    value: float | None
    confidence: float | None
    problem: str | None
    detail: dict[str, Any]

    @property
    def key(self) -> str:
        return format_key(self.number)


def _scores_query() -> Select[Any]:
    return (
        select(
            Experiment.number,
            Experiment.title,
            Experiment.team,
            Experiment.status,
            PipelineScore.value,
            PipelineScore.confidence,
            PipelineScore.problem,
            PipelineScore.detail,
        )
        .join(PipelineScore, PipelineScore.experiment_id == Experiment.id)
        .where(Experiment.status.in_(list(ACTIVE_STATUSES)))
    )


def _positions() -> Subquery:
    """Every active test with its position in the pipeline: scored tests in `rank_key`'s
    order (its statement in SQL, the one the read model ranks by), then the unscored by
    registration."""
    position = func.row_number().over(
        order_by=(
            PipelineScore.value.is_(None),
            PipelineScore.value.desc(),
            func.coalesce(PipelineScore.confidence, 0.0).desc(),
            Experiment.number,
        )
    )
    return (
        select(
            Experiment.number,
            Experiment.status,
            PipelineScore.value,
            PipelineScore.confidence,
            position.label("position"),
        )
        .join(PipelineScore, PipelineScore.experiment_id == Experiment.id)
        .where(Experiment.status.in_(list(ACTIVE_STATUSES)))
        .subquery()
    )


class RankedTest(NamedTuple):
    """One active test's place in the pipeline."""

    number: int
    status: ExperimentStatus
    scored: bool  # False: it cannot be scored, and comes after every scored test


class _RankKey(NamedTuple):
    """A test's place in `_positions`' order, compared as a tuple: unscored last, then by
    score and confidence, highest first, then by number."""

    unscored: bool
    minus_value: float
    minus_confidence: float
    number: int


def _rank_key(number: int, value: float | None, confidence: float | None) -> _RankKey:
    return _RankKey(value is None, -(value or 0.0), -(confidence or 0.0), number)


@dataclass(frozen=True)
class RankTable:
    """Every active test in pipeline order."""

    order: list[RankedTest]
    position: dict[int, int]  # by number, 1 = first
    keys: list[_RankKey]  # each test's place in the order, as `order` is sorted

    @classmethod
    def of(cls, order: list[RankedTest], keys: list[_RankKey]) -> RankTable:
        return cls(order, {test.number: at for at, test in enumerate(order, start=1)}, keys)


# The last table read per database, with the read-model state it was read at: reads between
# two changes (most of a server's requests) share it instead of ranking the pipeline again.
_tables: dict[str, tuple[_ScoresState | None, RankTable]] = {}
_reading = threading.Lock()


def rank_table(session: Session) -> RankTable:
    """The pipeline's order as the read model stands (brought up to date only once it
    changed: just the tests changed since, when the registry can tell which)."""
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    state = _scores_state(session)
    cached = _tables.get(url)
    if cached is not None and cached[0] == state:
        return cached[1]
    with _reading:  # one thread reads it; the others asking meanwhile wait and share it
        cached = _tables.get(url)
        if cached is not None and cached[0] == state:
            return cached[1]
        table = None if cached is None else _caught_up(session, *cached, state)
        if table is None:
            table = _read_table(session)
        _tables[url] = (state, table)
        return table


def _read_table(session: Session) -> RankTable:
    positions = _positions()
    query = select(
        positions.c.number,
        positions.c.status,
        positions.c.value,
        positions.c.confidence,
    ).order_by(positions.c.position)
    rows = session.execute(query).all()
    return RankTable.of(
        [RankedTest(number, status, value is not None) for number, status, value, _ in rows],
        [_rank_key(number, value, confidence) for number, _, value, confidence in rows],
    )


CATCH_UP_LIMIT = 200  # tests changed since the table was read: past it, read it all


def _caught_up(
    session: Session, seen: _ScoresState | None, table: RankTable, state: _ScoresState | None
) -> RankTable | None:
    """`table`, read at state `seen`, brought to `state` by reading again only the tests
    the registry wrote since; None when that cannot be told (read it all)."""
    if seen is None or state is None or seen.scored_by != state.scored_by:
        return None  # another scoring day, policy or full check: every score may differ
    numbers = registry.changed_since(session, seen.mark, state.mark)
    if numbers is None or len(numbers) > CATCH_UP_LIMIT:
        return None
    order = [test for test in table.order if test.number not in numbers]
    keys = [key for key in table.keys if key.number not in numbers]
    query = (
        select(Experiment.number, Experiment.status, PipelineScore.value, PipelineScore.confidence)
        .join(PipelineScore, PipelineScore.experiment_id == Experiment.id)
        .where(Experiment.status.in_(list(ACTIVE_STATUSES)), Experiment.number.in_(numbers))
    )
    for number, status, value, confidence in session.execute(query):
        key = _rank_key(number, value, confidence)
        at = bisect_left(keys, key)
        keys.insert(at, key)
        order.insert(at, RankedTest(number, status, value is not None))
    # Scores written without a registry change (filled in for tests that lacked one) are
    # not in the changes: the count tells.
    if _active_scored(session) != len(order):
        return None
    return RankTable.of(order, keys)


def _active_scored(session: Session) -> int:
    query = (
        select(func.count())
        .select_from(PipelineScore)
        .join(Experiment, PipelineScore.experiment_id == Experiment.id)
        .where(Experiment.status.in_(list(ACTIVE_STATUSES)))
    )
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class _ScoresState:
    """What the stored scores are a function of: the registry (its version and the stamp
    of its last change), and the day they count from, the policy and the last full check."""

    mark: registry.RegistryMark
    scored_by: tuple[object, ...]


def _scores_state(session: Session) -> _ScoresState | None:
    query = select(
        RegistryState.version,
        RegistryState.stamp,
        RegistryState.scored_on,
        RegistryState.checked_policy,
        RegistryState.checked_at,
    ).where(RegistryState.id == REGISTRY_STATE_ID)
    row = session.execute(query).first()
    if row is None:
        return None
    version, stamp, *scored_by = row
    return _ScoresState(registry.RegistryMark(version, stamp), tuple(scored_by))


def ranks(session: Session, numbers: Collection[int] | None = None) -> dict[str, int]:
    """The rank of each scored active test (of tests `numbers` only, when given), by key."""
    table = rank_table(session)
    wanted = table.position.keys() if numbers is None else numbers
    return {
        format_key(number): table.position[number]
        for number in wanted
        if number in table.position and table.order[table.position[number] - 1].scored
    }


def pipeline_rows(
    session: Session, policy: Policy, team_kind: Mapping[str, str]
) -> list[PipelineRecord]:
    """The ranked pipeline in the JSON shape of `tower pipeline` (README)."""
    return pipeline_page(session, policy, team_kind, limit=None).items


def pipeline_page(
    session: Session,
    policy: Policy,
    team_kind: Mapping[str, str],
    *,
    statuses: Collection[ExperimentStatus] = (),
    limit: int | None,
) -> Page[PipelineRecord]:
    """The first `limit` rows of the ranked pipeline (all when None; of tests in `statuses`
    only, when given), and how many there are: only the rows shown are read in full."""
    order = [
        (position, test.number)
        for position, test in enumerate(rank_table(session).order, start=1)
        if not statuses or test.status in statuses
    ]
    shown = order if limit is None else order[:limit]
    full = _scores_query()
    if limit is not None:
        full = full.where(Experiment.number.in_([number for _, number in shown]))
    entries = {row.number: StoredScore(*row) for row in session.execute(full)}
    rows = [_pipeline_row(at, entries[number], policy, team_kind) for at, number in shown]
    return Page(rows, len(order))


def _pipeline_row(
    rank: int | None, entry: StoredScore, policy: Policy, team_kind: Mapping[str, str]
) -> PipelineRecord:
    unscored = entry.value is None
    return {
        "rank": None if unscored else rank,
        "key": entry.key,
        "title": entry.title,
        "team": entry.team,
        "team_kind": team_kind.get(entry.team, "bau"),
        "status": entry.status.value,
        "score": None if unscored else _finite(entry.value),
        "model": entry.detail.get("model", policy.scoring.model),
        "factors": entry.detail.get("factors", []),
        "problem": entry.problem,
    }


def plan_rows(session: Session) -> list[PlacementRecord]:
    """The last plan, in rank order, in the JSON shape of `tower plan` (README)."""
    return [placement_row(Planned(*row)) for row in session.execute(_plan_query())]


def moved_page(session: Session, *, limit: int) -> Page[PlacementRecord]:
    """The first `limit` tests the last plan moves or cannot place, in rank order, and how
    many there are."""
    moved = or_(PlanEntry.planned_start.is_(None), PlanEntry.planned_start != Experiment.start)
    page = first_rows(session, _plan_query().where(moved), limit)
    return page.map(lambda row: placement_row(Planned(*row)))


class Planned(NamedTuple):
    """One test's entry in the last plan, with what `tower plan` shows of the test."""

    number: int
    title: str
    requested_start: date
    requested_end: date
    deadline: date | None
    rank: int
    planned_start: date | None
    planned_end: date | None
    misses_deadline: bool
    explanation: str
    score: float | None  # None: it cannot be scored


def _plan_query() -> Select[*tuple[Any, ...]]:
    """Each active test's plan entry, and its score, as `Planned` columns (no JSON column
    of the test is read: at 10,000 tests that was most of `tower plan`)."""
    return (
        select(
            Experiment.number,
            Experiment.title,
            Experiment.start,
            Experiment.end,
            Experiment.deadline,
            PlanEntry.rank,
            PlanEntry.planned_start,
            PlanEntry.planned_end,
            PlanEntry.misses_deadline,
            PlanEntry.explanation,
            PipelineScore.value,
        )
        .join(PlanEntry, PlanEntry.experiment_id == Experiment.id)
        .outerjoin(PipelineScore, PipelineScore.experiment_id == Experiment.id)
        .where(Experiment.status.in_(list(ACTIVE_STATUSES)))
        .order_by(PlanEntry.rank)
    )


def placement_row(planned: Planned) -> PlacementRecord:
    """One test's row of `tower plan`: its rank (None when it cannot be scored), requested
    and planned windows, deadline, and why it moved."""
    start = planned.planned_start
    moved = 0 if start is None else (start - planned.requested_start).days
    return {
        "rank": None if planned.score is None else planned.rank,
        "key": format_key(planned.number),
        "title": planned.title,
        "requested_start": planned.requested_start.isoformat(),
        "requested_end": planned.requested_end.isoformat(),
        "planned_start": iso(start),
        "planned_end": iso(planned.planned_end),
        "moved_days": moved,
        "deadline": iso(planned.deadline),
        "misses_deadline": planned.misses_deadline,
        "explanation": planned.explanation,
    }


def check_row(session: Session, experiment: Experiment) -> CheckRecord:
    """One test's rank, score, problem and placement, in the shape of `tower check`."""
    rank, problem = None, None
    score: ScoreRecord | None = None
    stored = session.get(PipelineScore, experiment.id)
    if stored is not None and experiment.status.is_active:
        if stored.value is None:
            problem = stored.problem
        else:
            rank = ranks(session, [experiment.number]).get(experiment.key)
            score = {
                "key": experiment.key,
                "number": experiment.number,
                "model": stored.detail.get("model"),
                "value": _finite(stored.value),
                "confidence": stored.confidence,
                "factors": stored.detail.get("factors", []),
            }
    planned = session.execute(_plan_query().where(Experiment.id == experiment.id)).first()
    placement = None if planned is None else placement_row(Planned(*planned))
    return {
        "key": experiment.key,
        "title": experiment.title,
        "rank": rank,
        "score": score,
        "problem": problem,
        "placement": placement,
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
