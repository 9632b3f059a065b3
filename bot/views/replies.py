"""Replies to `/tower` commands and the App Home: slack_sdk blocks built from Tower's
records, serialised by `to_dict()`.

Lists are summarised to stay inside Slack's limits (50 blocks a message, 100 a Home tab,
3000 characters a section; `bot.views.fitting`): the first few lines, then how many more
and where to see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.ids import ActionId
from bot.mrkdwn import escape, escape_typed
from bot.views.fitting import MAX_BLOCKS, MAX_FALLBACK_TEXT, truncate
from tower.paging import Page
from tower.pipeline.overview import Overview

LINES_PER_LIST = 15

HELP = """*Tower* keeps one registry of every test, ranks them, and catches collisions.
• `/tower register`: register a test (a form opens)
• `/tower list [mine|team|all]`: tests, with their state
• `/tower queue`: the ranked pipeline
• `/tower conflicts`: unresolved blocking collisions
• `/tower show T-42`: one test, its score, slot and collisions
• `/tower plan`: tests the plan moves, and why
• `/tower help`: this message"""


def section(text: str) -> SectionBlock:
    """A section of mrkdwn `text`, cut to Slack's limit."""
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SectionBlock.text_max_length)))


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=truncate(text, HeaderBlock.text_max_length))


def listing(
    title: str, lines: Sequence[str] | Page[str], empty: str, more: str
) -> list[SectionBlock]:
    """A titled list, cut after `LINES_PER_LIST` lines (or a page, cut where its query
    stopped) with a pointer to the rest."""
    page = lines if isinstance(lines, Page) else Page(list(lines), len(lines))
    if not page.total:
        return [section(f"*{title}*\n{empty}")]
    text, shown = f"*{title}*", 0
    pointer_room = 120  # keep room for the "and N more" line
    for line in page.items[:LINES_PER_LIST]:
        if len(text) + 1 + len(line) > SectionBlock.text_max_length - pointer_room:
            break
        text, shown = f"{text}\n{line}", shown + 1
    if shown < page.total:
        text += f"\n_…and {page.total - shown:,} more: {more}_"
    return [section(text)]


def reply(blocks: Sequence[Block], text: str) -> dict[str, Any]:
    """An answer only the caller sees: `blocks`, and `text` for notifications."""
    return {
        "response_type": "ephemeral",
        "text": truncate(text, MAX_FALLBACK_TEXT),
        "blocks": [block.to_dict() for block in blocks[:MAX_BLOCKS]],
    }


def said_reply(text: str) -> dict[str, Any]:
    """A reply that is one mrkdwn `text` (what went wrong, say)."""
    return reply([section(text)], text)


def help_reply(note: str = "") -> dict[str, Any]:
    blocks = [section(escape(note))] if note else []
    return reply([*blocks, section(HELP)], "Tower commands")


def show_reply(key: str, summary: str, collisions: Sequence[str]) -> dict[str, Any]:
    """`/tower show KEY`: the test's line, score and plan (`summary`), then its collisions."""
    blocks = [section(summary), *listing("Collisions", collisions, "None.", "`tower check`")]
    return reply(blocks, key)


def test_line(record: dict[str, Any]) -> str:
    return (
        f"`{record['key']}` {escape_typed(record['title'])} · {escape(record['team'])} · "
        f"{record['status'].replace('_', ' ')} · {record['start']} → {record['end']}"
    )


def pipeline_line(record: dict[str, Any]) -> str:
    score = "unscored" if record["score"] is None else f"{record['score']:.3g}"
    rank = record["rank"] or "-"
    title, team = escape_typed(record["title"]), escape(record["team"])
    return f"{rank}. `{record['key']}` {title} · {team} · score {score}"


def collision_line(record: dict[str, Any]) -> str:
    flag = " · *agile vs BAU*" if record["agile_vs_bau"] else ""
    return (
        f"`{record['id']}` {record['severity']} {record['kind']} ({record['status']}): "
        f"{' + '.join(record['keys'])}{flag}\n    {escape(record['explanation'])}"
    )


def plan_line(record: dict[str, Any]) -> str:
    return f"`{record['key']}` {escape_typed(record['title'])}: {escape(record['explanation'])}"


def register_button() -> ActionsBlock:
    register = ButtonElement(
        action_id=ActionId.OPEN_REGISTER.value, text="Register a test", style="primary"
    )
    return ActionsBlock(elements=[register])


def home_view(view: Overview) -> dict[str, Any]:
    """The App Home of one person: at most ~20 blocks, whatever the portfolio's size."""
    blocks: list[Block] = [header("Tower"), register_button()]
    blocks += listing(
        "Your tests", view.tests.map(_home_test), "No active tests.", "`/tower list mine`"
    )
    blocks += listing(
        "Your SLA clocks", view.clocks.map(_clock_line), "No clocks running.", "`tower sla`"
    )
    blocks += listing(
        "Your open conflicts",
        view.conflicts.map(collision_line),
        "None.",
        "`/tower conflicts`",
    )
    if view.is_manager:
        blocks.append(DividerBlock())
        blocks += listing(
            "Approval queue, by rank",
            view.approval_queue.map(pipeline_line),
            "Nothing to approve.",
            "`/tower queue`",
        )
        blocks += listing(
            "Blocking conflicts",
            view.blocking.map(collision_line),
            "None.",
            "`/tower conflicts`",
        )
        blocks += listing("SLA breaches", view.breaches.map(_clock_line), "None.", "`tower sla`")
    return View(type="home", blocks=blocks[: View.blocks_max_length]).to_dict()


def _home_test(test: dict[str, Any]) -> str:
    rank = f" · rank {test['rank']}" if test["rank"] else ""
    return (
        f"`{test['key']}` {escape_typed(test['title'])} · {test['status'].replace('_', ' ')}"
        f" · {test['start']} → {test['end']}{rank}"
    )


def _clock_line(clock: dict[str, Any]) -> str:
    left = clock["business_hours_left"]
    when = f"{left:.1f} business hours left" if left >= 0 else f"{-left:.1f} business hours overdue"
    return f"{clock['policy']} · `{clock['subject']}` · {when}"
