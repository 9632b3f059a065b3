"""Approving in Slack when the policy asks for two approvals: the first manager is told
privately that their approval is recorded (the test waits for another); the second
approval approves the test, announced in its channels rather than said privately."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.ids import ActionId
from tests.support.people import MANAGER, TOWER_CHANNEL
from tests.support.protocol import DEPUTY
from tests.support.slack.harness import BAU_TEST, BotServer, running_bot, spec, wait_for
from tower.experiments.spec import ExperimentStatus
from tower.policy import Policy


@pytest.fixture
def bot(scratch_database_url: str, small_policy: Policy) -> Iterator[BotServer]:
    protocol = small_policy.protocol.model_copy(update={"approvals_required": 2})
    policy = small_policy.model_copy(update={"managers": [MANAGER, DEPUTY], "protocol": protocol})
    with running_bot(scratch_database_url, policy) as server:
        yield server


def _told(bot: BotServer, user: str) -> list[str]:
    return [
        str(call.args.get("text", ""))
        for call in bot.fake.calls_to("chat.postEphemeral")
        if call.args.get("user") == user
    ]


def test_a_first_of_two_approvals_is_said_privately_and_the_second_approves(
    bot: BotServer,
) -> None:
    key = bot.seed(spec(**BAU_TEST), ExperimentStatus.SUBMITTED)
    version = bot.experiment(key).version

    first = bot.click(
        ActionId.APPROVE, f"{key}:{version}", user=MANAGER, channel=TOWER_CHANNEL, ts="1.1"
    )
    assert first.status == 200
    told = wait_for(lambda: _told(bot, MANAGER), what="the first manager is told privately")
    assert told == [f"approval 1 of 2 recorded for {key}"]
    assert bot.experiment(key).status == ExperimentStatus.SUBMITTED

    second = bot.click(
        ActionId.APPROVE, f"{key}:{version}", user=DEPUTY, channel=TOWER_CHANNEL, ts="1.1"
    )
    assert second.status == 200
    wait_for(
        lambda: bot.experiment(key).status == ExperimentStatus.APPROVED,
        what="the second approval approves the test",
    )
    wait_for(
        lambda: [c for c in bot.fake.calls if "was approved by" in str(c.args.get("text"))],
        what="the approval is announced (after anything said privately)",
    )
    assert _told(bot, DEPUTY) == []  # announced in the channels, not said privately
