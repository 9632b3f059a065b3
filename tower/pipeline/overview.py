"""What one person should see at a glance (Slack's App Home renders it): their tests, their
clocks and conflicts, and for managers the approval queue, blockers and breaches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus, Severity
from tower.context import ServiceContext
from tower.experiments import service as experiment_service
from tower.experiments.spec import ExperimentStatus
from tower.pipeline import records
from tower.pipeline.service import PipelineView
from tower.sla import service as sla_service
from tower.sla.models import ClockState

FINISHED = {
    ExperimentStatus.RESULTS_RECORDED,
    ExperimentStatus.REJECTED,
    ExperimentStatus.WITHDRAWN,
    ExperimentStatus.CANCELLED,
}


@dataclass
class Overview:
    """Lists for one person; a renderer shows the first few of each and counts the rest."""

    user: str
    is_manager: bool
    teams: list[str]
    tests: list[dict[str, Any]] = field(default_factory=list)
    clocks: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    approval_queue: list[dict[str, Any]] = field(default_factory=list)
    blocking: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)


def overview_for(
    session: Session, ctx: ServiceContext, pipeline: PipelineView, user: str
) -> Overview:
    """The overview of `user`, from stored state (reads only)."""
    teams = [team.key for team in ctx.policy.teams_of(user)]
    view = Overview(user, ctx.policy.is_manager(user), teams)
    mine = [
        e
        for e in experiment_service.list_experiments(session)
        if (e.owner == user or e.team in teams) and e.status not in FINISHED
    ]
    ranks = pipeline.ranks()
    view.tests = [
        {
            "key": e.key,
            "title": e.title,
            "status": e.status.value,
            "start": e.start.isoformat(),
            "end": e.end.isoformat(),
            "rank": ranks.get(e.key),
        }
        for e in mine
    ]
    keys = {e.key for e in mine}
    unresolved = [CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED]
    collisions = collision_service.collision_rows(session, statuses=unresolved)
    view.conflicts = [
        records.collision_record(c) for c in collisions if keys & set(collision_service.keys_of(c))
    ]
    running = [c for c in sla_service.clocks_for(session) if c.state != ClockState.STOPPED]
    view.clocks = [
        sla_service.clock_status(c, ctx.calendar, ctx.now)
        for c in running
        if c.subject.split(":")[0] in keys or c.team in teams
    ]
    if view.is_manager:
        ranked = {row["key"]: row for row in pipeline.pipeline_rows()}
        view.approval_queue = sorted(
            (
                ranked[e.key]
                for e in experiment_service.list_experiments(
                    session, statuses=[ExperimentStatus.SUBMITTED]
                )
                if e.key in ranked
            ),
            key=lambda row: (row["rank"] is None, row["rank"] or 0),
        )
        view.blocking = [
            records.collision_record(c) for c in collisions if c.severity == Severity.BLOCKING
        ]
        view.breaches = [
            sla_service.clock_status(c, ctx.calendar, ctx.now)
            for c in running
            if c.due_at <= ctx.now
        ]
    return view
