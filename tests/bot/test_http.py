"""The Slack bot end to end: signed HTTP requests to the real `POST /slack/events` of a running
app, Slack's Web API played by a local fake (tests/support/slack/fake_api.py), a scratch
database.

The small policy (tests/data/policy.yaml): manager U0TOWERMGR, tower channel C0TOWER;
checkout-squad (agile: U0ANNA, U0BEN; C0CHECKOUT); ecommerce (BAU: U0CARLA; C0ECOM). The
service clock is fixed (`NOW`), and tests run from `START` to `END` two weeks later (see
tests/support/slack/harness.py). Bolt answers first and works afterwards, so every check on
what the bot asked Slack polls with a deadline.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from bot.ids import ActionId, BlockId, CallbackId
from bot.listeners.submissions import DM_COLLISIONS
from bot.product_bench.slack_requests import FORM, submission_body
from bot.views.modal import reason_modal
from bot.views.modal import test_modal as build_modal  # not a test: keep pytest off it
from bot.web import database_reachable
from tests.support.databases import server_url
from tests.support.files import RETAIL_PORTFOLIO
from tests.support.people import (
    BAU_CHANNEL,
    BAU_OWNER,
    MANAGER,
    OUTSIDER,
    OWNER,
    SQUAD_CHANNEL,
    TEAMMATE,
    TOWER_CHANNEL,
)
from tests.support.slack.fake_api import Call
from tests.support.slack.harness import (
    BAU_TEST,
    END,
    NOW,
    START,
    BotServer,
    HttpResponse,
    SlowFakeSlack,
    buttons,
    call_blocks,
    call_view,
    fill_modal,
    running_bot,
    running_bot_with_roadmap,
    signature_headers,
    spec,
    texts_of,
    valid_answers,
    wait_for,
)
from tower.audit.models import AuditEvent
from tower.collisions import service as collision_service
from tower.collisions.alerts import GROUP_ABOVE
from tower.collisions.kinds import CollisionStatus
from tower.context import ServiceContext
from tower.experiments import service as experiment_service
from tower.experiments.spec import ExperimentStatus as S
from tower.outbox.models import MessageStatus
from tower.pipeline import collision_flows
from tower.policy import Policy

APPROVAL_BUTTONS = {ActionId.APPROVE, ActionId.REQUEST_CHANGES, ActionId.REJECT}
ALERT_BUTTONS = {ActionId.ACKNOWLEDGE, ActionId.MOVE_TO_FREE_SLOT, ActionId.ASK_FOR_WAIVER}


@pytest.fixture
def bot(scratch_database_url: str, small_policy: Policy) -> Iterator[BotServer]:
    with running_bot(scratch_database_url, small_policy) as server:
        yield server


# -- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    """A squad test registered through the modal, clashing with a BAU test."""

    key: str
    bau: str
    request: Call  # the approval request posted in the tower channel
    alerts: dict[str, Call]  # channel -> the conflict alert posted there
    dm: Call  # the registrant's summary


def register_clashing_test(bot: BotServer, **answers: Any) -> Registered:
    """Seed an approved BAU test on web/checkout; OWNER registers one on its cart, same days."""
    bau = bot.seed(spec(**BAU_TEST), S.APPROVED)
    reply = bot.register(valid_answers(**answers), user=OWNER)
    assert reply.status == 200, reply
    assert reply.body == b"", reply.json()  # a plain ack closes the modal
    key = f"T-{int(bau.split('-')[1]) + 1}"
    wait_for(
        lambda: bot.settled() and len(bot.posts()) >= 5,
        what="3 conflict alerts, the approval request and the DM are posted",
    )
    alerts = {
        channel: one(bot.posts(channel, containing="Blocking surface collision"))
        for channel in (SQUAD_CHANNEL, BAU_CHANNEL, TOWER_CHANNEL)
    }
    request = one(bot.posts(TOWER_CHANNEL, containing="Approval requested"))
    dm = one(bot.posts(containing="is registered and submitted"))
    return Registered(key, bau, request, alerts, dm)


def one(calls: list[Call]) -> Call:
    assert len(calls) == 1, [c.args.get("text") for c in calls]
    return calls[0]


def waive(bot: BotServer, ref: str, reason: str = "Both teams agreed to share the cart") -> None:
    """A manager waives the collision through Tower's service (what `tower waive` runs)."""
    with bot.transaction() as session:
        collision_flows.waive(
            session, ServiceContext.create(bot.deps.policy, NOW), ref, actor=MANAGER, reason=reason
        )


def receipt_of(bot: BotServer, call: Call) -> dict[str, str]:
    """Where the message posted by `call` landed (channel and ts), as the outbox recorded it."""
    dedupe = call.args["metadata"]["event_payload"]["dedupe_key"]
    [message] = [m for m in bot.outbox() if m.dedupe_key == dedupe]
    assert message.status == MessageStatus.SENT and message.receipt is not None
    return {"channel": str(message.receipt["channel"]), "ts": str(message.receipt["ts"])}


def updates_of(bot: BotServer, ts: str) -> list[Call]:
    """chat.update calls on the message at `ts`."""
    return [call for call in bot.fake.calls_to("chat.update") if call.args.get("ts") == ts]


def ephemerals(bot: BotServer, user: str) -> list[str]:
    return [
        str(call.args.get("text", ""))
        for call in bot.fake.calls_to("chat.postEphemeral")
        if call.args.get("user") == user
    ]


def reply_text(reply: HttpResponse) -> str:
    """Everything an ephemeral command reply shows."""
    data = reply.json()
    assert data["response_type"] == "ephemeral", data
    return "\n".join([data.get("text", ""), *texts_of(data.get("blocks", []))])


def seed_portfolio(bot: BotServer) -> dict[str, str]:
    """Four tests of the small policy; name -> key."""
    return {
        "mine": bot.seed(spec(title="Sticky basket"), S.SUBMITTED),
        "teammate": bot.seed(
            spec(title="Express pay", owner=TEAMMATE, surfaces=("web/checkout/payment",)),
            S.APPROVED,
        ),
        "bau": bot.seed(spec(**BAU_TEST), S.SUBMITTED),
        "rejected": bot.seed(spec(title="Old idea", surfaces=("web/home",)), S.REJECTED),
    }


# -- the full story ----------------------------------------------------------------------------


