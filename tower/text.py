"""User-typed text inside Tower's messages."""

from __future__ import annotations

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
