"""Drive the real bot over HTTP: a running WSGI app, signed Slack requests, a fake Web API.

`running_bot(url, policy)` migrates a scratch database, starts the fake Web API
(`bot/product_bench/fake_slack.py`, shared with the product benchmark, like the request
builders of `bot/product_bench/slack_requests.py`) and serves
`bot.web.create_wsgi(create_app(...))` on a loopback port in a thread; `BotServer` sends
what Slack sends (slash commands, button clicks, modal submissions, option requests,
events), signed with the signing secret like Slack signs them, or forged, stale or unsigned
on purpose. Bolt acknowledges first and works in a thread pool afterwards, so assertions on
the Web API calls it makes poll with `wait_for` (a deadline, never a blind sleep).

The service clock is fixed (`NOW`, a Monday at 10:00 UTC a few weeks after the wall clock,
because the outbox stamps its rows with the wall clock and delivers those due at the service
clock); tests run from `START` (two weeks later) to `END`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import create_app
from bot.config import SlackSettings
from bot.deps import BotDeps
from bot.ids import BlockId, CallbackId
from bot.notifier import SlackNotifier
from bot.product_bench.fake_slack import Call, FakeSlack
from bot.product_bench.slack_requests import (
    APP_ID,
    FORM,
    TEAM_ID,
    click_body,
    event_body,
    home_opened_event,
    submission_body,
)
from bot.product_bench.slack_requests import HttpResponse as HttpResponse
from bot.product_bench.slack_requests import command_body as command_body
from bot.product_bench.slack_requests import fill_modal as fill_modal
from bot.product_bench.slack_requests import http as http
from bot.product_bench.slack_requests import interaction_body as interaction_body
from bot.product_bench.slack_requests import signature_headers as signed_headers
from bot.repeats import Repeats
from bot.web import create_wsgi, database_reachable
from tests.support.factories import cart_test
from tests.support.people import BAU_OWNER, MANAGER, SQUAD_CHANNEL
from tower import migrate
from tower.audit.models import AuditEvent
from tower.db import create_database_engine, create_session_factory
from tower.experiments import service as experiment_service
from tower.experiments.csv_transfer import import_roadmap
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.outbox.dispatcher import DispatchReport, dispatch_due
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.pipeline.resync import recheck_all
from tower.policy import Policy
from tower.protocol.models import Decision

T = TypeVar("T")

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test"
DEADLINE = 3.0  # seconds any expected effect of a request may take to show


def _monday_after(day: date, days: int) -> date:
    later = day + timedelta(days=days)
    return later + timedelta(days=(7 - later.weekday()) % 7)


NOW = datetime.combine(_monday_after(datetime.now(UTC).date(), 21), clock_time(10), tzinfo=UTC)
START = NOW.date() + timedelta(days=14)  # a Monday, ten business days after NOW at least
END = START + timedelta(days=13)  # the Sunday two weeks later


# -- waiting -------------------------------------------------------------------------------


def wait_for(check: Callable[[], T], *, what: str, timeout: float = DEADLINE) -> T:
    """Poll `check` until it returns something truthy; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what} (last saw {result!r})")
        time.sleep(0.02)


# -- signing and HTTP ----------------------------------------------------------------------


def signature_headers(
    body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | str | None = None
) -> dict[str, str]:
    """`X-Slack-Request-Timestamp` and `X-Slack-Signature` as Slack computes them."""
    return signed_headers(body, secret=secret, timestamp=timestamp)


# -- the register modal, filled in like a person would ---------------------------------------


def valid_answers(**changes: Any) -> dict[str, Any]:
    """A register modal's answers for a valid checkout-squad test under the small policy."""
    answers: dict[str, Any] = {
        BlockId.TITLE: "Sticky basket",
        BlockId.TEAM: "checkout-squad",
        BlockId.KIND: ExperimentKind.AB_TEST.value,
        BlockId.SURFACES: ["web/checkout/cart"],
        BlockId.AUDIENCES: [],
        BlockId.EXCLUDE_AUDIENCES: [],
        BlockId.START: START.isoformat(),
        BlockId.END: END.isoformat(),
        BlockId.TRAFFIC: "100",
        BlockId.EXCLUSION_GROUP: "",
        BlockId.PRIMARY_KPI: "conversion_rate",
        BlockId.BASELINE: "0.03",
        BlockId.MDE: "0.05",
        BlockId.HYPOTHESIS: "A basket that stays in view converts more visitors.",
        BlockId.IMPACT: "2",
        BlockId.CONFIDENCE: "0.8",
        BlockId.EFFORT_WEEKS: "1",
    }
    answers.update({str(name): value for name, value in changes.items()})
    return {str(name): value for name, value in answers.items()}


