"""The outbox's delivery side against a real, migrated database: what is sent, when it is tried
again, what is dead-lettered and re-queued, Retry-After, crashes and concurrent dispatchers.

Time is whatever each test says `now` is; the notifiers are fakes defined here.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.files import SMALL_POLICY
from tests.support.people import GROWTH_CHANNEL as GROWTH
from tests.support.people import SQUAD_CHANNEL as CHECKOUT
from tower import migrate
from tower.cli.context import AppContext
from tower.cli.outbox_commands import COLUMNS, outbox_group
from tower.db import create_database_engine, create_session_factory, utcnow
from tower.errors import NotFoundError, TowerError
from tower.messages import Message
from tower.outbox import queries
from tower.outbox import service as outbox_service
from tower.outbox.backoff import backoff_delay
from tower.outbox.dispatcher import DispatchReport, deliver_claimed, dispatch_due
from tower.outbox.leases import LEASE, Claimed, claim_queued
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import (
    ConsoleNotifier,
    Delivery,
    DeliveryFailed,
    Notifier,
    OutcomeUnknown,
    RateLimited,
    Receipt,
)
from tower.settings import Settings

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


# --- Fake notifiers -------------------------------------------------------------------------


class RecordingNotifier:
    """Delivers everything, remembering each delivery; `delay` makes every send slow.

    Like Slack, it can be asked whether a message landed (`find`): in `history`, what every
    notifier sharing it delivered (a process that died and the one after it). A send takes
    at most `longest_send`: past it, one that began can no longer land."""

    longest_send = timedelta(seconds=30)

    def __init__(self, delay: float = 0.0, history: list[Delivery] | None = None) -> None:
        self.delivered: list[Delivery] = []
        self.history = [] if history is None else history
        self.delay = delay
        self.looked: list[tuple[str, datetime]] = []  # (dedupe key, since) of each `find`
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.delivered.append(delivery)
            self.history.append(delivery)

    def find(self, delivery: Delivery, since: datetime) -> Receipt | None:
        self.looked.append((delivery.dedupe_key, since))
        landed = any(d.dedupe_key == delivery.dedupe_key for d in self.history)
        return {"channel": delivery.recipient, "ts": "1700000000.000001"} if landed else None

    def keys(self) -> list[str]:
        return [delivery.dedupe_key for delivery in self.delivered]


class FailingNotifier:
    """Never delivers: Slack is down."""

    def __init__(self, *, permanent: bool = False) -> None:
        self.permanent = permanent
        self.calls = 0

    def send(self, delivery: Delivery) -> None:
        self.calls += 1
        raise DeliveryFailed("slack is down", permanent=self.permanent)


class RecoveringNotifier(RecordingNotifier):
    """Fails the first `failures` sends, then delivers."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def send(self, delivery: Delivery) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed(f"timeout ({self.failures} more to come)")
        super().send(delivery)


class RateLimitingOnceNotifier(RecordingNotifier):
    """Answers the first send to `recipient` with HTTP 429, Retry-After: 30."""

    def __init__(self, recipient: str, retry_after: float = 30) -> None:
        super().__init__()
        self.recipient = recipient
        self.retry_after = retry_after
        self.limited = False
        self.attempted: list[str] = []

    def send(self, delivery: Delivery) -> None:
        self.attempted.append(delivery.dedupe_key)
        if delivery.recipient == self.recipient and not self.limited:
            self.limited = True
            raise RateLimited(self.retry_after)
        super().send(delivery)


class SimulatedCrash(BaseException):
    """The process dies (SIGKILL, power cut): nothing after this line runs."""


class CrashAfterSendNotifier(RecordingNotifier):
    """Delivers, then the process dies before the dispatcher can record it."""

    def send(self, delivery: Delivery) -> None:
        super().send(delivery)
        raise SimulatedCrash


class CrashBeforeSendNotifier(RecordingNotifier):
    """The process dies after claiming a message, before anything reaches Slack."""

    def send(self, delivery: Delivery) -> None:
        raise SimulatedCrash


class DroppedAfterSendNotifier(RecordingNotifier):
    """Delivers, but the connection drops before the answer: the sender cannot tell."""

    def send(self, delivery: Delivery) -> None:
        super().send(delivery)
        raise OutcomeUnknown("the connection dropped after sending")


class PartialHistoryNotifier(RecordingNotifier):
    """Its history does not reach back to the first attempt: absence cannot be proven."""

    def find(self, delivery: Delivery, since: datetime) -> Receipt | None:
        self.looked.append((delivery.dedupe_key, since))
        raise OutcomeUnknown(
            f"history of {delivery.recipient} answered only back to 10:00, not to 08:55"
        )


class FlakyLookupNotifier(RecordingNotifier):
    """Its first `failures` lookups fail in passing (Slack answered 500)."""

    def __init__(self, failures: int, history: list[Delivery]) -> None:
        super().__init__(history=history)
        self.failures = failures

    def find(self, delivery: Delivery, since: datetime) -> Receipt | None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed("Slack conversations.history: internal_error (HTTP 500)")
        return super().find(delivery, since)


class ExplodingNotifier(RecordingNotifier):
    """A notifier with a bug for one recipient: raises something no one expected."""

    def __init__(self, recipient: str) -> None:
        super().__init__()
        self.recipient = recipient

    def send(self, delivery: Delivery) -> None:
        if delivery.recipient == self.recipient:
            raise RuntimeError("boom")
        super().send(delivery)


