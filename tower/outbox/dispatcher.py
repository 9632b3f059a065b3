"""Deliver due outbox messages through a notifier: retries, backoff, Retry-After, dead letters.

Each message goes through three steps, none of which holds a transaction while Slack is
called: it is claimed in a short transaction (a lease: a conditional `UPDATE` that only one
dispatcher can win, checked by its row count), sent with no transaction open, and its
outcome recorded in a second short transaction (retried when the database is busy). So any
number of dispatchers (`tower worker`, `tower sweep`, `tower serve`) and writers can run at
once, on SQLite as on PostgreSQL, and a slow or paced Slack never holds up a write.

A message is sent at most once, and never silently lost. A send whose outcome is unknown
(`OutcomeUnknown`: the connection dropped after the request went out, or no answer came in
time), or a claim whose lease ran out (its dispatcher died, maybe mid-send), marks the
message `outcome_unknown`. Its next attempt first asks the notifier to find it since the
first attempt (`LooksBack.find`): found, it is recorded sent where it landed; proven absent
by an answer covering that whole time, it is sent; neither, it is held for a person (status
`failed`, `last_error` `outcome unknown: ...`: `tower outbox list --failed`, then `tower
outbox retry ID` once checked). Leases count in the run's own time, the later of its `now`
and the wall clock, so a sweep reasoning at a later moment finds a dead process's lease run
out, while a first attempt is stamped with the wall clock, the time the receiver's records
use. A holder confirms its lease right before it posts, stamping until when that post may
land (the wall clock plus its notifier's `longest_send`); one whose lease was taken
meanwhile does not post, and one taking a message over sends nothing before that time,
however late a run reasons: a slow but living sender and its successor never both post.
Messages to one recipient usually go out in queue order, but retries may reorder them.

Outcomes of one send:
- delivered: status `sent`, `sent_at` = now;
- `DeliveryFailed`, `OutcomeUnknown`, or any unexpected exception from the notifier: a
  failed attempt, retried
  after `min(max_delay, base_delay * 2 ** (attempts - 1))`, dead-lettered (status `failed`)
  once `max_attempts` attempts have failed; `DeliveryFailed(permanent=True)` dead-letters at
  once. Dead letters stay in the table until `tower outbox retry` re-queues them;
- `RateLimited`: retried exactly `retry_after_seconds` later, not counted as an attempt. The
  recipient's other pending messages wait as long, and this run sends nothing more to it;
  other recipients are not delayed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tower.db import utcnow
from tower.outbox.backoff import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DELAY,
    Backoff,
)
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import (
    Delivery,
    DeliveryFailed,
    LooksBack,
    Notifier,
    OutcomeUnknown,
    RateLimited,
    Receipt,
    longest_send,
)
from tower.outbox.receipts import earlier_receipt

logger = logging.getLogger("tower.outbox")

Outcome = Literal["sent", "retried", "rate_limited", "dead_lettered"]
_T = TypeVar("_T")

_MAX_ERROR_LENGTH = 2000
# How long a claimed message is its dispatcher's: past it, the dispatcher is presumed dead
# and another looks for the message, then sends it if it is not there. Longer than any
# send, pacing and the Web API client's timeout included.
LEASE = timedelta(minutes=1)
# Looking for a message whose outcome is unknown starts this long before its first attempt:
# clocks of the machine and of Slack may disagree a little.
LOOK_BACK_MARGIN = timedelta(minutes=5)
UNKNOWN = "outcome unknown: "  # how last_error begins on a message that may have landed
LOOKUP_TRIES = 3  # a lookup that fails in passing is asked again this often in one attempt
LOOKUP_PAUSE_S = 0.2
CLAIM_ATTEMPTS = 20  # claims lost to other dispatchers before a run gives up for now
RECORD_ATTEMPTS = 5


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
    clock: Callable[[], datetime] = utcnow,
) -> DispatchReport:
    """Send up to `limit` pending messages due at `now` (oldest due first), one at a time.

    `unsent_too`: also messages never tried yet, whatever their due time (a sweep reasoning
    at a past moment still delivers what real changes queued since). `only`: just these
    messages (a registrant's DM goes out before any backlog). `clock`: the real time; leases
    count in the later of it and `now`.

    Each message is tried at most once per run. Errors from the notifier never escape;
    database errors and `BaseException`s (a shutdown) do, leaving the current message
    claimed until its lease runs out.
    """
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: pass an aware time (UTC)")
    if limit < 0 or max_attempts < 1:
        raise ValueError("limit must be >= 0 and max_attempts >= 1")
    backoff = Backoff(max_attempts, base_delay, max_delay)
    counts: dict[Outcome, int] = {"sent": 0, "retried": 0, "rate_limited": 0, "dead_lettered": 0}
    tried: set[int] = set()
    paused_recipients: set[str] = set()
    lease = uuid.uuid4().hex
    holder = _Holder(session_factory, lease, now, clock, longest_send(notifier))
    while len(tried) < limit:
        wanted = _Wanted(now, frozenset(tried), frozenset(paused_recipients), unsent_too, only)
        wall_time = clock()
        delivery = _claim_next(session_factory, wanted, lease, wall_time, max(now, wall_time))
        if delivery is None:
            break
        tried.add(delivery.message_id)
        sent = _send(notifier, delivery, holder)
        if sent is None:
            continue  # another dispatcher took it over meanwhile: it is theirs now
        outcome = _record(session_factory, delivery.message_id, sent, now=now, backoff=backoff)
        if outcome == "rate_limited":
            paused_recipients.add(delivery.recipient)
        counts[outcome] += 1
    report = DispatchReport(**counts)
    if report.attempted:
        logger.info("outbox: %s", report.summary())
    return report


@dataclass(frozen=True)
class Claimed:
    """A message claimed in the transaction that queued it, for its writer to send as
    soon as that commits (`deliver_claimed`)."""

    delivery: Delivery
    lease: str


def claim_queued(
    session: Session, message: OutboxMessage, *, wall_time: datetime, now: datetime | None = None
) -> Claimed:
    """Claim `message`, just queued in this transaction, for the writer to send right
    after it commits: no dispatcher takes it meanwhile, and no other transaction stands
    between the change and its message. If the writer dies first, the lease runs out and
    a dispatcher looks for it, then sends it (`LEASE`). `wall_time`: the real time; `now`:
    the service's, when later (leases count in the later of the two)."""
    lease = uuid.uuid4().hex
    message.claimed_until = max(wall_time, now or wall_time) + LEASE
    message.claimed_by = lease
    message.first_attempt_at = message.first_attempt_at or wall_time
    session.flush()
    return Claimed(_delivery(session, message), lease)


def deliver_claimed(
    session_factory: sessionmaker[Session],
    notifier: Notifier,
    claimed: Claimed,
    *,
    now: datetime,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base_delay: timedelta = DEFAULT_BASE_DELAY,
    max_delay: timedelta = DEFAULT_MAX_DELAY,
    clock: Callable[[], datetime] = utcnow,
) -> Outcome | None:
    """Send a message claimed by `claim_queued` (its transaction committed), then record
    the outcome as `dispatch_due` would; None when a dispatcher took it over meanwhile."""
    holder = _Holder(session_factory, claimed.lease, now, clock, longest_send(notifier))
    sent = _send(notifier, claimed.delivery, holder)
    if sent is None:
        return None
    backoff = Backoff(max_attempts, base_delay, max_delay)
    return _record(session_factory, claimed.delivery.message_id, sent, now=now, backoff=backoff)


@dataclass(frozen=True)
class _Wanted:
    """Which messages a run looks for next."""

    now: datetime
    tried: frozenset[int]
    paused_recipients: frozenset[str]
    unsent_too: bool
    only: Collection[int] | None


def _claim_next(
    session_factory: sessionmaker[Session],
    wanted: _Wanted,
    lease: str,
    wall_time: datetime,
    lease_now: datetime,
) -> Delivery | None:
    """Claim the next due message no live lease holds, in a transaction of its own; what
    to send, or None when nothing is left. Leases count in `lease_now` (the later of the
    wall clock and the run's `now`: a sweep reasoning at a later moment finds a dead
    process's lease run out); a first attempt is stamped with `wall_time`, the time the
    receiver's own records use."""
    for _ in range(CLAIM_ATTEMPTS):
        with session_factory.begin() as session:
            candidate = session.scalar(_next_due(wanted, lease_now))
            if candidate is None:
                return None
            won = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == candidate,
                    OutboxMessage.status == MessageStatus.PENDING,
                    _unclaimed(lease_now),
                )
                .values(
                    claimed_until=lease_now + LEASE,
                    claimed_by=lease,
                    first_attempt_at=func.coalesce(OutboxMessage.first_attempt_at, wall_time),
                    # A lease that ran out: its dispatcher died, maybe after sending.
                    outcome_unknown=or_(
                        OutboxMessage.outcome_unknown, OutboxMessage.claimed_by.is_not(None)
                    ),
                )
                .execution_options(synchronize_session=False)
            )
            if _row_count(won) != 1:
                continue  # another dispatcher won it: look again
            message = session.get(OutboxMessage, candidate)
            assert message is not None
            return _delivery(session, message)
    return None