def test_a_squad_test_registered_in_slack_is_alerted_reviewed_waived_and_approved(
    bot: BotServer,
) -> None:
    story = register_clashing_test(bot)

    # The conflict alert: both teams' channels and the tower channel, both owners mentioned.
    for channel, alert in story.alerts.items():
        text = str(alert.args["text"])
        assert f"<@{OWNER}>" in text and f"<@{BAU_OWNER}>" in text, channel
        assert story.key in text and story.bau in text and "agile vs BAU" in text
        assert set(buttons(alert)) == ALERT_BUTTONS
        assert {b.split(":")[0] for b in buttons(alert).values()} == {"C-1"}
    assert [
        b["text"]["text"] for b in call_blocks(story.alerts[TOWER_CHANNEL])[-1]["elements"]
    ] == [
        "Acknowledge",
        "Move to next free slot",
        "Ask for a waiver",
    ]

    # The approval request in the tower channel, with the test's version on its buttons.
    request = story.request
    assert set(buttons(request)) == APPROVAL_BUTTONS
    assert set(buttons(request).values()) == {f"{story.key}:2"}
    assert "FAILS collisions: C-1" in request.args["text"]

    # The registrant's DM: score, rank, collisions and the next free slot.
    [opened] = bot.fake.calls_to("conversations.open")
    assert opened.args["users"] == OWNER
    assert story.dm.args["channel"] == "D" + OWNER[1:]
    dm = str(story.dm.args["text"])
    assert re.search(r"^Rank [12] of 2, score \d", dm, re.MULTILINE), dm
    assert f"Collision C-1: {story.bau}" in dm
    assert "Next free slot: " in dm
    [queued_dm] = bot.outbox("registered")  # its row, as the outbox has always keyed it
    assert (queued_dm.recipient, queued_dm.dedupe_key, queued_dm.payload) == (
        OWNER,
        f"registered:{story.key}:{OWNER}",
        {"key": story.key},
    )
    assert bot.experiment(story.key).status == S.SUBMITTED

    # A manager waives the collision, then approves in Slack.
    waive(bot, "C-1")
    where = receipt_of(bot, request)
    assert where["channel"] == TOWER_CHANNEL
    reply = bot.click(
        ActionId.APPROVE,
        buttons(request)[ActionId.APPROVE],
        user=MANAGER,
        channel=where["channel"],
        ts=where["ts"],
    )
    assert reply.status == 200 and reply.body == b""
    decided = wait_for(
        lambda: bot.posts("D" + OWNER[1:], containing="was approved by"),
        what="the owner is told of the approval",
    )
    assert one(decided).args["text"] == f"{story.key} 'Sticky basket' was approved by <@{MANAGER}>."
    # The request is updated in place: same channel and ts, who decided, no buttons left.
    [update] = wait_for(
        lambda: bot.fake.calls_to("chat.update"), what="the request is updated in place"
    )
    assert (update.args["channel"], update.args["ts"]) == (where["channel"], where["ts"])
    assert f"was approved by <@{MANAGER}>" in update.args["text"]
    assert not buttons(update)
    assert bot.experiment(story.key).status == S.APPROVED
    assert [(d.kind.value, d.actor) for d in bot.decisions(story.key)] == [("approve", MANAGER)]
    assert (MANAGER, "approve") in bot.audit_actions(story.key)
    # The waiver was announced in the alerts' threads.
    for channel, alert in story.alerts.items():
        [note] = bot.posts(channel, containing="was waived by")
        assert note.args["thread_ts"] == receipt_of(bot, alert)["ts"]
    assert ephemerals(bot, MANAGER) == []  # nothing went wrong


def test_a_registration_joining_many_collisions_names_the_most_urgent_five_in_its_dm(
    bot: BotServer,
) -> None:
    for number in range(7):  # seven BAU tests on the cart, each clashing with the new one
        bot.seed(spec(**{**BAU_TEST, "title": f"BAU cart test {number}"}), S.APPROVED)
    channels = (SQUAD_CHANNEL, BAU_CHANNEL, TOWER_CHANNEL)
    bot.deliver(NOW)  # the seeded clashes' summaries go out first
    summaries_before = {c: len(bot.posts(c, containing="collision(s) opened")) for c in channels}
    alerts_before = {
        c: len(bot.posts(c, containing="Blocking surface collision")) for c in channels
    }
    reply = bot.register(valid_answers(), user=OWNER)
    assert reply.status == 200, reply
    wait_for(
        lambda: bot.settled() and bot.posts(containing="is registered and submitted"),
        what="the registrant's DM",
    )
    dm = str(one(bot.posts(containing="is registered and submitted")).args["text"])
    named = re.findall(r"^Collision C-\d+: ", dm, re.MULTILINE)
    key = f"T-{bot.experiment_count()}"  # the registration, numbered after the seven
    assert dm.startswith(f"{key} "), dm
    with bot.transaction() as session:
        involving = collision_service.records_involving(session, key, [CollisionStatus.OPEN])
    assert len(involving) > DM_COLLISIONS
    assert len(named) == DM_COLLISIONS, dm
    more = len(involving) - DM_COLLISIONS
    assert f"…and {more} more collision(s): `/tower show {key}` lists them." in dm
    # More than GROUP_ABOVE opened for a channel at once: one summary there, no alert each.
    assert len(involving) > GROUP_ABOVE
    for channel in channels:
        alerts = bot.posts(channel, containing="Blocking surface collision")
        summaries = bot.posts(channel, containing="collision(s) opened")
        assert len(alerts) == alerts_before[channel], channel
        assert len(summaries) == summaries_before[channel] + 1, (
            channel,
            summaries_before,
            [c.args.get("text") for c in summaries],
        )


def test_rejecting_asks_why_then_updates_the_request_in_place_and_tells_the_owner(
    bot: BotServer,
) -> None:
    story = register_clashing_test(bot)
    where = receipt_of(bot, story.request)
    bot.click(
        ActionId.REJECT, f"{story.key}:2", user=MANAGER, channel=TOWER_CHANNEL, ts=where["ts"]
    )
    [opened] = wait_for(lambda: bot.fake.calls_to("views.open")[1:], what="the reason modal opens")
    view = call_view(opened)
    assert view["callback_id"] == CallbackId.DECISION_REASON
    assert json.loads(view["private_metadata"])["key"] == story.key

    empty = bot.submit(fill_modal(view, {BlockId.REASON: "  "}), user=MANAGER)
    assert empty.json() == {"response_action": "errors", "errors": {"reason": "say why"}}
    assert bot.experiment(story.key).status == S.SUBMITTED

    done = bot.submit(fill_modal(view, {BlockId.REASON: "Not this quarter"}), user=MANAGER)
    assert done.status == 200 and done.body == b""
    [update] = wait_for(
        partial(updates_of, bot, where["ts"]), what="the request is updated in place"
    )
    assert update.args["channel"] == where["channel"]
    assert f"was rejected by <@{MANAGER}>: Not this quarter" in update.args["text"]
    assert not buttons(update)
    wait_for(
        lambda: bot.posts("D" + OWNER[1:], containing="was rejected by"),
        what="the owner is told",
    )
    assert bot.experiment(story.key).status == S.REJECTED
    # The rejected test leaves the pipeline: each conflict alert says so, in place.
    for channel, alert in story.alerts.items():
        where = receipt_of(bot, alert)
        [resolved] = wait_for(
            partial(updates_of, bot, where["ts"]), what=f"the alert in {channel} is resolved"
        )
        assert resolved.args["channel"] == channel
        assert "no longer holds" in resolved.args["text"] and not buttons(resolved)


