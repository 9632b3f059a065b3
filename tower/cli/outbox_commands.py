"""`tower outbox list|retry`: see what waits for delivery, and re-queue dead letters."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from tower.cli.context import AppContext
from tower.cli.output import console, emit_json, emit_table, format_option
from tower.json_text import iso
from tower.outbox import queries
from tower.outbox.models import MessageStatus, OutboxMessage

COLUMNS = (
    "id",
    "kind",
    "recipient",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "text",
    "collisions",
    "created_at",
    "sent_at",
)
_TABLE_TEXT_WIDTH = 60
_SHOWN = {
    "pending": (MessageStatus.PENDING,),
    "failed": (MessageStatus.FAILED,),
    "sent": (MessageStatus.SENT,),
    "all": (),
}


def message_record(message: OutboxMessage) -> dict[str, Any]:
    """The stable JSON shape of one outbox message (times in ISO 8601, UTC)."""
    return {
        "id": message.id,
        "kind": message.kind,
        "recipient": message.recipient,
        "status": message.status.value,
        "attempts": message.attempts,
        "next_attempt_at": iso(message.next_attempt_at, timespec="seconds"),
        "last_error": message.last_error,
        "text": message.text,
        "collisions": list(message.payload.get("collisions", [])),  # those it announces
        "created_at": iso(message.created_at, timespec="seconds"),
        "sent_at": iso(message.sent_at, timespec="seconds"),
    }


@click.group("outbox")
def outbox_group() -> None:
    """Notifications waiting for delivery, delivered, or dead-lettered."""


@outbox_group.command("list")
@click.option("--pending", "shown", flag_value="pending", default=True, help="Waiting (default).")
@click.option("--failed", "shown", flag_value="failed", help="Dead letters only.")
@click.option("--sent", "shown", flag_value="sent", help="Delivered only.")
@click.option("--all", "shown", flag_value="all", help="Every message.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many, newest first.")
@format_option
@click.pass_obj
def list_command(app: AppContext, shown: str, limit: int | None, output_format: str) -> None:
    """List outbox messages, newest first: pending ones unless told otherwise."""
    with app.transaction() as session:
        messages = queries.list_messages(session, statuses=_SHOWN[shown], limit=limit)
        records = [message_record(message) for message in messages]
    if output_format == "json":
        emit_json(records)
        return
    rows = [_table_row(record) for record in records]
    label = "" if shown == "all" else f" {shown}"
    emit_table(f"Outbox: {len(rows)}{label}", COLUMNS, rows, f"No{label} messages in the outbox.")


@outbox_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.pass_obj
def retry_command(app: AppContext, ids: tuple[int, ...]) -> None:
    """Re-queue dead letters IDS (all dead letters when none is given) for delivery now.

    A message held as "outcome unknown" may be in Slack already: named by its ID (you
    checked the channel), it is sent as it is; re-queued with all the others, it is looked
    for in the channel first."""
    with app.transaction() as session:
        messages = queries.retry_failed(session, ids)
        requeued = [message.id for message in messages]
    if not requeued:
        console.print("No dead letters to re-queue.", markup=False, highlight=False)
        return
    noun = "message" if len(requeued) == 1 else "messages"
    listed = ", ".join(str(message_id) for message_id in requeued)
    console.print(f"Re-queued {len(requeued)} {noun}: {listed}", markup=False, highlight=False)


def _table_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record as table cells: long texts on one short line, no accidental Rich markup."""
    row = {**record, "text": _shorten(record["text"]), "last_error": _shorten(record["last_error"])}
    return {key: escape(value) if isinstance(value, str) else value for key, value in row.items()}


def _shorten(text: str | None) -> str | None:
    if text is None:
        return None
    line = " ".join(text.split())
    return line if len(line) <= _TABLE_TEXT_WIDTH else line[: _TABLE_TEXT_WIDTH - 1] + "…"