def _next_due(wanted: _Wanted, lease_now: datetime) -> Select[int]:
    due = OutboxMessage.next_attempt_at <= wanted.now
    if wanted.unsent_too:  # never tried and never told to wait: not waiting for a retry
        due = or_(due, and_(OutboxMessage.attempts == 0, OutboxMessage.last_error.is_(None)))
    query = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == MessageStatus.PENDING,
            due,
            _unclaimed(lease_now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        # PostgreSQL: pass over rows another dispatcher is claiming (SQLite has no such lock).
        .with_for_update(skip_locked=True)
    )
    if wanted.only is not None:
        query = query.where(OutboxMessage.id.in_(list(wanted.only)))
    if wanted.tried:
        query = query.where(OutboxMessage.id.not_in(list(wanted.tried)))
    if wanted.paused_recipients:
        query = query.where(OutboxMessage.recipient.not_in(list(wanted.paused_recipients)))
    return query


def _unclaimed(wall_time: datetime) -> ColumnElement[bool]:
    """No dispatcher holds the row: never claimed, released, or its lease ran out."""
    return or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= wall_time)


Confirmed = Literal["held", "lost", "landing"]


@dataclass(frozen=True)
class _Holder:
    """A dispatcher's lease on the messages it claimed, confirmed before each post.
    `posting`: how long a post may take to land (the notifier's `longest_send`)."""

    session_factory: sessionmaker[Session]
    lease: str
    now: datetime
    clock: Callable[[], datetime]
    posting: timedelta

    def confirm(self, message_id: int) -> Confirmed:
        """Before posting `message_id`: "held" when the lease is still this holder's (it is
        renewed and the post's start stamped, so nobody sends the message while this post
        may land); "lost" when another dispatcher took it over; "landing" when a post an
        earlier holder began may still land (judged by the wall clock, whatever moment the
        run reasons at): nothing is to be sent yet."""
        wall_time = self.clock()

        def confirm(session: Session) -> Confirmed:
            renewed = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.claimed_by == self.lease,
                    or_(
                        OutboxMessage.may_land_until.is_(None),
                        OutboxMessage.may_land_until <= wall_time,
                    ),
                )
                .values(
                    claimed_until=max(self.now, wall_time) + LEASE,
                    may_land_until=wall_time + self.posting,
                )
                .execution_options(synchronize_session=False)
            )
            if _row_count(renewed) == 1:
                return "held"
            holder = session.scalar(
                select(OutboxMessage.claimed_by).where(OutboxMessage.id == message_id)
            )
            return "landing" if holder == self.lease else "lost"

        return _retrying(self.session_factory, message_id, confirm)