class FlakyNotifier(RecordingNotifier):
    """Delivers about half the time; otherwise fails, raises, or is rate limited (seeded)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.random = random.Random(seed)

    def send(self, delivery: Delivery) -> None:
        roll = self.random.random()
        if roll < 0.25:
            raise DeliveryFailed("timeout")
        if roll < 0.35:
            raise ConnectionResetError("connection reset by peer")
        if roll < 0.5:
            raise RateLimited(self.random.choice([1, 5, 30]))
        super().send(delivery)


# --- Fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def outbox_url(scratch_database_url: str) -> str:
    """A migrated database of this test's own: the dispatcher opens its own transactions."""
    migrate.upgrade(scratch_database_url)
    return scratch_database_url


@pytest.fixture
def outbox_engine(outbox_url: str) -> Iterator[Engine]:
    engine = create_database_engine(outbox_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(outbox_engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(outbox_engine)


def queue(
    sessions: sessionmaker[Session],
    *recipients: str,
    at: datetime = NOW,
    prefix: str = "msg",
) -> list[int]:
    """Queue one message per recipient, due at `at`; returns their ids in queue order."""
    ids = []
    with sessions.begin() as session:
        for number, recipient in enumerate(recipients, start=1):
            message = outbox_service.enqueue(
                session,
                kind="collision.opened",
                recipient=recipient,
                text=f"Message {number}: T-{number} collides with T-99",
                dedupe_key=f"{prefix}:{number}",
                payload={"number": number},
            )
            assert message is not None
            message.next_attempt_at = at
            session.flush()
            ids.append(message.id)
    return ids


def load(sessions: sessionmaker[Session], message_id: int) -> OutboxMessage:
    with sessions() as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        return message


def statuses(sessions: sessionmaker[Session]) -> Counter[MessageStatus]:
    with sessions() as session:
        return Counter(session.scalars(select(OutboxMessage.status)))


def dispatch(
    sessions: sessionmaker[Session], notifier: Notifier, now: datetime, **options: Any
) -> DispatchReport:
    return dispatch_due(sessions, notifier, now=now, **options)


def invoke(url: str, *args: str) -> Result:
    app = AppContext(Settings(database_url=url, policy_path=SMALL_POLICY))
    try:
        return CliRunner().invoke(outbox_group, list(args), obj=app)
    finally:
        if "engine" in app.__dict__:
            app.engine.dispose()


def flat(text: str) -> str:
    return " ".join(text.split())


# --- Delivery -------------------------------------------------------------------------------


def test_a_due_message_is_sent_once_and_marked_sent(sessions: sessionmaker[Session]) -> None:
    [first, second] = queue(sessions, GROWTH, CHECKOUT)
    notifier = RecordingNotifier()

    report = dispatch(sessions, notifier, NOW)

    assert report == DispatchReport(sent=2)
    assert notifier.delivered[0] == Delivery(
        message_id=first,
        dedupe_key="msg:1",
        kind="collision.opened",
        recipient=GROWTH,
        text="Message 1: T-1 collides with T-99",
        payload={"number": 1},
        message=Message.of("Message 1: T-1 collides with T-99"),
    )
    for message_id in (first, second):
        message = load(sessions, message_id)
        assert (message.status, message.sent_at, message.attempts) == (MessageStatus.SENT, NOW, 0)
    assert dispatch(sessions, notifier, NOW + timedelta(days=1)) == DispatchReport()
    assert notifier.keys() == ["msg:1", "msg:2"]


def test_a_message_is_not_sent_before_it_is_due(sessions: sessionmaker[Session]) -> None:
    [message_id] = queue(sessions, GROWTH, at=NOW + SECOND)
    notifier = RecordingNotifier()

    assert dispatch(sessions, notifier, NOW) == DispatchReport()
    assert dispatch(sessions, notifier, NOW + SECOND) == DispatchReport(sent=1)
    assert load(sessions, message_id).sent_at == NOW + SECOND


def test_one_run_sends_at_most_limit_messages_oldest_due_first(
    sessions: sessionmaker[Session],
) -> None:
    queue(sessions, GROWTH, GROWTH, CHECKOUT, prefix="late", at=NOW)
    queue(sessions, CHECKOUT, GROWTH, prefix="early", at=NOW - timedelta(minutes=5))
    notifier = RecordingNotifier()

    assert dispatch(sessions, notifier, NOW, limit=2) == DispatchReport(sent=2)
    assert dispatch(sessions, notifier, NOW, limit=2) == DispatchReport(sent=2)
    assert dispatch(sessions, notifier, NOW, limit=2) == DispatchReport(sent=1)
    assert notifier.keys() == ["early:1", "early:2", "late:1", "late:2", "late:3"]


def test_the_dispatcher_refuses_a_naive_now(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="naive"):
        dispatch(sessions, RecordingNotifier(), NOW.replace(tzinfo=None))


def test_the_console_notifier_logs_one_line_per_delivery(
    caplog: pytest.LogCaptureFixture, sessions: sessionmaker[Session]
) -> None:
    delivery = Delivery(1, "k", "sla.warning", GROWTH, "Review due\n  in 2 hours", {})
    with caplog.at_level(logging.INFO, logger="tower.notify"):
        ConsoleNotifier().send(delivery)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("tower.notify", "[sla.warning] -> C0GROWTH: Review due in 2 hours")
    ]

    queue(sessions, GROWTH)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tower.notify"):
        assert dispatch(sessions, ConsoleNotifier(), NOW) == DispatchReport(sent=1)
    assert "[collision.opened] -> C0GROWTH: Message 1: T-1 collides with T-99" in caplog.messages


# --- Failures, backoff and dead letters -----------------------------------------------------


def test_backoff_doubles_from_base_delay_up_to_max_delay() -> None:
    delays = [backoff_delay(attempt).total_seconds() for attempt in range(1, 11)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert backoff_delay(
        3, base_delay=timedelta(seconds=5), max_delay=timedelta(seconds=15)
    ) == timedelta(seconds=15)
    assert backoff_delay(10_000) == timedelta(hours=1)  # no overflow


def test_failed_attempts_are_retried_at_exactly_the_documented_times(
    sessions: sessionmaker[Session],
) -> None:
    [message_id] = queue(sessions, GROWTH)
    notifier = FailingNotifier()
    now = NOW
    expected_delays = [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]  # seconds, capped at 1 h

    for attempt, delay in enumerate(expected_delays, start=1):
        assert dispatch(sessions, notifier, now, max_attempts=10) == DispatchReport(retried=1)
        message = load(sessions, message_id)
        assert message.status == MessageStatus.PENDING
        assert message.attempts == attempt
        assert message.next_attempt_at == now + timedelta(seconds=delay)
        assert message.last_error == "slack is down"
        now += timedelta(seconds=delay)
        calls = notifier.calls
        assert dispatch(sessions, notifier, now - SECOND, max_attempts=10) == DispatchReport()
        assert notifier.calls == calls  # not tried a second early

    assert dispatch(sessions, notifier, now, max_attempts=10) == DispatchReport(dead_lettered=1)
    message = load(sessions, message_id)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 10)
    assert dispatch(sessions, notifier, now + timedelta(days=30)) == DispatchReport()
    assert notifier.calls == 10


def test_a_message_that_fails_twice_is_delivered_on_the_third_attempt(
    sessions: sessionmaker[Session],
) -> None:
    [message_id] = queue(sessions, GROWTH)
    notifier = RecoveringNotifier(failures=2)

    assert dispatch(sessions, notifier, NOW) == DispatchReport(retried=1)
    assert dispatch(sessions, notifier, NOW + 30 * SECOND) == DispatchReport(retried=1)
    assert dispatch(sessions, notifier, NOW + 90 * SECOND) == DispatchReport(sent=1)

    message = load(sessions, message_id)
    assert (message.status, message.attempts, message.sent_at) == (
        MessageStatus.SENT,
        2,
        NOW + 90 * SECOND,
    )
    assert notifier.keys() == ["msg:1"]


def test_dead_letters_are_listed_requeued_by_retry_and_then_delivered(
    sessions: sessionmaker[Session], outbox_url: str
) -> None:
    [dead] = queue(sessions, GROWTH)
    failing = FailingNotifier()
    now = NOW
    for attempt in range(1, 9):  # the defaults: 8 attempts
        assert load(sessions, dead).status == MessageStatus.PENDING
        report = dispatch(sessions, failing, now)
        assert report == (
            DispatchReport(dead_lettered=1) if attempt == 8 else DispatchReport(retried=1)
        )
        now += timedelta(hours=1)
    assert (load(sessions, dead).status, load(sessions, dead).attempts) == (MessageStatus.FAILED, 8)
    [alive] = queue(sessions, CHECKOUT, prefix="alive", at=now)

    failed = invoke(outbox_url, "list", "--failed", "--format", "json")
    assert failed.exit_code == 0, failed.output
    [record] = json.loads(failed.output)
    assert (record["id"], record["status"], record["attempts"]) == (dead, "failed", 8)
    assert record["last_error"] == "slack is down"
    pending = json.loads(invoke(outbox_url, "list", "--format", "json").output)
    assert [record["id"] for record in pending] == [alive]

    retried = invoke(outbox_url, "retry")
    assert retried.exit_code == 0, retried.output
    assert flat(retried.output) == f"Re-queued 1 message: {dead}"
    message = load(sessions, dead)
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 0)
    assert invoke(outbox_url, "list", "--failed").output.strip() == (
        "No failed messages in the outbox."
    )

    notifier = RecordingNotifier()
    assert dispatch(sessions, notifier, utcnow()) == DispatchReport(sent=2)
    assert sorted(notifier.keys()) == ["alive:1", "msg:1"]
    assert statuses(sessions) == {MessageStatus.SENT: 2}


