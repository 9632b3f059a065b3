"""`tower product-bench`: the product's real paths, timed on a synthetic organisation.

In a scratch directory it writes the organisation (`export.py`), creates the database
(`database.py`), and runs, each as a fresh `tower` process with DATABASE_URL and
TOWER_POLICY set: `init`, `import roadmap.csv --by MANAGER`, `sweep` (which runs `resync`
once), `resync`, then the reads `list`, `pipeline`, `conflicts`, `plan` and `check T-n`
(each `--format json`). Then `tower serve` starts against a local fake Slack Web API; once
`GET /healthz` answers, people open the register modals they will submit, one request of
each kind warms the server up, the open-loop load runs (`traffic.py`, `load.py`), its
answers are awaited (`answers.py`), and one change of each kind is timed on the warm server
(`changes.py`). Everything is removed afterwards, the database included.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.product_bench.answers import Outcome, await_answers
from bot.product_bench.changes import SAMPLES, ChangeBench, Target
from bot.product_bench.database import bench_database
from bot.product_bench.errors import BenchSetupError
from bot.product_bench.export import Organisation, export_organisation
from bot.product_bench.fake_slack import FakeSlack
from bot.product_bench.load import Endpoint, run_load
from bot.product_bench.modals import open_register_modal
from bot.product_bench.processes import Server, Tower, clean_environment
from bot.product_bench.report import ProductBenchReport
from bot.product_bench.settle import Settler, answers_promptly
from bot.product_bench.slack_requests import HttpResponse, http
from bot.product_bench.traffic import (
    READS,
    CollisionPool,
    Kind,
    People,
    Registration,
    Traffic,
    kinds_in,
)
from tower.bench.runner import Machine
from tower.bench.synthetic.portfolio import fresh_tests
from tower.engine.portfolio import PortfolioItem
from tower.experiments.spec import parse_key
from tower.policy import load_policy

Progress = Callable[[str], None]
BOT_TOKEN = "xoxb-product-bench"
STARTUP = 120.0  # seconds `tower serve` may take to answer GET /healthz
WARM_IN_A_ROW = 8  # answers saying "warm" running that count as every worker warm
IDLE_WINDOW = 10.0  # seconds the server is left alone while its CPU use is measured
ANSWER_WAIT = 10.0  # seconds after the last request that its answer may still come


@dataclass(frozen=True)
class BenchOptions:
    tests: int
    seed: int = 0
    database_url: str | None = None
    rate: float = 20.0
    seconds: float = 30.0


def run_product_bench(options: BenchOptions, say: Progress) -> ProductBenchReport:
    """Run everything once; `BenchSetupError` when a database, port or command is unusable."""
    database = "sqlite" if options.database_url is None else "postgresql"
    report = ProductBenchReport(
        options.tests, options.seed, options.rate, options.seconds, database, Machine.current()
    )
    with tempfile.TemporaryDirectory(prefix="tower-product-bench-") as name:
        scratch = Path(name)
        (scratch / "logs").mkdir()
        organisation = export_organisation(scratch, options.tests, options.seed)
        say(f"organisation written: {organisation.policy_path}, {organisation.roadmap_path}")
        with bench_database(scratch, options.database_url) as url:
            say(f"database: {make_url(url).render_as_string(hide_password=True)}")
            environment = {"DATABASE_URL": url, "TOWER_POLICY": str(organisation.policy_path)}
            tower = Tower(clean_environment(environment), scratch / "logs")
            listed, conflicts = _run_commands(tower, organisation, report, say)
            with _fake_slack() as fake, _settler(url, fake) as settler:
                run = _SlackRun(tower, fake, settler, organisation, options, say)
                run.measure(report, listed, conflicts)
    return report


def _run_commands(
    tower: Tower, organisation: Organisation, report: ProductBenchReport, say: Progress
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The set-up and the reads, one fresh process each; the tests and conflicts listed."""
    roadmap = str(organisation.roadmap_path)
    middle = f"T-{organisation.items[len(organisation.items) // 2].number}"
    commands: list[tuple[str, tuple[str, ...]]] = [
        ("init", ("init",)),
        ("import", ("import", roadmap, "--by", organisation.importer)),
        ("sweep", ("sweep",)),
        ("resync", ("resync",)),
        ("list", ("list", "--format", "json")),
        ("pipeline", ("pipeline", "--format", "json")),
        ("conflicts", ("conflicts", "--format", "json")),
        ("plan", ("plan", "--format", "json")),
        ("check", ("check", middle, "--format", "json")),
    ]
    for name, args in commands:
        run = report.commands[name] = tower.run(name, *args)
        say(f"tower {' '.join(args)}: {run.seconds:.2f} s, {run.peak_rss_mb:.0f} MB")
    listed = json.loads(report.commands["list"].output())
    conflicts = json.loads(report.commands["conflicts"].output())
    return list(listed), list(conflicts)