def test_a_non_manager_clicking_approve_is_told_privately_audited_and_changes_nothing(
    bot: BotServer,
) -> None:
    story = register_clashing_test(bot)
    waive(bot, "C-1")
    before = len(bot.fake.calls)
    reply = bot.click(
        ActionId.APPROVE, f"{story.key}:2", user=TEAMMATE, channel=TOWER_CHANNEL, ts="1.1"
    )
    assert reply.status == 200
    [told] = wait_for(lambda: ephemerals(bot, TEAMMATE), what="the teammate is told why not")
    assert told == f"only a control-tower manager can approve {story.key}"
    [ephemeral] = bot.fake.calls_to("chat.postEphemeral")
    assert ephemeral.args["channel"] == TOWER_CHANNEL
    assert (TEAMMATE, "denied:approve") in bot.audit_actions(story.key)
    assert bot.experiment(story.key).status == S.SUBMITTED
    assert bot.decisions(story.key) == []
    assert [c.method for c in bot.fake.calls[before:]] == ["chat.postEphemeral"]


def test_the_conflict_alerts_buttons_acknowledge_ask_for_a_waiver_and_move_the_test(
    bot: BotServer,
) -> None:
    story = register_clashing_test(bot)
    alert = story.alerts[SQUAD_CHANNEL]
    value = buttons(alert)[ActionId.ACKNOWLEDGE]
    threads = {channel: receipt_of(bot, call)["ts"] for channel, call in story.alerts.items()}

    def click(action: ActionId, user: str) -> None:
        def answers() -> int:
            return len(bot.fake.calls_to("chat.postEphemeral") + bot.fake.calls_to("views.open"))

        before, ts = answers(), threads[SQUAD_CHANNEL]
        reply = bot.click(action, value, user=user, channel=SQUAD_CHANNEL, ts=ts)
        assert reply.status == 200 and reply.body == b""
        wait_for(lambda: answers() > before, what=f"{user} is answered ({action})")
        wait_for(bot.settled, what=f"what {action} queued is delivered")

    click(ActionId.ACKNOWLEDGE, OUTSIDER)
    [refused] = ephemerals(bot, OUTSIDER)
    assert "U0NOBODY is not in a team involved in C-1 nor a manager" in refused

    click(ActionId.ACKNOWLEDGE, TEAMMATE)
    assert ephemerals(bot, TEAMMATE) == ["You acknowledged C-1."]
    click(ActionId.ASK_FOR_WAIVER, OWNER)
    assert ephemerals(bot, OWNER) == ["The managers are asked to waive C-1."]
    for phrase in (f"acknowledged by <@{TEAMMATE}>", f"<@{OWNER}> asks a manager to waive"):
        notes = bot.posts(containing=phrase)
        assert sorted((c.args["channel"], c.args["thread_ts"]) for c in notes) == sorted(
            threads.items()
        )

    # Move to next free slot: the edit modal opens pre-filled with the slot the DM named.
    click(ActionId.MOVE_TO_FREE_SLOT, OWNER)
    [opened] = bot.fake.calls_to("views.open")[1:]
    view = call_view(opened)
    assert view["callback_id"] == CallbackId.EDIT
    assert json.loads(view["private_metadata"]) == {"key": story.key, "version": 2}
    dates = {
        b["block_id"]: b["element"]["initial_date"]
        for b in view["blocks"]
        if b["element"]["type"] == "datepicker"
    }
    assert f"Next free slot: {dates['start']} to {dates['end']}" in story.dm.args["text"]
    assert dates["start"] > END.isoformat()

    saved = bot.submit(fill_modal(view, {}), user=OWNER)
    assert saved.status == 200 and saved.body == b""
    for channel, ts in threads.items():
        [resolved] = wait_for(partial(updates_of, bot, ts), what=f"{channel}'s alert resolves")
        assert resolved.args["channel"] == channel
        assert "C-1" in resolved.args["text"] and "no longer holds" in resolved.args["text"]
        assert not buttons(resolved)
    moved = bot.experiment(story.key)
    assert (moved.start.isoformat(), moved.end.isoformat()) == (dates["start"], dates["end"])
    assert moved.status == S.SUBMITTED


def test_after_the_owner_moves_the_test_a_manager_can_still_approve_it_in_slack(
    bot: BotServer,
) -> None:
    story = register_clashing_test(bot)
    alert = story.alerts[SQUAD_CHANNEL]
    bot.click(
        ActionId.MOVE_TO_FREE_SLOT,
        buttons(alert)[ActionId.MOVE_TO_FREE_SLOT],
        user=OWNER,
        channel=SQUAD_CHANNEL,
        ts=receipt_of(bot, alert)["ts"],
    )
    [opened] = wait_for(lambda: bot.fake.calls_to("views.open")[1:], what="the edit modal")
    assert bot.submit(fill_modal(call_view(opened), {}), user=OWNER).body == b""
    wait_for(lambda: bot.experiment(story.key).version > 2, what="the test is moved")
    wait_for(bot.settled, what="the move's messages are delivered")

    # The newest Approve button in the tower channel (posted or updated in place).
    latest = [
        c
        for c in bot.fake.calls
        if c.method in ("chat.postMessage", "chat.update")
        and c.args.get("channel") == TOWER_CHANNEL
        and ActionId.APPROVE in buttons(c)
    ][-1]
    ts = str(latest.args.get("ts") or receipt_of(bot, latest)["ts"])
    bot.click(
        ActionId.APPROVE,
        buttons(latest)[ActionId.APPROVE],
        user=MANAGER,
        channel=TOWER_CHANNEL,
        ts=ts,
    )
    wait_for(
        lambda: bot.experiment(story.key).status == S.APPROVED or ephemerals(bot, MANAGER),
        what="the click is answered",
    )
    assert ephemerals(bot, MANAGER) == []
    assert bot.experiment(story.key).status == S.APPROVED


# -- request verification --------------------------------------------------------------------


def _forged(bot: BotServer, body: bytes) -> HttpResponse:
    return bot.post(body, secret="not-the-signing-secret")


def _tampered(bot: BotServer, body: bytes) -> HttpResponse:
    headers = signature_headers(body.replace(b"U0TOWERMGR", b"U0TOWERMGX"))
    return bot.post(body, signed=False, extra_headers=headers)


def _tampered_unreadable(bot: BotServer, body: bytes) -> HttpResponse:
    """Signed, then altered into a body Tower could not read: refused as altered (401)."""
    headers = signature_headers(body)
    return bot.post(b"payload=%7Bnot+json", signed=False, extra_headers=headers)


def _stale(bot: BotServer, body: bytes) -> HttpResponse:
    return bot.post(body, timestamp=int(time.time()) - 5 * 60 - 30)


def _from_the_future(bot: BotServer, body: bytes) -> HttpResponse:
    return bot.post(body, timestamp=int(time.time()) + 5 * 60 + 30)


def _unsigned(bot: BotServer, body: bytes) -> HttpResponse:
    return bot.post(body, signed=False)


def _no_timestamp(bot: BotServer, body: bytes) -> HttpResponse:
    headers = signature_headers(body)
    del headers["X-Slack-Request-Timestamp"]
    return bot.post(body, signed=False, extra_headers=headers)


