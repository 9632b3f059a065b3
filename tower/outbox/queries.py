"""Look into the outbox and re-queue dead letters (what `tower outbox list|retry` runs)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.db import utcnow
from tower.errors import NotFoundError, TowerError
from tower.outbox.models import MessageStatus, OutboxMessage


def list_messages(
    session: Session, *, statuses: Collection[MessageStatus] = (), limit: int | None = None
) -> list[OutboxMessage]:
    """Messages in the given states (every state when none is given), newest first."""
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if statuses:
        query = query.where(OutboxMessage.status.in_(list(statuses)))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def get_message(session: Session, message_id: int) -> OutboxMessage:
    """The outbox message `message_id`; `NotFoundError` if there is none."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFoundError(f"no outbox message with id {message_id}")
    return message


def retry_failed(
    session: Session, ids: Collection[int] = (), *, now: datetime | None = None
) -> list[OutboxMessage]:
    """Re-queue dead letters (all of them, or those with the given ids) for delivery now.

    Each gets a fresh set of attempts; `last_error` keeps why it failed until it is retried.
    One held because it may have landed (`outcome unknown`) and named by its id was checked
    by the person re-queueing it: it is sent without looking for it again. Re-queued with
    all the others, unchecked, it is looked for first, as before.
    An id that is not a dead letter is an error and nothing is re-queued.
    """
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if ids:
        query = query.where(OutboxMessage.id.in_(sorted(set(ids))))
    else:
        query = query.where(OutboxMessage.status == MessageStatus.FAILED)
    messages = list(session.scalars(query.with_for_update()))
    if ids:
        _check_all_dead_letters(ids, messages)
    when = now or utcnow()
    for message in messages:
        message.status = MessageStatus.PENDING
        message.attempts = 0
        message.next_attempt_at = when
        if ids:
            message.outcome_unknown = False
    session.flush()
    return messages


def _check_all_dead_letters(ids: Collection[int], messages: list[OutboxMessage]) -> None:
    found = {message.id: message for message in messages}
    missing = sorted(set(ids) - found.keys())
    if missing:
        label = "id" if len(missing) == 1 else "ids"
        listed = ", ".join(str(message_id) for message_id in missing)
        raise NotFoundError(
            f"no outbox message with {label} {listed} (see `tower outbox list --all`)"
        )
    not_failed = [m for m in messages if m.status != MessageStatus.FAILED]
    if not_failed:
        listed = ", ".join(f"{m.id} ({m.status.value})" for m in not_failed)
        verb = "is not a dead letter" if len(not_failed) == 1 else "are not dead letters"
        raise TowerError(
            f"outbox message {listed} {verb}: only failed messages can be retried "
            "(see `tower outbox list --failed`)"
        )
