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

The steps live apart: claiming and confirming leases in `leases`, looking for a message
whose outcome is unknown in `lookback`, recording outcomes in `outcomes` (with `backoff`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from tower.db import utcnow
from tower.outbox.backoff import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DELAY,
    Backoff,
)
from tower.outbox.leases import Claimed, Holder, Wanted, claim_next
from tower.outbox.lookback import look_for
from tower.outbox.notifier import (
    Delivery,
    DeliveryFailed,
    Notifier,
    OutcomeUnknown,
    RateLimited,
    longest_send,
)
from tower.outbox.outcomes import Outcome, Sent, record_outcome

logger = logging.getLogger("tower.outbox")


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
    holder = Holder(session_factory, lease, now, clock, longest_send(notifier))
    while len(tried) < limit:
        wanted = Wanted(now, frozenset(tried), frozenset(paused_recipients), unsent_too, only)
        wall_time = clock()
        delivery = claim_next(session_factory, wanted, lease, wall_time, max(now, wall_time))
        if delivery is None:
            break
        tried.add(delivery.message_id)
        sent = _send(notifier, delivery, holder)
        if sent is None:
            continue  # another dispatcher took it over meanwhile: it is theirs now
        outcome = record_outcome(
            session_factory, delivery.message_id, sent, now=now, backoff=backoff
        )
        if outcome == "rate_limited":
            paused_recipients.add(delivery.recipient)
        counts[outcome] += 1
    report = DispatchReport(**counts)
    if report.attempted:
        logger.info("outbox: %s", report.summary())
    return report


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
    holder = Holder(session_factory, claimed.lease, now, clock, longest_send(notifier))
    sent = _send(notifier, claimed.delivery, holder)
    if sent is None:
        return None
    backoff = Backoff(max_attempts, base_delay, max_delay)
    return record_outcome(
        session_factory, claimed.delivery.message_id, sent, now=now, backoff=backoff
    )


def _send(notifier: Notifier, delivery: Delivery, holder: Holder) -> Sent | None:
    """Send one claimed message, with no transaction open; one that may have landed
    already is looked for first. None: the lease was lost before posting (nothing sent)."""
    if delivery.unsure_since is not None:
        looked = look_for(notifier, delivery, delivery.unsure_since)
        if looked is not None:
            return looked
    held = holder.confirm(delivery.message_id)
    if held == "lost":
        logger.info("outbox message %d: taken over by another dispatcher", delivery.message_id)
        return None
    if held == "landing":
        logger.info("outbox message %d: an earlier post may still land", delivery.message_id)
        return Sent(landing=True)
    try:
        return Sent(receipt=notifier.send(delivery))
    except OutcomeUnknown as unknown:
        logger.warning(
            "outbox message %d to %s: %s", delivery.message_id, delivery.recipient, unknown
        )
        return Sent(failure=unknown.reason, unknown=True)
    except RateLimited as limited:
        logger.info("outbox message %d to %s: %s", delivery.message_id, delivery.recipient, limited)
        return Sent(limited=limited)
    except DeliveryFailed as failed:
        logger.warning(
            "outbox message %d to %s failed: %s", delivery.message_id, delivery.recipient, failed
        )
        return Sent(failure=failed.reason, permanent=failed.permanent)
    except Exception as error:
        logger.exception("outbox message %d: the notifier raised unexpectedly", delivery.message_id)
        return Sent(failure=f"{type(error).__name__}: {error}")
