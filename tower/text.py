"""User-typed text: its ceilings and the characters it may hold. (How it shows inside a
message is each channel's business: typed text is a part of its own, `tower.messages`.)"""

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
