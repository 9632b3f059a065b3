"""Write audit events; every service that changes a test calls `record`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.audit.models import AuditEvent
from tower.experiments.models import Experiment

ACTOR_MAX_LENGTH = 32


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    experiment: Experiment | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event to the session (the caller's transaction commits it)."""
    event = AuditEvent(
        experiment_id=None if experiment is None else experiment.id,
        actor=actor[:ACTOR_MAX_LENGTH],  # a refused stranger's claimed name may be long
        action=action,
        reason=reason,
        before=before,
        after=after,
    )
    session.add(event)
    return event


def events_for(session: Session, experiment: Experiment) -> list[AuditEvent]:
    """The history of one test, oldest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.experiment_id == experiment.id)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return list(session.scalars(query))