def _with_timestamp(timestamp: str, name: str) -> Any:
    """Signed over `timestamp` as given (Slack's scheme: `v0:TIMESTAMP:BODY`)."""

    def send(bot: BotServer, body: bytes) -> HttpResponse:
        headers = signature_headers(body, timestamp=timestamp)
        return bot.post(body, signed=False, extra_headers=headers)

    send.__name__ = name
    return send


def _signature_changed(change: Any, name: str) -> Any:
    def send(bot: BotServer, body: bytes) -> HttpResponse:
        headers = signature_headers(body)
        headers["X-Slack-Signature"] = change(headers["X-Slack-Signature"])
        return bot.post(body, signed=False, extra_headers=headers)

    send.__name__ = name
    return send


def _no_headers(bot: BotServer, body: bytes) -> HttpResponse:
    return bot.post(body, signed=False, extra_headers={})


@pytest.mark.parametrize(
    "send",
    [
        _forged,
        _tampered,
        _tampered_unreadable,
        _stale,
        _from_the_future,
        _unsigned,
        _no_timestamp,
        _no_headers,
        _with_timestamp("not-a-number", "non_numeric_timestamp"),
        _with_timestamp("", "empty_timestamp"),
        _with_timestamp(f" {int(time.time())}", "padded_timestamp"),  # int() would read it
        _with_timestamp(f"+{int(time.time())}", "signed_timestamp"),  # and this
        _with_timestamp(f"{int(time.time())}.0", "decimal_timestamp"),
        _with_timestamp(str(int(time.time()) - 600), "ten_minutes_old"),
        _with_timestamp(str(int(time.time()) + 600), "ten_minutes_ahead"),
        _signature_changed(lambda signature: "v1=" + signature[3:], "_v1_scheme"),
        _signature_changed(lambda signature: "v0=" + signature[3:].upper(), "_upper_case_hex"),
        _signature_changed(lambda signature: "v0=", "_empty_digest"),
    ],
    ids=lambda send: send.__name__.strip("_"),
)
def test_a_request_not_signed_by_slack_now_gets_401_and_changes_nothing(
    bot: BotServer, send: Any
) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    click = bot.click_body(
        ActionId.APPROVE, f"{key}:1", user=MANAGER, channel=TOWER_CHANNEL, ts="1.1"
    )
    refused = send(bot, click)
    assert refused.status == 401
    time.sleep(0.2)  # would a listener have run, it would have started by now
    assert bot.fake.calls == []
    assert bot.experiment(key).status == S.SUBMITTED
    assert bot.decisions(key) == []

    # The very same click, signed by Slack now, does approve: the refusal was the signature.
    assert bot.post(click).status == 200
    wait_for(lambda: bot.experiment(key).status == S.APPROVED, what="the signed click approves")


def test_a_request_signed_five_minutes_ago_still_passes(bot: BotServer) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    click = bot.click_body(
        ActionId.APPROVE, f"{key}:1", user=MANAGER, channel=TOWER_CHANNEL, ts="1.1"
    )
    assert bot.post(click, timestamp=int(time.time()) - 290).status == 200
    wait_for(lambda: bot.experiment(key).status == S.APPROVED, what="the click approves")


def test_a_slash_command_with_a_bad_signature_gets_no_answer(bot: BotServer) -> None:
    bot.seed(spec(), S.SUBMITTED)
    body = (
        b"command=%2Ftower&text=list+all&user_id=U0ANNA&channel_id=C0CHECKOUT"
        b"&team_id=T0TEAM&trigger_id=1.2.3&response_url=https%3A%2F%2Fhooks.slack.invalid%2Fx"
    )
    refused = bot.post(body, secret="guessed")
    assert refused.status == 401
    assert b"Sticky basket" not in refused.body
    assert b"Sticky basket" in bot.post(body).body


# -- malformed requests ------------------------------------------------------------------------