def test_a_permanent_failure_is_dead_lettered_at_once(sessions: sessionmaker[Session]) -> None:
    [message_id] = queue(sessions, GROWTH)

    report = dispatch(sessions, FailingNotifier(permanent=True), NOW)

    assert report == DispatchReport(dead_lettered=1)
    message = load(sessions, message_id)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 1)


def test_an_unexpected_notifier_error_is_a_failed_attempt_and_is_logged(
    caplog: pytest.LogCaptureFixture, sessions: sessionmaker[Session]
) -> None:
    [broken, fine] = queue(sessions, GROWTH, CHECKOUT)
    notifier = ExplodingNotifier(GROWTH)

    with caplog.at_level(logging.ERROR, logger="tower.outbox"):
        report = dispatch(sessions, notifier, NOW)

    assert report == DispatchReport(sent=1, retried=1)
    message = load(sessions, broken)
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    assert message.last_error == "RuntimeError: boom"
    assert message.next_attempt_at == NOW + 30 * SECOND
    assert load(sessions, fine).status == MessageStatus.SENT
    [record] = caplog.records
    assert record.exc_info is not None and f"outbox message {broken}" in record.getMessage()


# --- Rate limits ----------------------------------------------------------------------------


def test_retry_after_is_honoured_and_other_recipients_are_not_delayed(
    sessions: sessionmaker[Session],
) -> None:
    ids = queue(sessions, GROWTH, CHECKOUT, GROWTH, CHECKOUT, GROWTH)
    notifier = RateLimitingOnceNotifier(GROWTH, retry_after=30)

    report = dispatch(sessions, notifier, NOW)

    assert report == DispatchReport(sent=2, rate_limited=1)
    assert notifier.attempted == ["msg:1", "msg:2", "msg:4"]  # nothing more to C0GROWTH
    assert notifier.keys() == ["msg:2", "msg:4"]
    limited = load(sessions, ids[0])
    assert (limited.status, limited.attempts) == (MessageStatus.PENDING, 0)
    for message_id in (ids[0], ids[2], ids[4]):  # the recipient's other messages wait too
        assert load(sessions, message_id).next_attempt_at == NOW + 30 * SECOND

    assert dispatch(sessions, notifier, NOW + 29 * SECOND) == DispatchReport()
    assert dispatch(sessions, notifier, NOW + 30 * SECOND) == DispatchReport(sent=3)
    assert notifier.keys() == ["msg:2", "msg:4", "msg:1", "msg:3", "msg:5"]
    assert load(sessions, ids[0]).sent_at == NOW + 30 * SECOND


