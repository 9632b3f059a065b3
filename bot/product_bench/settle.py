"""Waiting until the server has done everything it was asked, before timing a change.

After a change the bot delivers what it queued (alerts, DMs) through the outbox; Tower's
Slack notifier paces messages to one channel a second apart, and on SQLite the dispatcher
holds the write lock meanwhile. After an overload, Bolt's workers are still busy with
requests Slack gave up on long ago. A change sent then would time that wait, not itself.
So before each timed change the benchmark waits until no outbox message is due and unsent
(read in a read-only transaction), the fake Slack has had no call for a moment, and
`/tower help` is acknowledged promptly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.product_bench.fake_slack import FakeSlack
from bot.product_bench.load import Endpoint
from bot.product_bench.slack_requests import FORM, command_body
from tower.db import create_database_engine, create_session_factory, read_only
from tower.outbox.models import MessageStatus, OutboxMessage

POLL = 0.02  # seconds between two looks
STILL = 0.1  # seconds without a Slack call once the outbox is empty
PROMPT = 0.5  # seconds within which an idle server acknowledges `/tower help`
TIMEOUT = 120.0  # seconds to wait at most


def answers_promptly(endpoint: Endpoint, user: str, channel: str) -> Callable[[], bool]:
    """A probe: is `/tower help` (which does no work) acknowledged within `PROMPT`?"""

    def probe() -> bool:
        body = command_body("help", user=user, channel=channel, trigger_id="0.T0TEAM.probe")
        started = time.monotonic()
        try:
            status = endpoint.post(body, FORM).status
        except OSError:
            return False
        return status == 200 and time.monotonic() - started < PROMPT

    return probe


class Settler:
    """Knows when the server behind `database_url` and `fake` has nothing left to do."""

    def __init__(self, database_url: str, fake: FakeSlack) -> None:
        self.engine = create_database_engine(database_url)
        self.sessions = create_session_factory(self.engine)
        self.fake = fake
        self.responsive: Callable[[], bool] = lambda: True

    def _undelivered(self) -> int:
        with read_only(self.sessions) as session:
            due = select(func.count()).where(
                OutboxMessage.status == MessageStatus.PENDING,
                OutboxMessage.next_attempt_at <= datetime.now(UTC),
            )
            return int(session.scalar(due) or 0)

    def wait(self) -> bool:
        """Wait (at most `TIMEOUT` seconds) until the outbox is delivered, Slack is still and
        the server answers promptly; whether it settled."""
        deadline = time.monotonic() + TIMEOUT
        calls, still_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            seen = len(self.fake.calls_since(0))
            if seen != calls:
                calls, still_since = seen, time.monotonic()
            elif (
                time.monotonic() - still_since >= STILL
                and not self._undelivered()
                and self.responsive()
            ):
                return True
            time.sleep(POLL)
        return False

    def close(self) -> None:
        self.engine.dispose()