def _payload(data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return ("payload=" + urllib.parse.quote(text)).encode()


def _show_all(value: str) -> bytes:
    return _payload(
        {
            "type": "block_actions",
            "user": {"id": MANAGER},
            "trigger_id": "1.2.3",
            "actions": [{"action_id": ActionId.SHOW_ALL_COLLISIONS.value, "value": value}],
        }
    )


MALFORMED: dict[str, tuple[bytes, str]] = {
    "payload not json": (_payload("{not json"), FORM),
    "payload a list": (_payload("[1, 2]"), FORM),
    "payload a string": (_payload('"hello"'), FORM),
    "payload without a type": (_payload({}), FORM),
    "actions not a list": (
        _payload({"type": "block_actions", "user": {"id": OWNER}, "actions": "approve"}),
        FORM,
    ),
    "a button value that is a number": (
        _payload(
            {
                "type": "block_actions",
                "user": {"id": MANAGER},
                "actions": [{"action_id": "approve", "value": 5}],
            }
        ),
        FORM,
    ),
    "user not an object": (_payload({"type": "block_actions", "user": "U0X"}), FORM),
    "a view without its type": (
        _payload({"type": "view_submission", "user": {"id": OWNER}, "view": {"id": "V1"}}),
        FORM,
    ),
    "empty actions": (
        _payload({"type": "block_actions", "user": {"id": MANAGER}, "actions": []}),
        FORM,
    ),
    "a null view": (_payload({"type": "x", "user": {"id": MANAGER}, "view": None}), FORM),
    "an event that is not JSON": (b"{bad", "application/json"),
    "an event that is a list": (b"[]", "application/json"),
    "a five-megabyte payload": (_payload({"type": "block_actions", "pad": "x" * 5_000_000}), FORM),
    "a command without its user": (
        b"command=%2Ftower&text=list&trigger_id=1.2.3&team_id=T0TEAM&channel_id=C0CHECKOUT",
        FORM,
    ),
    "register without a trigger": (
        b"command=%2Ftower&text=register&user_id=U0ANNA&team_id=T0TEAM&channel_id=C0CHECKOUT",
        FORM,
    ),
    "a click without a trigger": (
        _payload(
            {
                "type": "block_actions",
                "user": {"id": OWNER},
                "actions": [{"action_id": ActionId.OPEN_REGISTER.value, "value": ""}],
            }
        ),
        FORM,
    ),
    "show all naming a summary too big for the database": (
        _show_all("9" * 30),
        FORM,
    ),
    "show all naming a superscript two": (_show_all("\u00b2"), FORM),
    "a collision button naming one too big for the database": (
        _payload(
            {
                "type": "block_actions",
                "user": {"id": MANAGER},
                "trigger_id": "1.2.3",
                "actions": [
                    {"action_id": ActionId.ACKNOWLEDGE.value, "value": f"C-{'9' * 30}:T-1"}
                ],
            }
        ),
        FORM,
    ),
    "a form answer of the wrong type": (
        _payload(
            {
                "type": "view_submission",
                "user": {"id": OWNER},
                "view": {
                    "id": "V1",
                    "type": "modal",
                    "callback_id": CallbackId.REGISTER.value,
                    "state": {"values": {"title": {"title": {"type": "x", "value": 7}}}},
                },
            }
        ),
        FORM,
    ),
    "a Home opened by nobody": (
        json.dumps(
            {"type": "event_callback", "event": {"type": "app_home_opened", "tab": "home"}}
        ).encode(),
        "application/json",
    ),
    "a Home opened by a number": (
        json.dumps(
            {"type": "event_callback", "event": {"type": "app_home_opened", "user": 5}}
        ).encode(),
        "application/json",
    ),
    "an event that is a string": (
        json.dumps({"type": "event_callback", "event": "x"}).encode(),
        "application/json",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_request_gets_no_server_error_and_changes_nothing(
    bot: BotServer, name: str
) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    body, content_type = MALFORMED[name]
    answer = bot.post(body, content_type=content_type)
    assert answer.status < 500, (answer.status, answer.body[:200])
    time.sleep(0.2)
    assert bot.experiment(key).status == S.SUBMITTED and bot.decisions(key) == []
    assert not any("Something went wrong" in t for t in every_text(bot.fake.calls))


@pytest.mark.parametrize(
    ("memo", "wrong"),
    [
        ("nope", "JSON"),
        ('{"key": 5, "version": "x"}', "key"),
        ('{"key": "T-1"}', "version"),
        ('{"key": "T-1", "version": "one"}', "version"),  # a version in words
        ("", "object"),
    ],
)
def test_a_form_with_a_crafted_memo_is_answered_on_the_form_and_changes_nothing(
    bot: BotServer, memo: str, wrong: str
) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    view = {
        "id": "V9",
        "type": "modal",
        "callback_id": CallbackId.EDIT.value,
        "private_metadata": memo,
        "state": {"values": {}},
    }
    answer = bot.post(submission_body(view, user=OWNER, trigger_id=bot.trigger_id()))
    assert answer.status == 200
    assert answer.json()["response_action"] == "errors"
    error = answer.json()["errors"][BlockId.TITLE.value]
    assert "not one of Tower's" in error and wrong in error  # and what is wrong
    assert bot.experiment(key).version == 1


def test_a_reason_form_asking_for_another_decision_is_not_ours(bot: BotServer) -> None:
    """A crafted memo asking the reason form to approve: neither approves nor sends back."""
    key = bot.seed(spec(), S.SUBMITTED)
    view = reason_modal(ActionId.REQUEST_CHANGES, key, 1, {"channel": TOWER_CHANNEL, "ts": "1.1"})
    view["private_metadata"] = json.dumps({"key": key, "version": 1, "action": "approve"})
    filled = fill_modal(view, {BlockId.REASON: "looks fine"})
    answer = bot.post(submission_body(filled, user=MANAGER, trigger_id=bot.trigger_id()))
    assert answer.status == 200 and "not one of Tower's" in json.dumps(answer.json())
    assert bot.experiment(key).status == S.SUBMITTED and bot.decisions(key) == []


def test_two_edit_forms_of_one_version_land_once_and_the_other_is_told(bot: BotServer) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    experiment = bot.experiment(key)
    view = build_modal(
        bot.deps.policy, ["checkout-squad"], spec=experiment.spec(), key=key, version=1
    )
    first = bot.submit(fill_modal(view, {BlockId.TITLE: "Sticky basket, green"}), user=OWNER)
    second = bot.submit(fill_modal(view, {BlockId.TITLE: "Sticky basket, blue"}), user=OWNER)
    assert first.status == second.status == 200 and first.body == b""
    errors = second.json()["errors"]
    assert "changed since you opened it" in errors[BlockId.TITLE.value]
    edited = bot.experiment(key)
    assert (edited.title, edited.version) == ("Sticky basket, green", 2)


# -- retries and double clicks ----------------------------------------------------------------


def opened_register_modal(bot: BotServer, user: str = OWNER) -> dict[str, Any]:
    opened = len(bot.fake.calls_to("views.open"))
    assert bot.command("register", user=user).status == 200
    call = wait_for(lambda: bot.fake.calls_to("views.open")[opened:], what="the modal opens")[0]
    return call_view(call)


def test_a_registration_sent_again_or_retried_by_slack_registers_one_test(bot: BotServer) -> None:
    before = bot.experiment_count()
    filled = fill_modal(opened_register_modal(bot), valid_answers())
    body = submission_body(filled, user=OWNER, trigger_id=bot.trigger_id())

    first = bot.post(body)
    again = bot.post(body)  # byte for byte
    retried = bot.post(  # Slack's retry: a new trigger id, timestamp and signature
        submission_body(filled, user=OWNER, trigger_id=bot.trigger_id()),
        timestamp=int(time.time()) + 1,
        extra_headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )

    assert [r.status for r in (first, again, retried)] == [200, 200, 200]
    assert again.body == first.body and retried.body == first.body
    wait_for(lambda: bot.posts(containing="is registered"), what="the registrant's DM")
    wait_for(bot.settled, what="every message is delivered")
    assert bot.experiment_count() == before + 1
    assert len(bot.posts(containing="is registered")) == 1


def test_copies_of_a_registration_arriving_at_once_register_one_test(bot: BotServer) -> None:
    before = bot.experiment_count()
    filled = fill_modal(opened_register_modal(bot), valid_answers())
    bodies = [submission_body(filled, user=OWNER, trigger_id=bot.trigger_id()) for _ in range(4)]
    barrier = threading.Barrier(len(bodies), timeout=10)
    answers: list[HttpResponse] = []

    def send(body: bytes) -> None:
        barrier.wait()
        answers.append(bot.post(body))

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(r.status for r in answers) == [200] * 4
    wait_for(lambda: bot.posts(containing="is registered"), what="the registrant's DM")
    wait_for(bot.settled, what="every message is delivered")
    assert bot.experiment_count() == before + 1


def test_the_same_form_submitted_with_other_values_is_a_new_registration(bot: BotServer) -> None:
    """Clients reuse a view id: a submission is recognised by what it submits."""
    before = bot.experiment_count()
    view = opened_register_modal(bot)
    for title in ("Sticky basket", "Sticky basket, green button"):
        filled = fill_modal(view, valid_answers(**{BlockId.TITLE: title}))
        reply = bot.post(submission_body(filled, user=OWNER, trigger_id=bot.trigger_id()))
        assert reply.status == 200
    wait_for(lambda: bot.experiment_count() == before + 2, what="both tests are registered")


def test_a_registration_for_another_team_is_refused_on_its_field_and_audited(
    bot: BotServer,
) -> None:
    before = bot.experiment_count()
    # A crafted submission: the modal offered OWNER their own team only.
    filled = fill_modal(opened_register_modal(bot), valid_answers(**{BlockId.TEAM: "ecommerce"}))
    reply = bot.post(submission_body(filled, user=OWNER, trigger_id=bot.trigger_id()))
    assert reply.status == 200
    answer = json.loads(reply.body)
    assert answer["response_action"] == "errors" and "ecommerce" in answer["errors"]["team"]
    assert bot.experiment_count() == before
    with bot.deps.session_factory() as session:
        [denied] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "denied:register")
        ).all()
    assert (denied.actor, denied.experiment_id) == (OWNER, None)


def test_a_form_with_errors_sent_again_gets_the_same_errors_and_writes_nothing(
    bot: BotServer,
) -> None:
    before = bot.experiment_count()
    filled = fill_modal(opened_register_modal(bot), valid_answers(**{BlockId.TRAFFIC: "250"}))
    body = submission_body(filled, user=OWNER, trigger_id=bot.trigger_id())
    first, again = bot.post(body), bot.post(body)
    assert first.status == again.status == 200
    assert json.loads(first.body)["response_action"] == "errors"
    assert again.body == first.body
    assert bot.experiment_count() == before


def test_a_retried_approve_request_never_decides_twice(bot: BotServer) -> None:
    story = register_clashing_test(bot)
    waive(bot, "C-1")
    click = bot.click_body(
        ActionId.APPROVE,
        f"{story.key}:2",
        user=MANAGER,
        channel=TOWER_CHANNEL,
        ts=receipt_of(bot, story.request)["ts"],
    )
    assert bot.post(click).status == 200
    wait_for(lambda: bot.fake.calls_to("chat.update"), what="the first click approves")
    wait_for(bot.settled, what="the first click's messages are delivered")
    # Slack gave up waiting and sends the very same request again.
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert bot.post(click, extra_headers=retry).status == 200
    wait_for(lambda: ephemerals(bot, MANAGER), what="the retry is answered")
    assert ephemerals(bot, MANAGER) == [f"you already approved {story.key}"]
    assert len(bot.decisions(story.key)) == 1
    assert [a for a in bot.audit_actions(story.key) if a[1] == "approve"] == [(MANAGER, "approve")]
    assert len(bot.posts(containing="was approved by")) == 1
    assert len(bot.fake.calls_to("chat.update")) == 1


def test_a_retry_arriving_while_the_first_click_is_delivered_sends_each_message_once(
    scratch_database_url: str, small_policy: Policy
) -> None:
    slow = SlowFakeSlack(delays={"chat.update": 0.4})
    with running_bot(scratch_database_url, small_policy, fake=slow) as bot:
        story = register_clashing_test(bot)
        waive(bot, "C-1")
        where = receipt_of(bot, story.request)
        click = bot.click_body(
            ActionId.APPROVE, f"{story.key}:2", user=MANAGER, channel=TOWER_CHANNEL, ts=where["ts"]
        )
        assert bot.post(click).status == 200
        # The owner's DM goes first; the request's update is under way (the fake is slow).
        wait_for(lambda: bot.posts(containing="was approved by"), what="the owner is told")
        assert bot.post(click, extra_headers={"X-Slack-Retry-Num": "1"}).status == 200
        wait_for(lambda: ephemerals(bot, MANAGER), what="the retry is answered")
        wait_for(bot.settled, what="everything is delivered")
        deadline = time.monotonic() + 1.0  # time for a second update to show, if any
        while time.monotonic() < deadline and len(updates_of(bot, where["ts"])) < 2:
            time.sleep(0.02)
        assert len(bot.decisions(story.key)) == 1
        assert len(updates_of(bot, where["ts"])) == 1


def test_a_double_click_on_approve_decides_once(bot: BotServer) -> None:
    story = register_clashing_test(bot)
    waive(bot, "C-1")
    ts = receipt_of(bot, story.request)["ts"]
    bodies = [
        bot.click_body(
            ActionId.APPROVE, f"{story.key}:2", user=MANAGER, channel=TOWER_CHANNEL, ts=ts
        )
        for _ in range(2)
    ]
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda b=body: statuses.append(bot.post(b).status))
        for body in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert statuses == [200, 200]
    wait_for(lambda: bot.posts(containing="was approved by"), what="one click approves")

    # The other click is answered privately: already approved, or changed meanwhile; on
    # SQLite it may instead fail on the database lock, and the error handler says so.
    wait_for(lambda: len(ephemerals(bot, MANAGER)) == 1, what="the other click is answered")
    [answer] = ephemerals(bot, MANAGER)
    assert story.key in answer or "went wrong on Tower's side" in answer
    assert len(bot.decisions(story.key)) == 1
    assert [a for a in bot.audit_actions(story.key) if a[1] == "approve"] == [(MANAGER, "approve")]
    assert bot.experiment(story.key).status == S.APPROVED
    wait_for(lambda: bot.fake.calls_to("chat.update"), what="the request is updated")
    if server_url() is not None:  # on SQLite messages may go twice: see the test above
        wait_for(bot.settled, what="everything is delivered")
        assert len(bot.posts(containing="was approved by")) == 1
        assert len(bot.fake.calls_to("chat.update")) == 1


