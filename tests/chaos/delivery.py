"""What became of every notification: delivered once, lost, duplicated or held."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.product_bench.fake_slack import FakeSlack, Posted
from tower.db import create_database_engine, create_session_factory
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.outcomes import UNKNOWN


@dataclass(frozen=True)
class Tally:
    queued: int  # rows that had to reach Slack (merged ones went out inside another)
    delivered: int  # sent, and Slack holds the message where the row says it landed
    lost: int  # neither delivered nor held for a person
    duplicated: int  # posts of a dedupe key after its first
    same_text: int  # posts repeating, in one channel, the text of an earlier one
    held: int  # failed with `outcome unknown`: a person checks the channel
    pending: int  # still waiting when the part ended (counted in `lost` too)
    twice: tuple[str, ...] = ()  # the dedupe keys posted more than once (the first few)

    def as_dict(self) -> dict[str, Any]:
        counts = {name: value for name, value in vars(self).items() if name != "twice"}
        return {**counts, **({"posted_twice": list(self.twice)} if self.twice else {})}


def tally_database(database_url: str, slack: FakeSlack) -> Tally:
    """`tally` of the database at `database_url`."""
    engine = create_database_engine(database_url)
    try:
        with create_session_factory(engine)() as session:
            return tally(session, slack)
    finally:
        engine.dispose()


def tally(session: Session, slack: FakeSlack) -> Tally:
    rows = [
        row
        for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        if row.status != MessageStatus.MERGED
    ]
    posted = list(slack.posted)
    where = {(message.channel, message.ts): message for message in posted}
    delivered = sum(1 for row in rows if _landed(row, where))
    held = sum(
        1
        for row in rows
        if row.status == MessageStatus.FAILED and (row.last_error or "").startswith(UNKNOWN)
    )
    keys = Counter(key for key in map(_key, posted) if key is not None)
    texts = Counter((message.channel, message.text) for message in posted)
    return Tally(
        queued=len(rows),
        delivered=delivered,
        lost=len(rows) - delivered - held,
        duplicated=sum(count - 1 for count in keys.values()),
        same_text=sum(count - 1 for count in texts.values()),
        held=held,
        pending=sum(1 for row in rows if row.status == MessageStatus.PENDING),
        twice=tuple(key for key, count in keys.items() if count > 1)[:5],
    )


def _landed(row: OutboxMessage, where: dict[tuple[str, str], Posted]) -> bool:
    """Sent, and Slack holds a message at its receipt: this row's own post, or the
    message it updated in place."""
    if row.status != MessageStatus.SENT or not row.receipt:
        return False
    message = where.get((row.receipt.get("channel", ""), row.receipt.get("ts", "")))
    if message is None:
        return False
    return _key(message) == row.dedupe_key or bool((row.payload or {}).get("replaces"))


def _key(message: Posted) -> str | None:
    payload = (message.metadata or {}).get("event_payload") or {}
    key = payload.get("dedupe_key")
    return key if isinstance(key, str) else None
