"""`/tower register` opens the form with the teams the person may register for; someone in
no team of the policy gets a modal saying so instead, and nothing is registered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.people import OUTSIDER
from tests.support.slack.harness import BotServer, call_view, running_bot, wait_for
from tower.policy import Policy


@pytest.fixture
def bot(scratch_database_url: str, small_policy: Policy) -> Iterator[BotServer]:
    with running_bot(scratch_database_url, small_policy) as server:
        yield server


def _opened(bot: BotServer) -> list[dict[str, Any]]:
    return [call_view(call) for call in bot.fake.calls_to("views.open")]


def test_someone_in_no_team_is_told_so_in_a_modal(bot: BotServer) -> None:
    reply = bot.command("register", user=OUTSIDER)
    assert reply.status == 200
    [view] = wait_for(lambda: _opened(bot), what="a modal opens")
    assert view["type"] == "modal" and view["title"]["text"] == "Tower"
    assert view["close"]["text"] == "Close" and "submit" not in view
    [block] = view["blocks"]
    assert block["text"]["text"] == ("You are in no team of the policy: ask a manager to add you.")
    assert bot.experiment_count() == 0
