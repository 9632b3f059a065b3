"""Slack mrkdwn escaping: user text can never become a mention, a link or markup."""

from __future__ import annotations

import re
from collections.abc import Collection

from tower.text import user_text

_OUR_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]+)&gt;")


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` as Slack requires for text it should show as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_typed(text: str) -> str:
    """Text a person typed (a title), shown as typed: no mention, link or formatting."""
    return escape(user_text(text))


def escape_keeping_mentions(text: str, people: Collection[str] | None = None) -> str:
    """Escape a Tower message, keeping the user mentions Tower wrote (`<@U0ANNA>`): of
    `people` only, when given (the policy's); any other stays shown as typed."""
    return _OUR_MENTION.sub(
        lambda match: f"<@{match[1]}>" if people is None or match[1] in people else match[0],
        escape(text),
    )
