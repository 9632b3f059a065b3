"""Record what one send came to on its message, and release the lease: sent, retried after
a backoff, dead-lettered, or held with its recipient for a rate limit (the rules:
`tower.outbox.dispatcher`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tower.outbox.backoff import Backoff
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import RateLimited, Receipt
from tower.outbox.transactions import retrying_while_busy

logger = logging.getLogger("tower.outbox")

Outcome = Literal["sent", "retried", "rate_limited", "dead_lettered"]

_MAX_ERROR_LENGTH = 2000
UNKNOWN = "outcome unknown: "  # how last_error begins on a message that may have landed


@dataclass(frozen=True)
class Sent:
    """What one send came to: a receipt, a rate limit or a failure (`unknown`: the message
    may have landed)."""

    receipt: Receipt | None = None
    limited: RateLimited | None = None
    failure: str | None = None
    permanent: bool = False
    unknown: bool = False
    landing: bool = False  # not sent: an earlier holder's post may still land


def record_outcome(
    session_factory: sessionmaker[Session],
    message_id: int,
    sent: Sent,
    *,
    now: datetime,
    backoff: Backoff,
) -> Outcome:
    """Record a send's outcome on its row and release the lease, in a short transaction of
    its own, tried again while the database is busy."""

    def record(session: Session) -> Outcome:
        message = session.get(OutboxMessage, message_id)
        assert message is not None, f"outbox message {message_id} vanished while sent"
        message.claimed_until = message.claimed_by = None
        if sent.landing:  # looked for again once the earlier post can no longer land
            message.outcome_unknown = True
            return "retried"
        message.may_land_until = None  # this holder's post, if any, is over
        return _apply(session, message, sent, now=now, backoff=backoff)

    return retrying_while_busy(session_factory, message_id, record)


def _apply(
    session: Session, message: OutboxMessage, sent: Sent, *, now: datetime, backoff: Backoff
) -> Outcome:
    if sent.limited is not None:
        wait = timedelta(seconds=max(0.0, sent.limited.retry_after_seconds))
        message.next_attempt_at = now + wait
        message.last_error = str(sent.limited)
        _hold_recipient(session, message.recipient, until=message.next_attempt_at)
        return "rate_limited"
    if sent.failure is not None:
        if sent.unknown:
            message.outcome_unknown = True
        reason = UNKNOWN + sent.failure if message.outcome_unknown else sent.failure
        return _record_failure(message, reason, now, backoff, permanent=sent.permanent)
    message.status = MessageStatus.SENT
    message.outcome_unknown = False
    message.sent_at = now  # last_error stays: it tells why a late message was late
    message.receipt = None if sent.receipt is None else dict(sent.receipt)
    return "sent"


def _record_failure(
    message: OutboxMessage, reason: str, now: datetime, backoff: Backoff, *, permanent: bool
) -> Outcome:
    message.attempts += 1
    message.last_error = reason[:_MAX_ERROR_LENGTH]
    if permanent or message.attempts >= backoff.max_attempts:
        message.status = MessageStatus.FAILED
        logger.error(
            "outbox message %d to %s dead-lettered after %d attempt(s): %s "
            "(re-queue with `tower outbox retry %d`)",
            message.id,
            message.recipient,
            message.attempts,
            reason,
            message.id,
        )
        return "dead_lettered"
    message.next_attempt_at = now + backoff.delay(message.attempts)
    return "retried"


def _hold_recipient(session: Session, recipient: str, *, until: datetime) -> None:
    """Make the recipient's other pending messages wait for the end of its rate limit too."""
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.recipient == recipient,
            OutboxMessage.status == MessageStatus.PENDING,
            OutboxMessage.next_attempt_at < until,
        )
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
