"""A real `tower worker`, SIGKILLed and restarted while writers change tests, delivering
through a Slack that fails 30% of calls every way Slack fails; then sweeps at later
business times, and a last dispatcher until nothing waits. Every notification must be
delivered once or held for a person: none lost, none twice."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.chaos.actors import (
    drain,
    next_monday,
    start_worker,
    stop_worker,
    sweep,
    tracebacks_in,
    write,
)
from tests.chaos.delivery import tally
from tests.chaos.setting import FAULT_RATE, SLACK_TIMEOUT, Setting
from tower.db import create_database_engine, create_session_factory
from tower.outbox.models import OutboxMessage

LATER_SWEEPS = 3  # Mondays after the kills, each swept once


@dataclass(frozen=True)
class Plan:
    kills: int
    seconds_between: tuple[float, float]  # how long the worker lives before each kill


def run(setting: Setting, scratch: Path, *, seed: int, plan: Plan) -> dict[str, Any]:
    rng = random.Random(seed)
    setting.slack.chaos(FAULT_RATE, seed=seed, stall=SLACK_TIMEOUT + 1)
    stop = threading.Event()
    changes: list[str] = []
    writer = threading.Thread(target=write, args=(setting, stop, changes), daemon=True)
    writer.start()
    log = (scratch / f"worker-{setting.kind}-{seed}.log").open("w")
    worker = start_worker(setting, log)
    try:
        for _ in range(plan.kills):
            time.sleep(rng.uniform(*plan.seconds_between))
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            worker = start_worker(setting, log)
        time.sleep(rng.uniform(*plan.seconds_between))
    finally:
        stop.set()
        writer.join(timeout=30)
        stop_worker(worker)
        log.close()
    swept = [sweep(setting, next_monday(weeks)) for weeks in range(LATER_SWEEPS)]
    drain(setting, after_weeks=LATER_SWEEPS + 1)
    engine = create_database_engine(setting.database_url)
    try:
        with create_session_factory(engine)() as session:
            counted = tally(session, setting.slack)
            rows = list(session.scalars(select(OutboxMessage)))
            tracebacks = sum(1 for row in rows if row.last_error and "Traceback" in row.last_error)
    finally:
        engine.dispose()
    listed = setting.tower("outbox", "list", "--all", "--format", "json")
    records = {r["id"]: r for r in json.loads(listed.stdout)} if listed.returncode == 0 else {}
    disagree = sum(
        1
        for row in rows
        if (records.get(row.id) or {}).get("status") != row.status.value
        or (records.get(row.id) or {}).get("attempts") != row.attempts
    ) + abs(len(records) - len(rows))
    setting.slack.chaos(0, seed=seed, stall=0)
    return {
        **counted.as_dict(),
        "kills": plan.kills,
        "faults": sum(setting.slack.faults.values()),
        "changes": len(changes),
        "sweeps_failed": sum(1 for ok, _ in swept if not ok),
        "outbox_list_disagrees": disagree,
        "tracebacks": tracebacks
        + sum(printed for _, printed in swept)
        + tracebacks_in(scratch / f"worker-{setting.kind}-{seed}.log"),
    }


MUST_BE_ZERO = (
    "lost",
    "duplicated",
    "same_text",
    "sweeps_failed",
    "outbox_list_disagrees",
    "tracebacks",
)
