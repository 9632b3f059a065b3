"""User-typed text: its ceilings, and how it sits inside Tower's messages."""

from __future__ import annotations

from tower.errors import TowerError

# The longest hypothesis or reason, in characters, wherever it is typed (CSV, CLI, Slack).
LONG_TEXT_MAX = 50_000


class TextTooLong(TowerError):
    """Typed text past its ceiling."""


def require_within(text: str, what: str, limit: int = LONG_TEXT_MAX) -> None:
    """Refuse `text` longer than `limit` characters, naming `what` it is."""
    if len(text) > limit:
        raise TextTooLong(f"keep the {what} under {limit:,} characters (it has {len(text):,})")


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
