"""The worker's jobs on a controlled clock, and the real `tower worker` process.

The jobs open their own transactions through a session factory. Here the factory's sessions
share the test's connection and commit into savepoints of the test's transaction, so each
test still leaves the database as it found it. The processes get a scratch database.

The small policy (tests/data/policy.yaml): manager U0TOWERMGR told in C0TOWER; checkout-squad
(agile: U0ANNA, channel C0CHECKOUT); ecommerce (bau: U0CARLA, channel C0ECOM); London business
hours 09:00-17:30; review within 17 business hours with a warning at 75% and the ladder owner
-> team channel -> managers, a step every half target (8.5 business hours) after the breach.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.support.databases import server_url
from tests.support.factories import at, utc
from tests.support.factories import register_in as register
from tests.support.files import SMALL_POLICY
from tests.support.people import BAU_OWNER, OWNER, TOWER_CHANNEL
from tests.support.people import SQUAD_CHANNEL as TEAM_CHANNEL
from tower.audit.models import AuditEvent
from tower.cli import main
from tower.collisions.models import Collision
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory
from tower.engine.kinds import Severity
from tower.experiments import service as experiment_service
from tower.experiments.spec import ExperimentStatus as S
from tower.outbox import service as outbox_service
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import Delivery
from tower.policy import Policy
from tower.policy.schema import FreezeWindow
from tower.protocol import review
from tower.sla.models import ClockState, SlaClock
from tower.worker import jobs
from tower.worker.scheduler import LEADER_LOCK, leadership

TOWER = Path(sys.executable).parent / "tower"
WORKER_ARGS = ["worker", "--dispatch-every", "0.2", "--sla-every", "0.2"]
WORKER_ARGS += ["--transitions-every", "0.2"]
PATIENCE_SECONDS = 20.0  # how long a poll waits for a process before giving up

# --------------------------------------------------------------------------- helpers


# A BAU test on another channel: it never collides with the checkout tests.
NEWSLETTER: dict[str, Any] = {
    "team": "ecommerce",
    "owner": BAU_OWNER,
    "title": "Newsletter subject line",
    "surfaces": ("email/promotional/weekly_newsletter",),
}


@pytest.fixture
def factory(session: Session) -> sessionmaker[Session]:
    """Sessions on the test's connection: a job's commit releases a savepoint, no more."""
    return sessionmaker(
        bind=session.get_bind(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )


def submit(factory: sessionmaker[Session], policy: Policy, moment: datetime, key: str) -> None:
    """Register a draft as `key` and submit it at `moment` (the review clock starts)."""
    with factory.begin() as session:
        experiment = experiment_service.get_by_key(session, key)
        review.submit(session, at(policy, moment), key, actor=experiment.owner)


def status(factory: sessionmaker[Session], key: str = "T-1") -> S:
    with factory() as session:
        return experiment_service.get_by_key(session, key).status


def outbox(factory: sessionmaker[Session], *kinds: str) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kinds:
        query = query.where(OutboxMessage.kind.in_(kinds))
    with factory() as session:
        return list(session.scalars(query))


def sla_rows(factory: sessionmaker[Session]) -> list[tuple[str, str]]:
    """(kind, recipient) of every SLA reminder queued so far, in queue order."""
    return [
        (m.kind, m.recipient)
        for m in outbox(factory, "sla_warning", "sla_breach", "sla_escalation")
    ]


def clock(factory: sessionmaker[Session], policy_key: str, subject: str = "T-1") -> SlaClock:
    with factory() as session:
        query = select(SlaClock).where(
            SlaClock.policy_key == policy_key, SlaClock.subject == subject
        )
        [found] = session.scalars(query)
        return found


def transitions(factory: sessionmaker[Session], ctx: ServiceContext) -> jobs.JobsReport:
    report = jobs.JobsReport()
    jobs.run_transitions(factory, ctx, report)
    return report


def sweep(factory: sessionmaker[Session], ctx: ServiceContext) -> jobs.JobsReport:
    report = jobs.JobsReport()
    jobs.run_sla_sweep(factory, ctx, report)
    return report


def digest(factory: sessionmaker[Session], ctx: ServiceContext) -> jobs.JobsReport:
    report = jobs.JobsReport()
    jobs.run_digest(factory, ctx, report)
    return report


def with_freeze(policy: Policy) -> Policy:
    window = FreezeWindow(
        name="Spring sale",
        start=date(2026, 3, 16),
        end=date(2026, 3, 18),
        surfaces=["web/checkout"],
        team_kinds=["agile", "bau"],
    )
    return policy.model_copy(update={"freeze_windows": [window]})


class RecordingNotifier:
    """Delivers everything and remembers what it delivered."""

    def __init__(self) -> None:
        self.delivered: list[Delivery] = []

    def send(self, delivery: Delivery) -> None:
        self.delivered.append(delivery)


# --------------------------------------------------------------------------- transitions


def test_an_approved_test_goes_live_on_its_start_date_and_its_team_is_told(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    register(factory, S.APPROVED)

    eve = transitions(factory, at(small_policy, utc(3, 15, 23, 30)))  # Sunday night in London
    assert (eve.launched, eve.held) == ([], [])
    assert status(factory) == S.APPROVED

    # Launch day: the lead time no longer matters, every other gate is checked again.
    report = transitions(factory, at(small_policy, utc(3, 16, 7)))
    assert (report.launched, report.held, report.completed) == (["T-1"], [], [])
    assert status(factory) == S.LIVE
    told = outbox(factory, "status_live")
    assert sorted(m.recipient for m in told) == sorted([OWNER, TEAM_CHANNEL])
    assert all("is now live" in m.text for m in told)
    with factory() as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event is not None
        assert (event.action, event.actor) == ("launch", "tower")

    again = transitions(factory, at(small_policy, utc(3, 16, 12)))
    assert (again.launched, again.held) == ([], [])
    assert len(outbox(factory, "status_live")) == 2


def test_a_test_whose_gates_fail_on_its_start_date_is_held_back(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    register(factory, S.APPROVED)
    frozen = with_freeze(small_policy)

    report = transitions(factory, at(frozen, utc(3, 16, 7)))

    assert (report.launched, report.held) == ([], ["T-1"])
    assert status(factory) == S.APPROVED
    blocked = outbox(factory, "launch_blocked")
    assert sorted(m.recipient for m in blocked) == sorted([OWNER, TOWER_CHANNEL])
    for message in blocked:
        assert "did not go live on 2026-03-16" in message.text
        assert "freeze windows: freeze 'Spring sale'" in message.text
    assert outbox(factory, "status_live") == []

    # Held again on the next run, without telling anyone twice.
    assert transitions(factory, at(frozen, utc(3, 16, 12))).held == ["T-1"]
    assert len(outbox(factory, "launch_blocked")) == 2

    # Once the freeze is lifted, the next run launches it.
    assert transitions(factory, at(small_policy, utc(3, 17, 7))).launched == ["T-1"]
    assert status(factory) == S.LIVE


def test_a_live_test_completes_the_day_after_its_end_date(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    register(factory, S.LIVE)

    last_day = transitions(factory, at(small_policy, utc(3, 29, 20)))  # 21:00 BST, 29 March
    assert last_day.completed == []
    assert status(factory) == S.LIVE

    report = transitions(factory, at(small_policy, utc(3, 30, 7)))
    assert report.completed == ["T-1"]
    assert status(factory) == S.COMPLETED
    [request] = outbox(factory, "results_requested")
    assert request.recipient == OWNER
    results = clock(factory, "results")
    assert (results.state, results.started_at) == (ClockState.RUNNING, utc(3, 30, 7))

    assert transitions(factory, at(small_policy, utc(3, 31, 7))).completed == []


def test_one_run_after_downtime_catches_up_on_a_window_that_has_passed(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    register(factory, S.APPROVED)  # 16 to 29 March; the worker is down until 1 April

    report = transitions(factory, at(small_policy, utc(4, 1, 8)))

    assert report.launched == ["T-1"]
    assert report.completed == ["T-1"]
    assert status(factory) == S.COMPLETED
    assert [m.recipient for m in outbox(factory, "results_requested")] == [OWNER]


# --------------------------------------------------------------------------- SLA sweep


def test_a_sweep_past_the_review_deadline_queues_one_breach_per_clock_and_then_none(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    register(factory, S.DRAFT)
    register(factory, S.DRAFT, number=2, **NEWSLETTER)
    for key in ("T-1", "T-2"):
        submit(factory, small_policy, utc(3, 2, 10), key)  # both due Wednesday 10:00
    before = sweep(factory, at(small_policy, utc(3, 4, 9, 59)))
    assert outbox(factory, "sla_breach") == []
    assert before.sla_messages == 2  # the two 75% warnings

    first = sweep(factory, at(small_policy, utc(3, 4, 12)))

    breaches = outbox(factory, "sla_breach")
    assert first.sla_messages == 2
    assert sorted(m.recipient for m in breaches) == sorted([OWNER, BAU_OWNER])
    assert len({m.payload["clock_id"] for m in breaches}) == 2
    assert {m.payload["subject"] for m in breaches} == {"T-1", "T-2"}
    for key in ("T-1", "T-2"):
        assert clock(factory, "review", key).breached_at == utc(3, 4, 10)

    for later in (utc(3, 4, 12), utc(3, 4, 12, 1), utc(3, 4, 17)):
        assert sweep(factory, at(small_policy, later)).sla_messages == 0
    assert len(outbox(factory, "sla_breach")) == 2


EVERY_REMINDER = [
    ("sla_warning", OWNER),
    ("sla_breach", OWNER),
    ("sla_escalation", TEAM_CHANNEL),
    ("sla_escalation", TOWER_CHANNEL),
]


def every_two_hours() -> list[datetime]:
    return [utc(3, 2, 10) + timedelta(hours=2 * n) for n in range(1, 14 * 12 + 1)]


@pytest.mark.parametrize(
    "schedule",
    [
        [utc(3, 16, 12)],  # the worker was down for two weeks
        [utc(3, 4, 12), utc(3, 16, 12)],  # down after the breach
        every_two_hours(),  # never down
    ],
    ids=["one-late-sweep", "breach-then-downtime", "every-two-hours"],
)
def test_after_downtime_each_reminder_is_queued_exactly_once(
    factory: sessionmaker[Session], small_policy: Policy, schedule: list[datetime]
) -> None:
    register(factory, S.DRAFT)
    submit(factory, small_policy, utc(3, 2, 10), "T-1")

    for moment in schedule:
        sweep(factory, at(small_policy, moment))

    assert Counter(sla_rows(factory)) == Counter(EVERY_REMINDER)
    for later in (utc(3, 16, 12), utc(3, 30, 12), utc(6, 1, 12)):
        assert sweep(factory, at(small_policy, later)).sla_messages == 0
    assert Counter(sla_rows(factory)) == Counter(EVERY_REMINDER)
    late = clock(factory, "review")
    assert (late.warned, late.breached_at, late.escalations) == (1, utc(3, 4, 10), 2)


# --------------------------------------------------------------------------- digest


def test_the_digest_is_queued_once_per_iso_week_however_often_it_runs(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    register(factory, S.SUBMITTED)

    assert digest(factory, at(small_policy, utc(3, 2, 10))).digest
    for moment in (utc(3, 2, 10), utc(3, 4, 15), utc(3, 8, 23), utc(3, 9, 8, 59)):
        assert not digest(factory, at(small_policy, moment)).digest
    [week_10] = outbox(factory, "digest")
    assert week_10.recipient == TOWER_CHANNEL
    assert week_10.payload == {"week": "2026-W10"}
    assert week_10.text.startswith("Tower weekly digest, week 10 of 2026: 1 submitted")

    # Monday at opening time (09:00 in London) the next week's digest is due.
    assert digest(factory, at(small_policy, utc(3, 9, 9))).digest
    assert not digest(factory, at(small_policy, utc(3, 10, 9))).digest
    assert [m.payload["week"] for m in outbox(factory, "digest")] == ["2026-W10", "2026-W11"]


def test_the_digest_names_ten_blocking_collisions_and_counts_the_rest(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    """A large portfolio's digest stays one readable message (it once listed 19,183
    collisions, 1 MB of text, and took the sweep to 530 MB)."""
    for number in range(1, 8):  # seven tests on one page: 21 blocking pairs at least
        register(factory, S.SUBMITTED, number=number, title=f"Cart test {number}")
    jobs.run_resync(factory, at(small_policy, utc(3, 2, 10)), jobs.JobsReport())
    assert digest(factory, at(small_policy, utc(3, 2, 10))).digest
    with factory() as session:
        blocking = session.scalar(
            select(func.count())
            .select_from(Collision)
            .where(Collision.severity == Severity.BLOCKING)
        )
    assert blocking is not None and blocking > 10

    [message] = outbox(factory, "digest")
    lines = message.text.splitlines()
    assert f"Unresolved blocking collisions: {blocking}" in lines
    named = [line for line in lines if line.startswith("  C-")]
    assert len(named) == 10
    assert f"  ...and {blocking - 10} more: `tower conflicts`" in lines


def test_the_digest_names_overdue_clocks(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    register(factory, S.DRAFT)
    submit(factory, small_policy, utc(3, 2, 10), "T-1")  # review due two business days on

    assert digest(factory, at(small_policy, utc(3, 9, 9))).digest
    [message] = outbox(factory, "digest")
    lines = message.text.splitlines()
    assert "Overdue SLA clocks: 1" in lines
    assert "  review T-1 (due 04 Mar 10:00 UTC)" in lines


# --------------------------------------------------------------------------- one pass


@pytest.mark.parametrize(
    "year",
    [2026, 2099],  # March 2099 has the weekdays of March 2026
    ids=["service-clock-behind-the-wall-clock", "service-clock-ahead-of-the-wall-clock"],
)
def test_one_pass_delivers_everything_it_queued(
    factory: sessionmaker[Session], small_policy: Policy, year: int
) -> None:
    """Whatever the wall clock says: a notice is due when its change happened on the
    service clock, so `tower sweep --now` in the past delivers what it queues too."""

    def on(month: int, day: int, hour: int) -> datetime:
        return utc(month, day, hour, year=year)

    register(factory, S.APPROVED, start=date(year, 3, 9), end=date(year, 3, 22))  # starts Monday
    register(factory, S.DRAFT, 2, start=date(year, 3, 23), end=date(year, 4, 5), **NEWSLETTER)
    submit(factory, small_policy, on(3, 4, 10), "T-2")  # review due Friday 10:00
    notifier = RecordingNotifier()
    monday = at(small_policy, on(3, 9, 10))

    report = jobs.run_due_jobs(factory, monday, notifier)

    assert report.launched == ["T-1"]
    assert report.sla_messages >= 2 and report.digest
    queued = outbox(factory)
    kinds = {m.kind for m in queued}
    assert {"approval_requested", "status_live", "sla_warning", "sla_breach", "digest"} <= kinds
    # Notices for one recipient in one sweep go out as one message (`sla_notices`); each
    # notice's own row is kept, merged into it.
    sent = [m for m in queued if m.status != MessageStatus.MERGED]
    merged = [m for m in queued if m.status == MessageStatus.MERGED]
    assert report.dispatch.sent == len(sent)
    assert sorted(d.dedupe_key for d in notifier.delivered) == sorted(m.dedupe_key for m in sent)
    assert {m.status for m in sent} == {MessageStatus.SENT}
    assert {m.payload["merged_into"] for m in merged} <= {m.id for m in sent}
    assert report.summary().startswith("launched 1, held back 0, completed 0, SLA notices ")

    again = jobs.run_due_jobs(factory, monday, notifier)
    assert (again.launched, again.sla_messages, again.digest, again.dispatch.attempted) == (
        [],
        0,
        False,
        0,
    )
    assert len(notifier.delivered) == len(sent)


# --------------------------------------------------------------------------- the process


@pytest.fixture
def worker_env(scratch_database_url: str) -> dict[str, str]:
    """A database made by `tower init`, and the environment a worker process needs."""
    env = {"DATABASE_URL": scratch_database_url, "TOWER_POLICY": str(SMALL_POLICY)}
    result = CliRunner().invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    return {**os.environ, **env}


@pytest.fixture
def worker_engine(worker_env: dict[str, str]) -> Iterator[Engine]:
    engine = create_database_engine(worker_env["DATABASE_URL"])
    yield engine
    engine.dispose()


def queue_message(engine: Engine, number: int) -> int:
    with create_session_factory(engine).begin() as session:
        message = outbox_service.enqueue(
            session,
            kind="test_message",
            recipient=TOWER_CHANNEL,
            text=f"Hello from the worker test, message {number}",
            dedupe_key=f"worker-test:{number}",
        )
        assert message is not None
        session.flush()
        return message.id


def message_status(engine: Engine, message_id: int) -> MessageStatus:
    with create_session_factory(engine)() as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        return message.status


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll until `condition` holds; fail after PATIENCE_SECONDS (a bound, not a timing)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.1)


class Worker:
    """A `tower worker` process we started, with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [str(TOWER), *WORKER_ARGS],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit code (the process must go within the patience bound)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=PATIENCE_SECONDS)

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=PATIENCE_SECONDS)