def _row_count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))


def _delivery(session: Session, message: OutboxMessage) -> Delivery:
    payload = dict(message.payload or {})
    return Delivery(
        message_id=message.id,
        dedupe_key=message.dedupe_key,
        kind=message.kind,
        recipient=message.recipient,
        text=message.text,
        payload=payload,
        replace=earlier_receipt(session, message.recipient, payload.get("replaces")),
        thread=earlier_receipt(session, message.recipient, payload.get("thread_of")),
        unsure_since=message.first_attempt_at if message.outcome_unknown else None,
    )


@dataclass(frozen=True)
class _Sent:
    """What one send came to: a receipt, a rate limit or a failure (`unknown`: the message
    may have landed)."""

    receipt: Receipt | None = None
    limited: RateLimited | None = None
    failure: str | None = None
    permanent: bool = False
    unknown: bool = False
    landing: bool = False  # not sent: an earlier holder's post may still land


def _send(notifier: Notifier, delivery: Delivery, holder: _Holder) -> _Sent | None:
    """Send one claimed message, with no transaction open; one that may have landed
    already is looked for first. None: the lease was lost before posting (nothing sent)."""
    if delivery.unsure_since is not None:
        looked = _look_for(notifier, delivery, delivery.unsure_since)
        if looked is not None:
            return looked
    held = holder.confirm(delivery.message_id)
    if held == "lost":
        logger.info("outbox message %d: taken over by another dispatcher", delivery.message_id)
        return None
    if held == "landing":
        logger.info("outbox message %d: an earlier post may still land", delivery.message_id)
        return _Sent(landing=True)
    try:
        return _Sent(receipt=notifier.send(delivery))
    except OutcomeUnknown as unknown:
        logger.warning(
            "outbox message %d to %s: %s", delivery.message_id, delivery.recipient, unknown
        )
        return _Sent(failure=unknown.reason, unknown=True)
    except RateLimited as limited:
        logger.info("outbox message %d to %s: %s", delivery.message_id, delivery.recipient, limited)
        return _Sent(limited=limited)
    except DeliveryFailed as failed:
        logger.warning(
            "outbox message %d to %s failed: %s", delivery.message_id, delivery.recipient, failed
        )
        return _Sent(failure=failed.reason, permanent=failed.permanent)
    except Exception as error:
        logger.exception("outbox message %d: the notifier raised unexpectedly", delivery.message_id)
        return _Sent(failure=f"{type(error).__name__}: {error}")


