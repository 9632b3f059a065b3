"""Drive the real bot over HTTP: a running WSGI app, signed Slack requests, a fake Web API.

`running_bot(url, policy)` migrates a scratch database, starts the fake Web API
(`tests/slack/fake_api.py`) and serves `bot.web.create_wsgi(create_app(...))` on a loopback
port in a thread; `BotServer` sends what Slack sends (slash commands, button clicks, modal
submissions, option requests, events), signed with the signing secret like Slack signs them,
or forged, stale or unsigned on purpose. Bolt acknowledges first and works in a thread pool
afterwards, so assertions on the Web API calls it makes poll with `wait_for` (a deadline,
never a blind sleep).

The service clock is fixed (`NOW`, a Monday at 10:00 UTC a few weeks after the wall clock,
because the outbox stamps its rows with the wall clock and delivers those due at the service
clock); tests run from `START` (two weeks later) to `END`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from socketserver import ThreadingMixIn
from typing import Any, TypeVar
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import BotDeps, create_app
from bot.config import SlackSettings
from bot.ids import BlockId, CallbackId
from bot.notifier import SlackNotifier
from bot.web import create_wsgi, database_reachable
from tests.builders import cart_test
from tests.slack.fake_api import Call, FakeSlack
from tower import migrate
from tower.audit.models import AuditEvent
from tower.db import create_database_engine, create_session_factory
from tower.experiments import service as experiment_service
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
TEAM_ID = "T0TEAM"
APP_ID = "A0TOWER"
DEADLINE = 3.0  # seconds any expected effect of a request may take to show


def _monday_after(day: date, days: int) -> date:
    later = day + timedelta(days=days)
    return later + timedelta(days=(7 - later.weekday()) % 7)


NOW = datetime.combine(_monday_after(datetime.now(UTC).date(), 21), clock_time(10), tzinfo=UTC)
START = NOW.date() + timedelta(days=14)  # a Monday, ten business days after NOW at least
END = START + timedelta(days=13)  # the Sunday two weeks later

# The small policy's people and channels (tests/data/policy.yaml).
MANAGER = "U0TOWERMGR"
OWNER = "U0ANNA"  # checkout-squad (agile)
TEAMMATE = "U0BEN"  # checkout-squad
BAU_OWNER = "U0CARLA"  # ecommerce (bau)
OUTSIDER = "U0NOBODY"  # in no team
TOWER_CHANNEL = "C0TOWER"
SQUAD_CHANNEL = "C0CHECKOUT"
BAU_CHANNEL = "C0ECOM"


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
    body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """`X-Slack-Request-Timestamp` and `X-Slack-Signature` as Slack computes them."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> dict[str, Any]:
        data = json.loads(self.body or b"{}")
        assert isinstance(data, dict), data
        return data