def test_a_rate_limit_does_not_count_as_an_attempt(sessions: sessionmaker[Session]) -> None:
    [message_id] = queue(sessions, GROWTH)
    notifier = RateLimitingOnceNotifier(GROWTH, retry_after=2.5)

    assert dispatch(sessions, notifier, NOW, max_attempts=1) == DispatchReport(rate_limited=1)
    message = load(sessions, message_id)
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 0)
    assert message.next_attempt_at == NOW + timedelta(seconds=2.5)
    assert dispatch(sessions, notifier, NOW + timedelta(seconds=2.5)) == DispatchReport(sent=1)


# --- Crashes and at-least-once --------------------------------------------------------------


def test_a_crash_after_sending_is_found_in_the_history_and_not_sent_again(
    sessions: sessionmaker[Session],
) -> None:
    [message_id] = queue(sessions, GROWTH)
    history: list[Delivery] = []
    crashing = CrashAfterSendNotifier(history=history)
    crashed_at = datetime.now(UTC)

    with pytest.raises(SimulatedCrash):
        dispatch(sessions, crashing, NOW, clock=lambda: crashed_at)

    message = load(sessions, message_id)
    assert (message.status, message.attempts, message.sent_at) == (MessageStatus.PENDING, 0, None)
    notifier = RecordingNotifier(history=history)
    # While the lease holds, the crashed dispatcher may still be sending: nobody else does.
    within = crashed_at + LEASE - SECOND
    assert dispatch(sessions, notifier, NOW + SECOND, clock=lambda: within) == DispatchReport()
    after = crashed_at + LEASE + SECOND
    assert dispatch(sessions, notifier, NOW + SECOND, clock=lambda: after) == DispatchReport(sent=1)
    # It had landed: recorded as sent where it is, not posted a second time.
    assert notifier.delivered == [] and [d.dedupe_key for d in history] == ["msg:1"]
    [(looked_for, since)] = notifier.looked
    assert looked_for == "msg:1" and since <= crashed_at  # from before the first attempt on
    sent = load(sessions, message_id)
    assert (sent.status, sent.outcome_unknown, sent.receipt) == (
        MessageStatus.SENT,
        False,
        {"channel": GROWTH, "ts": "1700000000.000001"},
    )


def test_a_crash_before_sending_is_proven_absent_and_sent_once(
    sessions: sessionmaker[Session],
) -> None:
    [message_id] = queue(sessions, GROWTH)
    crashed_at = datetime.now(UTC)
    with pytest.raises(SimulatedCrash):
        dispatch(sessions, CrashBeforeSendNotifier(), NOW, clock=lambda: crashed_at)
    notifier = RecordingNotifier()
    after = crashed_at + LEASE + SECOND
    assert dispatch(sessions, notifier, NOW + SECOND, clock=lambda: after) == DispatchReport(sent=1)
    assert notifier.keys() == ["msg:1"] and [key for key, _ in notifier.looked] == ["msg:1"]
    assert load(sessions, message_id).status == MessageStatus.SENT


def test_a_dead_dispatchers_lease_runs_out_by_the_moment_a_sweep_reasons_at(
    sessions: sessionmaker[Session],
) -> None:
    """`tower sweep --now` a day later finds the lease of a process that died today run out,
    whatever the wall clock says; it sends once the dead process's post, begun at its
    death, can no longer land (by the wall clock: Slack's time)."""
    [message_id] = queue(sessions, GROWTH)
    crashed_at = datetime.now(UTC)
    with pytest.raises(SimulatedCrash):
        dispatch(sessions, CrashBeforeSendNotifier(), NOW, clock=lambda: crashed_at)
    notifier = RecordingNotifier()
    tomorrow = crashed_at + timedelta(days=1)
    assert dispatch(sessions, notifier, tomorrow, clock=lambda: crashed_at) == DispatchReport(
        retried=1
    )
    assert notifier.looked and notifier.delivered == []  # looked for, not there, not sent yet
    waiting = load(sessions, message_id)
    assert (waiting.status, waiting.attempts, waiting.claimed_by) == (
        MessageStatus.PENDING,
        0,
        None,
    )
    landed_by = crashed_at + notifier.longest_send + SECOND  # still within the dead lease
    assert dispatch(sessions, notifier, tomorrow, clock=lambda: landed_by) == DispatchReport(sent=1)
    assert notifier.keys() == ["msg:1"]
    assert load(sessions, message_id).status == MessageStatus.SENT