def spec(**changes: Any) -> ExperimentSpec:
    """A valid spec under the small policy (a checkout-squad test on the cart by default)."""
    scored: dict[str, Any] = {"impact": 2.0, "confidence": 0.8, "effort_weeks": 1.0}
    return cart_test(**{"start": START, "end": END, **scored, **changes})


BAU_TEST: dict[str, Any] = {
    "title": "Basket banner",
    "team": "ecommerce",
    "owner": BAU_OWNER,
    "surfaces": ("web/checkout",),
}


# -- the running bot -----------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class BotServer:
    """The bot serving HTTP on loopback, its fake Web API and its database."""

    base_url: str
    fake: FakeSlack
    deps: BotDeps
    engine: Engine
    _triggers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self.deps.session_factory

    # -- sending ---------------------------------------------------------------------------

    def post(
        self,
        body: bytes,
        *,
        content_type: str = FORM,
        signed: bool = True,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """POST `body` to `/slack/events`, signed with `secret` at `timestamp` unless told not."""
        headers = {"Content-Type": content_type, **(extra_headers or {})}
        if signed:
            headers.update(signature_headers(body, secret=secret, timestamp=timestamp))
        return http(f"{self.base_url}/slack/events", body=body, headers=headers)

    def get(self, path: str) -> HttpResponse:
        return http(f"{self.base_url}{path}")

    def trigger_id(self) -> str:
        return f"{next(self._triggers)}.{TEAM_ID}.trigger"

    def command(self, text: str, *, user: str, channel: str = SQUAD_CHANNEL) -> HttpResponse:
        body = command_body(text, user=user, channel=channel, trigger_id=self.trigger_id())
        return self.post(body)

    def click_body(self, action_id: str, value: str, *, user: str, channel: str, ts: str) -> bytes:
        """A button click on a message in `channel` (its `ts`), as Slack sends it."""
        return click_body(
            action_id, value, user=user, channel=channel, ts=ts, trigger_id=self.trigger_id()
        )

    def click(
        self, action_id: str, value: str, *, user: str, channel: str, ts: str
    ) -> HttpResponse:
        return self.post(self.click_body(action_id, value, user=user, channel=channel, ts=ts))

    def submit(self, view: Mapping[str, Any], *, user: str) -> HttpResponse:
        """Submit a modal whose `view` carries its state (see `fill_modal`)."""
        return self.post(submission_body(view, user=user, trigger_id=self.trigger_id()))

    def register(self, answers: Mapping[str, Any], *, user: str) -> HttpResponse:
        """`/tower register`, then submit the modal it opened with `answers`."""
        opened = len(self.fake.calls_to("views.open"))
        reply = self.command("register", user=user)
        assert reply.status == 200, reply
        call = wait_for(
            lambda: self.fake.calls_to("views.open")[opened:], what="the register modal opens"
        )[0]
        view = call_view(call)
        assert view["callback_id"] == CallbackId.REGISTER
        return self.submit(fill_modal(view, answers), user=user)

    def suggest(self, action_id: str, value: str, *, user: str) -> HttpResponse:
        """What the modal asks while someone types in an external select."""
        return self.post(
            interaction_body(
                {
                    "type": "block_suggestion",
                    "team": {"id": TEAM_ID, "domain": "tower-test"},
                    "user": {"id": user, "team_id": TEAM_ID},
                    "api_app_id": APP_ID,
                    "token": "deprecated-verification-token",
                    "action_id": action_id,
                    "block_id": action_id,
                    "value": value,
                    "container": {"type": "view", "view_id": "V0MODAL"},
                    "view": {"id": "V0MODAL", "type": "modal", "callback_id": "register_test"},
                }
            )
        )

    def event(self, event: Mapping[str, Any]) -> HttpResponse:
        body = event_body(event, event_id=f"Ev{next(self._triggers):08d}")
        return self.post(body, content_type="application/json")

    def home_opened(self, user: str) -> HttpResponse:
        return self.event(home_opened_event(user))

    # -- the database ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.session_factory.begin() as session:
            yield session

    def seed(self, made: ExperimentSpec, status: ExperimentStatus) -> str:
        """Put a test straight into the database and re-check the portfolio, as an import
        does; its key."""
        with self.transaction() as session:
            number = experiment_service.highest_number(session) + 1
            created = experiment_service.create(
                session, number=number, spec=made, status=status, actor=made.owner
            )
            recheck_all(session, self.deps.context())
            return created.key

    def experiment(self, key: str) -> Experiment:
        with self.transaction() as session:
            return experiment_service.get_by_key(session, key)

    def experiment_count(self) -> int:
        with self.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(Experiment)) or 0)

    def decisions(self, key: str) -> list[Decision]:
        with self.transaction() as session:
            experiment = experiment_service.get_by_key(session, key)
            query = select(Decision).where(Decision.experiment_id == experiment.id)
            return list(session.scalars(query.order_by(Decision.id)))

    def audit_actions(self, key: str) -> list[tuple[str, str]]:
        """(actor, action) of every audit event of test `key`, oldest first."""
        with self.transaction() as session:
            experiment = experiment_service.get_by_key(session, key)
            query = select(AuditEvent.actor, AuditEvent.action).where(
                AuditEvent.experiment_id == experiment.id
            )
            return [(a, b) for a, b in session.execute(query.order_by(AuditEvent.id))]

    def outbox(self, kind: str | None = None) -> list[OutboxMessage]:
        with self.transaction() as session:
            query = select(OutboxMessage).order_by(OutboxMessage.id)
            if kind is not None:
                query = query.where(OutboxMessage.kind == kind)
            return list(session.scalars(query))

    def settled(self) -> bool:
        """Whether nothing in the outbox is due at the service clock any more, and no
        delivery is under way (one would also send what is queued next)."""
        if self.deps.delivering:
            return False
        with self.transaction() as session:
            due = select(func.count()).where(
                OutboxMessage.status == MessageStatus.PENDING,
                OutboxMessage.next_attempt_at <= NOW,
            )
            return not session.scalar(due) and not self.deps.delivering

    def deliver(self, now: datetime) -> DispatchReport:
        """What the worker does: deliver the outbox messages due at `now`."""
        assert self.deps.notifier is not None
        return dispatch_due(self.session_factory, self.deps.notifier, now=now)

    # -- what Slack was asked ----------------------------------------------------------------

    def posts(self, channel: str | None = None, *, containing: str = "") -> list[Call]:
        """chat.postMessage calls (to `channel`, with `containing` in their text)."""
        return [
            call
            for call in self.fake.calls_to("chat.postMessage")
            if (channel is None or call.args.get("channel") == channel)
            and containing in str(call.args.get("text", ""))
        ]


