"""The `answered_requests` table: each request that must act once, and the answer it got."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tower.db import Base


class AnsweredRequest(Base):
    """A request by its fingerprint: when it first arrived and, once answered, the answer
    (HTTP status, content type and body) every copy of it gets."""

    __tablename__ = "answered_requests"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(String(128))
    body: Mapped[str | None] = mapped_column(Text)
