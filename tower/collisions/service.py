"""Collision records: opened, kept, reopened and resolved as the engine's findings change.

A finding is matched to its record by fingerprint, so acknowledgements and waivers survive
every re-check; a record whose clash no longer holds is resolved.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tower.collisions.kinds import CollisionStatus, Severity
from tower.collisions.models import Collision
from tower.db import utcnow
from tower.engine.analysis import PipelineAnalysis
from tower.engine.findings import Finding
from tower.errors import NotFoundError, TowerError
from tower.experiments.models import Experiment
from tower.policy import Policy

LIVE_STATUSES = (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED, CollisionStatus.WAIVED)


class CollisionActionError(TowerError):
    """An action on a collision that the actor may not take, or not in its current state."""


@dataclass
class SyncReport:
    """What a re-check changed, by collision record."""

    opened: list[Collision] = field(default_factory=list)
    reopened: list[Collision] = field(default_factory=list)
    resolved: list[Collision] = field(default_factory=list)
    kept: list[Collision] = field(default_factory=list)


def format_ref(collision: Collision) -> str:
    """The human reference of a collision: `C-12`."""
    return f"C-{collision.id}"


def keys_of(collision: Collision) -> list[str]:
    """The tests in a collision, as recorded when it was last seen."""
    keys: list[str] = collision.details.get("keys", [])
    return keys


def sync(session: Session, analysis: PipelineAnalysis) -> SyncReport:
    """Make the records match the analysis's findings."""
    now = utcnow()
    report = SyncReport()
    records = {
        record.fingerprint: record
        for record in session.scalars(
            select(Collision).options(selectinload(Collision.experiments))
        )
    }
    numbers = {f.item.key: f.item.number for f in analysis.footprints.values()}
    experiments = {
        e.key: e
        for e in session.scalars(
            select(Experiment).where(Experiment.number.in_(list(numbers.values())))
        )
    }
    for finding in analysis.findings:
        details = _details(finding, analysis)
        record = records.pop(finding.fingerprint, None)
        if record is None:
            record = Collision(
                fingerprint=finding.fingerprint,
                kind=finding.kind,
                status=CollisionStatus.OPEN,
                experiments=[experiments[key] for key in finding.keys if key in experiments],
            )
            session.add(record)
            report.opened.append(record)
        elif record.status == CollisionStatus.RESOLVED:
            # A clash that comes back is a new problem: earlier acknowledgements and waivers
            # were about the old one.
            record.status, record.resolved_at = CollisionStatus.OPEN, None
            record.acknowledged_by = record.waived_by = record.waiver_reason = None
            report.reopened.append(record)
        else:
            report.kept.append(record)
        record.severity = finding.severity
        record.agile_vs_bau = finding.agile_vs_bau
        record.explanation = finding.explanation
        if record.details != details:
            record.details = details
    for record in records.values():
        if record.status in LIVE_STATUSES:
            record.status, record.resolved_at = CollisionStatus.RESOLVED, now
            report.resolved.append(record)
    session.flush()
    return report


def _details(finding: Finding, analysis: PipelineAnalysis) -> dict[str, Any]:
    teams = [analysis.footprints[key].item.spec.team for key in finding.keys]
    return {
        "keys": list(finding.keys),
        "teams": teams,
        "scope": finding.scope,
        "surfaces": list(finding.surfaces),
        "first_day": finding.first_day.isoformat(),
        "last_day": finding.last_day.isoformat(),
        "days": finding.days,
        "people_per_week": finding.people_per_week,
        "affected": {key: round(share, 4) for key, share in finding.affected},
        "fixes": list(analysis.fixes.get(finding.fingerprint, ())),
    }


def list_collisions(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
) -> list[Collision]:
    """Collision records by severity, then in the order they were first found."""
    query = select(Collision).order_by(Collision.severity, Collision.id)
    if statuses:
        query = query.where(Collision.status.in_(list(statuses)))
    if severities:
        query = query.where(Collision.severity.in_(list(severities)))
    return list(session.scalars(query))


def get_collision(session: Session, ref: str) -> Collision:
    """The collision `C-12` (or `12`); `NotFoundError` if there is none."""
    text = ref.strip().upper().removeprefix("C-")
    collision = session.get(Collision, int(text)) if text.isdigit() else None
    if collision is None:
        raise NotFoundError(f"there is no collision {ref.strip()} (they look like C-12)")
    return collision


def waive(session: Session, policy: Policy, ref: str, *, actor: str, reason: str) -> Collision:
    """A manager accepts a collision on purpose, saying why; re-checks keep the waiver."""
    collision = get_collision(session, ref)
    if not policy.is_manager(actor):
        raise CollisionActionError(
            f"only a control-tower manager can waive {format_ref(collision)}"
        )
    if not reason.strip():
        raise CollisionActionError(f"say why {format_ref(collision)} is waived (--reason)")
    if collision.status not in (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED):
        raise CollisionActionError(
            f"{format_ref(collision)} is {collision.status.value}: only open or acknowledged "
            "collisions can be waived"
        )
    collision.status = CollisionStatus.WAIVED
    collision.waived_by, collision.waiver_reason = actor, reason.strip()
    return collision


def acknowledge(session: Session, policy: Policy, ref: str, *, actor: str) -> Collision:
    """A member of an involved team (or a manager) says the collision has been seen."""
    collision = get_collision(session, ref)
    members = {
        member
        for key in collision.details.get("teams", [])
        if (team := policy.team(key)) is not None
        for member in team.members
    }
    if actor not in members and not policy.is_manager(actor):
        raise CollisionActionError(
            f"{actor} is not in a team involved in {format_ref(collision)} nor a manager"
        )
    if collision.status != CollisionStatus.OPEN:
        raise CollisionActionError(
            f"{format_ref(collision)} is {collision.status.value}: only open collisions can be "
            "acknowledged"
        )
    collision.status = CollisionStatus.ACKNOWLEDGED
    collision.acknowledged_by = actor
    return collision
