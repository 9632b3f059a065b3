"""The `decisions` table: every approval, rejection or change request on a test."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tower.db import Base, utcnow


class DecisionKind(enum.StrEnum):
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    REJECT = "reject"


class Decision(Base):
    """A manager's decision on one version of a test; an edit after approval voids it."""

    __tablename__ = "decisions"
    __table_args__ = (
        # One standing approval per manager and test: a double click cannot count twice.
        Index(
            "uq_decisions_standing_approval",
            "experiment_id",
            "actor",
            unique=True,
            postgresql_where=text("kind = 'approve' AND NOT voided"),
            sqlite_where=text("kind = 'approve' AND NOT voided"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[DecisionKind]
    actor: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    experiment_version: Mapped[int]
    voided: Mapped[bool] = mapped_column(default=False)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
