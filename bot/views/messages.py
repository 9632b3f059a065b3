"""Block Kit for the messages Tower sends through the outbox, one layout per message kind.

Every message is its text in section blocks, rendered by `bot.mrkdwn` from the message's
parts: the people Tower names are mentions, and text a user typed (a title, a reason) can
never ping a channel, link, format or mention anyone.
A context line says what the message is. The kinds people act on carry buttons whose values
name what they act on: `"T-4:3"` (key and version) for an approval request, `"C-7:T-12"`
(the collision and its first test) for a collision alert; `parse_approval_value` and
`parse_collision_value` read them back. A decision or a resolution replaces the message in
place with a layout that has no buttons. Layouts stay within Slack's limits (50 blocks,
3000 characters a section, 2000 a button value) however long the text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.ids import ActionId
from bot.mrkdwn import escape, queued_text, render
from tower.collisions.alerts import SUMMARY_KIND
from tower.collisions.refs import parse_ref
from tower.messages import Message
from tower.outbox.notifier import Delivery

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_TEXT = 4000  # Slack cuts notification text beyond this
MAX_TEXT_SECTIONS = 10  # a longer text (a huge digest) is cut, ending with an ellipsis
ELLIPSIS = "…"


@dataclass(frozen=True)
class Button:
    action_id: ActionId
    label: str
    style: str | None = None  # "primary" or "danger"


APPROVAL_BUTTONS = (
    Button(ActionId.APPROVE, "Approve", "primary"),
    Button(ActionId.REQUEST_CHANGES, "Request changes"),
    Button(ActionId.REJECT, "Reject", "danger"),
)
COLLISION_BUTTONS = (
    Button(ActionId.ACKNOWLEDGE, "Acknowledge"),
    Button(ActionId.MOVE_TO_FREE_SLOT, "Move to next free slot"),
    Button(ActionId.ASK_FOR_WAIVER, "Ask for a waiver"),
)

_LABELS = {
    "approval_requested": "Approval request",
    "approval_decided": "Approval decision",
    "approval_voided": "Approval voided",
    "collision_opened": "Collision",
    "collisions_summary": "Collisions",
    "collision_resolved": "Collision resolved",
    "collision_acknowledged": "Collision acknowledged",
    "collision_waived": "Collision waived",
    "waiver_requested": "Waiver requested",
    "sla_warning": "SLA warning",
    "sla_breach": "SLA breach",
    "sla_escalation": "SLA escalation",
    "digest": "Weekly digest",
    "results_requested": "Results requested",
    "launch_blocked": "Launch blocked",
    "deadline_missed": "Deadline missed",
    "slot_given": "Slot given to another team",
}


def message_blocks(delivery: Delivery, people: Collection[str] | None = None) -> list[Block]:
    """The Block Kit layout of `delivery`: its text, a context line and, by kind, buttons.
    Only the people among `people` are mentioned, when given (`bot.mrkdwn.mention`)."""
    if delivery.kind == SUMMARY_KIND:
        return summary_blocks(delivery)
    mrkdwn = render(message_of(delivery), people)
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
        for chunk in text_sections(mrkdwn, empty=_label(delivery.kind))
    ]
    blocks.append(_context(delivery))
    buttons = _buttons(delivery)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks[:MAX_BLOCKS]


def summary_blocks(delivery: Delivery) -> list[Block]:
    """A batch of collisions for one channel: the counts, then the most urgent ones each
    with its buttons, then *Show all* (a modal with every one) when some are not shown."""
    payload = delivery.payload
    counts = delivery.text.split("\n", 1)[0]
    blocks: list[Block] = [_section(escape(counts))]
    urgent = list(payload.get("urgent") or [])
    for item in urgent:
        ref, keys = str(item.get("collision", "")), item.get("keys") or []
        blocks.append(_section(f"*{escape(ref)}* {escape(str(item.get('line', '')))}"))
        value = collision_value(ref, str(keys[0]) if keys else None)
        buttons = _elements(COLLISION_BUTTONS, value)
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
    shown = len(urgent)
    total = len(payload.get("collisions") or [])
    if total > shown:
        label = f"Show all {total}"
        button = Button(ActionId.SHOW_ALL_COLLISIONS, label)
        blocks.append(
            {"type": "actions", "elements": _elements([button], str(delivery.message_id))}
        )
    blocks.append(_context(delivery))
    return blocks[:MAX_BLOCKS]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, MAX_SECTION_TEXT)}}


def message_of(delivery: Delivery) -> Message:
    """What `delivery` says, as data; a message queued before messages were data is read
    from its text, as Slack was always sent it (`bot.mrkdwn.queued_text`)."""
    return queued_text(delivery.text) if delivery.message is None else delivery.message


def fallback_text(delivery: Delivery, people: Collection[str] | None = None) -> str:
    """The message's top-level `text`: what notifications and screen readers show."""
    mrkdwn = render(message_of(delivery), people)
    return truncate(mrkdwn, MAX_FALLBACK_TEXT) or _label(delivery.kind)