@contextmanager
def _fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    try:
        yield fake
    finally:
        fake.stop()


@contextmanager
def _settler(database_url: str, fake: FakeSlack) -> Iterator[Settler]:
    settler = Settler(database_url, fake)
    try:
        yield settler
    finally:
        settler.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class _SlackRun:
    """`tower serve` against the fake Slack: warm-up, the load, one change of each kind."""

    tower: Tower
    fake: FakeSlack
    settler: Settler
    organisation: Organisation
    options: BenchOptions
    say: Progress

    def measure(
        self,
        report: ProductBenchReport,
        listed: Sequence[Mapping[str, Any]],
        conflicts: Sequence[Mapping[str, Any]],
    ) -> None:
        secret, port = secrets.token_hex(16), free_port()
        slack = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": secret,
            "SLACK_API_URL": self.fake.url,
        }
        server = self.tower.serve(port, slack)
        try:
            report.server_start_seconds = _wait_until_healthy(server, port)
            self.say(
                f"tower serve answers on port {port} after {report.server_start_seconds:.2f} s"
            )
            report.server_warm_seconds = _wait_until_warm(server, port)
            self.say(f"tower serve has its index warm after {report.server_warm_seconds:.2f} s")
            report.server_idle_cpu_percent = _idle_cpu_percent(server)
            self.say(f"idle for {IDLE_WINDOW:g} s: {report.server_idle_cpu_percent:.2f}% of a core")
            endpoint = Endpoint(f"http://127.0.0.1:{port}/slack/events", secret)
            rng = random.Random(f"{self.options.seed}:product-bench")
            traffic = self._traffic(endpoint, rng, conflicts)
            manager, tower_channel = self.organisation.decider, traffic.people.tower_channel
            self.settler.responsive = answers_promptly(endpoint, manager, tower_channel)
            report.warmup = _warm_up(endpoint, self.fake, traffic)
            self.say(
                "warmed up: " + ", ".join(f"{o.kind} {_ms(o.answer_ms)}" for o in report.warmup)
            )
            if not self.settler.wait():
                self.say("tower serve is still busy after the warm-up; the load starts anyway")
            self.say(f"load: {self.options.rate:g} requests/s for {self.options.seconds:g} s")
            report.load = run_load(endpoint, traffic.build, self.options.rate, self.options.seconds)
            report.outcomes = await_answers(report.load.sent, self.fake, ANSWER_WAIT)
            failed = sum(1 for outcome in report.outcomes if outcome.failure is not None)
            self.say(f"load done: {len(report.outcomes)} sent, {failed} failed")
            report.server_rss_after_load_mb = server.memory.last_mb
            self.say("one change of each kind on the warm server")
            edits, moves = _change_targets(listed, self.organisation, rng)
            policy = load_policy(self.organisation.policy_path)
            changes = ChangeBench(
                endpoint, self.fake, traffic, policy, self.organisation.decider, self.settler.wait
            )
            report.changes = changes.run(edits, moves)
        finally:
            report.server_peak_rss_mb = server.stop()

    def _traffic(
        self, endpoint: Endpoint, rng: random.Random, conflicts: Sequence[Mapping[str, Any]]
    ) -> Traffic:
        """The request builder, its collisions listed and its register modals opened."""
        options, people = self.options, People.of(self.organisation.policy)
        pool = CollisionPool(people, rng, self.fake)
        traffic = Traffic(people, options.tests, rng, deque(), pool)
        pool.add_listed(conflicts)
        load = kinds_in(max(1, round(options.rate * options.seconds)))
        wanted = 1 + load.count(Kind.REGISTER) + SAMPLES  # the warm-up's, the load's, the changes'
        fresh = fresh_tests(
            self.organisation.policy, wanted, options.seed, first_number=options.tests + 1
        )
        traffic.registrations.extend(_open_registrations(endpoint, self.fake, traffic, fresh))
        return traffic


