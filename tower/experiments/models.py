"""The `experiments` table: one row per test in the registry."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tower.db import Base, utcnow
from tower.experiments.spec import (
    ExperimentKind,
    ExperimentResult,
    ExperimentSpec,
    ExperimentStatus,
    format_key,
)


class Experiment(Base):
    """A registered test; `version` is an optimistic lock bumped on every change."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="window_in_order"),
        CheckConstraint("traffic > 0 AND traffic <= 100", name="traffic_is_percent"),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint("lever > 0", name="lever_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    title: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[ExperimentKind]
    surfaces: Mapped[list[str]]
    audiences: Mapped[list[str]]
    exclude_audiences: Mapped[list[str]]
    start: Mapped[date] = mapped_column("start_date")
    end: Mapped[date] = mapped_column("end_date")
    traffic: Mapped[float]
    exclusion_group: Mapped[str | None] = mapped_column(String(64))
    primary_kpi: Mapped[str | None] = mapped_column(String(64))
    baseline: Mapped[float | None]
    mde: Mapped[float | None]
    hypothesis: Mapped[str] = mapped_column(Text)
    impact: Mapped[float | None]
    confidence: Mapped[float | None]
    effort_weeks: Mapped[float | None]
    lever: Mapped[float] = mapped_column(default=1.0, server_default="1")
    deadline: Mapped[date | None]
    status: Mapped[ExperimentStatus] = mapped_column(index=True)
    submitted_at: Mapped[datetime | None]
    result: Mapped[ExperimentResult | None]
    observed_lift: Mapped[float | None]
    result_note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)
    # Names the transaction that last changed the row (tower/pipeline/registry.py): with
    # `version`, it tells a warm portfolio index which rows it holds out of date.
    change_stamp: Mapped[str] = mapped_column(String(32), default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own API

    @property
    def key(self) -> str:
        """The human key, `T-42`."""
        return format_key(self.number)

    def spec(self) -> ExperimentSpec:
        """The editable fields as a plain, immutable value."""
        values: dict[str, Any] = {}
        for name in ExperimentSpec.field_names():
            value = getattr(self, name)
            values[name] = tuple(value) if isinstance(value, list) else value
        return ExperimentSpec(**values)

    def apply(self, spec: ExperimentSpec) -> None:
        """Set the editable fields from `spec` (validation is the caller's job)."""
        for name in ExperimentSpec.field_names():
            value = getattr(spec, name)
            setattr(self, name, list(value) if isinstance(value, tuple) else value)

    def __repr__(self) -> str:
        return f"<Experiment {self.key} {self.status.value} v{self.version}>"