def _look_for(notifier: Notifier, delivery: Delivery, since: datetime) -> _Sent | None:
    """Whether a message that may have landed did: sent (with its receipt), still unknown
    (retried later, or held for a person), or None when proven absent, to be sent."""
    if not isinstance(notifier, LooksBack):
        reason = f"{type(notifier).__name__} cannot look for what it sent"
        return _Sent(failure=reason, unknown=True, permanent=True)
    try:
        found = _find(notifier, delivery, since - LOOK_BACK_MARGIN)
    except OutcomeUnknown as unknown:
        return _Sent(failure=unknown.reason, unknown=True, permanent=True)
    except RateLimited as limited:
        return _Sent(limited=limited)
    except DeliveryFailed as failed:
        reason = f"looking for it: {failed.reason}"
        return _Sent(failure=reason, unknown=True, permanent=failed.permanent)
    except Exception as error:
        logger.exception("outbox message %d: looking for it raised", delivery.message_id)
        return _Sent(failure=f"looking for it: {type(error).__name__}: {error}", unknown=True)
    if found is None:
        logger.info("outbox message %d: not there after all, sending it", delivery.message_id)
        return None
    logger.info("outbox message %d: it had landed (%s)", delivery.message_id, dict(found))
    return _Sent(receipt=found)


def _find(notifier: LooksBack, delivery: Delivery, since: datetime) -> Receipt | None:
    """`notifier.find`, asked again at once after a passing failure (a lookup is a read:
    asking twice harms nothing), so one dropped answer does not cost a whole attempt."""
    attempt = 1
    while True:
        try:
            return notifier.find(delivery, since)
        except DeliveryFailed as failed:
            if failed.permanent or attempt >= LOOKUP_TRIES:
                raise
        time.sleep(LOOKUP_PAUSE_S * attempt)
        attempt += 1


def _record(
    session_factory: sessionmaker[Session],
    message_id: int,
    sent: _Sent,
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

    return _retrying(session_factory, message_id, record)


def _retrying(
    session_factory: sessionmaker[Session], message_id: int, write: Callable[[Session], _T]
) -> _T:
    """`write` in a short transaction of its own, tried again while the database is busy."""
    attempt = 1
    while True:
        try:
            with session_factory.begin() as session:
                return write(session)
        except OperationalError:
            if attempt == RECORD_ATTEMPTS:
                raise
            logger.warning("outbox message %d: the database is busy, writing again", message_id)
            time.sleep(0.1 * attempt)
            attempt += 1


def _apply(
    session: Session, message: OutboxMessage, sent: _Sent, *, now: datetime, backoff: Backoff
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