def _ms(value: float | None) -> str:
    return "no answer" if value is None else f"{value:.0f} ms"


def _health(server: Server, port: int) -> Iterator[HttpResponse | OSError]:
    """`GET /healthz`'s answers (or why none came), every 0.1 s for `STARTUP` seconds, or
    until the server stops."""
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline and server.running:
        try:
            yield http(f"http://127.0.0.1:{port}/healthz", timeout=2.0)
        except OSError as error:
            yield error
        time.sleep(0.1)


def _wait_until_healthy(server: Server, port: int) -> float:
    """Seconds from starting `tower serve` to its first `GET /healthz` 200."""
    said = "no answer"
    for answer in _health(server, port):
        if isinstance(answer, OSError):
            said = str(answer)
        elif answer.status == 200:
            return time.perf_counter() - server.started
        else:
            said = f"HTTP {answer.status} {answer.body.decode(errors='replace')}"
    if not server.running:
        raise BenchSetupError(
            f"tower serve stopped before answering on port {port} (is the port free?):\n"
            f"{server.error_tail()}"
        )
    raise BenchSetupError(
        f"tower serve did not answer GET /healthz on port {port} within {STARTUP:g} s "
        f"(last: {said}); if it says the database is unreachable, check the database"
    )


def _wait_until_warm(server: Server, port: int) -> float | None:
    """Seconds from starting `tower serve` until `GET /healthz` says its index is warm
    `WARM_IN_A_ROW` times running (each worker process warms its own); None if it never
    does within `STARTUP`."""
    in_a_row = 0
    for answer in _health(server, port):
        warm = (
            not isinstance(answer, OSError)
            and answer.status == 200
            and json.loads(answer.body).get("index") == "warm"
        )
        in_a_row = in_a_row + 1 if warm else 0
        if in_a_row == WARM_IN_A_ROW:
            return time.perf_counter() - server.started
    return None


def _idle_cpu_percent(server: Server) -> float:
    """The server's CPU use, in percent of one core, over `IDLE_WINDOW` seconds in which
    nothing is asked of it."""
    before = server.cpu_seconds()
    time.sleep(IDLE_WINDOW)
    return 100.0 * (server.cpu_seconds() - before) / IDLE_WINDOW


def _open_registrations(
    endpoint: Endpoint, fake: FakeSlack, traffic: Traffic, fresh: Sequence[PortfolioItem]
) -> list[Registration]:
    """The `fresh` tests, each with the register modal its owner opened (once per owner)."""
    views: dict[str, Mapping[str, Any]] = {}
    registrations = []
    for number, item in enumerate(fresh, 1):
        owner = item.spec.owner
        if owner not in views:
            channel = traffic.people.channels[item.spec.team]
            views[owner] = open_register_modal(endpoint, fake, owner, channel, traffic.trigger_id())
        title = f"Bench registration {number} on {item.spec.surfaces[0]}"
        registrations.append(Registration(owner, views[owner], item.spec, title))
    return registrations


def _warm_up(endpoint: Endpoint, fake: FakeSlack, traffic: Traffic) -> list[Outcome]:
    """One request of each read kind and one registration, one at a time."""
    outcomes = []
    for kind in (*READS, Kind.REGISTER):
        request = traffic.build(kind)
        if request is not None:
            outcomes += await_answers([endpoint.send(request)], fake, ANSWER_WAIT)
    return outcomes


def _change_targets(
    listed: Sequence[Mapping[str, Any]], organisation: Organisation, rng: random.Random
) -> tuple[list[Target], list[Target]]:
    """Submitted tests to edit and to send back (request changes), distinct ones."""
    submitted = [record for record in listed if record["status"] == "submitted"]
    chosen = rng.sample(submitted, min(len(submitted), 2 * SAMPLES))
    targets = [
        Target(r["key"], int(r["version"]), organisation.items[parse_key(r["key"]) - 1].spec)
        for r in chosen
    ]
    return targets[:SAMPLES], targets[SAMPLES:]
