"""`tower serve` as people run it: a real process on a port, Slack's Web API replaced by the
local fake through SLACK_API_URL, and every request signed like Slack signs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.ids import ActionId, CallbackId
from tests.support.files import SMALL_POLICY
from tests.support.people import BAU_CHANNEL, MANAGER, OWNER, SQUAD_CHANNEL, TOWER_CHANNEL
from tests.support.slack.fake_api import Call, FakeSlack
from tests.support.slack.harness import (
    BAU_TEST,
    BOT_TOKEN,
    SIGNING_SECRET,
    call_view,
    command_body,
    fill_modal,
    http,
    interaction_body,
    signature_headers,
    spec,
    valid_answers,
    wait_for,
)
from tower import migrate
from tower.db import create_database_engine, create_session_factory
from tower.experiments import service as experiment_service
from tower.experiments.spec import ExperimentStatus

TOWER = Path(sys.executable).parent / "tower"
STARTUP = 20.0  # seconds the process may take to start answering


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Served:
    base: str
    fake: FakeSlack
    database_url: str


@pytest.fixture
def served(scratch_database_url: str) -> Iterator[Served]:
    """`tower serve` on a free port, on a database holding an approved BAU test."""
    migrate.upgrade(scratch_database_url)
    engine = create_database_engine(scratch_database_url)
    with create_session_factory(engine).begin() as session:
        experiment_service.create(
            session,
            number=1,
            spec=spec(**BAU_TEST),
            status=ExperimentStatus.APPROVED,
            actor=MANAGER,
        )
    engine.dispose()
    fake = FakeSlack().start()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": scratch_database_url,
        "TOWER_POLICY": str(SMALL_POLICY),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.url,
    }
    process = subprocess.Popen(
        [str(TOWER), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base), what="tower serve answers /healthz", timeout=STARTUP)
        yield Served(base, fake, scratch_database_url)
    finally:
        process.terminate()
        process.wait(timeout=10)
        fake.stop()


def _answers(base: str) -> bool:
    try:
        return http(f"{base}/healthz").status == 200
    except OSError:
        return False


def signed_post(base: str, body: bytes) -> int:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **signature_headers(body),
    }
    return http(f"{base}/slack/events", body=body, headers=headers).status


def posted(fake: FakeSlack, channel: str, containing: str) -> list[Call]:
    return [
        call
        for call in fake.calls_to("chat.postMessage")
        if call.args.get("channel") == channel and containing in str(call.args.get("text"))
    ]


def test_register_raise_alerts_and_approve_through_tower_serve(served: Served) -> None:
    base, fake = served.base, served.fake
    body = command_body("register", user=OWNER, channel=SQUAD_CHANNEL, trigger_id="t1")
    assert signed_post(base, body) == 200
    opened = wait_for(lambda: fake.calls_to("views.open"), what="the register modal opens")
    view = call_view(opened[0])
    assert view["callback_id"] == CallbackId.REGISTER.value

    submission = {
        "type": "view_submission",
        "team": {"id": "T0TEAM"},
        "user": {"id": OWNER},
        "view": fill_modal(view, valid_answers()),
    }
    assert signed_post(base, interaction_body(submission)) == 200

    def alerted_everywhere() -> bool:
        return all(
            posted(fake, channel, "Blocking surface collision")
            for channel in (SQUAD_CHANNEL, BAU_CHANNEL, TOWER_CHANNEL)
        )

    wait_for(alerted_everywhere, what="the conflict alert in both teams' and the tower channel")
    request = wait_for(
        lambda: posted(fake, TOWER_CHANNEL, "Approval requested"), what="the approval request"
    )[0]

    # The manager waives the clash, as `tower waive` would, then approves from Slack.
    alert = posted(fake, TOWER_CHANNEL, "Blocking surface collision")[0]
    ref = str(alert.args["text"]).split("collision ", 1)[1].split()[0].rstrip(":")
    waived = subprocess.run(
        [str(TOWER), "waive", ref, "--by", MANAGER, "--reason", "agreed split"],
        env={**os.environ, "DATABASE_URL": served.database_url, "TOWER_POLICY": str(SMALL_POLICY)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert waived.returncode == 0, waived.stderr
    click = {
        "type": "block_actions",
        "team": {"id": "T0TEAM"},
        "user": {"id": MANAGER},
        "trigger_id": "t2",
        "channel": {"id": TOWER_CHANNEL},
        "message": {"ts": request.args.get("ts") or "1700000000.000001"},
        "actions": [{"action_id": ActionId.APPROVE.value, "value": "T-2:2", "type": "button"}],
    }
    assert signed_post(base, interaction_body(click)) == 200
    updated = wait_for(lambda: fake.calls_to("chat.update"), what="the request updated in place")
    assert "was approved by" in str(updated[0].args.get("text"))


def test_serve_worker_and_cli_in_separate_processes_keep_records_equal_to_a_full_recheck(
    served: Served, tmp_path: Path
) -> None:
    """Each process indexes the portfolio once and catches up with the others' changes:
    after changes from all three, a full re-check finds nothing to open or resolve."""
    from datetime import date, timedelta

    env = {**os.environ, "DATABASE_URL": served.database_url, "TOWER_POLICY": str(SMALL_POLICY)}
    env.pop("SLACK_BOT_TOKEN", None)

    def tower(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(TOWER), *args], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done

    # An approved newsletter starting today, for the worker to launch (a change of its own).
    engine = create_database_engine(served.database_url)
    with create_session_factory(engine).begin() as session:
        today = date.today()
        newsletter = spec(
            title="Weekly newsletter",
            team="ecommerce",
            owner=BAU_TEST["owner"],
            surfaces=("email/promotional/weekly_newsletter",),
            start=today,
            end=today + timedelta(days=13),
        )
        experiment_service.create(
            session, number=2, spec=newsletter, status=ExperimentStatus.APPROVED, actor=MANAGER
        )
    engine.dispose()
    # The worker delivers to the same Slack as the server: either may send a message first.
    slack = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": served.fake.url}
    worker = subprocess.Popen(
        [str(TOWER), "worker", "--transitions-every", "1", "--dispatch-every", "1"],
        env={**env, **slack},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: json.loads(tower("show", "T-2", "--format", "json").stdout)["status"] == "live",
            what="the worker launches T-2",
            timeout=STARTUP,
        )

        def register(title: str) -> None:
            body = command_body("register", user=OWNER, channel=SQUAD_CHANNEL, trigger_id=title)
            before = len(served.fake.calls_to("views.open"))
            assert signed_post(served.base, body) == 200
            opened = wait_for(
                lambda: served.fake.calls_to("views.open")[before:],
                what="the modal opens",
                timeout=STARTUP,
            )
            view = call_view(opened[0])
            submission = {
                "type": "view_submission",
                "team": {"id": "T0TEAM"},
                "user": {"id": OWNER},
                "view": fill_modal(view, valid_answers(**{"title": title})),
            }
            assert signed_post(served.base, interaction_body(submission)) == 200

        register("Sticky basket")  # T-3, on the cart under T-1 on the checkout: a clash
        wait_for(
            lambda: posted(served.fake, TOWER_CHANNEL, "Blocking surface collision"),
            what="the clash is announced",
            timeout=STARTUP,  # three processes share two cores: no timing is asserted
        )
        later = (date.fromisoformat(valid_answers()["start"]) + timedelta(days=60)).isoformat()
        later_end = (date.fromisoformat(later) + timedelta(days=13)).isoformat()
        tower("edit", "T-3", "--by", OWNER, "--set", f"start={later}", "--set", f"end={later_end}")
        register("Basket upsell")  # T-4: serve must know T-3 moved, and T-2 went live
        wait_for(
            lambda: [
                c
                for c in served.fake.calls_to("chat.postMessage")
                if "T-4 'Basket upsell' is registered" in str(c.args.get("text"))
            ],
            what="T-4's DM",
            timeout=STARTUP,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    conflicts = json.loads(tower("conflicts", "--all", "--format", "json").stdout)
    assert {(tuple(c["keys"]), c["status"]) for c in conflicts if c["kind"] == "surface"} == {
        (("T-1", "T-3"), "resolved"),
        (("T-1", "T-4"), "open"),
    }
    assert "0 opened, 0 resolved" in tower("resync").stdout


def test_tower_serve_says_when_its_index_is_warm(served: Served) -> None:
    """`GET /healthz` answers at once, then says when the portfolio is indexed (each worker
    process warms its own index, so several answers running say so)."""

    def health() -> dict[str, object]:
        reply = http(f"{served.base}/healthz")
        assert reply.status == 200
        answer = json.loads(reply.body)
        assert isinstance(answer, dict)
        return answer

    assert health()["index"] in {"warm", "warming"}
    wait_for(
        lambda: all(health()["index"] == "warm" for _ in range(8)),
        what="every worker says its index is warm",
        timeout=STARTUP,
    )
    assert health() == {"ok": True, "database": "reachable", "index": "warm"}
