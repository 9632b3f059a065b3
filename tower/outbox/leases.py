"""A dispatcher's lease on the messages it claims: won by one dispatcher alone, confirmed
right before each post (the delivery guarantee this keeps: `tower.outbox.dispatcher`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from tower.messages import Message
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import Delivery
from tower.outbox.payloads import follow_ups
from tower.outbox.receipts import earlier_receipt
from tower.outbox.transactions import retrying_while_busy

# How long a claimed message is its dispatcher's: past it, the dispatcher is presumed dead
# and another looks for the message, then sends it if it is not there. Longer than any
# send, pacing and the Web API client's timeout included.
LEASE = timedelta(minutes=1)
CLAIM_ATTEMPTS = 20  # claims lost to other dispatchers before a run gives up for now


@dataclass(frozen=True)
class Claimed:
    """A message claimed in the transaction that queued it, for its writer to send as
    soon as that commits (`tower.outbox.dispatcher.deliver_claimed`)."""

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


@dataclass(frozen=True)
class Wanted:
    """Which messages a run looks for next."""

    now: datetime
    tried: frozenset[int]
    paused_recipients: frozenset[str]
    unsent_too: bool
    only: Collection[int] | None


def claim_next(
    session_factory: sessionmaker[Session],
    wanted: Wanted,
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


def _next_due(wanted: Wanted, lease_now: datetime) -> Select[int]:
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
class Holder:
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

        return retrying_while_busy(self.session_factory, message_id, confirm)


def _row_count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))


def _delivery(session: Session, message: OutboxMessage) -> Delivery:
    payload = dict(message.payload or {})
    replaces, thread_of = follow_ups(payload)
    return Delivery(
        message_id=message.id,
        dedupe_key=message.dedupe_key,
        kind=message.kind,
        recipient=message.recipient,
        text=message.text,
        payload=payload,
        replace=earlier_receipt(session, message.recipient, replaces),
        thread=earlier_receipt(session, message.recipient, thread_of),
        unsure_since=message.first_attempt_at if message.outcome_unknown else None,
        message=None if message.parts is None else Message.from_json(message.parts),
    )
