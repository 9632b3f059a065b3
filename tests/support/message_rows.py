"""Outbox rows as messages: what a queued row says, and how a Tower before messages were
data would have stored it (its text in Slack's form), to prove both read alike in Slack."""

from __future__ import annotations

from tower.db import create_database_engine, create_session_factory
from tower.messages import Message, Person, Typed
from tower.outbox.models import OutboxMessage

# How Tower made typed text inert before messages were data (the former `user_text`).
_FORMER_LOOK_ALIKES = str.maketrans(
    {"<": "\u2039", ">": "\u203a", "*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
)


def queued_message(database_url: str, message_id: int) -> Message:
    """The parts of outbox message `message_id`, as data."""
    engine = create_database_engine(database_url)
    try:
        with create_session_factory(engine)() as session:
            row = session.get(OutboxMessage, message_id)
            assert row is not None and row.parts is not None, message_id
            return Message.from_json(row.parts)
    finally:
        engine.dispose()


def as_queued_before(message: Message) -> str:
    """The `text` a Tower before messages were data stored for `message`: a person as a
    Slack mention, typed text with its markup characters swapped for look-alikes."""
    return "".join(
        f"<@{part.user_id}>"
        if isinstance(part, Person)
        else part.text.translate(_FORMER_LOOK_ALIKES)
        if isinstance(part, Typed)
        else part
        for part in message.parts
    )
