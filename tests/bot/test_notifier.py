"""The Slack notifier against a local fake of the Web API: layouts by kind, DMs, updates in
place, threads, pacing, and what Slack's errors become in the outbox (through the real
dispatcher on a scratch database). No internet; time is a fake clock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import ButtonElement, SectionBlock
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot import notifier as slack_notifier
from bot.config import SlackSettings
from bot.ids import ActionId
from bot.notifier import SlackNotifier
from bot.views.buttons import ApprovalButton, CollisionButton
from bot.views.fitting import MAX_BLOCKS, truncate
from bot.views.messages import message_blocks
from tests.support.people import GROWTH_CHANNEL as GROWTH
from tests.support.people import SQUAD_CHANNEL as CHECKOUT
from tests.support.people import TOWER_CHANNEL as TOWER
from tests.support.slack.fake_api import Call, FakeSlack
from tower import migrate
from tower.db import create_database_engine, create_session_factory
from tower.outbox import service as outbox_service
from tower.outbox.backoff import DEFAULT_BASE_DELAY
from tower.outbox.dispatcher import dispatch_due
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import Delivery, DeliveryFailed, OutcomeUnknown, RateLimited

TOKEN = "xoxb-0000-secret-token-never-logged"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GONE = "C0GONE"

APPROVAL_TEXT = (
    "Approval requested for T-4 'Express checkout' (checkout-squad, owner <@U0ANNA>), "
    "2026-03-09 to 2026-03-23. 1 approval(s) needed.\n"
    "- lead time: passed (5 working days' notice)\n"
    "- collisions: failing (C-7 is open)"
)
COLLISION_TEXT = (
    "Blocking surface collision C-7: <@U0ANNA> <@U0CARLA>\n"
    "T-4 and T-12 both change checkout/payment on 2026-03-09..2026-03-13 (about 8,000 people).\n"
    "Fix 1: move T-12 to 2026-03-16"
)


class FakeClock:
    """A monotonic clock that only moves when someone sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeSlackWithErrors(FakeSlack):
    """Also answers like Slack for a channel that does not exist (`channel_not_found`)."""

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel") == GONE:
            return {"ok": False, "error": "channel_not_found"}
        return super().answer(method, args)


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    server = FakeSlackWithErrors().start()  # stopping takes half a second: once per module
    yield server
    server.stop()


@pytest.fixture
def fake(slack_server: FakeSlack) -> FakeSlack:
    """The fake Web API, with no calls recorded and no failures planned."""
    with slack_server._lock:
        slack_server.calls.clear()
        slack_server.failures.clear()
        slack_server.posted.clear()
    return slack_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier(fake: FakeSlack, clock: FakeClock) -> SlackNotifier:
    client = WebClient(token=TOKEN, base_url=fake.url, timeout=5, retry_handlers=[])
    return SlackNotifier(client, clock=clock, sleep=clock.sleep)


def delivery(
    kind: str,
    text: str = "Something happened",
    recipient: str = TOWER,
    payload: dict[str, Any] | None = None,
    **extra: Any,
) -> Delivery:
    return Delivery(
        message_id=1,
        dedupe_key=f"{kind}:{recipient}:{text[:20]}",
        kind=kind,
        recipient=recipient,
        text=text,
        payload=payload or {},
        **extra,
    )


def actions_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        element for block in blocks if block["type"] == "actions" for element in block["elements"]
    ]


def sections_of(blocks: list[dict[str, Any]]) -> list[str]:
    return [block["text"]["text"] for block in blocks if block["type"] == "section"]