# -- the register modal -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "block", "advice"),
    [
        ({"end": (START - timedelta(days=1)).isoformat()}, "end", "is before the start"),
        ({"traffic": "0"}, "traffic", "traffic is a percent in (0, 100]"),
        ({"surfaces": ["web/nowhere"]}, "surfaces", "unknown surface 'web/nowhere'"),
        ({"baseline": "1.5"}, "baseline", "the baseline is a rate in (0, 1)"),
        ({"team": "ecommerce"}, "team", "not a member of team 'ecommerce'"),
        ({"start": None}, "start", "pick a date"),
        ({"title": "   "}, "title", "a value is required"),
    ],
)
def test_a_modal_with_bad_input_is_refused_on_the_field_and_nothing_is_saved(
    bot: BotServer, changes: dict[str, Any], block: str, advice: str
) -> None:
    reply = bot.register(valid_answers(**changes), user=OWNER)
    assert reply.status == 200
    data = reply.json()
    assert data["response_action"] == "errors"
    assert block in data["errors"], data
    assert advice in data["errors"][block]
    time.sleep(0.1)
    assert bot.experiment_count() == 0
    assert bot.outbox() == []
    assert bot.fake.calls_to("chat.postMessage") == []


def test_register_opens_a_modal_with_only_the_users_teams_and_a_label_on_every_input(
    bot: BotServer,
) -> None:
    def opened_by(user: str) -> dict[str, Any]:
        count = len(bot.fake.calls_to("views.open"))
        reply = bot.command("register", user=user)
        assert reply.status == 200 and reply.body == b""
        calls = wait_for(lambda: bot.fake.calls_to("views.open")[count:], what="views.open")
        assert calls[0].args["trigger_id"].endswith(".T0TEAM.trigger")
        return call_view(calls[0])

    def team_options(view: dict[str, Any]) -> list[str]:
        [team] = [b for b in view["blocks"] if b.get("block_id") == BlockId.TEAM]
        return [o["value"] for o in team["element"]["options"]]

    member = opened_by(OWNER)
    assert member["callback_id"] == CallbackId.REGISTER
    assert team_options(member) == ["checkout-squad"]
    assert team_options(opened_by(BAU_OWNER)) == ["ecommerce"]
    assert sorted(team_options(opened_by(MANAGER))) == ["checkout-squad", "ecommerce"]
    inputs = [b for b in member["blocks"] if b["type"] == "input"]
    assert {b["block_id"] for b in inputs} >= {f.value for f in BlockId if f != BlockId.REASON}
    for block in inputs:
        assert block["label"]["type"] == "plain_text" and block["label"]["text"].strip(), block
    assert len(member["blocks"]) <= 100

    notice = opened_by(OUTSIDER)
    assert "You are in no team" in " ".join(texts_of(notice["blocks"]))


