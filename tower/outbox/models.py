"""The `outbox_messages` table: notifications waiting for, or done with, delivery."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tower.db import Base, JsonDocument, utcnow


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # dead-lettered after the last attempt; `tower outbox retry` re-queues
    MERGED = "merged"  # delivered as part of another message (`payload.merged_into`)


class OutboxMessage(Base):
    """One notification to one recipient; `dedupe_key` makes writing it twice harmless."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(64))  # a Slack channel or user ID
    text: Mapped[str] = mapped_column(Text)  # plain: a person as `@U0ANNA`, as a console shows
    # The message as data (`tower.messages.Message.to_json`), for each channel to render;
    # None for a message queued before messages were data: its `text` is in Slack's form.
    parts: Mapped[list[Any] | None] = mapped_column(JsonDocument)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[MessageStatus] = mapped_column(index=True, default=MessageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    receipt: Mapped[dict[str, Any] | None]  # where the notifier put it (Slack channel and ts)
    # A dispatcher's lease (tower/outbox/leases.py): it alone sends the message until then.
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    # When its first attempt began, and whether a later one must first look for it: an
    # attempt's outcome is unknown (dropped after sending, no answer, its sender died).
    first_attempt_at: Mapped[datetime | None]
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    # Until when a post its holder began may still land (wall clock): a dispatcher taking
    # the message over sends nothing before then.
    may_land_until: Mapped[datetime | None]
