"""Write notifications into the outbox, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tower.db import insert_rows_unless_present, insert_unless_present, utcnow
from tower.messages import Message
from tower.outbox.models import OutboxMessage


def enqueue(
    session: Session,
    *,
    kind: str,
    recipient: str,
    text: Message | str,
    dedupe_key: str,
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> OutboxMessage | None:
    """Queue a message, unless one with the same dedupe key already exists (then None).

    The message commits or rolls back with the change that caused it, so a notification is
    never sent for a change that did not happen, nor lost for one that did. It is due `at`
    the moment of that change (the service clock), else now.
    """
    return enqueue_message(
        session, NewMessage(kind, recipient, text, dedupe_key, payload or {}, at)
    )


def enqueue_message(session: Session, new: NewMessage) -> OutboxMessage | None:
    """`enqueue` of a message already made (`tower.outbox.notify.messages_for`)."""
    statement = insert_unless_present(session, OutboxMessage, **new.row(utcnow()))
    # One statement: a message already queued (by this transaction or another) stays as it
    # was, and a concurrent writer of the same key makes this one wait, then do nothing.
    message: OutboxMessage | None = session.scalar(statement.returning(OutboxMessage))
    return message


@dataclass(frozen=True)
class NewMessage:
    """A message to queue (`enqueue_all`), as `enqueue` takes it."""

    kind: str
    recipient: str
    text: Message | str  # a string: Tower's own words alone
    dedupe_key: str
    payload: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None  # when it is due (None: now)

    def row(self, now: datetime) -> dict[str, Any]:
        """Its columns in the outbox, due `now` unless it says when: the message's plain
        text, as a console shows it, and its parts for each channel to render."""
        message = Message.of(self.text)
        return {
            "dedupe_key": self.dedupe_key,
            "kind": self.kind,
            "recipient": self.recipient,
            "text": message.plain(),
            "parts": message.to_json(),
            "payload": self.payload,
            "next_attempt_at": self.at or now,
        }


def enqueue_all(session: Session, messages: Sequence[NewMessage]) -> None:
    """Queue `messages` together, each unless one with its dedupe key exists (as
    `enqueue`, in the caller's transaction)."""
    if not messages:
        return
    now = utcnow()
    rows = [message.row(now) for message in messages]
    insert_rows_unless_present(session, OutboxMessage, rows)
