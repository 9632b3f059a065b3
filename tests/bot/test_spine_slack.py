"""Grouped alerts in Slack: an import announces its collisions in one summary per channel,
with the most urgent ones and their buttons; *Show all* lists every one; *Acknowledge* on a
summary answers privately in that channel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.ids import ActionId
from bot.views.buttons import CollisionButton
from tests.support.files import RETAIL_PORTFOLIO
from tests.support.people import MANAGER
from tests.support.slack.harness import (
    NOW,
    BotServer,
    call_view,
    running_bot,
    running_bot_with_roadmap,
    wait_for,
)
from tower.collisions import service as collision_service
from tower.collisions.alerts import SUMMARY_KIND
from tower.collisions.kinds import CollisionStatus
from tower.collisions.refs import format_ref
from tower.engine.kinds import Severity
from tower.experiments.spec import ExperimentStatus
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.policy import Policy
from tower.protocol import runs
from tower.worker import jobs

COLLISION_KINDS = {"collision_opened", SUMMARY_KIND}


def kind_of(args: dict[str, Any]) -> str:
    metadata = args.get("metadata") or {}
    if isinstance(metadata, str):
        import json

        metadata = json.loads(metadata)
    return str((metadata.get("event_payload") or {}).get("kind", ""))


@pytest.fixture
def imported_bot(scratch_database_url: str, retail_policy: Policy) -> Iterator[BotServer]:
    with running_bot_with_roadmap(scratch_database_url, retail_policy, RETAIL_PORTFOLIO) as server:
        yield server


def sweep(bot: BotServer, minutes: int) -> None:
    ctx = bot.deps.context().at(NOW + timedelta(minutes=minutes))
    assert bot.deps.notifier is not None
    jobs.run_due_jobs(bot.session_factory, ctx, bot.deps.notifier)


def test_an_import_then_three_sweeps_post_one_collision_message_per_channel(
    imported_bot: BotServer,
) -> None:
    for minutes in (1, 2, 3):
        sweep(imported_bot, minutes)
    posts = imported_bot.fake.calls_to("chat.postMessage")
    about_collisions = [call for call in posts if kind_of(call.args) in COLLISION_KINDS]
    per_channel = Counter(str(call.args["channel"]) for call in about_collisions)
    assert per_channel, "the import opened blocking collisions: someone must hear of them"
    assert max(per_channel.values()) == 1, per_channel
    assert {kind_of(call.args) for call in about_collisions} == {SUMMARY_KIND}


def test_a_summary_shows_counts_the_most_urgent_with_buttons_and_show_all(
    imported_bot: BotServer,
) -> None:
    sweep(imported_bot, 1)
    [tower] = [
        call
        for call in imported_bot.fake.calls_to("chat.postMessage")
        if kind_of(call.args) == SUMMARY_KIND and call.args["channel"] == "C0TOWER"
    ]
    blocks = tower.args["blocks"]
    if isinstance(blocks, str):
        import json

        blocks = json.loads(blocks)
    assert len(blocks) <= 50
    assert "collision(s) opened" in blocks[0]["text"]["text"]
    actions = [b for b in blocks if b["type"] == "actions"]
    labels = [[e["text"]["text"] for e in block["elements"]] for block in actions]
    assert ["Acknowledge", "Move to next free slot", "Ask for a waiver"] in labels

    # Acknowledge on the summary: answered privately, in the channel it was clicked in.
    # The sweep that delivered it also launched the tests that need not yield and, their
    # days being past, completed them, resolving some collisions it lists: click one that
    # is still open.
    with imported_bot.session_factory() as session:
        still_open = collision_service.list_collisions(session, statuses=[CollisionStatus.OPEN])
    refs = {format_ref(c) for c in still_open}
    buttons = [block["elements"][0] for block in actions]
    first = next(b for b in buttons if CollisionButton.parse(str(b["value"])).ref in refs)
    reply = imported_bot.click(
        ActionId.ACKNOWLEDGE.value, first["value"], user=MANAGER, channel="C0TOWER", ts="1.1"
    )
    assert reply.status == 200
    ephemeral = wait_for(
        lambda: imported_bot.fake.calls_to("chat.postEphemeral"), what="an ephemeral answer"
    )
    assert ephemeral[-1].args["channel"] == "C0TOWER"
    assert "You acknowledged" in str(ephemeral[-1].args["text"])

    # Clicked again (by someone whose team has nothing left to acknowledge): who and when.
    imported_bot.click(
        ActionId.ACKNOWLEDGE.value, first["value"], user=MANAGER, channel="C0TOWER", ts="1.1"
    )
    again = wait_for(
        lambda: imported_bot.fake.calls_to("chat.postEphemeral")[len(ephemeral) :],
        what="the second answer",
    )
    assert again[0].args["channel"] == "C0TOWER"
    text = str(again[0].args["text"])
    assert f"was already acknowledged by {MANAGER} on " in text, text


def test_show_all_opens_a_modal_with_every_collision_a_summary_named(
    imported_bot: BotServer,
) -> None:
    from sqlalchemy import select

    from tower.collisions.models import Collision
    from tower.outbox.service import enqueue

    with imported_bot.transaction() as session:
        refs = [f"C-{i}" for i in session.scalars(select(Collision.id).order_by(Collision.id))]
        message = enqueue(
            session,
            kind=SUMMARY_KIND,
            recipient="C0TOWER",
            text="many",
            dedupe_key="summary-under-test",
            payload={"collisions": refs, "urgent": []},
        )
        assert message is not None
        session.flush()
        message_id = message.id
    reply = imported_bot.click(
        ActionId.SHOW_ALL_COLLISIONS.value,
        str(message_id),
        user=MANAGER,
        channel="C0TOWER",
        ts="1.1",
    )
    assert reply.status == 200
    [opened] = wait_for(lambda: imported_bot.fake.calls_to("views.open"), what="views.open")
    view = call_view(opened)
    listed = "\n".join(block["text"]["text"] for block in view["blocks"])
    assert len(view["blocks"]) <= 100
    for ref in refs:
        assert f"*{ref}*" in listed


def test_a_summary_of_many_collisions_stays_within_50_blocks_and_offers_show_all() -> None:
    from bot.views.messages import summary_blocks
    from tower.outbox.notifier import Delivery

    urgent = [{"collision": f"C-{n}", "keys": ["T-1", "T-2"], "line": "x"} for n in range(20)]
    delivery = Delivery(
        message_id=7,
        dedupe_key="d",
        kind=SUMMARY_KIND,
        recipient="C0TOWER",
        text="60 collision(s) opened: 60 blocking surface\nMost urgent: ...",
        payload={"collisions": [f"C-{n}" for n in range(60)], "urgent": urgent},
    )
    blocks = summary_blocks(delivery)
    assert len(blocks) <= 50
    last_actions = [b for b in blocks if b["type"] == "actions"][-1]
    [show_all] = last_actions["elements"]
    assert (show_all["text"]["text"], show_all["value"]) == ("Show all 60", "7")


def test_a_registrants_dm_goes_out_before_hundreds_of_queued_messages(
    scratch_database_url: str, small_policy: Policy
) -> None:
    from tests.support.people import OWNER
    from tests.support.slack.harness import valid_answers
    from tower.outbox.service import enqueue

    with running_bot(scratch_database_url, small_policy) as bot:
        with bot.transaction() as session:
            for n in range(300):
                enqueue(
                    session,
                    kind="note",
                    recipient="C0BACKLOG",
                    text=f"backlog {n}",
                    dedupe_key=f"backlog:{n}",
                    at=NOW,
                )
        reply = bot.register(valid_answers(), user=OWNER)
        assert (reply.status, reply.body) == (200, b"")  # the modal closes at once
        dm_channel = "D" + OWNER[1:]
        wait_for(
            lambda: [
                c for c in bot.fake.calls_to("chat.postMessage") if c.args["channel"] == dm_channel
            ],
            what="the registration DM",
        )
        posts = [c.args["channel"] for c in bot.fake.calls_to("chat.postMessage")]
        assert posts.index(dm_channel) == 0, posts[:5]  # first out, ahead of the backlog
        wait_for(lambda: not bot.deps.delivering, what="delivery ends", timeout=30)


def test_no_slack_read_changes_a_row(imported_bot: BotServer) -> None:
    from tests.support.databases import table_contents

    sweep(imported_bot, 1)  # deliver what the import queued, so nothing is pending
    wait_for(lambda: not imported_bot.deps.delivering, what="delivery ends")
    before = table_contents(imported_bot.engine)
    for text in ("list all", "list team", "queue", "conflicts", "plan", "show T-38"):
        reply = imported_bot.command(text, user=MANAGER)
        assert reply.status == 200, (text, reply)
    published = len(imported_bot.fake.calls_to("views.publish"))
    assert imported_bot.home_opened(MANAGER).status == 200
    wait_for(lambda: imported_bot.fake.calls_to("views.publish")[published:], what="the App Home")
    assert table_contents(imported_bot.engine) == before


def test_a_collision_a_summary_announced_is_followed_up_in_the_summarys_thread(
    imported_bot: BotServer,
) -> None:
    sweep(imported_bot, 1)  # the import's summaries go out
    with imported_bot.session_factory() as session:
        summaries = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == SUMMARY_KIND, OutboxMessage.status == MessageStatus.SENT
            )
        ).all()
        threads = {str(m.receipt["channel"]): str(m.receipt["ts"]) for m in summaries if m.receipt}
        still_open = collision_service.list_collisions(
            session, statuses=[CollisionStatus.OPEN], severities=[Severity.BLOCKING]
        )
        withdrawable = {ExperimentStatus.SUBMITTED, ExperimentStatus.APPROVED}
        target = next(
            (record, experiment)
            for record in still_open
            for experiment in record.experiments
            if experiment.status in withdrawable
        )
    record, experiment = target
    ref = format_ref(record)
    with imported_bot.transaction() as session:
        ctx = imported_bot.deps.context().at(NOW + timedelta(minutes=2))
        runs.withdraw(session, ctx, experiment.key, actor=MANAGER, reason="clears the way")
    sweep(imported_bot, 3)

    follow_ups = [
        call
        for call in imported_bot.fake.calls_to("chat.postMessage")
        if kind_of(call.args) == "collision_resolved" and ref in str(call.args.get("text"))
    ]
    assert follow_ups, f"{ref} resolved: its channels must hear of it"
    for call in follow_ups:  # never a message of its own: an answer in the summary's thread
        channel = str(call.args["channel"])
        assert call.args.get("thread_ts") == threads[channel], (channel, call.args)