def test_the_surface_picker_suggests_what_matches_the_typed_text(bot: BotServer) -> None:
    reply = bot.suggest(ActionId.SURFACES, "CHECK", user=OWNER)
    assert reply.status == 200
    values = [o["value"] for o in reply.json()["options"]]
    assert values == ["web/checkout", "web/checkout/cart", "web/checkout/payment"]
    assert all(len(o["text"]["text"]) <= 75 for o in reply.json()["options"])

    everything = [
        o["value"] for o in bot.suggest(ActionId.SURFACES, "", user=OWNER).json()["options"]
    ]
    assert set(everything) == set(bot.deps.policy.surface_paths)
    audiences = bot.suggest(ActionId.AUDIENCES, "log", user=OWNER).json()["options"]
    assert [o["value"] for o in audiences] == ["logged_in"]
    assert bot.suggest(ActionId.EXCLUDE_AUDIENCES, "zzz", user=OWNER).json() == {"options": []}
    kpis = bot.suggest(BlockId.PRIMARY_KPI, "rate", user=OWNER).json()["options"]
    assert [o["value"] for o in kpis] == ["conversion_rate"]


# -- /tower commands --------------------------------------------------------------------------


def test_an_unknown_subcommand_gets_the_help_privately(bot: BotServer) -> None:
    reply = bot.command("frobnicate now", user=OWNER)
    assert reply.status == 200
    text = reply_text(reply)
    assert "I don't know `frobnicate`" in text
    assert "/tower register" in text and "/tower list [mine|team|all]" in text
    assert reply_text(bot.command("", user=OWNER)).count("/tower queue") == 1  # bare: help
    assert bot.fake.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("scope", "user", "shown", "hidden"),
    [
        ("mine", OWNER, ["mine"], ["teammate", "bau", "rejected"]),
        ("", OWNER, ["mine"], ["teammate", "bau", "rejected"]),
        ("team", OWNER, ["mine", "teammate"], ["bau", "rejected"]),
        ("team", BAU_OWNER, ["bau"], ["mine", "teammate", "rejected"]),
        ("all", BAU_OWNER, ["mine", "teammate", "bau"], ["rejected"]),
    ],
)
def test_tower_list_shows_the_callers_tests_privately(
    bot: BotServer, scope: str, user: str, shown: list[str], hidden: list[str]
) -> None:
    keys = seed_portfolio(bot)
    text = reply_text(bot.command(f"list {scope}", user=user))
    for name in shown:
        assert f"`{keys[name]}`" in text, (name, text)
    for name in hidden:
        assert f"`{keys[name]}`" not in text, (name, text)


def test_tower_list_with_a_bad_scope_says_which_scopes_exist(bot: BotServer) -> None:
    text = reply_text(bot.command("list everyone", user=OWNER))
    assert "takes mine, team or all, not `everyone`" in text


def test_tower_queue_conflicts_show_and_plan_answer_privately_with_the_right_tests(
    bot: BotServer,
) -> None:
    keys = seed_portfolio(bot)
    mine, bau = keys["mine"], keys["bau"]

    queue = reply_text(bot.command("queue", user=OWNER))
    assert "The ranked pipeline" in queue
    ranked = [line for line in queue.splitlines() if line[:1].isdigit()]
    assert sorted(line.split("`")[1] for line in ranked) == sorted(
        [keys["mine"], keys["teammate"], keys["bau"]]
    )
    assert ranked[0].startswith("1. ")

    conflicts = reply_text(bot.command("conflicts", user=OWNER))
    assert "Unresolved blocking collisions" in conflicts
    assert f"{mine} + {bau}" in conflicts or f"{bau} + {mine}" in conflicts
    assert keys["rejected"] not in conflicts

    show = reply_text(bot.command(f"show {mine}", user=OWNER))
    assert f"`{mine}` Sticky basket · checkout-squad · submitted" in show
    assert "rank " in show and "score " in show
    assert "Collisions" in show and bau in show

    plan = reply_text(bot.command("plan", user=OWNER))
    assert "Tests the plan moves" in plan
    assert mine in plan or bau in plan  # one of the clashing pair is moved
    assert keys["rejected"] not in plan

    missing = reply_text(bot.command("show T-99", user=OWNER))
    assert "there is no test T-99" in missing
    assert "needs a test key" in reply_text(bot.command("show", user=OWNER))
    assert bot.fake.calls_to("chat.postMessage") == []


# -- the App Home ------------------------------------------------------------------------------


@pytest.fixture
def retail_bot(scratch_database_url: str, retail_policy: Policy) -> Iterator[BotServer]:
    with running_bot_with_roadmap(scratch_database_url, retail_policy, RETAIL_PORTFOLIO) as server:
        yield server


def published_home(bot: BotServer, user: str) -> dict[str, Any]:
    count = len(bot.fake.calls_to("views.publish"))
    reply = bot.home_opened(user)
    assert reply.status == 200
    calls = wait_for(lambda: bot.fake.calls_to("views.publish")[count:], what="views.publish")
    assert calls[0].args["user_id"] == user
    return call_view(calls[0])