def test_an_unknown_outcome_is_looked_for_before_the_next_attempt(
    sessions: sessionmaker[Session],
) -> None:
    [message_id] = queue(sessions, GROWTH)
    history: list[Delivery] = []
    dropped = DroppedAfterSendNotifier(history=history)
    assert dispatch(sessions, dropped, NOW) == DispatchReport(retried=1)
    waiting = load(sessions, message_id)
    assert (waiting.status, waiting.outcome_unknown) == (MessageStatus.PENDING, True)
    assert waiting.last_error == "outcome unknown: the connection dropped after sending"
    notifier = RecordingNotifier(history=history)
    assert dispatch(sessions, notifier, NOW + backoff_delay(1)) == DispatchReport(sent=1)
    assert notifier.delivered == [] and len(history) == 1  # found, not posted again


def test_a_lookup_failing_in_passing_is_asked_again_within_the_attempt(
    sessions: sessionmaker[Session],
) -> None:
    [message_id] = queue(sessions, GROWTH)
    history: list[Delivery] = []
    assert dispatch(sessions, DroppedAfterSendNotifier(history=history), NOW).retried == 1
    flaky = FlakyLookupNotifier(failures=2, history=history)
    assert dispatch(sessions, flaky, NOW + backoff_delay(1)) == DispatchReport(sent=1)
    assert flaky.delivered == [] and load(sessions, message_id).attempts == 1
    stubborn = FlakyLookupNotifier(failures=3, history=[])
    [other] = queue(sessions, GROWTH, prefix="other")
    assert dispatch(sessions, DroppedAfterSendNotifier(), NOW).retried == 1
    assert dispatch(sessions, stubborn, NOW + backoff_delay(1)) == DispatchReport(retried=1)
    waiting = load(sessions, other)
    assert waiting.last_error == (
        "outcome unknown: looking for it: Slack conversations.history: internal_error (HTTP 500)"
    )


def test_a_message_that_cannot_be_proven_absent_is_held_for_a_person(
    sessions: sessionmaker[Session], outbox_url: str
) -> None:
    [message_id] = queue(sessions, GROWTH)
    assert dispatch(sessions, DroppedAfterSendNotifier(), NOW) == DispatchReport(retried=1)
    blind = PartialHistoryNotifier()
    assert dispatch(sessions, blind, NOW + backoff_delay(1)) == DispatchReport(dead_lettered=1)
    held = load(sessions, message_id)
    assert held.status == MessageStatus.FAILED and blind.delivered == []
    assert held.last_error == (
        "outcome unknown: history of C0GROWTH answered only back to 10:00, not to 08:55"
    )
    listed = invoke(outbox_url, "list", "--failed", "--format", "json")
    [record] = json.loads(listed.output)
    assert record["id"] == message_id and record["last_error"].startswith("outcome unknown: ")
    # A person checked the channel and re-queued it: sent without looking again.
    assert invoke(outbox_url, "retry", str(message_id)).exit_code == 0
    assert dispatch(sessions, blind, utcnow()) == DispatchReport(sent=1)
    assert blind.keys() == ["msg:1"] and len(blind.looked) == 1


def test_retrying_every_dead_letter_looks_for_a_held_one_first(
    sessions: sessionmaker[Session], outbox_url: str
) -> None:
    """`tower outbox retry` with no id checks nothing: a message that may have landed is
    looked for again before it is sent, never sent blind."""
    [message_id] = queue(sessions, GROWTH)
    history: list[Delivery] = []
    assert dispatch(sessions, DroppedAfterSendNotifier(history=history), NOW) == DispatchReport(
        retried=1
    )
    blind = PartialHistoryNotifier()
    assert dispatch(sessions, blind, NOW + backoff_delay(1)) == DispatchReport(dead_lettered=1)

    assert invoke(outbox_url, "retry").exit_code == 0
    assert load(sessions, message_id).outcome_unknown
    seeing = RecordingNotifier(history=history)
    assert dispatch(sessions, seeing, utcnow()) == DispatchReport(sent=1)
    assert seeing.delivered == [] and [key for key, _ in seeing.looked] == ["msg:1"]


def test_a_notifier_that_cannot_look_back_holds_an_unknown_outcome(
    sessions: sessionmaker[Session],
) -> None:
    [message_id] = queue(sessions, GROWTH)
    assert dispatch(sessions, DroppedAfterSendNotifier(), NOW) == DispatchReport(retried=1)
    assert dispatch(sessions, FailingNotifier(), NOW + backoff_delay(1)) == DispatchReport(
        dead_lettered=1
    )
    held = load(sessions, message_id)
    assert held.status == MessageStatus.FAILED
    assert held.last_error == "outcome unknown: FailingNotifier cannot look for what it sent"


