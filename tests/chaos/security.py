"""Security probes: requests that must be refused whole. Forged, stale, malformed or
tampered signatures on `tower serve` get HTTP 401 and change nothing (one signed five
minutes ago still passes); people acting beyond their role through the CLI exit 1, change
nothing, and are audited `denied:<action>` with who they said they were."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.ids import ActionId
from bot.product_bench.slack_requests import FORM, click_body, http, signature_headers
from tests.chaos.actors import SIGNING_SECRET, PartCounts, Serving, tower_here
from tests.chaos.setting import POLICY, Setting
from tests.support.people import MANAGER
from tower.audit.models import AuditEvent
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.collisions.refs import format_ref
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.policy import Policy, load_policy
from tower.protocol import review
from tower.protocol.gates import failing

MUST_BE_ZERO = ("failed", "tracebacks")


@dataclass
class Counts(PartCounts):
    checks: int = 0
    failed: int = 0
    tracebacks: int = 0

    def check(self, name: str, passed: bool) -> None:
        self.checks += 1
        if not passed:
            self.failed += 1
            self.problem(name)


def run(setting: Setting, scratch: Path) -> dict[str, Any]:
    counts = Counts()
    engine = create_database_engine(setting.database_url)
    factory = create_session_factory(engine)
    policy = load_policy(POLICY)
    try:
        cast = _cast(factory, policy)
        for name, args, actor in _refusals(cast):
            _refused(setting, factory, counts, name, args, actor)
        with Serving(setting, scratch, SIGNING_SECRET) as url:
            _signatures(url, factory, counts, cast["approvable"])
    finally:
        engine.dispose()
    return counts.as_dict()


def _cast(factory: Any, policy: Policy) -> dict[str, str]:
    """Who and what the probes use, found in the portfolio: a submitted test whose gates
    pass, a member of its team who does not own it, a member of another team, an
    approved test and a draft of other teams, and an open collision that team is not in."""
    ctx = ServiceContext.create(policy, datetime.now(UTC))
    managers = set(policy.managers)
    with factory() as session:
        tests = list(session.scalars(select(Experiment).order_by(Experiment.number)))
        approvable = next(
            e
            for e in tests
            if e.status == ExperimentStatus.SUBMITTED
            and not failing(review.gates_for(session, ctx, e))
        )
        collisions = list(
            session.scalars(select(Collision).where(Collision.status == CollisionStatus.OPEN))
        )
    team = policy.team(approvable.team)
    assert team is not None
    teammate = next(m for m in team.members if m != approvable.owner and m not in managers)
    other = next(t for t in policy.teams if t.key != team.key and t.members)
    outsider = next(m for m in other.members if m not in managers)
    approved = next(
        e for e in tests if e.status == ExperimentStatus.APPROVED and e.team != other.key
    )
    draft = next(e for e in tests if e.status == ExperimentStatus.DRAFT and e.team != other.key)
    foreign = next(
        (c for c in collisions if other.key not in c.details.get("teams", [])), collisions[0]
    )
    return {
        "approvable": approvable.key,
        "teammate": teammate,
        "outsider": outsider,
        "approved": approved.key,
        "draft": draft.key,
        "collision": format_ref(foreign),
    }


def _refusals(cast: dict[str, str]) -> list[tuple[str, list[str], str]]:
    test, teammate, outsider = cast["approvable"], cast["teammate"], cast["outsider"]
    collision = cast["collision"]
    return [
        ("member approves", ["approve", test, "--by", teammate], teammate),
        ("other team's member approves", ["approve", test, "--by", outsider], outsider),
        ("member rejects", ["reject", test, "--by", teammate, "--reason", "no"], teammate),
        (
            "member requests changes",
            ["request-changes", test, "--by", teammate, "--reason", "x"],
            teammate,
        ),
        ("member prioritizes", ["prioritize", test, "--by", teammate, "--lever", "2"], teammate),
        ("member waives", ["waive", collision, "--by", teammate, "--reason", "fine"], teammate),
        ("other team edits", ["edit", test, "--by", outsider, "--set", "traffic=10"], outsider),
        ("other team withdraws", ["withdraw", test, "--by", outsider], outsider),
        (
            "other team cancels",
            ["cancel", cast["approved"], "--by", outsider, "--reason", "x"],
            outsider,
        ),
        ("other team submits", ["submit", cast["draft"], "--by", outsider], outsider),
        ("other team acknowledges", ["ack", collision, "--by", outsider], outsider),
        ("manager id in lower case", ["approve", test, "--by", MANAGER.lower()], MANAGER.lower()),
        ("someone outside the policy", ["approve", test, "--by", "U0NOBODY"], "U0NOBODY"),
    ]


def _state(setting: Setting) -> tuple[str, str]:
    """What a refusal must leave as it was: every test, and every collision record."""
    exported = tower_here(setting, ["export", "-"])[1]
    conflicts = tower_here(setting, ["conflicts", "--all", "--format", "json"])[1]
    return exported, conflicts


def _denials(factory: Any, actor: str) -> int:
    with factory() as session:
        query = select(func.count()).where(
            AuditEvent.actor == actor, AuditEvent.action.startswith("denied:")
        )
        return int(session.scalar(query) or 0)


def _refused(
    setting: Setting, factory: Any, counts: Counts, name: str, args: list[str], actor: str
) -> None:
    before, audited = _state(setting), _denials(factory, actor)
    code, output = tower_here(setting, args)
    counts.tracebacks += output.count("Traceback")
    counts.check(f"{name}: exit {code}", code == 1)
    counts.check(f"{name}: changed something", _state(setting) == before)
    counts.check(f"{name}: not audited", _denials(factory, actor) == audited + 1)


def _signed(timestamp: str, body: bytes, *, secret: str = SIGNING_SECRET) -> dict[str, str]:
    return signature_headers(body, secret=secret, timestamp=timestamp)


def _test(factory: Any, key: str) -> Experiment:
    with factory() as session:
        query = select(Experiment).where(Experiment.number == int(key[2:]))
        experiment: Experiment | None = session.scalar(query)
        assert experiment is not None
        session.expunge(experiment)
        return experiment


def _signatures(url: str, factory: Any, counts: Counts, key: str) -> None:
    version = _test(factory, key).version
    body = click_body(
        ActionId.APPROVE.value,
        f"{key}:{version}",
        user=MANAGER,
        channel="C0TOWER",
        ts="1700000000.000100",
        trigger_id="1.2.3",
    )
    now = int(time.time())
    good = signature_headers(body, secret=SIGNING_SECRET)
    forged: dict[str, tuple[bytes, dict[str, str]]] = {
        "wrong secret": (body, _signed(str(now), body, secret="guessed")),
        "no headers": (body, {}),
        "no timestamp": (body, {"X-Slack-Signature": good["X-Slack-Signature"]}),
        "empty timestamp": (body, _signed("", body)),
        "non-numeric timestamp": (body, _signed("soon", body)),
        "ten minutes old": (body, _signed(str(now - 600), body)),
        "ten minutes ahead": (body, _signed(str(now + 600), body)),
        "v1 scheme": (body, {**good, "X-Slack-Signature": "v1=" + good["X-Slack-Signature"][3:]}),
        "upper-case hex": (
            body,
            {**good, "X-Slack-Signature": "v0=" + good["X-Slack-Signature"][3:].upper()},
        ),
        "altered body": (body.replace(MANAGER.encode(), b"U0TOWERMGX"), good),
    }
    endpoint = f"{url}/slack/events"
    for name, (sent, headers) in forged.items():
        status = http(endpoint, body=sent, headers={"Content-Type": FORM, **headers}).status
        counts.check(f"signature {name}: HTTP {status}", status == 401)
    time.sleep(0.5)  # a listener that had run would have acted by now
    still = _test(factory, key).status == ExperimentStatus.SUBMITTED
    counts.check("a forged click changed the test", still)
    old = _signed(str(now - 290), body)
    status = http(endpoint, body=body, headers={"Content-Type": FORM, **old}).status
    counts.check(f"signed five minutes ago: HTTP {status}", status == 200)
