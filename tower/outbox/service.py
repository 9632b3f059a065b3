"""Write notifications into the outbox, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tower.db import insert_unless_present, utcnow
from tower.outbox.models import OutboxMessage


def enqueue(
    session: Session,
    *,
    kind: str,
    recipient: str,
    text: str,
    dedupe_key: str,
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> OutboxMessage | None:
    """Queue a message, unless one with the same dedupe key already exists (then None).

    The message commits or rolls back with the change that caused it, so a notification is
    never sent for a change that did not happen, nor lost for one that did. It is due `at`
    the moment of that change (the service clock), else now.
    """
    statement = insert_unless_present(
        session,
        OutboxMessage,
        dedupe_key=dedupe_key,
        kind=kind,
        recipient=recipient,
        text=text,
        payload=payload or {},
        next_attempt_at=at or utcnow(),
    )
    # One statement: a message already queued (by this transaction or another) stays as it
    # was, and a concurrent writer of the same key makes this one wait, then do nothing.
    message: OutboxMessage | None = session.scalar(statement.returning(OutboxMessage))
    return message
