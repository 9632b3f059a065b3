"""What one person should see at a glance (Slack's App Home renders it): their tests, their
clocks and conflicts, and for managers the approval queue, blockers and breaches.

Each list is a `Page`: its first lines and how many there are, read with queries that stop
at the lines shown, so a glance costs the same at ten tests or ten thousand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select, union
from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.collisions.refs import CollisionFacts
from tower.context import ServiceContext
from tower.engine.kinds import Severity
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.paging import Page, first_objects
from tower.pipeline import reads, records
from tower.sla import queries as sla_queries
from tower.sla.models import ClockState, SlaClock

UNRESOLVED = (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED)


@dataclass
class Overview:
    """Lists for one person, each cut to its first lines with a count of them all."""

    user: str
    is_manager: bool
    teams: list[str]
    tests: Page[dict[str, Any]] = field(default_factory=Page)
    clocks: Page[dict[str, Any]] = field(default_factory=Page)
    conflicts: Page[dict[str, Any]] = field(default_factory=Page)
    approval_queue: Page[dict[str, Any]] = field(default_factory=Page)
    blocking: Page[dict[str, Any]] = field(default_factory=Page)
    breaches: Page[dict[str, Any]] = field(default_factory=Page)


def overview_for(session: Session, ctx: ServiceContext, user: str, *, lines: int) -> Overview:
    """The overview of `user`, `lines` lines a list at most, from stored state (reads only)."""
    teams = [team.key for team in ctx.policy.teams_of(user)]
    view = Overview(user, ctx.policy.is_manager(user), teams)
    mine = experiment_service.unfinished(owner=user, teams=teams)
    tests = first_objects(session, mine, lines)
    ranks = reads.ranks(session, [e.number for e in tests.items])
    view.tests = tests.map(
        lambda e: {
            "key": e.key,
            "title": e.title,
            "status": e.status.value,
            "start": e.start.isoformat(),
            "end": e.end.isoformat(),
            "rank": ranks.get(e.key),
        }
    )
    mine_ids = mine.with_only_columns(Experiment.id).order_by(None)
    view.conflicts = collision_service.collision_page(
        session, statuses=UNRESOLVED, involving=mine_ids, limit=lines
    ).map(_collision_json)
    # Two index lookups joined, rather than an OR that makes SQLite scan every clock.
    whose = union(
        select(SlaClock.id).where(SlaClock.experiment_id.in_(mine_ids)),
        select(SlaClock.id).where(SlaClock.team.in_(teams)),
    )
    view.clocks = _clock_page(session, ctx, _running_clocks().where(SlaClock.id.in_(whose)), lines)
    if view.is_manager:
        kinds = {team.key: team.kind for team in ctx.policy.teams}
        view.approval_queue = reads.pipeline_page(
            session, ctx.policy, kinds, statuses=[ExperimentStatus.SUBMITTED], limit=lines
        ).map(records.as_json)
        view.blocking = collision_service.collision_page(
            session, statuses=UNRESOLVED, severities=[Severity.BLOCKING], limit=lines
        ).map(_collision_json)
        overdue = _running_clocks().where(SlaClock.due_at <= ctx.now)
        view.breaches = _clock_page(session, ctx, overdue, lines)
    return view


def _collision_json(collision: CollisionFacts) -> dict[str, Any]:
    return records.as_json(records.collision_record(collision))


def _running_clocks() -> Select[Any]:
    return (
        select(SlaClock)
        .where(SlaClock.state != ClockState.STOPPED)
        .order_by(SlaClock.due_at, SlaClock.id)
    )


def _clock_page(
    session: Session, ctx: ServiceContext, query: Select[Any], lines: int
) -> Page[dict[str, Any]]:
    page: Page[SlaClock] = first_objects(session, query, lines)
    return page.map(lambda clock: sla_queries.clock_status(clock, ctx.calendar, ctx.now))
