"""Write audit events; every service that changes a test calls `record`.

Events name their test by its id, so the audit log sits below the tests it records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.audit.models import AuditEvent

ACTOR_MAX_LENGTH = 32


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    experiment_id: int | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event, on test `experiment_id` when it concerns one, to the session
    (the caller's transaction commits it)."""
    event = AuditEvent(
        experiment_id=experiment_id,
        actor=actor[:ACTOR_MAX_LENGTH],  # a refused stranger's claimed name may be long
        action=action,
        reason=reason,
        before=before,
        after=after,
    )
    session.add(event)
    return event


def events_for(session: Session, experiment_id: int) -> list[AuditEvent]:
    """The history of test `experiment_id`, oldest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.experiment_id == experiment_id)
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return list(session.scalars(query))
