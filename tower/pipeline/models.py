"""The read model: what writes keep current so that reads never compute or write.

- `registry_state`: one row. `version` goes up with every change to the registry and
  `stamp` names that change, so a process holding a warm index knows when it lags; the
  policy the records were last fully checked against; when scores and the plan were made.
- `registry_changes`: the tests each recent version wrote, so a lagging process reloads
  just those.
- `pipeline_scores`: each active test's score as of `registry_state.scored_on`; ranks are
  their order.
- `plan_entries`: the last plan, made off the request path (by the worker, a resync or an
  import); `registry_state.planned_version` says which registry version it planned.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from tower.db import Base, JsonDocument

REGISTRY_STATE_ID = 1


class RegistryState(Base):
    """Where the registry and its read model stand (always the row with id 1)."""

    __tablename__ = "registry_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    stamp: Mapped[str] = mapped_column(String(32), default="")
    checked_policy: Mapped[str | None] = mapped_column(String(64))  # policy fingerprint
    checked_at: Mapped[datetime | None]
    scored_on: Mapped[date | None]
    planned_version: Mapped[int | None]
    planned_at: Mapped[datetime | None]
    planned_on: Mapped[date | None]


class RegistryChange(Base):
    """One recent move of the registry's version: its stamp and the numbers of the tests
    the transaction had written by then (the oldest are dropped as new ones come)."""

    __tablename__ = "registry_changes"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    stamp: Mapped[str] = mapped_column(String(32))
    numbers: Mapped[list[int]] = mapped_column(JsonDocument)


class PipelineScore(Base):
    """One active test's score; `value` is None when its inputs cannot be scored."""

    __tablename__ = "pipeline_scores"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[float | None]
    confidence: Mapped[float | None]
    problem: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # model and factors


class PlanEntry(Base):
    """Where the last plan put one test."""

    __tablename__ = "plan_entries"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int]
    planned_start: Mapped[date | None]
    planned_end: Mapped[date | None]
    explanation: Mapped[str] = mapped_column(Text, default="")
    row_version: Mapped[int | None]  # the test's `Experiment.version` when it was planned
    live: Mapped[bool] = mapped_column(default=False, server_default=false())
    misses_deadline: Mapped[bool] = mapped_column(default=False, server_default=false())