def call_view(call: Call) -> dict[str, Any]:
    """The view a views.open / views.publish call carried."""
    view = call.args["view"]
    parsed = json.loads(view) if isinstance(view, str) else view
    assert isinstance(parsed, dict)
    return parsed


def call_blocks(call: Call) -> list[dict[str, Any]]:
    """The blocks a chat.* call carried."""
    blocks = call.args.get("blocks") or []
    parsed = json.loads(blocks) if isinstance(blocks, str) else blocks
    assert isinstance(parsed, list)
    return parsed


def buttons(call: Call) -> dict[str, str]:
    """action_id -> value of the buttons in a posted message."""
    return {
        element["action_id"]: element.get("value", "")
        for block in call_blocks(call)
        if block.get("type") == "actions"
        for element in block["elements"]
    }


def texts_of(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text in `blocks` (sections, contexts, headers, fields)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return found


@dataclass
class SlowFakeSlack(FakeSlack):
    """The fake Web API taking `delays[method]` seconds to answer that method."""

    delays: dict[str, float] = field(default_factory=dict)

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        time.sleep(self.delays.get(method, 0.0))
        return super().answer(method, args)


@contextmanager
def running_bot(
    database_url: str,
    policy: Policy,
    *,
    healthy: Callable[[], bool] | None = None,
    fake: FakeSlack | None = None,
) -> Iterator[BotServer]:
    """The bot on a migrated database at `database_url`, served on a free loopback port."""
    migrate.upgrade(database_url)
    engine = create_database_engine(database_url)
    fake = (fake or FakeSlack()).start()
    settings = SlackSettings(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        app_token=None,
        api_url=fake.url,
        port=0,
    )
    client = settings.client()
    deps = BotDeps(
        create_session_factory(engine),
        policy,
        notifier=SlackNotifier(client, min_interval=0, people=policy.people),  # pacing: own tests
        clock=lambda: NOW,
    )
    app = create_app(settings, deps, client=client)
    server = make_server(
        "127.0.0.1",
        0,
        create_wsgi(
            app,
            healthy or database_reachable(engine),
            Repeats(deps.session_factory, SIGNING_SECRET),
        ),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield BotServer(f"http://127.0.0.1:{server.server_port}", fake, deps, engine)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=DEADLINE)
        fake.stop()
        engine.dispose()


@contextmanager
def running_bot_with_roadmap(
    database_url: str, policy: Policy, roadmap: Path, *, actor: str = MANAGER
) -> Iterator[BotServer]:
    """`running_bot` on a database holding `roadmap` imported as `tower import` does it
    (the rows, then the whole portfolio re-checked)."""
    with running_bot(database_url, policy) as server:
        with server.transaction() as session, roadmap.open() as stream:
            import_roadmap(session, stream, policy=policy, actor=actor)
            recheck_all(session, server.deps.context())
        yield server
