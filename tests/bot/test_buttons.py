"""What Tower's buttons and forms carry (`bot/views/buttons.py`, `bot/views/memos.py`): the
formats of every message and form already out in Slack still read, each is written and read
in one place, and a tampered value is refused in words through the real endpoint, with
nothing written and no server error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import pytest

from bot.ids import ActionId, BlockId
from bot.product_bench.slack_requests import submission_body
from bot.views.buttons import (
    ApprovalButton,
    CollisionButton,
    NotOurs,
    ShowAllButton,
    TowerButton,
)
from bot.views.memos import EditMemo, ReasonMemo
from bot.views.modal import reason_modal
from bot.views.modal import test_modal as build_modal  # not a test: keep pytest off it
from tests.support.people import MANAGER, TOWER_CHANNEL
from tests.support.slack.harness import BotServer, fill_modal, running_bot, spec, wait_for
from tower.experiments.spec import ExperimentStatus as S
from tower.policy import Policy

# Values and memos exactly as Tower has written them into messages and forms out in Slack.
TODAYS_BUTTONS = [
    (ApprovalButton, "T-4:3", ApprovalButton(key="T-4", version=3)),
    (ApprovalButton, "T-12:0", ApprovalButton(key="T-12", version=0)),
    (CollisionButton, "C-7:T-12", CollisionButton(ref="C-7", key="T-12")),
    (CollisionButton, "C-7", CollisionButton(ref="C-7", key=None)),
    (ShowAllButton, "41", ShowAllButton(message_id=41)),
]
TODAYS_MEMOS = [
    (EditMemo, '{"key": "T-7", "version": 4}', EditMemo(key="T-7", version=4)),
    (
        ReasonMemo,
        '{"action": "reject", "key": "T-4", "version": 3, "channel": "C0TOWER", "ts": "1.1"}',
        ReasonMemo(action="reject", key="T-4", version=3, channel="C0TOWER", ts="1.1"),
    ),
    (
        ReasonMemo,
        '{"action": "request_changes", "key": "T-4", "version": 3, "channel": "", "ts": ""}',
        ReasonMemo(action="request_changes", key="T-4", version=3),
    ),
]
TAMPERED = [
    (ActionId.APPROVE, "T-1:three", "KEY:VERSION"),  # a version in words
    (ActionId.APPROVE, "T-1:03", "KEY:VERSION"),  # not as Tower writes it
    (ActionId.APPROVE, "T-1", "KEY:VERSION"),
    (ActionId.REJECT, ":1", "KEY:VERSION"),
    (ActionId.REQUEST_CHANGES, "T-1:99999999999", "KEY:VERSION"),  # beyond the database
    (ActionId.APPROVE, "T-1:" + "1" * 3000, "KEY:VERSION"),  # longer than a button holds
    (ActionId.ACKNOWLEDGE, "c-1", "C-N or C-N:KEY"),  # not a ref
    (ActionId.ASK_FOR_WAIVER, "C-1:", "C-N or C-N:KEY"),
    (ActionId.MOVE_TO_FREE_SLOT, "T-1", "C-N or C-N:KEY"),
    (ActionId.SHOW_ALL_COLLISIONS, "0", "the number of a summary"),
    (ActionId.SHOW_ALL_COLLISIONS, "seven", "the number of a summary"),
]


@pytest.mark.parametrize(("kind", "value", "button"), TODAYS_BUTTONS)
def test_todays_button_values_still_read_and_are_written_alike(
    kind: type[ApprovalButton | CollisionButton | ShowAllButton],
    value: str,
    button: ApprovalButton | CollisionButton | ShowAllButton,
) -> None:
    assert kind.parse(value) == button
    assert button.value == value


@pytest.mark.parametrize(("kind", "stored", "memo"), TODAYS_MEMOS)
def test_todays_form_memos_still_read_and_are_written_alike(
    kind: type[EditMemo | ReasonMemo], stored: str, memo: EditMemo | ReasonMemo
) -> None:
    assert kind.parse(stored) == memo
    assert memo.dump() == stored


def test_the_forms_store_their_memos_as_before(small_policy: Policy) -> None:
    edit = build_modal(small_policy, ["checkout-squad"], spec=spec(), key="T-7", version=4)
    assert edit["private_metadata"] == '{"key": "T-7", "version": 4}'
    where = {"channel": TOWER_CHANNEL, "ts": "1.1"}
    reason = reason_modal(ActionId.REJECT, "T-4", 3, where)
    assert json.loads(reason["private_metadata"]) == {
        "action": "reject",
        "key": "T-4",
        "version": 3,
        **where,
    }
    assert ReasonMemo.parse(reason["private_metadata"]).action == "reject"


@pytest.mark.parametrize(("action", "value", "expected"), TAMPERED)
def test_a_value_tower_never_writes_is_refused_saying_what_is_wrong(
    action: ActionId, value: str, expected: str
) -> None:
    kind: type[TowerButton] = CollisionButton
    if action in (ActionId.APPROVE, ActionId.REJECT, ActionId.REQUEST_CHANGES):
        kind = ApprovalButton
    elif action == ActionId.SHOW_ALL_COLLISIONS:
        kind = ShowAllButton
    with pytest.raises(NotOurs) as refused:
        kind.parse(value)
    assert expected in str(refused.value)
    assert len(str(refused.value)) < 200  # a long value is quoted cut


@pytest.mark.parametrize(
    ("kind", "stored", "wrong"),
    [
        (EditMemo, "not json", "Invalid JSON"),
        (EditMemo, '{"key": "T-1", "version": "three"}', "version"),
        (EditMemo, '{"key": "T-1", "version": "3"}', "version"),  # Tower writes a number
        (EditMemo, '{"version": 3}', "key"),
        (ReasonMemo, '{"action": "approve", "key": "T-1", "version": 1}', "action"),
    ],
)
def test_a_memo_tower_never_writes_is_refused_saying_what_is_wrong(
    kind: type[EditMemo | ReasonMemo], stored: str, wrong: str
) -> None:
    with pytest.raises(NotOurs, match=wrong):
        kind.parse(stored)


# -- through the real endpoint -------------------------------------------------------------


@pytest.fixture
def bot(scratch_database_url: str, small_policy: Policy) -> Iterator[BotServer]:
    with running_bot(scratch_database_url, small_policy) as server:
        yield server


def told(bot: BotServer, user: str, at_least: int = 1) -> list[str]:
    """What `user` was told privately; nothing until it is `at_least` answers."""
    answers = [
        str(call.args.get("text", ""))
        for call in bot.fake.calls_to("chat.postEphemeral")
        if call.args.get("user") == user
    ]
    return answers if len(answers) >= at_least else []


def test_tampered_buttons_are_answered_privately_in_words_and_write_nothing(
    bot: BotServer,
) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    outbox = len(bot.outbox())
    for n, (action, value, expected) in enumerate(TAMPERED):
        reply = bot.click(action, value, user=MANAGER, channel=TOWER_CHANNEL, ts="1.1")
        assert reply.status == 200, (value, reply.status)
        answers = wait_for(partial(told, bot, MANAGER, n + 1), what=f"{value[:20]!r} refused")
        answer = answers[n]
        assert "This button is not one of Tower's: nothing was done" in answer
        assert expected in answer and value[:20] in answer
    assert len(told(bot, MANAGER)) == len(TAMPERED)
    assert bot.fake.calls_to("views.open") == []
    assert bot.experiment(key).status == S.SUBMITTED and bot.experiment(key).version == 1
    assert bot.decisions(key) == [] and len(bot.outbox()) == outbox
    assert not any("Something went wrong" in text for text in told(bot, MANAGER))


def test_a_button_naming_an_unknown_test_is_answered_in_words_and_writes_nothing(
    bot: BotServer,
) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    reply = bot.click(ActionId.APPROVE, "T-999:1", user=MANAGER, channel=TOWER_CHANNEL, ts="1.1")
    assert reply.status == 200
    [answer] = wait_for(lambda: told(bot, MANAGER), what="the manager is told")
    assert "T-999" in answer and "Something went wrong" not in answer
    assert bot.experiment(key).status == S.SUBMITTED and bot.decisions(key) == []


def test_a_todays_approval_button_still_approves(bot: BotServer) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    reply = bot.click(ActionId.APPROVE, f"{key}:1", user=MANAGER, channel=TOWER_CHANNEL, ts="1.1")
    assert reply.status == 200
    wait_for(lambda: bot.decisions(key) or None, what="the approval is recorded")


def test_a_reason_form_of_todays_format_still_sends_back(bot: BotServer) -> None:
    key = bot.seed(spec(), S.SUBMITTED)
    view = reason_modal(ActionId.REQUEST_CHANGES, key, 1, {"channel": TOWER_CHANNEL, "ts": "1"})
    view["private_metadata"] = json.dumps(  # as a Tower before memos were models wrote it
        {"action": "request_changes", "key": key, "version": 1, "channel": "C0T", "ts": "1"}
    )
    filled = fill_modal(view, {BlockId.REASON: "needs a control group"})
    answer = bot.post(submission_body(filled, user=MANAGER, trigger_id=bot.trigger_id()))
    assert answer.status == 200 and answer.body == b""
    wait_for(lambda: bot.decisions(key) or None, what="the decision is recorded")
