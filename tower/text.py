"""User-typed text inside Tower's messages."""

from __future__ import annotations

_NEUTRAL = str.maketrans({"<": "\u2039", ">": "\u203a"})


def user_text(text: str) -> str:
    """Text a person typed (a title, a reason), with angle brackets made harmless.

    Messages may carry Tower's own mentions (`<@U0ANNA>`); a title can never add one, nor a
    link or a channel-wide ping, whatever channel shows the message.
    """
    return text.translate(_NEUTRAL)
