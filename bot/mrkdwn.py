"""Slack mrkdwn: the one place Tower's messages become Slack markup.

The core composes messages as data (`tower.messages`): Tower's words, people, typed text.
Here a person becomes a mention (`<@U0ANNA>`), Tower's words are escaped as Slack requires,
and text a person typed is escaped with its formatting characters swapped for look-alikes:
shown as typed, it can never mention, link, ping a channel or format.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from tower.messages import Message, Person, Typed

_USER_ID = re.compile(r"[UW][A-Z0-9]+")
# How a mention sat in a message's text before messages were data (an outbox row queued by
# an earlier Tower has its text in Slack's form, its typed text made inert already).
_QUEUED_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")

# Each character Slack's mrkdwn reads as markup, swapped for one that looks alike and
# means nothing there: angle brackets (mentions, links, `<!channel>`), and the asterisk,
# underscore, tilde and backtick (bold, italic, strike-through, code).
_LOOK_ALIKES = str.maketrans(
    {
        "<": "\u2039",  # single left-pointing angle quotation mark
        ">": "\u203a",  # single right-pointing angle quotation mark
        "*": "\u2217",  # asterisk operator
        "_": "\u02cd",  # modifier letter low macron
        "~": "\u223c",  # tilde operator
        "`": "\u02cb",  # modifier letter grave accent
    }
)


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` as Slack requires for text it should show as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert(text: str) -> str:
    """Text a person typed, its markup characters swapped for look-alikes: still to be
    escaped (`escape`) with the words around it."""
    return text.translate(_LOOK_ALIKES)


def escape_typed(text: str) -> str:
    """Text a person typed (a title, a reason), shown as typed: no mention, link or
    formatting, even inside Tower's own formatting (a code span, bold)."""
    return escape(inert(text))


def mention(user_id: str, people: Collection[str] | None = None) -> str:
    """A mention of `user_id` when it is a Slack user among `people` (the policy's; None:
    anyone); else the mention shown as written, pinging nobody."""
    if _USER_ID.fullmatch(user_id) and (people is None or user_id in people):
        return f"<@{user_id}>"
    return escape(f"<@{user_id}>")


def render(message: Message, people: Collection[str] | None = None) -> str:
    """`message` in mrkdwn: people as mentions (of `people` only, when given), Tower's
    words escaped, typed text escaped and inert (`escape_typed`)."""
    return "".join(
        mention(part.user_id, people)
        if isinstance(part, Person)
        else escape_typed(part.text)
        if isinstance(part, Typed)
        else escape(part)
        for part in message.parts
    )


def queued_text(text: str) -> Message:
    """The message of an outbox row queued before messages were data, read from its text:
    a mention in Slack's form names a person, the rest is Tower's words (its typed text was
    made inert when it was queued)."""
    pieces = _QUEUED_MENTION.split(text)  # words, a user ID, words, ...
    return Message.of(
        *(Person(piece) if index % 2 else piece for index, piece in enumerate(pieces))
    )
