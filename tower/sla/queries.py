"""Reading SLA clocks: a subject's clocks in due order, and one clock's standing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.models import Collision
from tower.experiments import service as experiment_service
from tower.json_text import iso
from tower.policy.calendar import BusinessCalendar, to_utc
from tower.sla.models import ACTIVE_STATES, ClockState, SlaClock


def running_clocks(session: Session, collision: Collision, teams: Sequence[str]) -> list[SlaClock]:
    """The collision's running or paused clocks of these teams."""
    if not teams:
        return []
    query = select(SlaClock).where(
        SlaClock.collision_id == collision.id,
        SlaClock.team.in_(list(teams)),
        SlaClock.state.in_(ACTIVE_STATES),
    )
    return list(session.scalars(query))


def clocks_for(session: Session, ref: str | None = None) -> list[SlaClock]:
    """Clocks in due order: all; those of test `T-42`; those of collision `C-7` (its
    per-team clocks); or, for text that is not a whole key (`T-`, `C-`), every clock whose
    subject starts with it. A whole key must name a test or collision (`NotFoundError`)."""
    query = select(SlaClock).order_by(SlaClock.due_at, SlaClock.id)
    text = (ref or "").strip()
    if text[-1:].isdigit():
        if text[:2].upper() == "C-":  # `c-7` is refused as no collision's id
            collision = collision_service.get_collision(session, text)
            query = query.where(SlaClock.collision_id == collision.id)
        else:
            experiment = experiment_service.get_by_key(session, text)
            query = query.where(SlaClock.experiment_id == experiment.id)
    elif text:
        query = query.where(SlaClock.subject.startswith(text))
    return list(session.scalars(query))


def clock_status(clock: SlaClock, calendar: BusinessCalendar, now: datetime) -> dict[str, Any]:
    """A clock as JSON-ready values.

    Business hours left count from `now` for a running clock, and are frozen at the pause or
    stop for the others; they are negative when overdue.
    """
    if clock.state == ClockState.PAUSED and clock.paused_at is not None:
        reference = clock.paused_at
    elif clock.state == ClockState.STOPPED and clock.stopped_at is not None:
        reference = clock.stopped_at
    else:
        reference = to_utc(now, "now")
    left = calendar.between(reference, clock.due_at)
    return {
        "policy": clock.policy_key,
        "subject": clock.subject,
        "collision": None if clock.collision_id is None else f"C-{clock.collision_id}",
        "team": clock.team,
        "cycle": clock.cycle,
        "state": clock.state.value,
        "started_at": clock.started_at.isoformat(),
        "due_at": clock.due_at.isoformat(),
        "target_hours": clock.target_hours,
        "business_hours_left": round(left, 2),
        "elapsed_share": round(1 - left / clock.target_hours, 4),
        "paused_at": iso(clock.paused_at),
        "stopped_at": iso(clock.stopped_at),
        "warned": clock.warned,
        "breached_at": iso(clock.breached_at),
        "escalations": clock.escalations,
    }