def test_a_real_worker_delivers_a_pending_message_and_stops_cleanly_on_sigterm(
    worker_env: dict[str, str], worker_engine: Engine, tmp_path: Path
) -> None:
    message_id = queue_message(worker_engine, 1)
    worker = Worker(worker_env, tmp_path / "worker.log")
    try:
        eventually(
            lambda: message_status(worker_engine, message_id) == MessageStatus.SENT,
            f"the worker to send message {message_id}; its log:\n{worker.output()}",
        )
        assert worker.stop() == 0, worker.output()
    finally:
        worker.kill_if_running()
    log = worker.output()
    assert f"[test_message] -> {TOWER_CHANNEL}: Hello from the worker test, message 1" in log
    assert "Traceback" not in log


def test_leadership_on_sqlite_is_assumed_at_once(worker_engine: Engine) -> None:
    if worker_engine.dialect.name != "sqlite":
        pytest.skip("on PostgreSQL leadership is an advisory lock (tested below)")
    stop = threading.Event()
    stop.set()  # even a worker told to stop at once leads: one process is assumed on SQLite
    with leadership(worker_engine, poll_seconds=0.01, stop=stop) as leading:
        assert leading is True


POSTGRES_ONLY = pytest.mark.skipif(
    server_url() is None, reason="the advisory lock that elects one worker is PostgreSQL's"
)


