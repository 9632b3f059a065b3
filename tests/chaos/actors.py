"""The processes and threads chaos parts set loose on one database: a real `tower worker`,
`tower sweep` at later business times, writers changing tests, a last dispatcher."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import IO, Any

from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import build
from bot.config import SlackSettings
from bot.notifier import SlackNotifier
from bot.product_bench.slack_requests import http
from tests.chaos.setting import TOWER, Setting
from tests.support.people import MANAGER
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory
from tower.errors import TowerError
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.outbox.dispatcher import dispatch_due
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.policy import load_policy
from tower.protocol import review

DRAIN_ROUNDS = 60  # last dispatcher runs, an hour apart, until nothing waits
SIGNING_SECRET = "chaos-signing-secret"
PROBLEMS_SHOWN = 10  # problems a part lists in the summary, the first ones


def tower_here(setting: Setting, args: list[str]) -> tuple[int, str]:
    """`tower ARGS` in this process (fast enough for hundreds of probes): its exit code and
    output; an exception that escaped the command is marked as a traceback."""
    result = CliRunner().invoke(build(), args, env=setting.env())
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += f"\nTraceback (uncaught {type(result.exception).__name__})"
    return result.exit_code, output


@dataclass
class PartCounts:
    """A part's counts (subclasses add them) and the first few problems, in words."""

    problems: list[str] = field(default_factory=list)

    def problem(self, what: str) -> None:
        if len(self.problems) < PROBLEMS_SHOWN:
            self.problems.append(what[:160])

    def as_dict(self) -> dict[str, Any]:
        counts = {name: value for name, value in vars(self).items() if name != "problems"}
        return {**counts, **({"problems": self.problems} if self.problems else {})}


def start_worker(setting: Setting, log: IO[Any]) -> subprocess.Popen[bytes]:
    """`tower worker`, dispatching every half second, its output in `log`."""
    return subprocess.Popen(
        [*TOWER, "worker", "--dispatch-every", "0.5", "--sla-every", "5"],
        env=setting.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Stop a worker as an operator would (SIGTERM), killing it if it lingers."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


def write(setting: Setting, stop: threading.Event, changes: list[str], pause: float = 0.3) -> None:
    """A manager approves the submitted tests, one every `pause` seconds, and the owners
    of drafts submit them: each change queues notifications at the wall clock."""
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
                        review.approve(session, ctx, key, actor=MANAGER)
                    elif status == ExperimentStatus.DRAFT:
                        review.submit(session, ctx, key, actor=owner)
                    else:
                        continue
                changes.append(key)
            except TowerError:
                pass  # a gate failing is the tower doing its job
            time.sleep(pause)
    finally:
        engine.dispose()


def next_monday(weeks: int = 0) -> datetime:
    """Opening time on the Monday `weeks` after the coming one."""
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=7 - today.weekday(), weeks=weeks)
    return datetime.combine(monday, day_time(9, 30), tzinfo=UTC)


def sweep(setting: Setting, at: datetime | None = None) -> tuple[bool, int]:
    """`tower sweep [--now AT]`: whether it succeeded, and the tracebacks it printed
    (what a failed one printed is kept in `sweeps-failed.log` beside the databases)."""
    args = ["sweep"] if at is None else ["sweep", "--now", at.isoformat(timespec="seconds")]
    swept = setting.tower(*args)
    printed = swept.stdout + swept.stderr
    if swept.returncode != 0:
        with (setting.scratch / "sweeps-failed.log").open("a", encoding="utf-8") as log:
            log.write(f"--- tower {' '.join(args)}: exit {swept.returncode}\n{printed}\n")
    return swept.returncode == 0, printed.count("Traceback")


def drain(setting: Setting, *, after_weeks: int) -> None:
    """A last dispatcher, still under faults, an hour later each round from `after_weeks`
    ahead, until nothing waits (retries and Retry-After come due)."""
    engine = create_database_engine(setting.database_url)
    factory = create_session_factory(engine)
    notifier = SlackNotifier(SlackSettings.from_env(setting.env()).client())
    moment = datetime.now(UTC) + timedelta(weeks=after_weeks)
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


def tracebacks_in(log: Path) -> int:
    return log.read_text(encoding="utf-8", errors="replace").count("Traceback")


class Serving:
    """`tower serve` on a free port, answering requests signed with `signing_secret`."""

    def __init__(self, setting: Setting, scratch: Path, signing_secret: str) -> None:
        self.setting = setting
        self.secret = signing_secret
        self.log = scratch / f"serve-{setting.kind}-{uuid.uuid4().hex[:6]}.log"

    def __enter__(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**self.setting.env(), "SLACK_SIGNING_SECRET": self.secret}
        self._output = self.log.open("w")
        self._process = subprocess.Popen(
            [*TOWER, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if http(f"{url}/healthz").status == 200:
                    return url
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"tower serve did not answer on port {port}; see {self.log}")

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._output.close()
