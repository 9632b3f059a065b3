"""Deliver due outbox messages through a notifier: retries, backoff, Retry-After, dead letters.

Each message is claimed, sent and recorded in one short transaction of its own. On
PostgreSQL the claim is `SELECT ... FOR UPDATE SKIP LOCKED`, and the row lock is held while
sending, so several dispatchers can run side by side and never send the same message. SQLite
has no row locks and ignores the clause: run a single dispatcher there.

Delivery is at least once. A process killed after the notifier sent a message but before the
transaction committed leaves the row pending, and the message is sent again by a later run;
the `Delivery` carries the message's `dedupe_key` so the receiver can drop the duplicate.
Messages to one recipient usually go out in queue order, but retries may reorder them.

Outcomes of one send:
- delivered: status `sent`, `sent_at` = now;
- `DeliveryFailed`, or any unexpected exception from the notifier: a failed attempt, retried
  after `min(max_delay, base_delay * 2 ** (attempts - 1))`, dead-lettered (status `failed`)
  once `max_attempts` attempts have failed; `DeliveryFailed(permanent=True)` dead-letters at
  once. Dead letters stay in the table until `tower outbox retry` re-queues them;
- `RateLimited`: retried exactly `retry_after_seconds` later, not counted as an attempt. The
  recipient's other pending messages wait as long, and this run sends nothing more to it;
  other recipients are not delayed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import Delivery, DeliveryFailed, Notifier, RateLimited, Receipt

logger = logging.getLogger("tower.outbox")

Outcome = Literal["sent", "retried", "rate_limited", "dead_lettered"]

DEFAULT_BASE_DELAY = timedelta(seconds=30)
DEFAULT_MAX_DELAY = timedelta(hours=1)
DEFAULT_MAX_ATTEMPTS = 8
_MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class DispatchReport:
    """What one run did: messages sent, retried later, rate limited and dead-lettered."""

    sent: int = 0
    retried: int = 0
    rate_limited: int = 0
    dead_lettered: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.retried + self.rate_limited + self.dead_lettered

    def plus(self, other: DispatchReport) -> DispatchReport:
        """Both runs' counts together."""
        return DispatchReport(
            self.sent + other.sent,
            self.retried + other.retried,
            self.rate_limited + other.rate_limited,
            self.dead_lettered + other.dead_lettered,
        )

    def summary(self) -> str:
        return (
            f"{self.sent} sent, {self.retried} to retry, {self.rate_limited} rate limited, "
            f"{self.dead_lettered} dead-lettered"
        )


def backoff_delay(
    attempts: int,
    *,
    base_delay: timedelta = DEFAULT_BASE_DELAY,
    max_delay: timedelta = DEFAULT_MAX_DELAY,
) -> timedelta:
    """How long a message waits after its `attempts`-th failed attempt (1, 2, ...)."""
    try:
        return min(max_delay, base_delay * (1 << min(max(attempts - 1, 0), 62)))
    except OverflowError:  # far beyond any sane max_delay
        return max_delay


@dataclass(frozen=True)
class _Backoff:
    max_attempts: int
    base_delay: timedelta
    max_delay: timedelta

    def delay(self, attempts: int) -> timedelta:
        return backoff_delay(attempts, base_delay=self.base_delay, max_delay=self.max_delay)


def dispatch_due(
    session_factory: sessionmaker[Session],
    notifier: Notifier,
    *,
    now: datetime,
    limit: int = 100,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base_delay: timedelta = DEFAULT_BASE_DELAY,
    max_delay: timedelta = DEFAULT_MAX_DELAY,
    unsent_too: bool = False,
    only: Collection[int] | None = None,
) -> DispatchReport:
    """Send up to `limit` pending messages due at `now` (oldest due first), one transaction each.

    `unsent_too`: also messages never tried yet, whatever their due time (a sweep reasoning
    at a past moment still delivers what real changes queued since). `only`: just these
    messages (a registrant's DM goes out before any backlog).

    Each message is tried at most once per run. Errors from the notifier never escape;
    database errors and `BaseException`s (a shutdown) do, leaving the current message pending.
    """
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: pass an aware time (UTC)")
    if limit < 0 or max_attempts < 1:
        raise ValueError("limit must be >= 0 and max_attempts >= 1")
    backoff = _Backoff(max_attempts, base_delay, max_delay)
    counts: dict[Outcome, int] = {"sent": 0, "retried": 0, "rate_limited": 0, "dead_lettered": 0}
    tried: set[int] = set()
    paused_recipients: set[str] = set()
    while len(tried) < limit:
        with session_factory.begin() as session:
            message = _claim_next(session, now, tried, paused_recipients, unsent_too, only)
            if message is None:
                break
            tried.add(message.id)
            outcome = _deliver(session, notifier, message, now=now, backoff=backoff)
            if outcome == "rate_limited":
                paused_recipients.add(message.recipient)
                _hold_recipient(session, message.recipient, until=message.next_attempt_at)
        counts[outcome] += 1
    report = DispatchReport(**counts)
    if report.attempted:
        logger.info("outbox: %s", report.summary())
    return report


