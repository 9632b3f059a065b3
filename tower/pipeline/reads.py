"""The read side: the ranked pipeline, the plan and one test's standing, from stored state.

Nothing here computes collisions or writes: writes and the worker keep the read model
current (`tower.pipeline.flows`, `tower.pipeline.resync`). `Standing` says how current it
is, so a reader can tell people ("planned as of 10:42", "run `tower resync`").
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Subquery, func, or_, select
from sqlalchemy.orm import Session

from tower.engine.portfolio import ACTIVE_STATUSES
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus, format_key
from tower.paging import Page, first_rows
from tower.pipeline import registry
from tower.pipeline.models import REGISTRY_STATE_ID, PipelineScore, PlanEntry, RegistryState
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


@dataclass(frozen=True)
class RankTable:
    """Every active test in pipeline order."""

    order: list[RankedTest]
    position: dict[int, int]  # by number, 1 = first


# The last table read per database, with the read-model state it was read at: reads between
# two changes (most of a server's requests) share it instead of ranking the pipeline again.
_tables: dict[str, tuple[tuple[object, ...], RankTable]] = {}
_reading = threading.Lock()


def rank_table(session: Session) -> RankTable:
    """The pipeline's order as the read model stands (read again only once it changed)."""
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    state = _scores_state(session)
    cached = _tables.get(url)
    if cached is not None and cached[0] == state:
        return cached[1]
    with _reading:  # one thread reads it; the others asking meanwhile wait and share it
        cached = _tables.get(url)
        if cached is not None and cached[0] == state:
            return cached[1]
        return _read_table(session, url, state)


def _read_table(session: Session, url: str, state: tuple[object, ...]) -> RankTable:
    positions = _positions()
    query = select(positions.c.number, positions.c.status, positions.c.value.is_not(None)).order_by(
        positions.c.position
    )
    order = [
        RankedTest(number, status, bool(scored))
        for number, status, scored in session.execute(query)
    ]
    table = RankTable(order, {test.number: at for at, test in enumerate(order, start=1)})
    _tables[url] = (state, table)
    return table


def _scores_state(session: Session) -> tuple[object, ...]:
    """What the stored scores are a function of: the registry (its version and the stamp of
    its last change), the day they count from, the policy and the last full check."""
    query = select(
        RegistryState.version,
        RegistryState.stamp,
        RegistryState.scored_on,
        RegistryState.checked_policy,
        RegistryState.checked_at,
    ).where(RegistryState.id == REGISTRY_STATE_ID)
    row = session.execute(query).first()
    return () if row is None else tuple(row)


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
) -> list[dict[str, Any]]:
    """The ranked pipeline in the JSON shape of `tower pipeline` (README)."""
    return pipeline_page(session, policy, team_kind, limit=None).items


def pipeline_page(
    session: Session,
    policy: Policy,
    team_kind: Mapping[str, str],
    *,
    statuses: Collection[ExperimentStatus] = (),
    limit: int | None,
) -> Page[dict[str, Any]]:
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
) -> dict[str, Any]:
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


def plan_rows(session: Session) -> list[dict[str, Any]]:
    """The last plan, in rank order, in the JSON shape of `tower plan` (README)."""
    return [placement_row(e, entry) for e, entry in session.execute(_plan_query())]


def moved_page(session: Session, *, limit: int) -> Page[dict[str, Any]]:
    """The first `limit` tests the last plan moves or cannot place, in rank order, and how
    many there are."""
    moved = or_(PlanEntry.planned_start.is_(None), PlanEntry.planned_start != Experiment.start)
    page = first_rows(session, _plan_query().where(moved), limit)
    return page.map(lambda row: placement_row(*row))


def _plan_query() -> Select[Experiment, PlanEntry]:
    return (
        select(Experiment, PlanEntry)
        .join(PlanEntry, PlanEntry.experiment_id == Experiment.id)
        .where(Experiment.status.in_(list(ACTIVE_STATUSES)))
        .order_by(PlanEntry.rank)
    )


def placement_row(experiment: Experiment, entry: PlanEntry) -> dict[str, Any]:
    moved = 0 if entry.planned_start is None else (entry.planned_start - experiment.start).days
    return {
        "rank": entry.rank,
        "key": experiment.key,
        "title": experiment.title,
        "requested_start": experiment.start.isoformat(),
        "requested_end": experiment.end.isoformat(),
        "planned_start": _iso(entry.planned_start),
        "planned_end": _iso(entry.planned_end),
        "moved_days": moved,
        "explanation": entry.explanation,
    }


def check_row(session: Session, experiment: Experiment) -> dict[str, Any]:
    """One test's rank, score, problem and placement, in the shape of `tower check`."""
    rank, score, problem = None, None, None
    stored = session.get(PipelineScore, experiment.id)
    if stored is not None and experiment.status in ACTIVE_STATUSES:
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
    planned = session.get(PlanEntry, experiment.id)
    placement = None
    if planned is not None and experiment.status in ACTIVE_STATUSES:
        placement = placement_row(experiment, planned)
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


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
