"""However big what Tower says, the layouts it sends Slack are valid (hypothesis over sizes):
a 1 MB title, a 10,000-line digest, a summary of thousands of collisions, very long keys.
slack_sdk's `to_dict()` checks each block against Slack's limits as it is built; these
tests check the rest: at most 50 blocks, every text within its limit, the fallback text
within its own, and no `&amp;` or mention split where a text was cut."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, HeaderBlock, SectionBlock

from bot.mrkdwn import escape
from bot.views import replies
from bot.views.fitting import MAX_BLOCKS, MAX_FALLBACK_TEXT
from bot.views.messages import fallback_text, message_blocks
from tower.collisions.alerts import SUMMARY_KIND
from tower.messages import Message, Person, Typed
from tower.outbox.notifier import Delivery

SIZES = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Sizes up to a megabyte, with the edges of Slack's limits among them.
SIZE = st.one_of(
    st.sampled_from([0, 1, 2999, 3000, 3001, 4000, 4001, 1_000_000]),
    st.integers(0, 1_000_000),
)
# Pieces that render to escapes and mentions, so that a cut can fall inside one.
PIECE = st.sampled_from(["a", " ", "&", "<", ">", "*", "<!here>", "T-1 & T-2 ", "\u00e9"])
PEOPLE = {"U0ANNA"}


def _stretched(piece: str, size: int) -> str:
    return (piece * (size // max(len(piece), 1) + 1))[:size]


def _delivery(kind: str, text: str, payload: dict[str, Any], **more: Any) -> Delivery:
    return Delivery(
        message_id=7,
        dedupe_key="d",
        kind=kind,
        recipient="C0TOWER",
        text=text,
        payload=payload,
        **more,
    )


def _texts(node: Any) -> list[str]:
    """Every text object's text and every button value in a serialised layout."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            found.append(node["text"])
        if isinstance(node.get("value"), str):
            found.append(node["value"])
        for child in node.values():
            if isinstance(child, dict | list):
                found += _texts(child)
    elif isinstance(node, list):
        for child in node:
            found += _texts(child)
    return found


def _whole_escapes_and_mentions(text: str) -> bool:
    """No `&` outside `&amp;` `&lt;` `&gt;`, and no `<` without its `>`."""
    rest = re.sub(r"&(amp|lt|gt);", "", text)
    return "&" not in rest and "<" not in re.sub(r"<[^<>]*>", "", text)


def assert_valid_message(blocks: list[dict[str, Any]], fallback: str) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    assert 0 < len(fallback) <= MAX_FALLBACK_TEXT
    assert _whole_escapes_and_mentions(fallback)
    for block in blocks:
        if block["type"] in ("section", "context"):
            for text in _texts(block):
                assert 0 < len(text) <= SectionBlock.text_max_length
                assert _whole_escapes_and_mentions(text), text[-40:]
        if block["type"] == "actions":
            assert 0 < len(block["elements"]) <= ActionsBlock.elements_max_length
            for button in block["elements"]:
                assert len(button["text"]["text"]) <= ButtonElement.text_max_length
                assert 0 < len(button["value"]) <= ButtonElement.value_max_length


@SIZES
@given(size=SIZE, piece=PIECE)
def test_a_title_of_any_size_gives_a_valid_approval_request(size: int, piece: str) -> None:
    title = _stretched(piece, size)
    message = Message.of("Approval requested for T-4 '", Typed(title), "' by ", Person("U0ANNA"))
    delivery = _delivery(
        "approval_requested", message.plain(), {"key": "T-4", "version": 3}, message=message
    )
    blocks = message_blocks(delivery, PEOPLE)
    assert_valid_message(blocks, fallback_text(delivery, PEOPLE))
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert {button["value"] for button in actions["elements"]} == {"T-4:3"}


@SIZES
@given(lines=st.integers(0, 10_000), width=st.integers(0, 400), piece=PIECE)
def test_a_digest_of_any_length_gives_a_valid_layout(lines: int, width: int, piece: str) -> None:
    line = _stretched(piece + "<@U0ANNA> ", width)
    text = "\n".join(f"{n}. {line}" for n in range(lines))
    delivery = _delivery("digest", text, {"week": "2026-W10"})
    assert_valid_message(message_blocks(delivery, PEOPLE), fallback_text(delivery, PEOPLE))


@SIZES
@given(
    collisions=st.integers(0, 5_000),
    urgent=st.integers(0, 60),
    key_size=st.sampled_from([1, 10, 1990, 2000, 5000]),
    line_size=SIZE,
)
def test_a_summary_of_any_size_gives_a_valid_layout(
    collisions: int, urgent: int, key_size: int, line_size: int
) -> None:
    key = "T-" + "9" * key_size
    line = _stretched("x & <y> ", line_size)
    shown = [
        {"collision": f"C-{n + 1}", "keys": [key], "line": line}
        for n in range(min(urgent, collisions))
    ]
    delivery = _delivery(
        SUMMARY_KIND,
        f"{collisions} collision(s) opened: {collisions} blocking\nMost urgent: ...",
        {"collisions": [f"C-{n + 1}" for n in range(collisions)], "urgent": shown},
    )
    blocks = message_blocks(delivery)
    assert_valid_message(blocks, fallback_text(delivery))
    if collisions > len(shown) and len(shown) < 20:  # room left for *Show all*
        assert blocks[-2]["elements"][0]["value"] == "7"


@SIZES
@given(key_size=st.integers(1, 6_000), version=st.integers(0, 2**31 - 1))
def test_a_key_of_any_length_gives_valid_buttons_or_none(key_size: int, version: int) -> None:
    key = "T-" + "9" * key_size
    payload = {"collision": "C-7", "keys": [key, "T-4"]}
    for kind, fields in (
        ("collision_opened", payload),
        ("approval_requested", {"key": key, "version": version}),
    ):
        delivery = _delivery(kind, f"about {key}", fields)
        blocks = message_blocks(delivery)
        assert_valid_message(blocks, fallback_text(delivery))
        values = {
            b["value"] for block in blocks if block["type"] == "actions" for b in block["elements"]
        }
        fits = len(key) + 1 + len(str(version if kind == "approval_requested" else "C-7")) <= (
            ButtonElement.value_max_length
        )
        assert bool(values) is fits


@SIZES
@given(size=SIZE, lines=st.integers(0, 5_000))
def test_replies_stay_valid_whatever_the_sizes(size: int, lines: int) -> None:
    # As the listeners give them: escaped, mentions whole; never blank.
    words = "Sticky & <!channel> <@U0ANNA> "
    title, line = escape(_stretched(words, max(size, 1))), escape(_stretched(words, 200))
    listing = replies.listing(title, [line] * lines, "None.", "`tower list`")
    reply = replies.reply([replies.header(title), *listing, replies.section(title)], title)
    assert len(reply["blocks"]) <= MAX_BLOCKS and len(reply["text"]) <= MAX_FALLBACK_TEXT
    for block in reply["blocks"]:
        limit = HeaderBlock.text_max_length if block["type"] == "header" else None
        for text in _texts(block):
            assert 0 < len(text) <= (limit or SectionBlock.text_max_length)
            assert _whole_escapes_and_mentions(text)
