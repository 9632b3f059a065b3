"""One decision per decision, tried as people do it: two managers running `tower approve`
at one instant, two `tower edit` of one version at once, five identical signed Approve
clicks on a running `tower serve`. A trial is broken when the test ends with two decisions,
two audit events, two announcements, a lost edit, an HTTP 5xx or a traceback."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.ids import ActionId
from bot.product_bench.slack_requests import FORM, click_body, http, signature_headers
from tests.chaos.actors import SIGNING_SECRET, PartCounts, Serving
from tests.chaos.setting import POLICY, PYTHON, REPO, Setting
from tests.support.people import MANAGER
from tower.audit.models import AuditEvent
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.outbox.models import OutboxMessage
from tower.policy import load_policy
from tower.protocol import review
from tower.protocol.gates import failing
from tower.protocol.models import Decision, DecisionKind

DEPUTY = "U0TOWERLEAD"  # the retail policy's second manager
CLICKS = 5
LEAD_SECONDS = 4.0  # processes start this long before the instant they act at

MUST_BE_ZERO = ("broken", "server_errors", "tracebacks")


@dataclass
class Counts(PartCounts):
    trials: int = 0
    broken: int = 0
    server_errors: int = 0
    tracebacks: int = 0

    def fail(self, what: str) -> None:
        self.broken += 1
        self.problem(what)


def run(setting: Setting, scratch: Path, *, trials: int) -> dict[str, Any]:
    engine = create_database_engine(setting.database_url)
    factory = create_session_factory(engine)
    counts = Counts()
    try:
        approvable = _approvable(factory)
        races: list[Callable[[str], None]] = [
            lambda key: _approve_race(setting, factory, key, counts),
            lambda key: _edit_race(setting, factory, key, counts),
        ]
        for trial, key in enumerate(approvable[: 2 * trials]):
            counts.trials += 1
            races[trial % 2](key)
        with Serving(setting, scratch, SIGNING_SECRET) as url:
            for key in _approvable(factory)[:trials]:
                counts.trials += 1
                _click_race(url, setting, factory, key, counts)
    finally:
        engine.dispose()
    return counts.as_dict()


def _approvable(factory: Any) -> list[str]:
    """Submitted tests whose gates pass now: a manager's approval decides them."""
    policy = load_policy(POLICY)
    ctx = ServiceContext.create(policy, datetime.now(UTC))
    keys = []
    with factory() as session:
        query = select(Experiment).where(Experiment.status == ExperimentStatus.SUBMITTED)
        for experiment in session.scalars(query.order_by(Experiment.number)):
            if not failing(review.gates_for(session, ctx, experiment)):
                keys.append(experiment.key)
    return keys


def _at_once(setting: Setting, commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Each `tower` command as its own process, all acting at one instant."""
    instant = time.time() + LEAD_SECONDS
    started = [
        subprocess.Popen(
            [PYTHON, "-m", "tests.chaos.at_once", str(instant), *command],
            env=setting.env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    done = []
    for process in started:
        output, _ = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, output, ""))
    return done


def _approve_race(setting: Setting, factory: Any, key: str, counts: Counts) -> None:
    ran = _at_once(setting, [["approve", key, "--by", manager] for manager in (MANAGER, DEPUTY)])
    counts.tracebacks += sum(r.stdout.count("Traceback") for r in ran)
    codes = sorted(r.returncode for r in ran)
    with factory() as session:
        experiment = experiment_service.get_by_key(session, key)
        decided = _decisions(session, experiment)
        approves = _events(session, experiment, "approve")
        told = _announcements(session, key)
    if experiment.status != ExperimentStatus.APPROVED or decided != 1 or approves != 1:
        counts.fail(f"approve {key}: {experiment.status}, {decided} decisions, {approves} events")
    elif told != 1 or codes[0] != 0 or codes[1] not in (0, 1):
        counts.fail(f"approve {key}: {told} announcements, exit codes {codes}")


def _edit_race(setting: Setting, factory: Any, key: str, counts: Counts) -> None:
    with factory() as session:
        experiment = experiment_service.get_by_key(session, key)
        version, owner, title = experiment.version, experiment.owner, experiment.title
    commands = [
        ["edit", key, "--by", owner, "--version", str(version), "--set", f"title={title} ({n})"]
        for n in (1, 2)
    ]
    ran = _at_once(setting, commands)
    counts.tracebacks += sum(r.stdout.count("Traceback") for r in ran)
    codes = sorted(r.returncode for r in ran)
    loser = next((r.stdout for r in ran if r.returncode == 1), "")
    with factory() as session:
        experiment = experiment_service.get_by_key(session, key)
        edits = _events(session, experiment, "edit")
    if codes != [0, 1] or experiment.version != version + 1 or edits != 1:
        counts.fail(f"edit {key}: exit codes {codes}, version {experiment.version}, {edits} events")
    elif "changed" not in loser:
        counts.fail(f"edit {key}: the loser was told {loser.strip()!r}")


def _click_race(url: str, setting: Setting, factory: Any, key: str, counts: Counts) -> None:
    with factory() as session:
        version = experiment_service.get_by_key(session, key).version
    channel = load_policy(POLICY).tower_channel or "C0TOWER"
    body = click_body(
        ActionId.APPROVE.value,
        f"{key}:{version}",
        user=MANAGER,
        channel=channel,
        ts="1700000000.000100",
        trigger_id="1.2.3",
    )
    barrier = threading.Barrier(CLICKS, timeout=10)
    statuses: list[int] = []

    def click() -> None:
        barrier.wait()
        headers = {"Content-Type": FORM, **signature_headers(body, secret=SIGNING_SECRET)}
        statuses.append(http(f"{url}/slack/events", body=body, headers=headers).status)

    threads = [threading.Thread(target=click) for _ in range(CLICKS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    counts.server_errors += sum(1 for status in statuses if status >= 500)
    deadline = time.monotonic() + 15
    while True:
        with factory() as session:
            experiment = experiment_service.get_by_key(session, key)
            decided, approves = (
                _decisions(session, experiment),
                _events(session, experiment, "approve"),
            )
        if experiment.status == ExperimentStatus.APPROVED or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # the other clicks' work, had it gone through, would show by now
    with factory() as session:
        experiment = experiment_service.get_by_key(session, key)
        decided, approves = _decisions(session, experiment), _events(session, experiment, "approve")
    if experiment.status != ExperimentStatus.APPROVED or decided != 1 or approves != 1:
        counts.fail(f"clicks {key}: {experiment.status}, {decided} decisions, {approves} events")


def _decisions(session: Session, experiment: Experiment) -> int:
    query = select(func.count()).where(
        Decision.experiment_id == experiment.id,
        Decision.kind == DecisionKind.APPROVE,
        Decision.voided.is_(False),
    )
    return int(session.scalar(query) or 0)


def _events(session: Session, experiment: Experiment, action: str) -> int:
    query = select(func.count()).where(
        AuditEvent.experiment_id == experiment.id, AuditEvent.action == action
    )
    return int(session.scalar(query) or 0)


def _announcements(session: Session, key: str) -> int:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "approval_decided"))
    return sum(1 for row in rows if (row.payload or {}).get("key") == key)
