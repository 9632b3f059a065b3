"""Fitting text into Slack's limits: the one truncator every view uses, and the limits
slack_sdk states no attribute for.

Every other limit is read where it applies from slack_sdk's models
(`SectionBlock.text_max_length`, `ButtonElement.value_max_length`, `View.title_max_length`
...), which also check it when a view is serialised (`to_dict()` raises beyond one).
"""

from __future__ import annotations

MAX_BLOCKS = 50  # blocks in a message (Slack's limit; slack_sdk states it only for views)
# A message's top-level `text` (Slack takes 40,000 characters but cuts what notifications
# and screen readers show beyond 4,000: Tower cuts it there itself, with an ellipsis).
MAX_FALLBACK_TEXT = 4000
ELLIPSIS = "…"


def truncate(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else cut to fit and ending with an ellipsis.

    The cut never splits an escaped character (`&amp;`) or a mention (`<@U1>`) in two.
    """
    if len(text) <= limit:
        return text
    return cut(text, limit - len(ELLIPSIS)) + ELLIPSIS


def cut(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` that does not split `&amp;` or `<@U1>`."""
    prefix = text[: max(limit, 0)]
    if len(prefix) == len(text):
        return prefix
    amp = prefix.rfind("&")
    if amp > prefix.rfind(";"):
        prefix = prefix[:amp]
    bracket = prefix.rfind("<")
    if bracket > prefix.rfind(">"):
        prefix = prefix[:bracket]
    return prefix
