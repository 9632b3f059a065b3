"""What people do about a collision: acknowledge it (an involved team, or a manager) or
waive it (a manager, saying why); who may, and in which states."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tower.collisions.details import CollisionDetails
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.collisions.refs import format_ref
from tower.collisions.service import get_collision
from tower.db import utcnow
from tower.errors import TowerError
from tower.experiments.permissions import PermissionDenied
from tower.policy import Policy
from tower.text import require_within


class CollisionActionError(TowerError):
    """An action on a collision that the actor may not take, or not in its current state."""


class CollisionActionDenied(CollisionActionError, PermissionDenied):
    """The actor may not take this action on the collision; adapters audit the attempt."""


def require_involved_or_manager(
    policy: Policy, collision: Collision, actor: str, verb: str
) -> None:
    """Only members of a team the collision involves, and managers, may `verb` it."""
    members = {
        member
        for key in CollisionDetails.of(collision).teams
        if (team := policy.team(key)) is not None
        for member in team.members
    }
    if actor not in members and not policy.is_manager(actor):
        raise CollisionActionDenied(
            f"{actor} is not in a team involved in {format_ref(collision)} nor a manager: "
            f"only they can {verb} it"
        )


def waive(session: Session, policy: Policy, ref: str, *, actor: str, reason: str) -> Collision:
    """A manager accepts a collision on purpose, saying why; re-checks keep the waiver."""
    collision = get_collision(session, ref)
    if not policy.is_manager(actor):
        raise CollisionActionDenied(
            f"only a control-tower manager can waive {format_ref(collision)}"
        )
    if not reason.strip():
        raise CollisionActionError(f"say why {format_ref(collision)} is waived (--reason)")
    require_within(reason, "reason")
    if collision.status not in (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED):
        raise CollisionActionError(
            f"{format_ref(collision)} is {collision.status.value}: only open or acknowledged "
            "collisions can be waived"
        )
    collision.status = CollisionStatus.WAIVED
    collision.waived_by, collision.waiver_reason = actor, reason.strip()
    return collision


def acknowledge(
    session: Session, policy: Policy, ref: str, *, actor: str, at: datetime | None = None
) -> Collision:
    """A member of an involved team (or a manager) says the collision has been seen."""
    collision = get_collision(session, ref)
    require_involved_or_manager(policy, collision, actor, "acknowledge")
    if collision.status == CollisionStatus.ACKNOWLEDGED:
        raise AlreadyAcknowledged(collision)
    if collision.status != CollisionStatus.OPEN:
        raise CollisionActionError(
            f"{format_ref(collision)} is {collision.status.value}: only open collisions can be "
            "acknowledged"
        )
    collision.status = CollisionStatus.ACKNOWLEDGED
    collision.acknowledged_by = actor
    collision.acknowledged_at = at or utcnow()
    return collision


class AlreadyAcknowledged(CollisionActionError):
    """Someone acknowledged the collision before: says who and when."""

    def __init__(self, collision: Collision) -> None:
        self.collision = collision
        when = collision.acknowledged_at
        at = f" on {when:%a %d %b %Y %H:%M} UTC" if when is not None else ""
        super().__init__(
            f"{format_ref(collision)} was already acknowledged by {collision.acknowledged_by}{at}"
        )