def queue_claimed(sessions: sessionmaker[Session], key: str, claimed_at: datetime) -> Claimed:
    """A registrant's DM for test `key`, queued and claimed by its writer at `claimed_at`."""
    with sessions.begin() as session:
        message = outbox_service.enqueue(
            session,
            kind="registered",
            recipient="U0OWNER",
            text=f"{key} is registered",
            dedupe_key=f"registered:{key}",
            at=NOW,
        )
        assert message is not None
        return claim_queued(session, message, wall_time=claimed_at)


def test_a_message_claimed_by_its_writer_is_sent_by_it_and_by_nobody_else(
    sessions: sessionmaker[Session],
) -> None:
    """A registrant's DM is claimed in the registration's transaction and sent by its
    writer right after the commit: a dispatcher running meanwhile leaves it alone."""
    claimed_at = datetime.now(UTC)
    claimed = queue_claimed(sessions, "T-7", claimed_at)
    others = RecordingNotifier()
    assert dispatch(sessions, others, NOW, clock=lambda: claimed_at) == DispatchReport()
    writer = RecordingNotifier()
    assert deliver_claimed(sessions, writer, claimed, now=NOW) == "sent"
    assert writer.keys() == ["registered:T-7"] and others.delivered == []
    sent = load(sessions, claimed.delivery.message_id)
    assert (sent.status, sent.claimed_by, sent.claimed_until) == (MessageStatus.SENT, None, None)
    assert dispatch(sessions, others, NOW + SECOND) == DispatchReport()


def test_a_claimed_message_whose_writer_died_is_sent_once_the_lease_runs_out(
    sessions: sessionmaker[Session],
) -> None:
    claimed_at = datetime.now(UTC)
    queue_claimed(sessions, "T-8", claimed_at)
    notifier = RecordingNotifier()
    within = claimed_at + LEASE - SECOND
    assert dispatch(sessions, notifier, NOW, clock=lambda: within) == DispatchReport()
    after = claimed_at + LEASE + SECOND
    assert dispatch(sessions, notifier, NOW, clock=lambda: after) == DispatchReport(sent=1)
    assert notifier.keys() == ["registered:T-8"]


def test_a_claimed_message_that_fails_is_retried_like_any_other(
    sessions: sessionmaker[Session],
) -> None:
    claimed = queue_claimed(sessions, "T-9", datetime.now(UTC))
    assert deliver_claimed(sessions, FailingNotifier(), claimed, now=NOW) == "retried"
    failed = load(sessions, claimed.delivery.message_id)
    assert (failed.status, failed.attempts, failed.claimed_by) == (MessageStatus.PENDING, 1, None)
    notifier = RecordingNotifier()
    later = NOW + backoff_delay(1)
    assert dispatch(sessions, notifier, later) == DispatchReport(sent=1)
    assert notifier.keys() == ["registered:T-9"]


def test_nothing_holds_the_database_while_a_message_is_being_sent(
    sessions: sessionmaker[Session],
) -> None:
    """A writer commits while the notifier is in the middle of a send (Slack slow, or a
    channel paced): the dispatcher holds no transaction then, on SQLite as on PostgreSQL."""
    queue(sessions, GROWTH, CHECKOUT)
    committed: list[int] = []

    class WritingNotifier(RecordingNotifier):
        def send(self, delivery: Delivery) -> None:
            done = threading.Event()

            def write() -> None:
                with sessions.begin() as session:
                    outbox_service.enqueue(
                        session,
                        kind="collision.opened",
                        recipient="U0ANNA",
                        text="queued while a message was being sent",
                        dedupe_key=f"during:{delivery.message_id}",
                    )
                committed.append(delivery.message_id)
                done.set()

            writer = threading.Thread(target=write)
            writer.start()
            assert done.wait(timeout=20), "a writer waited for the dispatcher's transaction"
            writer.join()
            return super().send(delivery)

    assert dispatch(sessions, WritingNotifier(), NOW).sent == 2
    assert len(committed) == 2


def test_fifty_messages_through_a_flaky_notifier_none_lost_none_sent_twice(
    sessions: sessionmaker[Session],
) -> None:
    recipients = [GROWTH, CHECKOUT, "C0CRM", "U0ANNA", "U0BEN"]
    queue(sessions, *(recipients[number % 5] for number in range(50)))
    notifier = FlakyNotifier(seed=20260302)
    now, runs, totals = NOW, 0, Counter[str]()

    while statuses(sessions)[MessageStatus.PENDING] and runs < 200:
        report = dispatch(sessions, notifier, now, limit=7, max_attempts=20)
        totals.update(sent=report.sent, retried=report.retried, rate_limited=report.rate_limited)
        now += timedelta(minutes=20)
        runs += 1

    assert statuses(sessions) == {MessageStatus.SENT: 50}
    delivered = Counter(notifier.keys())
    assert len(delivered) == 50 and set(delivered.values()) == {1}
    assert totals["sent"] == 50
    assert totals["retried"] > 0 and totals["rate_limited"] > 0  # the flakiness did happen


