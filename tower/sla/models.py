"""The `sla_clocks` table: one row per cycle of one promise on one test or collision."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tower.db import Base


class ClockState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


# A running clock counts the time; a paused one will again. A stopped one is done.
ACTIVE_STATES = (ClockState.RUNNING, ClockState.PAUSED)


class SlaClock(Base):
    """A running promise: due at `due_at`, pushed back by paused business time.

    `warned` counts the warning thresholds already notified and `escalations` the steps of
    the ladder already taken, so a sweep after downtime sends each reminder once.
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("policy_key", "subject", "cycle", name="one_clock_per_cycle"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_key: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))  # `T-42`, or `C-7:team-key` per team
    experiment_id: Mapped[int | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    collision_id: Mapped[int | None] = mapped_column(
        ForeignKey("collisions.id", ondelete="CASCADE"), index=True
    )
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    cycle: Mapped[int] = mapped_column(default=1)
    state: Mapped[ClockState] = mapped_column(index=True, default=ClockState.RUNNING)
    started_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    target_hours: Mapped[float]
    paused_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    warned: Mapped[int] = mapped_column(default=0)
    breached_at: Mapped[datetime | None]
    escalations: Mapped[int] = mapped_column(default=0)