def http(
    url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """One HTTP request (POST when there is a body); any status comes back, none raises."""
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as response:
            return HttpResponse(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return HttpResponse(error.code, error.read(), dict(error.headers))


FORM = "application/x-www-form-urlencoded"


def command_body(text: str, *, user: str, channel: str, trigger_id: str) -> bytes:
    """A `/tower` slash command, form-encoded like Slack sends it."""
    fields = {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "tower-test",
        "channel_id": channel,
        "channel_name": "checkout",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/tower",
        "text": text,
        "api_app_id": APP_ID,
        "response_url": "https://hooks.slack.invalid/commands/T0TEAM/1/x",
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode()


def interaction_body(payload: Mapping[str, Any]) -> bytes:
    """An interaction (click, submission, option request): form-encoded `payload=<json>`."""
    return urlencode({"payload": json.dumps(payload)}).encode()


# -- the register modal, filled in like a person would ---------------------------------------


def fill_modal(view: Mapping[str, Any], answers: Mapping[str, Any]) -> dict[str, Any]:
    """The submitted `view` of a modal: `answers` (by block id) put in each block's element.

    Strings go in text inputs, dates (ISO) in date pickers, a string or None in selects, a
    list of strings in multi-selects, numbers as text in number inputs. Blocks not answered
    keep their initial value, as Slack submits them.
    """
    values: dict[str, dict[str, Any]] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        element = block["element"]
        kind = element["type"]
        block_id = block["block_id"]
        answer = answers[block_id] if block_id in answers else _initial(element)
        state: dict[str, Any] = {"type": kind}
        if kind in ("multi_external_select", "multi_static_select"):
            state["selected_options"] = [_chosen(v) for v in answer or []]
        elif kind in ("static_select", "external_select"):
            state["selected_option"] = None if answer in (None, "") else _chosen(str(answer))
        elif kind == "datepicker":
            state["selected_date"] = None if answer in (None, "") else str(answer)
        else:
            state["value"] = None if answer in (None, "") else str(answer)
        values[block_id] = {element["action_id"]: state}
    return {
        "id": "V0MODAL",
        "type": "modal",
        "callback_id": view.get("callback_id", ""),
        "private_metadata": view.get("private_metadata", ""),
        "blocks": view["blocks"],
        "state": {"values": values},
        "hash": "1700000000.abcdef",
    }


def _chosen(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value}, "value": value}


def _initial(element: Mapping[str, Any]) -> Any:
    if "initial_options" in element:
        return [o["value"] for o in element["initial_options"]]
    if "initial_option" in element:
        return element["initial_option"]["value"]
    return element.get("initial_date") or element.get("initial_value")


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
        return interaction_body(
            {
                "type": "block_actions",
                "team": {"id": TEAM_ID, "domain": "tower-test"},
                "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
                "api_app_id": APP_ID,
                "token": "deprecated-verification-token",
                "trigger_id": self.trigger_id(),
                "container": {"type": "message", "message_ts": ts, "channel_id": channel},
                "channel": {"id": channel, "name": "tower"},
                "message": {"type": "message", "ts": ts, "text": "", "user": "U0TOWERBOT"},
                "response_url": "https://hooks.slack.invalid/actions/T0TEAM/1/x",
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "block_id": "actions",
                        "value": value,
                        "text": {"type": "plain_text", "text": action_id},
                        "action_ts": f"{time.time():.6f}",
                    }
                ],
            }
        )

    def click(
        self, action_id: str, value: str, *, user: str, channel: str, ts: str
    ) -> HttpResponse:
        return self.post(self.click_body(action_id, value, user=user, channel=channel, ts=ts))

    def submit(self, view: Mapping[str, Any], *, user: str) -> HttpResponse:
        """Submit a modal whose `view` carries its state (see `fill_modal`)."""
        return self.post(
            interaction_body(
                {
                    "type": "view_submission",
                    "team": {"id": TEAM_ID, "domain": "tower-test"},
                    "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
                    "api_app_id": APP_ID,
                    "token": "deprecated-verification-token",
                    "trigger_id": self.trigger_id(),
                    "view": {**view, "team_id": TEAM_ID, "app_id": APP_ID},
                    "response_urls": [],
                }
            )
        )

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
        body = {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "type": "event_callback",
            "event_id": f"Ev{next(self._triggers):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": "U0TOWERBOT", "is_bot": True}],
            "event": dict(event),
        }
        return self.post(json.dumps(body).encode(), content_type="application/json")

    def home_opened(self, user: str) -> HttpResponse:
        return self.event(
            {
                "type": "app_home_opened",
                "user": user,
                "channel": "D" + user[1:],
                "tab": "home",
                "event_ts": f"{time.time():.6f}",
            }
        )

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
        notifier=SlackNotifier(client, min_interval=0),  # pacing has its own tests
        clock=lambda: NOW,
    )
    app = create_app(settings, deps, client=client)
    server = make_server(
        "127.0.0.1",
        0,
        create_wsgi(app, healthy or database_reachable(engine)),
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