def test_two_dispatchers_never_send_the_same_message(sessions: sessionmaker[Session]) -> None:
    queue(sessions, *([GROWTH, CHECKOUT, "C0CRM", "U0ANNA"] * 10))
    notifier = RecordingNotifier(delay=0.02)
    start = threading.Barrier(2)
    reports: list[DispatchReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            reports.append(dispatch(sessions, notifier, NOW))
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert statuses(sessions) == {MessageStatus.SENT: 40}
    delivered = Counter(notifier.keys())
    assert len(delivered) == 40 and set(delivered.values()) == {1}
    assert sorted(report.sent for report in reports) != [0, 40]  # both really took part
    assert sum(report.sent for report in reports) == 40


class MeanwhileNotifier(RecordingNotifier):
    """Runs `meanwhile` (another dispatcher) in the middle of its first send, or of its
    first lookup, as if this one were slow: past its lease, or overtaken by a sweep. Like
    Slack's client (three calls of up to 30 s), one send may take longer than a lease."""

    longest_send = timedelta(minutes=2)

    def __init__(self, history: list[Delivery], *, during: str) -> None:
        super().__init__(history=history)
        self.during = during
        self.meanwhile: Callable[[], None] = lambda: None

    def send(self, delivery: Delivery) -> None:
        self._now_and_then("send")
        super().send(delivery)

    def find(self, delivery: Delivery, since: datetime) -> Receipt | None:
        self._now_and_then("find")
        return super().find(delivery, since)

    def _now_and_then(self, step: str) -> None:
        if step == self.during:
            self.during = ""
            self.meanwhile()


def test_a_sender_slower_than_its_lease_is_not_overtaken(sessions: sessionmaker[Session]) -> None:
    """A living dispatcher whose post takes longer than its lease: another run, past the
    lease, sends nothing while that post may land."""
    [message_id] = queue(sessions, GROWTH)
    history: list[Delivery] = []
    slow = MeanwhileNotifier(history, during="send")
    other = RecordingNotifier(history=history)
    began = datetime.now(UTC)
    reports: list[DispatchReport] = []
    slow.meanwhile = lambda: reports.append(
        dispatch(sessions, other, NOW + timedelta(hours=2), clock=lambda: began + LEASE + SECOND)
    )

    assert dispatch(sessions, slow, NOW, clock=lambda: began) == DispatchReport(sent=1)

    assert reports == [DispatchReport(retried=1)]  # looked for it, then left it alone
    assert [d.dedupe_key for d in history] == ["msg:1"]
    sent = load(sessions, message_id)
    assert (sent.status, sent.claimed_by, sent.may_land_until) == (MessageStatus.SENT, None, None)


def test_a_dispatcher_overtaken_before_posting_does_not_post(
    sessions: sessionmaker[Session],
) -> None:
    """A sweep reasoning hours ahead takes over a message a living dispatcher is still
    looking for; that dispatcher then finds its lease gone and posts nothing."""
    [message_id] = queue(sessions, GROWTH)
    assert dispatch(sessions, DroppedAfterSendNotifier(history=[]), NOW) == DispatchReport(
        retried=1
    )
    # The sweep runs while the dispatcher looks; the lookup's answer predates its post.
    looking = MeanwhileNotifier([], during="find")
    sweep = RecordingNotifier()
    later = datetime.now(UTC) + timedelta(minutes=5)  # the dropped post can no longer land
    reports: list[DispatchReport] = []
    looking.meanwhile = lambda: reports.append(
        dispatch(sessions, sweep, NOW + timedelta(hours=2), clock=lambda: later + LEASE + SECOND)
    )

    assert dispatch(sessions, looking, NOW + timedelta(hours=1), clock=lambda: later) == (
        DispatchReport()
    )

    assert reports == [DispatchReport(sent=1)]
    assert looking.delivered == [] and sweep.keys() == ["msg:1"]
    assert load(sessions, message_id).status == MessageStatus.SENT


# --- Queries --------------------------------------------------------------------------------


def test_list_messages_filters_by_status_newest_first(sessions: sessionmaker[Session]) -> None:
    [sent, dead, waiting] = queue(sessions, GROWTH, CHECKOUT, "C0CRM")
    with sessions.begin() as session:
        for message_id, status in ((sent, MessageStatus.SENT), (dead, MessageStatus.FAILED)):
            message = session.get(OutboxMessage, message_id)
            assert message is not None
            message.status = status

    with sessions() as session:
        everything = queries.list_messages(session)
        assert [m.id for m in everything] == [waiting, dead, sent]
        assert [m.id for m in queries.list_messages(session, limit=1)] == [waiting]
        chosen = queries.list_messages(session, statuses=[MessageStatus.SENT, MessageStatus.FAILED])
        assert [m.id for m in chosen] == [dead, sent]
        assert [m.id for m in queries.list_messages(session, statuses=[MessageStatus.PENDING])] == [
            waiting
        ]


def test_retry_failed_requeues_only_the_named_dead_letters(sessions: sessionmaker[Session]) -> None:
    ids = queue(sessions, GROWTH, CHECKOUT, "C0CRM")
    dispatch(sessions, FailingNotifier(permanent=True), NOW)
    assert statuses(sessions) == {MessageStatus.FAILED: 3}

    later = NOW + timedelta(hours=2)
    with sessions.begin() as session:
        requeued = queries.retry_failed(session, [ids[2], ids[0]], now=later)
        assert [m.id for m in requeued] == [ids[0], ids[2]]

    for message_id in (ids[0], ids[2]):
        message = load(sessions, message_id)
        assert (message.status, message.attempts) == (MessageStatus.PENDING, 0)
        assert message.next_attempt_at == later
        assert message.last_error == "slack is down"  # why it failed, until it is retried
    assert load(sessions, ids[1]).status == MessageStatus.FAILED


def test_retry_failed_names_ids_that_are_not_dead_letters(sessions: sessionmaker[Session]) -> None:
    [dead, waiting] = queue(sessions, GROWTH, CHECKOUT)
    dispatch(sessions, FailingNotifier(permanent=True), NOW, limit=1)

    with (
        pytest.raises(NotFoundError, match=r"no outbox message with id 999\b"),
        sessions.begin() as session,
    ):
        queries.retry_failed(session, [dead, 999])
    with (
        pytest.raises(
            TowerError, match=rf"outbox message {waiting} \(pending\) is not a dead letter"
        ),
        sessions.begin() as session,
    ):
        queries.retry_failed(session, [dead, waiting])

    assert load(sessions, dead).status == MessageStatus.FAILED  # nothing half-done
    with sessions.begin() as session:
        assert queries.retry_failed(session, []) != []


# --- The command line -----------------------------------------------------------------------


def test_outbox_list_shows_pending_messages_as_a_table_by_default(
    sessions: sessionmaker[Session], outbox_url: str
) -> None:
    queue(sessions, GROWTH, CHECKOUT)
    with sessions.begin() as session:
        outbox_service.enqueue(
            session,
            kind="sla.warning",
            recipient="U0ANNA",
            text="[urgent] review T-7",
            dedupe_key="sla:1",
        )
    dispatch(sessions, RecordingNotifier(), NOW, limit=2)

    result = invoke(outbox_url, "list")

    assert result.exit_code == 0, result.output
    output = flat(result.output)
    assert "Outbox: 1 pending" in output
    assert "[urgent] review T-7" in output  # shown as written, not taken for markup
    assert "C0GROWTH" not in output
    everything = flat(invoke(outbox_url, "list", "--all").output)
    assert "Outbox: 3" in everything and "C0GROWTH" in everything


def test_outbox_list_json_has_every_documented_field(
    sessions: sessionmaker[Session], outbox_url: str
) -> None:
    [first, second] = queue(sessions, GROWTH, CHECKOUT)
    dispatch(sessions, RecordingNotifier(), NOW, limit=1)

    result = invoke(outbox_url, "list", "--all", "--format", "json")

    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [tuple(record) for record in records] == [COLUMNS, COLUMNS]
    by_id = {record["id"]: record for record in records}
    assert by_id[first]["status"] == "sent"
    assert by_id[first]["sent_at"] == "2026-03-02T09:00:00+00:00"
    assert by_id[second]["status"] == "pending"
    assert by_id[second]["sent_at"] is None
    assert by_id[second]["text"] == "Message 2: T-2 collides with T-99"
    assert by_id[second]["collisions"] == []  # queued without naming a collision record
    sent_only = json.loads(invoke(outbox_url, "list", "--sent", "--format", "json").output)
    assert [record["id"] for record in sent_only] == [first]


def test_outbox_retry_with_nothing_to_retry_and_with_a_wrong_id(
    sessions: sessionmaker[Session], outbox_url: str
) -> None:
    [message_id] = queue(sessions, GROWTH)

    nothing = invoke(outbox_url, "retry")
    assert nothing.exit_code == 0 and flat(nothing.output) == "No dead letters to re-queue."

    wrong = invoke(outbox_url, "retry", str(message_id))
    assert wrong.exit_code == 1
    assert isinstance(wrong.exception, TowerError)
    assert f"{message_id} (pending) is not a dead letter" in str(wrong.exception)


# -- receipts: updating a message in place, answering in its thread -----------------------


class SlackLikeNotifier(RecordingNotifier):
    """Returns where each message landed, as Slack's chat.postMessage does."""

    def send(self, delivery: Delivery) -> Receipt | None:  # type: ignore[override]
        super().send(delivery)
        return {"channel": delivery.recipient, "ts": f"1700000000.{delivery.message_id:06d}"}


def queue_one(sessions: sessionmaker[Session], key: str, kind: str, payload: dict[str, Any]) -> int:
    with sessions.begin() as session:
        message = outbox_service.enqueue(
            session,
            kind=kind,
            recipient="C0TOWER",
            text=f"{kind} {key}",
            dedupe_key=f"{kind}:{key}",
            payload=payload,
        )
        assert message is not None
        message.next_attempt_at = NOW
        session.flush()
        return message.id


def test_a_later_message_replaces_or_threads_under_the_one_it_refers_to(
    sessions: sessionmaker[Session],
) -> None:
    notifier = SlackLikeNotifier()
    first = queue_one(sessions, "T-1", "approval_requested", {"key": "T-1"})
    queue_one(sessions, "T-2", "approval_requested", {"key": "T-2"})
    dispatch(sessions, notifier, NOW)
    assert load(sessions, first).receipt == {"channel": "C0TOWER", "ts": "1700000000.000001"}

    refer = {"kind": "approval_requested", "key": "T-1"}
    queue_one(sessions, "T-1", "approval_decided", {"key": "T-1", "replaces": refer})
    queue_one(sessions, "T-1", "note", {"key": "T-1", "thread_of": refer})
    queue_one(sessions, "T-3", "orphan", {"replaces": {"kind": "approval_requested", "key": "T-3"}})
    dispatch(sessions, notifier, NOW)

    decided, note, orphan = notifier.delivered[2:]
    assert decided.replace == {"channel": "C0TOWER", "ts": "1700000000.000001"}
    assert decided.thread is None
    assert note.thread == {"channel": "C0TOWER", "ts": "1700000000.000001"}
    assert orphan.replace is None  # nothing to update: the notifier posts a new message
