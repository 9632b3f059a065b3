"""The `collisions` table and the tests each collision involves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tower.collisions.details import CollisionDetails
from tower.collisions.kinds import CollisionStatus
from tower.db import Base, utcnow
from tower.engine.kinds import CollisionKind, Severity
from tower.experiments.models import Experiment

collision_experiments = Table(
    "collision_experiments",
    Base.metadata,
    Column("collision_id", ForeignKey("collisions.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "experiment_id",
        ForeignKey("experiments.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,  # a change looks up the records of the tests it touched
    ),
)


__all__ = [
    "ANNOUNCED_DETAILS",
    "AnnouncedRecord",
    "Collision",
    "CollisionStatus",
    "OpenedRecord",
    "collision_experiments",
]


class Collision(Base):
    """One clash between two or more tests; `fingerprint` identifies it across re-checks."""

    __tablename__ = "collisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[CollisionKind]
    severity: Mapped[Severity]
    status: Mapped[CollisionStatus] = mapped_column(index=True, default=CollisionStatus.OPEN)
    agile_vs_bau: Mapped[bool] = mapped_column(default=False)
    explanation: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None]
    waived_by: Mapped[str | None] = mapped_column(String(32))
    waiver_reason: Mapped[str | None] = mapped_column(Text)

    experiments: Mapped[list[Experiment]] = relationship(secondary=collision_experiments)

    @property
    def owners(self) -> list[str]:
        """The owners of its tests."""
        return sorted({test.owner for test in self.experiments})

    @property
    def teams(self) -> list[str]:
        """The teams involved: those of its tests and those recorded with it."""
        recorded = CollisionDetails.of(self).teams
        return sorted({*recorded, *(test.team for test in self.experiments)})


class AnnouncedRecord(Protocol):
    """What announcing a collision and starting or stopping its clocks read of it: a stored
    record, or one a re-check just opened."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> CollisionKind: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def agile_vs_bau(self) -> bool: ...
    @property
    def explanation(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...
    @property
    def owners(self) -> list[str]: ...
    @property
    def teams(self) -> list[str]: ...


# What announcing a record reads of its details (`tower.collisions.alerts`, `flows`).
ANNOUNCED_DETAILS = ("keys", "teams", "first_day", "last_day", "fixes")


@dataclass(frozen=True)
class OpenedRecord:
    """A record a re-check opened: a value, not an object of the session (a resync or an
    import may open tens of thousands), with the details announcing it reads
    (`ANNOUNCED_DETAILS`); the stored record has them all."""

    id: int
    fingerprint: str
    kind: CollisionKind
    severity: Severity
    agile_vs_bau: bool
    explanation: str
    details: dict[str, Any]
    owners: list[str]

    @property
    def teams(self) -> list[str]:
        """The teams of its tests, as recorded when it opened."""
        return sorted(set(CollisionDetails.of(self).teams))