def _claim_next(
    session: Session,
    now: datetime,
    tried: Collection[int],
    paused_recipients: Collection[str],
    unsent_too: bool = False,
    only: Collection[int] | None = None,
) -> OutboxMessage | None:
    """Lock the next due message no other dispatcher holds (PostgreSQL), or None."""
    due = OutboxMessage.next_attempt_at <= now
    if unsent_too:  # never tried and never told to wait: not waiting for a retry
        due = or_(due, and_(OutboxMessage.attempts == 0, OutboxMessage.last_error.is_(None)))
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == MessageStatus.PENDING, due)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if only is not None:
        query = query.where(OutboxMessage.id.in_(list(only)))
    if tried:
        query = query.where(OutboxMessage.id.not_in(list(tried)))
    if paused_recipients:
        query = query.where(OutboxMessage.recipient.not_in(list(paused_recipients)))
    return session.scalar(query)


def _deliver(
    session: Session,
    notifier: Notifier,
    message: OutboxMessage,
    *,
    now: datetime,
    backoff: _Backoff,
) -> Outcome:
    """Send one claimed message and record the outcome on its row; returns the outcome."""
    payload = dict(message.payload or {})
    delivery = Delivery(
        message_id=message.id,
        dedupe_key=message.dedupe_key,
        kind=message.kind,
        recipient=message.recipient,
        text=message.text,
        payload=payload,
        replace=earlier_receipt(session, message.recipient, payload.get("replaces")),
        thread=earlier_receipt(session, message.recipient, payload.get("thread_of")),
    )
    try:
        receipt = notifier.send(delivery)
    except RateLimited as limited:
        wait = timedelta(seconds=max(0.0, limited.retry_after_seconds))
        message.next_attempt_at = now + wait
        message.last_error = str(limited)
        logger.info("outbox message %d to %s: %s", message.id, message.recipient, limited)
        return "rate_limited"
    except DeliveryFailed as failed:
        logger.warning("outbox message %d to %s failed: %s", message.id, message.recipient, failed)
        return _record_failure(message, failed.reason, now, backoff, permanent=failed.permanent)
    except Exception as error:
        logger.exception("outbox message %d: the notifier raised unexpectedly", message.id)
        reason = f"{type(error).__name__}: {error}"
        return _record_failure(message, reason, now, backoff, permanent=False)
    message.status = MessageStatus.SENT
    message.sent_at = now  # last_error stays: it tells why a late message was late
    message.receipt = None if receipt is None else dict(receipt)
    return "sent"


def earlier_receipt(
    session: Session, recipient: str, reference: Mapping[str, Any] | None
) -> Receipt | None:
    """Where the latest message sent to `recipient` matching `reference` landed.

    A reference names the earlier message's `kind` (or `kinds`, any of them) and payload
    values, e.g. `{"kind": "approval_requested", "key": "T-4"}`; a payload list matches a
    value it holds (`{"collisions": "C-4"}` finds a summary naming C-4 among others).
    """
    if not reference or not ("kind" in reference or "kinds" in reference):
        return None
    kinds = list(reference.get("kinds") or [reference["kind"]])
    wanted = {name: value for name, value in reference.items() if name not in ("kind", "kinds")}
    candidates = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.recipient == recipient,
            OutboxMessage.kind.in_(kinds),
            OutboxMessage.status == MessageStatus.SENT,
        )
        .order_by(OutboxMessage.id.desc())
    )
    for candidate in candidates:
        payload = candidate.payload or {}
        if candidate.receipt and all(_holds(payload.get(k), v) for k, v in wanted.items()):
            return dict(candidate.receipt)
    return None


def _holds(found: Any, wanted: Any) -> bool:
    return wanted in found if isinstance(found, list) else bool(found == wanted)


def _record_failure(
    message: OutboxMessage, reason: str, now: datetime, backoff: _Backoff, *, permanent: bool
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
    """Make the recipient's other pending messages wait for the end of its rate limit too.

    Rows another dispatcher holds are skipped (not waited for), so two dispatchers holding
    one row each cannot deadlock here.
    """
    free_rows = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.recipient == recipient,
            OutboxMessage.status == MessageStatus.PENDING,
            OutboxMessage.next_attempt_at < until,
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(free_rows))
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
