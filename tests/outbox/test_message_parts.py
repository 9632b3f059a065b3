"""Messages as data: the core composes words, people and typed text; only `bot/` writes
Slack markup, the console shows a person as `@U0ANNA`, and rows queued before messages were
data still read in Slack as they always did."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.mrkdwn import mention, queued_text, render
from bot.notifier import SlackNotifier
from bot.views.messages import fallback_text, message_blocks
from tests.support.factories import END, START, cart_test
from tests.support.message_rows import as_queued_before
from tests.support.notification_story import BEGIN, run_story
from tests.support.people import MANAGER, OWNER, TOWER_CHANNEL
from tests.support.slack.fake_api import FakeSlack
from tests.support.slack.harness import running_bot, valid_answers
from tests.support.slack.harness import wait_for as wait_until
from tower import migrate
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory
from tower.messages import Message, Person, Typed
from tower.outbox import service as outbox_service
from tower.outbox.dispatcher import dispatch_due
from tower.outbox.models import OutboxMessage
from tower.outbox.notifier import ConsoleNotifier, Delivery
from tower.policy import Policy
from tower.protocol import edits, review

ROOT = Path(__file__).resolve().parent.parent
TYPED_TITLE = "<!here> *big*"
INERT_TITLE = "\u2039!here\u203a \u2217big\u2217"  # as Slack is sent it: shown as typed


# -- the message model ---------------------------------------------------------------------


def test_a_message_merges_its_words_and_keeps_people_and_typed_text_apart() -> None:
    made = Message.of("T-1 '", Typed("Sticky"), "' was ", "", "approved by ", Person("U0BEN"))
    assert made.parts == ("T-1 '", Typed("Sticky"), "' was approved by ", Person("U0BEN"))
    assert Message.of(", ").join(["a", Person("U1"), made]).parts[:3] == (
        "a, ",
        Person("U1"),
        ", T-1 '",
    )
    assert (made + ".").parts[-1] == "."
    assert ("Hi " + Message.of(Person("U1"))).parts == ("Hi ", Person("U1"))


def test_the_console_shows_a_person_as_at_id_and_typed_text_as_typed() -> None:
    told = Message.of("Ask ", Person("U0ANNA"), ": ", Typed(TYPED_TITLE))
    assert told.plain() == f"Ask @U0ANNA: {TYPED_TITLE}"
    assert told.people() == ["U0ANNA"]


def test_a_message_round_trips_through_its_stored_json() -> None:
    told = Message.of("Ask ", Person("U0ANNA"), ": ", Typed(TYPED_TITLE))
    stored = json.loads(json.dumps(told.to_json()))
    assert stored == ["Ask ", {"person": "U0ANNA"}, ": ", {"typed": TYPED_TITLE}]
    assert Message.from_json(stored) == told
    for junk in ([1], [{"person": 3}], [{"typed": "x", "person": "U1"}], [{"link": "x"}]):
        with pytest.raises(ValueError, match="not a message part"):
            Message.from_json(junk)


# -- Slack rendering (bot/mrkdwn.py) -------------------------------------------------------


def test_slack_mentions_a_person_escapes_words_and_makes_typed_text_inert() -> None:
    told = Message.of("T-1 & T-2 '", Typed(TYPED_TITLE), "' by ", Person("U0ANNA"))
    assert render(told) == f"T-1 &amp; T-2 '{INERT_TITLE}' by <@U0ANNA>"
    typed_link = Typed("<https://evil.example|x> <@U0CARLA> & `code` _i_ ~s~")
    assert render(Message.of(typed_link)) == (
        "\u2039https://evil.example|x\u203a \u2039@U0CARLA\u203a &amp; "
        "\u02cbcode\u02cb \u02cdi\u02cd \u223cs\u223c"
    )


def test_only_the_policys_people_are_mentioned() -> None:
    told = Message.of(Person("U0ANNA"), " and ", Person("U0EVE"), " and ", Person("tower"))
    assert render(told, people={"U0ANNA"}) == (
        "<@U0ANNA> and &lt;@U0EVE&gt; and &lt;@tower&gt;"  # shown as written, pinging no one
    )
    assert mention("U0EVE") == "<@U0EVE>"  # no policy given: any Slack user


def test_no_module_of_the_core_writes_slack_markup() -> None:
    found = subprocess.run(
        ["grep", "-rn", "--include=*.py", r"<@\|<!", "tower/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.stdout == ""


# -- rows queued before messages were data -----------------------------------------------


@pytest.fixture
def sessions(scratch_database_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(scratch_database_url)
    engine = create_database_engine(scratch_database_url)
    yield create_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


def slack_notifier(fake: FakeSlack, people: set[str] | None = None) -> SlackNotifier:
    client = WebClient(token="xoxb-test", base_url=fake.url, timeout=5, retry_handlers=[])
    return SlackNotifier(client, min_interval=0, people=people)


def test_a_row_queued_before_messages_were_data_is_sent_as_it_always_was(
    sessions: sessionmaker[Session], fake: FakeSlack
) -> None:
    # What an earlier Tower stored: its text in Slack's form, the title made inert, no parts.
    before = "T-4 '\u2039!here\u203a \u2217big\u2217' was approved by <@U0TOWERMGR> & <@U0EVE>."
    with sessions.begin() as session:
        queued = outbox_service.enqueue(
            session,
            kind="decision",
            recipient="C0TOWER",
            text="placeholder",
            dedupe_key="decision:T-4:v2:C0TOWER",
            payload={"key": "T-4", "version": 2},
            at=BEGIN,
        )
        assert queued is not None
        queued.text, queued.parts = before, None

    report = dispatch_due(sessions, slack_notifier(fake, {"U0TOWERMGR"}), now=BEGIN)

    assert report.sent == 1
    [post] = [c for c in fake.calls_to("chat.postMessage") if c.args["channel"] == "C0TOWER"]
    assert post.args["text"] == (
        f"T-4 '{INERT_TITLE}' was approved by <@U0TOWERMGR> &amp; &lt;@U0EVE&gt;."
    )
    assert queued_text(before).people() == ["U0TOWERMGR", "U0EVE"]


def test_every_notification_of_the_story_reads_in_slack_as_its_former_row_did(
    sessions: sessionmaker[Session], small_policy: Policy
) -> None:
    run_story(sessions, small_policy)
    people = {"U0ANNA", "U0TOWERMGR"}  # U0BEN's mentions stay written out: not a mention
    with sessions() as session:
        rows = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert len(rows) > 30
    for row in rows:
        assert row.parts is not None, row.dedupe_key
        message = Message.from_json(row.parts)
        assert row.text == message.plain()
        now = delivery_of(row, message=message)
        former = delivery_of(row, text=as_queued_before(message))
        assert fallback_text(now, people) == fallback_text(former, people), row.dedupe_key
        assert message_blocks(now, people) == message_blocks(former, people), row.dedupe_key


def delivery_of(row: OutboxMessage, **changes: Any) -> Delivery:
    fields: dict[str, Any] = {
        "message_id": row.id,
        "dedupe_key": row.dedupe_key,
        "kind": row.kind,
        "recipient": row.recipient,
        "text": row.text,
        "payload": dict(row.payload),
    }
    return Delivery(**{**fields, **changes})


# -- through the real flows ----------------------------------------------------------------


def test_the_console_names_a_person_as_at_id(
    sessions: sessionmaker[Session], small_policy: Policy, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = ServiceContext.create(small_policy, BEGIN)
    with sessions.begin() as session:
        made = cart_test(start=START, end=END, title=TYPED_TITLE)
        edits.register(session, ctx, made, actor=made.owner)
        review.approve(session, ctx, "T-1", actor=MANAGER)
    with caplog.at_level(logging.INFO, logger="tower.notify"):
        dispatch_due(sessions, ConsoleNotifier(), now=BEGIN)
    lines = [record.getMessage() for record in caplog.records if record.name == "tower.notify"]
    assert f"[decision] -> {OWNER}: T-1 '{TYPED_TITLE}' was approved by @{MANAGER}." in lines
    assert any(f"owner @{OWNER})" in line for line in lines)
    assert not any("<@" in line for line in lines)


def test_a_title_typed_with_markup_reaches_slack_inert_and_the_owner_is_mentioned(
    scratch_database_url: str, small_policy: Policy
) -> None:
    with running_bot(scratch_database_url, small_policy) as bot:
        reply = bot.register(valid_answers(title=TYPED_TITLE), user=OWNER)
        assert reply.status == 200, reply
        wait_until(
            lambda: bot.settled() and len(bot.posts()) >= 2,
            what="the approval request and the DM are posted",
        )
        posts = bot.posts()
        everything = json.dumps([[p.args.get("text"), p.args.get("blocks")] for p in posts])
        for markup in ("<!here>", "*big*", "&lt;!here&gt;"):
            assert markup not in everything
        [request] = bot.posts(TOWER_CHANNEL, containing="Approval requested")
        assert f"T-1 '{INERT_TITLE}' (checkout-squad, owner <@{OWNER}>)" in request.args["text"]
        [dm] = bot.posts(containing="is registered and submitted")
        assert dm.args["text"].startswith(f"T-1 '{INERT_TITLE}' is registered")
