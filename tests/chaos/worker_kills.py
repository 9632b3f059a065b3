"""A real `tower worker`, SIGKILLed and restarted while writers change tests, delivering
through a Slack that fails 30% of calls every way Slack fails; then sweeps at later
business times, and a last dispatcher until nothing waits. Every notification must be
delivered once or held for a person: none lost, none twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.config import SlackSettings
from bot.notifier import SlackNotifier
from tests.chaos.delivery import tally
from tests.chaos.setting import FAULT_RATE, MANAGER, SLACK_TIMEOUT, TOWER, Setting
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory
from tower.errors import TowerError
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.outbox.dispatcher import dispatch_due
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.policy import load_policy
from tower.protocol import service as protocol

LATER_SWEEPS = 3  # Mondays after the kills, each swept once
DRAIN_ROUNDS = 60  # last dispatcher runs, an hour apart, until nothing waits


@dataclass(frozen=True)
class Plan:
    kills: int
    seconds_between: tuple[float, float]  # how long the worker lives before each kill


def run(setting: Setting, scratch: Path, *, seed: int, plan: Plan) -> dict[str, Any]:
    rng = random.Random(seed)
    setting.slack.chaos(FAULT_RATE, seed=seed, stall=SLACK_TIMEOUT + 1)
    stop = threading.Event()
    changes: list[str] = []
    writer = threading.Thread(target=_write, args=(setting, stop, changes), daemon=True)
    writer.start()
    log = (scratch / f"worker-{setting.kind}-{seed}.log").open("w")
    worker = _start_worker(setting, log)
    try:
        for _ in range(plan.kills):
            time.sleep(rng.uniform(*plan.seconds_between))
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            worker = _start_worker(setting, log)
        time.sleep(rng.uniform(*plan.seconds_between))
    finally:
        stop.set()
        writer.join(timeout=30)
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    sweeps_failed, sweep_tracebacks = _sweep_later(setting)
    _drain(setting)
    engine = create_database_engine(setting.database_url)
    try:
        with create_session_factory(engine)() as session:
            counted = tally(session, setting.slack)
            tracebacks = sum(
                1
                for row in session.scalars(select(OutboxMessage.last_error))
                if row and "Traceback" in row
            )
    finally:
        engine.dispose()
    setting.slack.chaos(0, seed=seed, stall=0)
    return {
        **counted.as_dict(),
        "kills": plan.kills,
        "faults": sum(setting.slack.faults.values()),
        "changes": len(changes),
        "sweeps_failed": sweeps_failed,
        "tracebacks": tracebacks
        + sweep_tracebacks
        + _tracebacks(scratch / f"worker-{setting.kind}-{seed}.log"),
    }


MUST_BE_ZERO = ("lost", "duplicated", "same_text", "sweeps_failed", "tracebacks")


def _start_worker(setting: Setting, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*TOWER, "worker", "--dispatch-every", "0.5", "--sla-every", "5"],
        env=setting.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _write(setting: Setting, stop: threading.Event, changes: list[str]) -> None:
    """A manager approves the submitted tests, one every few tenths of a second, and the
    owners of drafts submit them: each change queues notifications at the wall clock."""
    policy = load_policy(Path(setting.env()["TOWER_POLICY"]))
    engine = create_database_engine(setting.database_url)
    factory = create_session_factory(engine)
    try:
        with factory() as session:
            tests = [
                (e.key, e.status, e.owner)
                for e in session.scalars(select(Experiment).order_by(Experiment.number))
            ]
        for key, status, owner in tests:
            if stop.is_set():
                return
            try:
                with factory.begin() as session:
                    ctx = ServiceContext.create(policy, datetime.now(UTC))
                    if status == ExperimentStatus.SUBMITTED:
                        protocol.approve(session, ctx, key, actor=MANAGER)
                    elif status == ExperimentStatus.DRAFT:
                        protocol.submit(session, ctx, key, actor=owner)
                    else:
                        continue
                changes.append(key)
            except TowerError:
                pass  # a gate failing is the tower doing its job
            time.sleep(0.3)
    finally:
        engine.dispose()


def _sweep_later(setting: Setting) -> tuple[int, int]:
    """`tower sweep --now` on the next Mondays at opening time: how many failed, and the
    tracebacks they printed."""
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=7 - today.weekday())
    failed = tracebacks = 0
    for week in range(LATER_SWEEPS):
        at = datetime.combine(monday + timedelta(weeks=week), day_time(9, 30), tzinfo=UTC)
        swept = setting.tower("sweep", "--now", at.isoformat(timespec="seconds"))
        failed += swept.returncode != 0
        tracebacks += (swept.stdout + swept.stderr).count("Traceback")
    return failed, tracebacks


def _drain(setting: Setting) -> None:
    """A last dispatcher, still under faults, an hour later each round, until nothing
    waits (retries and Retry-After come due)."""
    engine = create_database_engine(setting.database_url)
    factory = create_session_factory(engine)
    settings = SlackSettings.from_env(setting.env())
    notifier = SlackNotifier(settings.client())
    moment = datetime.now(UTC) + timedelta(weeks=LATER_SWEEPS + 1)
    try:
        for _ in range(DRAIN_ROUNDS):
            dispatch_due(factory, notifier, now=moment, limit=1000, unsent_too=True)
            with factory() as session:
                waiting = session.scalar(
                    select(OutboxMessage.id).where(OutboxMessage.status == MessageStatus.PENDING)
                )
            if waiting is None:
                return
            moment += timedelta(hours=1)
    finally:
        engine.dispose()


def _tracebacks(log: Path) -> int:
    return log.read_text(encoding="utf-8", errors="replace").count("Traceback")
