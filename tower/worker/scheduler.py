"""The worker process: APScheduler's BlockingScheduler running the due jobs on a timer.

Only one worker acts at a time: on PostgreSQL it holds a session-level advisory lock for its
whole life, and a second worker stands by until the first one goes away. On SQLite a single
worker process is assumed. Jobs coalesce: after downtime each runs once, and the jobs
themselves catch up idempotently.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tower.context import ServiceContext
from tower.errors import TowerError
from tower.outbox.notifier import Notifier
from tower.pipeline.warming import warm_up_in_background
from tower.worker import jobs
from tower.worker.policy_file import PolicyFile

logger = logging.getLogger("tower.worker")

# pg_advisory_lock key: the bytes of "tower" read as an integer.
LEADER_LOCK = int.from_bytes(b"tower", "big")


@dataclass(frozen=True)
class Intervals:
    """How often each job runs (the digest runs on Mondays at opening time)."""

    dispatch: timedelta = timedelta(seconds=10)
    sla: timedelta = timedelta(minutes=1)
    transitions: timedelta = timedelta(minutes=5)
    resync: timedelta = timedelta(minutes=15)
    replan: timedelta = timedelta(minutes=1)


@contextmanager
def leadership(
    engine: Engine, *, poll_seconds: float = 15.0, stop: threading.Event | None = None
) -> Iterator[bool]:
    """Become the one active worker: yields True once leading, False if stopped first."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    stop = stop or threading.Event()
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        query = text("SELECT pg_try_advisory_lock(:key)")
        while not connection.execute(query, {"key": LEADER_LOCK}).scalar_one():
            logger.info("another worker is active: standing by")
            if stop.wait(poll_seconds):
                yield False
                return
        logger.info("this worker is active")
        try:
            yield True
        finally:
            # Closing only returns the connection to the pool: unlock explicitly so another
            # worker can take over even while this process lives on.
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK})
    finally:
        connection.close()


def build_scheduler(
    factory: sessionmaker[Session],
    policy: PolicyFile,
    notifier: Notifier,
    intervals: Intervals,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BlockingScheduler:
    """A scheduler with Tower's jobs, each run with the time it runs at and the policy in
    force then (the file is read again when it changes)."""

    def job(
        run: Callable[[ServiceContext, jobs.JobsReport], None], name: str
    ) -> Callable[[], None]:
        def tick() -> None:
            report = jobs.JobsReport()
            try:
                run(ServiceContext.create(policy.current(), clock()), report)
            except TowerError as error:  # a condition said in words (changes kept landing)
                logger.warning(
                    "job %s did not run through: %s; it runs again at its next time", name, error
                )
                return
            except Exception:  # one failed run must not stop the worker
                logger.exception("job %s failed; it runs again at its next time", name)
                return
            logger.info("%s: %s", name, report.summary())

        return tick

    scheduler = BlockingScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    now = clock()
    first = policy.current()
    opens = first.calendar.working_hours[0]
    schedule = [
        ("resync", lambda c, r: jobs.run_resync(factory, c, r), intervals.resync),
        ("replan", lambda c, r: jobs.run_replan(factory, c, r), intervals.replan),
        ("transitions", lambda c, r: jobs.run_transitions(factory, c, r), intervals.transitions),
        ("sla", lambda c, r: jobs.run_sla_sweep(factory, c, r), intervals.sla),
        (
            "dispatch",
            lambda c, r: jobs.run_dispatch(factory, c, notifier, r),
            intervals.dispatch,
        ),
    ]
    for name, run, every in schedule:
        scheduler.add_job(
            job(run, name),
            IntervalTrigger(seconds=every.total_seconds()),
            id=name,
            next_run_time=now,
        )
    scheduler.add_job(
        job(lambda c, r: jobs.run_digest(factory, c, r), "digest"),
        CronTrigger(
            day_of_week="mon", hour=opens.hour, minute=opens.minute, timezone=first.timezone
        ),
        id="digest",
    )
    return scheduler


def run_worker(
    engine: Engine,
    factory: sessionmaker[Session],
    policy: PolicyFile,
    notifier: Notifier,
    intervals: Intervals,
) -> None:
    """Run until SIGTERM or SIGINT: stand by for leadership, then run the scheduler."""
    stop = threading.Event()
    scheduler: BlockingScheduler | None = None

    def shut_down(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signum)
        stop.set()
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    with leadership(engine, stop=stop) as leading:
        if not leading:
            return
        warm_up_in_background(factory, ServiceContext.create(policy.current()), slots=False)
        scheduler = build_scheduler(factory, policy, notifier, intervals)
        scheduler.start()
