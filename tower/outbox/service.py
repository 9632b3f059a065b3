"""Write notifications into the outbox, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tower.db import utcnow
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
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
    if existing is not None:
        return None
    message = OutboxMessage(
        dedupe_key=dedupe_key,
        kind=kind,
        recipient=recipient,
        text=text,
        payload=payload or {},
        next_attempt_at=at or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:  # another transaction queued the same message first
        return None
    return message
