"""User-typed text: its ceilings, and how it sits inside Tower's messages."""

from __future__ import annotations

import re

from tower.errors import TowerError

# The longest hypothesis or reason, in characters, wherever it is typed (CSV, CLI, Slack).
LONG_TEXT_MAX = 50_000


class TextTooLong(TowerError):
    """Typed text past its ceiling."""


# Control characters other than the tab and the line breaks: invisible, or worse, in every
# place typed text shows (a terminal, a spreadsheet, Slack).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def require_within(text: str, what: str, limit: int = LONG_TEXT_MAX) -> None:
    """Refuse `text` longer than `limit` characters, naming `what` it is."""
    if len(text) > limit:
        raise TextTooLong(too_long(what, limit, len(text)))


def too_long(what: str, limit: int, length: int) -> str:
    """Why text of `length` characters is refused as `what`, whose ceiling is `limit`."""
    return f"keep the {what} to at most {limit:,} characters (it has {length:,})"


def unix_line_breaks(text: str) -> str:
    """`text` with each line break, `\\r\\n` or a lone `\\r`, written `\\n`: one kind of line
    break however it was typed (a lone `\\r` would not survive a CSV round trip)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def control_character(text: str) -> str | None:
    """The first control character in `text` other than a tab or a line break, named as
    `U+0001`; None when there is none."""
    found = _CONTROL.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


# Each character Slack's mrkdwn reads as markup, swapped for one that looks alike and
# means nothing there: angle brackets (mentions, links, `<!channel>`), and the asterisk,
# underscore, tilde and backtick (bold, italic, strike-through, code).
_NEUTRAL = str.maketrans(
    {
        "<": "\u2039",  # single left-pointing angle quotation mark
        ">": "\u203a",  # single right-pointing angle quotation mark
        "*": "\u2217",  # asterisk operator
        "_": "\u02cd",  # modifier letter low macron
        "~": "\u223c",  # tilde operator
        "`": "\u02cb",  # modifier letter grave accent
    }
)


def user_text(text: str) -> str:
    """Text a person typed (a title, a reason), made inert: shown as typed, it can never
    add a mention, a link, a channel-wide ping or formatting to a message, whatever
    channel shows it. Messages may carry Tower's own mentions (`<@U0ANNA>`) around it."""
    return text.translate(_NEUTRAL)
