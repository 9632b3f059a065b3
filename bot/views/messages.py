"""Block Kit for the messages Tower sends through the outbox: one builder per message kind,
made of slack_sdk's blocks and serialised (and checked against Slack's limits) by
`to_dict()`.

Every message is its text in section blocks, rendered by `bot.mrkdwn` from the message's
parts: the people Tower names are mentions, and text a user typed (a title, a reason) can
never ping a channel, link, format or mention anyone.
A context line says what the message is. The kinds people act on carry buttons whose values
name what they act on (`bot.views.buttons`: `T-4:3` on an approval request, `C-7:T-12` on a
collision alert). A decision or a resolution replaces the message in place with a layout
that has no buttons. However long the text, a layout stays within Slack's limits
(`bot.views.fitting`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.ids import ActionId
from bot.mrkdwn import escape, queued_text, render
from bot.views.buttons import ApprovalButton, CollisionButton, ShowAllButton
from bot.views.fitting import ELLIPSIS, MAX_BLOCKS, MAX_FALLBACK_TEXT, cut, truncate
from tower.collisions.alerts import SUMMARY_KIND
from tower.messages import Message
from tower.outbox.notifier import Delivery
from tower.outbox.payloads import CollisionRef, CollisionsSummary, VersionRef

MAX_TEXT_SECTIONS = 10  # a longer text (a huge digest) is cut, ending with an ellipsis


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

Builder = Callable[[Delivery, Collection[str] | None], list[Block]]


def message_blocks(
    delivery: Delivery, people: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The Block Kit layout of `delivery`, as Slack takes it: its text, a context line and,
    by kind, buttons. Only the people among `people` are mentioned, when given
    (`bot.mrkdwn.mention`)."""
    build = _BUILDERS.get(delivery.kind, _notice)
    return [block.to_dict() for block in build(delivery, people)[:MAX_BLOCKS]]


def summary_blocks(delivery: Delivery) -> list[dict[str, Any]]:
    """The layout of a batch of collisions for one channel (`message_blocks`)."""
    return [block.to_dict() for block in _summary(delivery, None)[:MAX_BLOCKS]]


def _notice(delivery: Delivery, people: Collection[str] | None) -> list[Block]:
    """Any message nobody acts on from Slack: its text, then the context line."""
    mrkdwn = render(message_of(delivery), people)
    sections = text_sections(mrkdwn, empty=_label(delivery.kind))
    return [*(_section(text) for text in sections), _context(delivery)]


def _approval_request(delivery: Delivery, people: Collection[str] | None) -> list[Block]:
    """A notice with Approve, Request changes and Reject on the version under review."""
    about = VersionRef.read(delivery.payload)
    if about is None or not about.key:
        return _notice(delivery, people)
    try:
        button = ApprovalButton(key=about.key, version=about.version)
    except ValidationError:
        return _notice(delivery, people)
    return [*_notice(delivery, people), *_actions(APPROVAL_BUTTONS, button.value)]


def _collision_alert(delivery: Delivery, people: Collection[str] | None) -> list[Block]:
    """A notice with Acknowledge, Move to next free slot and Ask for a waiver."""
    about = CollisionRef.read(delivery.payload)
    if about is None or not about.collision:
        return _notice(delivery, people)
    value = _collision_value(about.collision, about.keys)
    return [*_notice(delivery, people), *_actions(COLLISION_BUTTONS, value)]


def _summary(delivery: Delivery, people: Collection[str] | None) -> list[Block]:
    """A batch of collisions for one channel: the counts, then the most urgent ones each
    with its buttons, then *Show all* (a modal with every one) when some are not shown."""
    summary = CollisionsSummary.read(delivery.payload)
    if summary is None:
        return _notice(delivery, people)
    counts = delivery.text.split("\n", 1)[0]
    blocks: list[Block] = [_section(escape(counts), cut_only=True)]
    urgent = summary.urgent
    for item in urgent:
        line = f"*{escape(item.collision)}* {escape(item.line)}"
        blocks.append(_section(line, cut_only=True))
        blocks += _actions(COLLISION_BUTTONS, _collision_value(item.collision, item.keys))
    total = len(summary.collisions)
    if total > len(urgent):
        show_all = Button(ActionId.SHOW_ALL_COLLISIONS, f"Show all {total}")
        blocks += _actions([show_all], ShowAllButton(message_id=delivery.message_id).value)
    blocks.append(_context(delivery))
    return blocks


_BUILDERS: dict[str, Builder] = {
    "approval_requested": _approval_request,
    "collision_opened": _collision_alert,
    SUMMARY_KIND: _summary,
}


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
    room = SectionBlock.text_max_length
    chunks: list[list[str]] = [[]]
    size = 0
    for whole_line in mrkdwn.splitlines():
        line = truncate(whole_line, room)
        extra = len(line) + (1 if chunks[-1] else 0)  # the newline joining it on
        if chunks[-1] and size + extra > room:
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
        sections[-1] = cut(sections[-1], room - 2) + "\n" + ELLIPSIS
    return sections


# -- parts -------------------------------------------------------------------------------------


def _section(text: str, *, cut_only: bool = False) -> SectionBlock:
    """A section of mrkdwn `text`, cut to Slack's limit (with no ellipsis, `cut_only`)."""
    room = SectionBlock.text_max_length
    fitted = cut(text, room) if cut_only else truncate(text, room)
    return SectionBlock(text=MarkdownTextObject(text=fitted))


def _label(kind: str) -> str:
    return _LABELS.get(kind) or kind.replace("_", " ").capitalize()


def _context(delivery: Delivery) -> ContextBlock:
    parts = [f"Tower · {_label(delivery.kind)}"]
    subject = _subject(delivery.payload)
    if subject:
        parts.append(subject)
    # A context's text is held to a section's limit (slack_sdk states none of its own).
    text = truncate(escape(" · ".join(parts)), SectionBlock.text_max_length)
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


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


def _collision_value(ref: str, keys: Sequence[str]) -> str:
    """A collision button's value: the collision and its first test, when it has one."""
    first = keys[0] if keys else None
    return CollisionButton.model_construct(ref=ref, key=first).value


def _actions(buttons: Sequence[Button], value: str) -> list[Block]:
    """An actions block of `buttons`, each carrying `value`; none when the value is longer
    than a button holds (a cut value would name something else)."""
    if len(value) > ButtonElement.value_max_length:
        return []
    elements = [
        ButtonElement(
            action_id=button.action_id.value, text=button.label, value=value, style=button.style
        )
        for button in buttons
    ]
    return [ActionsBlock(elements=elements)]