def text_sections(mrkdwn: str, *, empty: str = ELLIPSIS) -> list[str]:
    """`mrkdwn` (rendered) cut, on line boundaries, into section texts within Slack's limit.

    A line longer than a section is truncated; beyond `MAX_TEXT_SECTIONS` sections the text is
    cut and the last section ends with an ellipsis. Blank text becomes `empty`.
    """
    chunks: list[list[str]] = [[]]
    size = 0
    for whole_line in mrkdwn.splitlines():
        line = truncate(whole_line, MAX_SECTION_TEXT)
        extra = len(line) + (1 if chunks[-1] else 0)  # the newline joining it on
        if chunks[-1] and size + extra > MAX_SECTION_TEXT:
            chunks.append([])
            extra = len(line)
            size = 0
        chunks[-1].append(line)
        size += extra
    sections = ["\n".join(lines) for lines in chunks if "".join(lines).strip()]
    if not sections:
        return [escape(empty)]
    if len(sections) > MAX_TEXT_SECTIONS:
        sections = sections[:MAX_TEXT_SECTIONS]
        sections[-1] = _cut(sections[-1], MAX_SECTION_TEXT - 2) + "\n" + ELLIPSIS
    return sections


def truncate(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else cut to fit and ending with an ellipsis.

    The cut never splits an escaped character (`&amp;`) or a mention (`<@U1>`) in two.
    """
    if len(text) <= limit:
        return text
    return _cut(text, limit - len(ELLIPSIS)) + ELLIPSIS


def approval_value(key: str, version: int) -> str:
    """The value of an approval request's buttons: the test and the version under review."""
    return f"{key}:{version}"


def parse_approval_value(value: str) -> tuple[str, int]:
    """`"T-4:3"` -> `("T-4", 3)`; `ValueError` if the value is not one."""
    key, _, version = value.rpartition(":")
    if not key or not version.isdigit():
        raise ValueError(f"not an approval button value: {value!r} (expected KEY:VERSION)")
    return key, int(version)


def collision_value(ref: str, key: str | None = None) -> str:
    """The value of a collision alert's buttons: the collision and, if known, its first test."""
    return f"{ref}:{key}" if key else ref


def parse_collision_value(value: str) -> tuple[str, str | None]:
    """`"C-7:T-12"` -> `("C-7", "T-12")`, `"C-7"` -> `("C-7", None)`; `ValueError` if neither."""
    ref, _, key = value.partition(":")
    try:
        parse_ref(ref)
    except ValueError:
        raise ValueError(
            f"not a collision button value: {value!r} (expected C-N or C-N:KEY)"
        ) from None
    return ref, key or None


# -- parts -------------------------------------------------------------------------------------


def _label(kind: str) -> str:
    return _LABELS.get(kind) or kind.replace("_", " ").capitalize()


def _context(delivery: Delivery) -> Block:
    parts = [f"Tower · {_label(delivery.kind)}"]
    subject = _subject(delivery.payload)
    if subject:
        parts.append(subject)
    text = truncate(escape(" · ".join(parts)), MAX_SECTION_TEXT)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _subject(payload: Mapping[str, Any]) -> str:
    """What the message is about, for the context line: `T-4 v3`, `C-7`, `2026-W10`."""
    if payload.get("collision"):
        return str(payload["collision"])
    if payload.get("collisions"):
        return f"{len(payload['collisions'])} collisions"
    if payload.get("key"):
        version = payload.get("version")
        return f"{payload['key']} v{version}" if version is not None else str(payload["key"])
    if payload.get("subject"):
        return str(payload["subject"])
    return str(payload.get("week") or "")


def _buttons(delivery: Delivery) -> list[Block]:
    payload = delivery.payload
    if delivery.kind == "approval_requested":
        key, version = payload.get("key"), payload.get("version")
        if not key or version is None:
            return []
        return _elements(APPROVAL_BUTTONS, approval_value(str(key), int(version)))
    if delivery.kind == "collision_opened":
        ref = payload.get("collision")
        if not ref:
            return []
        keys = payload.get("keys") or []
        first = str(keys[0]) if keys else None
        return _elements(COLLISION_BUTTONS, collision_value(str(ref), first))
    return []


def _elements(buttons: Sequence[Button], value: str) -> list[Block]:
    if len(value) > MAX_BUTTON_VALUE:  # a cut value would name something else: no buttons
        return []
    elements: list[Block] = []
    for button in buttons:
        element: Block = {
            "type": "button",
            "action_id": str(button.action_id),
            "text": {"type": "plain_text", "text": button.label},
            "value": value,
        }
        if button.style:
            element["style"] = button.style
        elements.append(element)
    return elements


def _cut(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` that does not split `&amp;` or `<@U1>`."""
    cut = text[: max(limit, 0)]
    if len(cut) == len(text):
        return cut
    amp = cut.rfind("&")
    if amp > cut.rfind(";"):
        cut = cut[:amp]
    bracket = cut.rfind("<")
    if bracket > cut.rfind(">"):
        cut = cut[:bracket]
    return cut