@pytest.fixture
def two_engines(worker_env: dict[str, str]) -> Iterator[list[Engine]]:
    """Two engines on one database: two workers' worth of connections, in one process."""
    engines = [create_database_engine(worker_env["DATABASE_URL"]) for _ in range(2)]
    yield engines
    for engine in engines:
        engine.dispose()


@POSTGRES_ONLY
def test_a_second_engine_stands_by_while_the_first_leads(
    two_engines: list[Engine], caplog: pytest.LogCaptureFixture
) -> None:
    first_engine, second_engine = two_engines
    with leadership(first_engine, poll_seconds=0.01) as first:
        assert first is True
        stop = threading.Event()
        stop.set()  # stand by once, then give up
        with (
            caplog.at_level(logging.INFO, logger="tower.worker"),
            leadership(second_engine, poll_seconds=0.01, stop=stop) as second,
        ):
            assert second is False
        assert "another worker is active: standing by" in caplog.text


def lock_is_free(engine: Engine) -> bool:
    """Whether another session can take the leader lock now (released again at once)."""
    with engine.connect() as connection:
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK}
        ).scalar_one()
        if taken:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK})
        connection.commit()
    return bool(taken)


@POSTGRES_ONLY
def test_leaving_leadership_frees_the_lock_for_the_next_worker(
    two_engines: list[Engine],
) -> None:
    first_engine, second_engine = two_engines
    with leadership(first_engine, poll_seconds=0.01) as first:
        assert first is True
        assert not lock_is_free(second_engine)
    assert lock_is_free(second_engine)


@POSTGRES_ONLY
def test_of_two_worker_processes_one_stands_by_and_does_not_dispatch(
    worker_env: dict[str, str], worker_engine: Engine, tmp_path: Path
) -> None:
    message_id = queue_message(worker_engine, 1)
    workers = [Worker(worker_env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    try:
        eventually(
            lambda: message_status(worker_engine, message_id) == MessageStatus.SENT,
            "a worker to send the message",
        )
        eventually(
            lambda: any("standing by" in w.output() for w in workers),
            "the other worker to stand by",
        )
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
        codes = [w.process.wait(timeout=PATIENCE_SECONDS) for w in workers]
    finally:
        for worker in workers:
            worker.kill_if_running()
    logs = [w.output() for w in workers]
    assert codes == [0, 0], logs
    [active] = [log for log in logs if "this worker is active" in log]
    [standby] = [log for log in logs if "another worker is active: standing by" in log]
    assert "Hello from the worker test, message 1" in active
    assert "this worker is active" not in standby
    assert "tower.notify" not in standby and "outbox:" not in standby