def blocks_of(call: Call) -> list[dict[str, Any]]:
    blocks = call.args["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


# --- Layouts, one kind at a time ------------------------------------------------------------


def test_approval_request_posts_its_text_and_three_buttons(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    sent = delivery("approval_requested", APPROVAL_TEXT, payload={"key": "T-4", "version": 3})

    receipt = notifier.send(sent)

    (call,) = fake.calls_to("chat.postMessage")
    assert receipt is not None and receipt["channel"] == TOWER and receipt["ts"]
    assert call.token == TOKEN
    assert call.args["channel"] == TOWER
    assert call.args["text"] == APPROVAL_TEXT  # nothing to escape; the owner mention kept
    assert call.args["unfurl_links"] is False
    assert call.args["metadata"]["event_payload"]["dedupe_key"] == sent.dedupe_key
    blocks = blocks_of(call)
    assert sections_of(blocks) == [APPROVAL_TEXT]
    buttons = actions_of(blocks)
    assert [(b["action_id"], b["text"]["text"], b.get("style")) for b in buttons] == [
        (ActionId.APPROVE, "Approve", "primary"),
        (ActionId.REQUEST_CHANGES, "Request changes", None),
        (ActionId.REJECT, "Reject", "danger"),
    ]
    assert {b["value"] for b in buttons} == {"T-4:3"}
    assert ApprovalButton.parse("T-4:3") == ApprovalButton(key="T-4", version=3)


def test_collision_alert_has_the_three_collision_buttons(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    notifier.send(
        delivery(
            "collision_opened",
            COLLISION_TEXT,
            recipient=GROWTH,
            payload={"collision": "C-7", "keys": ["T-12", "T-4"]},
        )
    )

    (call,) = fake.calls_to("chat.postMessage")
    assert call.args["channel"] == GROWTH
    assert call.args["text"] == COLLISION_TEXT
    buttons = actions_of(blocks_of(call))
    assert [(b["action_id"], b["text"]["text"]) for b in buttons] == [
        (ActionId.ACKNOWLEDGE, "Acknowledge"),
        (ActionId.MOVE_TO_FREE_SLOT, "Move to next free slot"),
        (ActionId.ASK_FOR_WAIVER, "Ask for a waiver"),
    ]
    assert {b["value"] for b in buttons} == {"C-7:T-12"}
    assert CollisionButton.parse("C-7:T-12") == CollisionButton(ref="C-7", key="T-12")
    assert CollisionButton.parse("C-7") == CollisionButton(ref="C-7", key=None)


@pytest.mark.parametrize(
    ("kind", "payload", "context"),
    [
        ("approval_decided", {"key": "T-4", "replaces": {"kind": "approval_requested"}}, "T-4"),
        ("approval_voided", {"key": "T-4", "version": 5}, "T-4 v5"),
        ("decision", {"key": "T-4", "version": 4}, "T-4 v4"),
        ("collision_resolved", {"collision": "C-7", "keys": ["T-4", "T-12"]}, "C-7"),
        ("collision_acknowledged", {"collision": "C-7", "keys": ["T-4"]}, "C-7"),
        ("collision_waived", {"collision": "C-7", "keys": ["T-4"]}, "C-7"),
        ("waiver_requested", {"collision": "C-7", "keys": ["T-4"]}, "C-7"),
        ("sla_warning", {"subject": "T-4", "clock_id": 3}, "T-4"),
        ("sla_breach", {"subject": "C-7:growth"}, "C-7:growth"),
        ("sla_escalation", {"subject": "T-4"}, "T-4"),
        ("digest", {"week": "2026-W10"}, "2026-W10"),
        ("status_live", {"key": "T-4", "version": 6}, "T-4 v6"),
        ("results_requested", {"key": "T-4"}, "T-4"),
        ("launch_blocked", {"key": "T-4"}, "T-4"),
    ],
)
def test_other_kinds_post_their_text_and_a_context_line_without_buttons(
    notifier: SlackNotifier, fake: FakeSlack, kind: str, payload: dict[str, Any], context: str
) -> None:
    text = f"{kind} for T-4 & friends\nsecond line"

    notifier.send(delivery(kind, text, payload=payload))

    (call,) = fake.calls_to("chat.postMessage")
    assert call.args["text"] == f"{kind} for T-4 &amp; friends\nsecond line"
    blocks = blocks_of(call)
    assert [block["type"] for block in blocks] == ["section", "context"]
    assert sections_of(blocks) == [call.args["text"]]
    (element,) = blocks[1]["elements"]
    assert element["text"].startswith("Tower · ")
    assert element["text"].endswith(f" · {context}")
    assert actions_of(blocks) == []


def test_user_text_cannot_ping_or_link(notifier: SlackNotifier, fake: FakeSlack) -> None:
    title = "Win <!channel> <!here> <http://evil.example|your bank> & more"
    text = f"Approval requested for T-4 '{title}' (growth, owner <@U0ANNA>)"

    notifier.send(delivery("approval_requested", text, payload={"key": "T-4", "version": 1}))

    (call,) = fake.calls_to("chat.postMessage")
    escaped = "Win &lt;!channel&gt; &lt;!here&gt; &lt;http://evil.example|your bank&gt; &amp; more"
    assert escaped in call.args["text"]
    assert escaped in sections_of(blocks_of(call))[0]
    everything = json.dumps([call.args["text"], call.args["blocks"]])
    assert "<!" not in everything
    assert "<http" not in everything
    assert "<@U0ANNA>" in call.args["text"]  # the mention Tower wrote still pings the owner


# --- Where messages go ----------------------------------------------------------------------


def test_a_user_gets_a_direct_message_opened_once(notifier: SlackNotifier, fake: FakeSlack) -> None:
    first = notifier.send(delivery("sla_warning", "due tomorrow", recipient="U0ANNA"))
    second = notifier.send(delivery("sla_breach", "overdue", recipient="U0ANNA"))
    other = notifier.send(delivery("sla_warning", "due tomorrow", recipient="W0BEN"))

    opened = fake.calls_to("conversations.open")
    assert [call.args["users"] for call in opened] == ["U0ANNA", "W0BEN"]
    posts = fake.calls_to("chat.postMessage")
    assert [call.args["channel"] for call in posts] == ["D0ANNA", "D0ANNA", "D0BEN"]
    assert first is not None and second is not None and other is not None
    assert (first["channel"], second["channel"], other["channel"]) == ("D0ANNA", "D0ANNA", "D0BEN")


def test_a_channel_recipient_is_posted_to_directly(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    notifier.send(delivery("digest", "week 10", recipient=TOWER))

    assert fake.calls_to("conversations.open") == []
    assert fake.calls_to("chat.postMessage")[0].args["channel"] == TOWER


def test_a_replacement_updates_the_original_in_place(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    original = notifier.send(
        delivery("approval_requested", APPROVAL_TEXT, payload={"key": "T-4", "version": 3})
    )
    assert original is not None

    receipt = notifier.send(
        delivery(
            "approval_decided",
            "T-4 'Express checkout' approved by <@U0TOWERMGR> (Mon 02 Mar 2026 09:00 UTC)",
            payload={"key": "T-4"},
            replace=original,
        )
    )

    assert len(fake.calls_to("chat.postMessage")) == 1
    (update,) = fake.calls_to("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (original["channel"], original["ts"])
    assert "approved by <@U0TOWERMGR>" in update.args["text"]
    assert actions_of(blocks_of(update)) == []  # the decision replaces the buttons
    assert receipt == original


def test_a_follow_up_answers_in_the_thread(notifier: SlackNotifier, fake: FakeSlack) -> None:
    alert = notifier.send(
        delivery("collision_opened", COLLISION_TEXT, GROWTH, {"collision": "C-7", "keys": []})
    )
    assert alert is not None

    reply = notifier.send(
        delivery(
            "collision_acknowledged",
            "Collision C-7 was acknowledged by <@U0ANNA>",
            GROWTH,
            {"collision": "C-7"},
            thread=alert,
        )
    )

    first, second = fake.calls_to("chat.postMessage")
    assert "thread_ts" not in first.args
    assert second.args["channel"] == alert["channel"]
    assert second.args["thread_ts"] == alert["ts"]
    assert reply is not None and reply["channel"] == GROWTH


# --- Pacing ---------------------------------------------------------------------------------


def test_one_channel_gets_at_most_one_message_a_second(
    notifier: SlackNotifier, fake: FakeSlack, clock: FakeClock
) -> None:
    notifier.send(delivery("digest", "one", GROWTH))
    notifier.send(delivery("digest", "two", GROWTH))  # same instant: waits the second out

    assert clock.sleeps == [pytest.approx(1.0)]
    notifier.send(delivery("digest", "three", CHECKOUT))  # another channel: no wait
    assert clock.sleeps == [pytest.approx(1.0)]

    clock.now += 5
    notifier.send(delivery("digest", "four", GROWTH))  # long after: no wait
    assert clock.sleeps == [pytest.approx(1.0)]
    clock.now += 0.25
    notifier.send(delivery("digest", "five", GROWTH))  # 0.25 s later: waits the remainder
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(0.75)]
    assert len(fake.calls_to("chat.postMessage")) == 5


# --- Errors ---------------------------------------------------------------------------------


def test_http_429_is_rate_limited_for_retry_after_seconds(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(RateLimited) as raised:
        notifier.send(delivery("digest", "week 10"))

    assert raised.value.retry_after_seconds == 7.0


def test_http_500_is_a_transient_failure(notifier: SlackNotifier, fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=500)

    with pytest.raises(DeliveryFailed) as raised:
        notifier.send(delivery("digest", "week 10"))

    assert raised.value.permanent is False
    assert "internal_error" in raised.value.reason


def test_an_unknown_channel_is_a_permanent_failure(notifier: SlackNotifier) -> None:
    with pytest.raises(DeliveryFailed) as raised:
        notifier.send(delivery("digest", "week 10", recipient=GONE))

    assert raised.value.permanent is True
    assert raised.value.reason == f"Slack chat.postMessage to {GONE}: channel_not_found (HTTP 200)"


def test_an_unreachable_slack_is_a_transient_failure(clock: FakeClock) -> None:
    stopped = FakeSlack().start()
    url = stopped.url
    stopped.stop()  # nothing listens there any more
    client = WebClient(token=TOKEN, base_url=url, timeout=2, retry_handlers=[])
    notifier = SlackNotifier(client, clock=clock, sleep=clock.sleep)

    with pytest.raises(DeliveryFailed) as raised:
        notifier.send(delivery("digest", "week 10"))

    assert raised.value.permanent is False
    assert "cannot reach Slack" in raised.value.reason


def test_the_token_is_never_logged_nor_stored_in_errors(
    notifier: SlackNotifier, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reasons: list[str] = []
    fake.fail("chat.postMessage", status=500)
    for recipient in (TOWER, GONE, TOWER, "U0ANNA"):
        try:
            notifier.send(delivery("digest", "week 10", recipient=recipient))
        except DeliveryFailed as failed:
            reasons.append(failed.reason)

    assert len(reasons) == 2
    assert TOKEN not in caplog.text
    assert all(TOKEN not in reason for reason in reasons)


# --- Limits ---------------------------------------------------------------------------------


def test_huge_texts_stay_within_block_kit_limits() -> None:
    line = "T-1 & T-2 collide on <@U0ANNA>'s checkout " * 5
    digest = "\n".join(f"{n}. {line}" for n in range(2000))  # about 450,000 characters
    one_long_line = "x" * 2995 + "&&&&"  # the cut falls inside an escaped ampersand

    for text in (digest, one_long_line):
        blocks = message_blocks(delivery("digest", text))
        assert len(blocks) <= MAX_BLOCKS
        for section in sections_of(blocks):
            assert 0 < len(section) <= SectionBlock.text_max_length
        last = sections_of(blocks)[-1]
        assert last.endswith("…")
        assert not last.rstrip("…").endswith(("&", "&am", "&amp", "<", "<@U0"))

    assert truncate("ab &amp; cd", 6) == "ab …"
    assert truncate("ab <@U0ANNA> cd", 8) == "ab …"


def test_a_button_value_too_long_for_slack_means_no_buttons() -> None:
    key = "T-" + "9" * ButtonElement.value_max_length
    blocks = message_blocks(delivery("approval_requested", "x", payload={"key": key, "version": 1}))

    assert actions_of(blocks) == []


# --- Through the outbox's dispatcher on a real database --------------------------------------


@pytest.fixture
def outbox_engine(scratch_database_url: str) -> Iterator[Engine]:
    migrate.upgrade(scratch_database_url)
    engine = create_database_engine(scratch_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(outbox_engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(outbox_engine)


def enqueue(
    factory: sessionmaker[Session],
    kind: str,
    recipient: str,
    text: str,
    payload: dict[str, Any] | None = None,
) -> int:
    with factory.begin() as session:
        message = outbox_service.enqueue(
            session,
            kind=kind,
            recipient=recipient,
            text=text,
            dedupe_key=f"{kind}:{recipient}:{len(text)}:{json.dumps(payload, sort_keys=True)}",
            payload=payload,
        )
        assert message is not None
        message.next_attempt_at = NOW  # due at the tests' time, not the wall clock's
        session.flush()
        return message.id


def row(factory: sessionmaker[Session], message_id: int) -> OutboxMessage:
    with factory() as session:
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
        assert message is not None
        session.expunge(message)
        return message


def test_a_429_is_retried_after_retry_after_and_sent_exactly_once(
    factory: sessionmaker[Session], notifier: SlackNotifier, fake: FakeSlack
) -> None:
    message_id = enqueue(factory, "digest", TOWER, "week 10")
    fake.fail("chat.postMessage", status=429, retry_after=7)

    first = dispatch_due(factory, notifier, now=NOW)
    early = dispatch_due(factory, notifier, now=NOW + timedelta(seconds=6.9))
    on_time = dispatch_due(factory, notifier, now=NOW + timedelta(seconds=7))
    later = dispatch_due(factory, notifier, now=NOW + timedelta(hours=1))

    assert (first.rate_limited, early.attempted, on_time.sent, later.attempted) == (1, 0, 1, 0)
    assert len(fake.calls_to("chat.postMessage")) == 2  # the refused one and the one that went
    sent = row(factory, message_id)
    assert sent.status == MessageStatus.SENT
    assert sent.attempts == 0  # being told to wait is not a failed attempt
    assert sent.receipt is not None and sent.receipt["channel"] == TOWER


def test_a_500_is_retried_with_backoff(
    factory: sessionmaker[Session], notifier: SlackNotifier, fake: FakeSlack
) -> None:
    message_id = enqueue(factory, "digest", TOWER, "week 10")
    fake.fail("chat.postMessage", status=500, times=2)

    reports = [
        dispatch_due(factory, notifier, now=NOW),
        dispatch_due(factory, notifier, now=NOW + DEFAULT_BASE_DELAY),  # second failure
        dispatch_due(factory, notifier, now=NOW + 2 * DEFAULT_BASE_DELAY),  # not yet: 30 s + 60 s
        dispatch_due(factory, notifier, now=NOW + 3 * DEFAULT_BASE_DELAY),
    ]

    assert [(r.retried, r.sent) for r in reports] == [(1, 0), (1, 0), (0, 0), (0, 1)]
    sent = row(factory, message_id)
    assert (sent.status, sent.attempts) == (MessageStatus.SENT, 2)
    assert len(fake.calls_to("chat.postMessage")) == 3


def test_an_unknown_channel_is_dead_lettered_at_once(
    factory: sessionmaker[Session], notifier: SlackNotifier, fake: FakeSlack
) -> None:
    message_id = enqueue(factory, "digest", GONE, "week 10")

    report = dispatch_due(factory, notifier, now=NOW)

    assert report.dead_lettered == 1
    failed = row(factory, message_id)
    assert (failed.status, failed.attempts) == (MessageStatus.FAILED, 1)
    assert failed.last_error is not None and "channel_not_found" in failed.last_error
    assert dispatch_due(factory, notifier, now=NOW + timedelta(days=1)).attempted == 0


def test_stored_receipts_turn_later_messages_into_updates_and_thread_replies(
    factory: sessionmaker[Session], notifier: SlackNotifier, fake: FakeSlack
) -> None:
    request = enqueue(
        factory, "approval_requested", TOWER, APPROVAL_TEXT, {"key": "T-4", "version": 3}
    )
    alert = enqueue(
        factory, "collision_opened", GROWTH, COLLISION_TEXT, {"collision": "C-7", "keys": ["T-4"]}
    )
    assert dispatch_due(factory, notifier, now=NOW).sent == 2
    request_receipt, alert_receipt = row(factory, request).receipt, row(factory, alert).receipt
    assert request_receipt is not None and alert_receipt is not None

    enqueue(
        factory,
        "approval_decided",
        TOWER,
        "T-4 approved by <@U0TOWERMGR>",
        {"key": "T-4", "replaces": {"kind": "approval_requested", "key": "T-4"}},
    )
    enqueue(
        factory,
        "collision_acknowledged",
        GROWTH,
        "Collision C-7 was acknowledged by <@U0ANNA>",
        {"collision": "C-7", "thread_of": {"kind": "collision_opened", "collision": "C-7"}},
    )
    enqueue(
        factory,
        "collision_resolved",
        GROWTH,
        "Collision C-7 is resolved",
        {"collision": "C-7", "replaces": {"kind": "collision_opened", "collision": "C-7"}},
    )
    assert dispatch_due(factory, notifier, now=NOW + timedelta(minutes=1)).sent == 3

    updates = fake.calls_to("chat.update")
    assert [(u.args["channel"], u.args["ts"]) for u in updates] == [
        (TOWER, request_receipt["ts"]),
        (GROWTH, alert_receipt["ts"]),
    ]
    assert all(actions_of(blocks_of(update)) == [] for update in updates)
    thread_replies = [c for c in fake.calls_to("chat.postMessage") if "thread_ts" in c.args]
    assert [(c.args["channel"], c.args["thread_ts"]) for c in thread_replies] == [
        (GROWTH, alert_receipt["ts"])
    ]


# --- Unknown outcomes: never posted twice, never lost silently -------------------------------


def posts_in(fake: FakeSlack, channel: str) -> list[str]:
    """The dedupe keys of the messages `channel` holds, oldest first."""
    return [
        str((m.metadata or {})["event_payload"]["dedupe_key"]) for m in fake.messages_in(channel)
    ]


def test_the_client_tower_builds_posts_once_and_the_notifier_refuses_one_that_retries() -> None:
    settings = SlackSettings.from_env({"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": "http://x/"})
    assert settings.client().retry_handlers == []
    with pytest.raises(ValueError, match="must not retry by itself"):
        SlackNotifier(WebClient(token=TOKEN))


def test_a_post_dropped_after_it_landed_is_found_and_not_posted_again(
    factory: sessionmaker[Session], notifier: SlackNotifier, fake: FakeSlack
) -> None:
    message_id = enqueue(factory, "digest", TOWER, "week 10")
    fake.drop("chat.postMessage", acting=True)

    assert dispatch_due(factory, notifier, now=NOW).retried == 1
    waiting = row(factory, message_id)
    assert (waiting.status, waiting.outcome_unknown) == (MessageStatus.PENDING, True)
    assert waiting.last_error is not None
    assert waiting.last_error.startswith("outcome unknown: Slack chat.postMessage to C0TOWER")

    assert dispatch_due(factory, notifier, now=NOW + DEFAULT_BASE_DELAY).sent == 1
    assert len(fake.calls_to("chat.postMessage")) == 1  # looked it up instead of posting
    [history] = fake.calls_to("conversations.history")
    assert history.args["channel"] == TOWER and history.args["include_all_metadata"] in (
        "1",
        1,
        True,
    )
    sent = row(factory, message_id)
    [landed] = fake.messages_in(TOWER)
    assert sent.status == MessageStatus.SENT and sent.receipt == {"channel": TOWER, "ts": landed.ts}
    assert posts_in(fake, TOWER) == [sent.dedupe_key]


def test_a_post_dropped_before_it_landed_is_proven_absent_and_posted_once(
    factory: sessionmaker[Session], notifier: SlackNotifier, fake: FakeSlack
) -> None:
    dropped = enqueue(factory, "digest", TOWER, "week 10")
    other = enqueue(factory, "digest", TOWER, "week 9")  # there too: not the one looked for
    fake.drop("chat.postMessage", acting=False)

    first = dispatch_due(factory, notifier, now=NOW)
    assert (first.retried, first.sent) == (1, 1)
    assert dispatch_due(factory, notifier, now=NOW + DEFAULT_BASE_DELAY).sent == 1
    assert len(fake.calls_to("conversations.history")) == 1
    keys = [row(factory, message_id).dedupe_key for message_id in (other, dropped)]
    assert posts_in(fake, TOWER) == keys  # each once: the other first, the dropped one after


def test_an_answer_past_the_clients_timeout_is_an_unknown_outcome(fake: FakeSlack) -> None:
    client = WebClient(token=TOKEN, base_url=fake.url, timeout=1, retry_handlers=[])
    notifier = SlackNotifier(client, min_interval=0)
    fake.stall("chat.postMessage", 1.5)
    sent = delivery("digest", "week 10")

    with pytest.raises(OutcomeUnknown, match="no answer"):
        notifier.send(sent)
    since = datetime.now(UTC) - timedelta(minutes=5)
    receipt = notifier.find(sent, since)
    [landed] = fake.messages_in(TOWER)
    assert receipt == {"channel": TOWER, "ts": landed.ts}


def test_a_refused_connection_is_a_clean_failure_not_an_unknown_outcome(clock: FakeClock) -> None:
    stopped = FakeSlack().start()
    url = stopped.url
    stopped.stop()
    client = WebClient(token=TOKEN, base_url=url, timeout=2, retry_handlers=[])
    with pytest.raises(DeliveryFailed, match="cannot reach Slack"):
        SlackNotifier(client, clock=clock, sleep=clock.sleep).send(delivery("digest", "week 10"))


def test_find_reads_every_page_since_the_first_attempt_and_answers_in_threads(
    notifier: SlackNotifier, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_notifier, "HISTORY_PAGE", 2)
    since = datetime.now(UTC) - timedelta(seconds=1)
    wanted = delivery("digest", "the one")
    notifier.send(wanted)
    for week in range(5):
        notifier.send(delivery("digest", f"week {week}"))
    assert notifier.find(wanted, since) == {"channel": TOWER, "ts": fake.messages_in(TOWER)[0].ts}
    assert len(fake.calls_to("conversations.history")) == 3  # newest first: the last page
    assert notifier.find(delivery("digest", "never sent"), since) is None

    parent = fake.messages_in(TOWER)[-1]
    reply = delivery("note", "in the thread", thread={"channel": TOWER, "ts": parent.ts})
    assert notifier.find(reply, since) is None
    notifier.send(reply)
    found = notifier.find(reply, since)
    assert found is not None and fake.calls_to("conversations.replies")[-1].args["ts"] == parent.ts
    assert found["ts"] == fake.messages_in(TOWER)[-1].ts


def test_a_history_too_long_to_read_leaves_the_outcome_unknown(
    notifier: SlackNotifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_notifier, "HISTORY_PAGE", 1)
    monkeypatch.setattr(slack_notifier, "HISTORY_PAGES", 2)
    since = datetime.now(UTC) - timedelta(seconds=1)
    for week in range(3):
        notifier.send(delivery("digest", f"week {week}"))
    with pytest.raises(OutcomeUnknown, match="more than 2 messages since"):
        notifier.find(delivery("digest", "never sent"), since)


def test_an_answer_posted_before_its_thread_was_known_is_found_in_the_channel(
    notifier: SlackNotifier, fake: FakeSlack
) -> None:
    """A thread answer whose first attempt went out before the message it answers had
    landed was posted in the channel itself: looked for later, with its thread known by
    then, it is found there, not posted again."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    answer = delivery("note", "acknowledged")
    notifier.send(answer)  # the first attempt: no thread to answer in yet
    parent = notifier.send(delivery("alert", "the collision"))
    assert parent is not None
    retried = replace(answer, thread=parent)
    [posted, _] = fake.messages_in(TOWER)
    assert notifier.find(retried, since) == {"channel": TOWER, "ts": posted.ts}


def test_only_the_policys_people_are_mentioned(fake: FakeSlack, clock: FakeClock) -> None:
    client = WebClient(token=TOKEN, base_url=fake.url, timeout=5, retry_handlers=[])
    notifier = SlackNotifier(client, clock=clock, sleep=clock.sleep, people={"U0ANNA"})
    notifier.send(delivery("collision_acknowledged", "C-7 acknowledged by <@U0ANNA> and <@U0EVE>"))
    [call] = fake.calls_to("chat.postMessage")
    shown = [t for t in (str(call.args["text"]), *texts_of_blocks(call)) if "acknowledged" in t]
    assert len(shown) == 2  # the top-level text and the section
    for text in shown:
        assert "<@U0ANNA>" in text and "<@U0EVE>" not in text
        assert "&lt;@U0EVE&gt;" in text


def texts_of_blocks(call: Call) -> list[str]:
    blocks = call.args["blocks"]
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return [b["text"]["text"] for b in blocks if b.get("type") == "section"]