def test_the_app_home_shows_a_members_tests_and_a_managers_queue_within_limits(
    retail_bot: BotServer,
) -> None:
    bot = retail_bot
    with bot.transaction() as session:
        everything = experiment_service.list_experiments(session)
        anna = [
            e.key
            for e in everything
            if e.team == "checkout-squad"
            and e.status.value in ("submitted", "approved", "live", "draft", "changes_requested")
        ]
        submitted = [e.key for e in everything if e.status == S.SUBMITTED]
    assert anna and submitted

    member = published_home(bot, OWNER)
    assert member["type"] == "home"
    assert len(member["blocks"]) <= 100
    text = "\n".join(texts_of(member["blocks"]))
    assert "Your tests" in text
    for key in anna[:15]:
        assert f"`{key}`" in text, key
    assert "Approval queue" not in text
    assert any(
        e.get("action_id") == ActionId.OPEN_REGISTER
        for b in member["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    )

    manager = published_home(bot, MANAGER)
    assert len(manager["blocks"]) <= 100
    text = "\n".join(texts_of(manager["blocks"]))
    assert "Approval queue, by rank" in text
    queue = text.split("Approval queue, by rank", 1)[1].split("*Blocking conflicts*", 1)[0]
    shown = [line.split("`")[1] for line in queue.splitlines() if line[:1].isdigit()]
    assert len(shown) == min(15, len(submitted))  # the first by rank, then how many more
    assert set(shown) <= set(submitted)
    ranks = [int(line.split(".")[0]) for line in queue.splitlines() if line[:1].isdigit()]
    assert ranks == sorted(ranks)
    if len(submitted) > 15:
        assert f"…and {len(submitted) - 15} more: `/tower queue`" in queue
    for block in manager["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000


def test_the_app_home_stays_within_100_blocks_for_a_large_portfolio(
    retail_bot: BotServer,
) -> None:
    bot = retail_bot
    with bot.transaction() as session:
        [model] = experiment_service.list_experiments(session, owner=OWNER)[:1]
        template = model.spec()
    for number in range(20):  # 20 more of OWNER's tests wait for approval
        bot.seed(replace(template, title=f"Checkout variant {number}"), S.SUBMITTED)
    for user, pointer in ((OWNER, "`/tower list mine`"), (MANAGER, "`/tower queue`")):
        view = published_home(bot, user)
        assert len(view["blocks"]) <= 100
        sections = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
        assert all(len(text) <= 3000 for text in sections)
        assert f"more: {pointer}" in "\n".join(sections)  # summarised, saying where the rest is


# -- health --------------------------------------------------------------------------------------


def test_healthz_reports_the_database_reachable(bot: BotServer) -> None:
    reply = bot.get("/healthz")
    assert reply.status == 200
    assert reply.json() == {"ok": True, "database": "reachable"}


def test_healthz_answers_503_when_the_database_is_unreachable(
    scratch_database_url: str, small_policy: Policy, tmp_path: Path
) -> None:
    gone = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'tower.db'}")
    with running_bot(scratch_database_url, small_policy, healthy=database_reachable(gone)) as bot:
        reply = bot.get("/healthz")
    gone.dispose()
    assert reply.status == 503
    assert reply.json() == {"ok": False, "database": "unreachable"}


# -- escaping --------------------------------------------------------------------------------


def every_text(calls: list[Call]) -> list[str]:
    found: list[str] = []
    for call in calls:
        found += [str(call.args.get("text", ""))]
        if call.args.get("blocks"):
            found += texts_of(call_blocks(call))
        if call.args.get("view"):
            found += texts_of(call_view(call)["blocks"])
    return found


def texts_shown_after_approval(
    bot: BotServer, title: str, reason: str = "Both teams agreed to share the cart"
) -> list[str]:
    """Every text Slack was given, and the replies of `show` and `list`, once a test
    titled `title` clashed, was waived with `reason` and approved."""
    story = register_clashing_test(bot, title=title)
    waive(bot, "C-1", reason=reason)
    bot.click(ActionId.APPROVE, f"{story.key}:2", user=MANAGER, channel=TOWER_CHANNEL, ts="1.1")
    wait_for(lambda: bot.posts(containing="was approved by"), what="the owner is told")
    wait_for(bot.settled, what="the approval's messages are delivered")
    published_home(bot, OWNER)
    replies = [bot.command(f"show {story.key}", user=OWNER), bot.command("list", user=OWNER)]
    return every_text(bot.fake.calls) + [reply_text(r) for r in replies]


def test_channel_pings_typed_in_a_title_are_escaped_in_every_message(bot: BotServer) -> None:
    sent = texts_shown_after_approval(bot, "Ping <!channel> & <!here> <https://evil.example|click>")
    # Slack-escaped where the bot renders the title itself, and with its angle brackets made
    # harmless where Tower wrote it into a notification first: shown as typed either way.
    escaped = "Ping &lt;!channel&gt; &amp; &lt;!here&gt; &lt;https://evil.example|click&gt;"
    neutral = (
        "Ping \u2039!channel\u203a &amp; \u2039!here\u203a \u2039https://evil.example|click\u203a"
    )
    assert sum(escaped in text or neutral in text for text in sent) >= 5
    for text in sent:
        assert "<!channel>" not in text and "<!here>" not in text and "<https://" not in text


def test_a_mention_typed_in_a_title_pings_nobody(bot: BotServer) -> None:
    register_clashing_test(bot, title="Ask <@U0CARLA> first")
    for text in every_text(bot.fake.calls):
        assert "Ask <@U0CARLA>" not in text, text


def test_formatting_typed_in_a_title_or_reason_is_shown_as_typed_everywhere(
    bot: BotServer,
) -> None:
    sent = texts_shown_after_approval(bot, "Try *bold* _it_ ~s~ `code`", "*urgent* _really_")
    shown = "Try \u2217bold\u2217 \u02cdit\u02cd \u223cs\u223c \u02cbcode\u02cb"
    assert sum(shown in text for text in sent) >= 5
    assert any("\u2217urgent\u2217 \u02cdreally\u02cd" in text for text in sent)
    for text in sent:
        for markup in ("*bold*", "_it_", "~s~", "`code`", "*urgent*", "_really_"):
            assert markup not in text, text


def test_a_ping_typed_in_a_command_argument_is_inert_in_the_error(bot: BotServer) -> None:
    text = reply_text(bot.command("show <!channel>", user=OWNER))
    assert "\u2039!channel\u203a" in text  # shown as typed, in look-alike brackets
    assert "<!channel>" not in text and "&lt;!channel" not in text


def test_formatting_typed_in_a_command_is_shown_as_typed_in_the_error(bot: BotServer) -> None:
    text = reply_text(bot.command("show *T-1* _x_", user=OWNER))
    assert "\u2217T-1\u2217" in text and "*T-1*" not in text


def test_a_ping_typed_as_a_subcommand_is_inert_in_the_help(bot: BotServer) -> None:
    text = reply_text(bot.command("<!channel>`", user=OWNER))
    assert "\u2039!channel\u203a\u02cb" in text  # a typed backtick cannot end the code span
    assert "<!channel>" not in text and "&lt;!channel" not in text


# -- rate limits -------------------------------------------------------------------------------


def test_a_message_slack_rate_limits_is_delivered_once_after_retry_after(bot: BotServer) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    bot.fake.fail("chat.postMessage", status=429, retry_after=30, times=1)
    bot.click(ActionId.APPROVE, f"{key}:1", user=MANAGER, channel=TOWER_CHANNEL, ts="1.1")
    wait_for(lambda: bot.experiment(key).status == S.APPROVED, what="the click approves")
    wait_for(bot.settled, what="the click's immediate delivery is over")
    [held] = [m for m in bot.outbox("decision") if m.last_error]
    assert held.status == MessageStatus.PENDING
    assert held.attempts == 0  # a rate limit is not a failed attempt
    assert held.next_attempt_at == NOW + timedelta(seconds=30)
    assert len(bot.posts("D" + OWNER[1:])) == 1  # the refused one

    assert bot.deliver(NOW + timedelta(seconds=29)).sent == 0
    assert bot.deliver(NOW + timedelta(seconds=30)).sent == 1
    assert bot.deliver(NOW + timedelta(minutes=5)).attempted == 0
    posts = bot.posts("D" + OWNER[1:])
    assert len(posts) == 2 and posts[0].args == posts[1].args  # the same message, once more
    [sent] = bot.outbox("decision")
    assert sent.status == MessageStatus.SENT
    assert sent.receipt is not None and sent.receipt["channel"] == "D" + OWNER[1:]


def test_an_unexpected_failure_is_told_privately_in_words(bot: BotServer) -> None:
    bot.fake.fail("views.open", status=500, times=1)
    reply = bot.command("register", user=OWNER)
    assert reply.status == 200
    told = wait_for(
        lambda: bot.fake.calls_to("chat.postEphemeral"), what="the user is told what went wrong"
    )
    assert told[0].args["user"] == OWNER
    assert "went wrong on Tower's side" in str(told[0].args["text"])
