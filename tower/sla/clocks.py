"""SLA clocks: started, paused, resumed and stopped by protocol events.

Events (`submitted`, `collision_opened`, ...) drive every SLA policy at once. A clock is about
a test (`T-42`), a collision (`C-7`) or, for a `per_team` policy, one team's part in a
collision (`C-7:checkout-squad`). A stop and a later start make a new cycle of the same
promise; a pause pushes the due time back by exactly the business time spent paused.
Services take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.orm import Session

from tower.collisions.models import AnnouncedRecord, Collision
from tower.context import ServiceContext
from tower.db import batches, insert_unless_present
from tower.experiments.models import Experiment
from tower.policy import Policy
from tower.policy.calendar import BusinessCalendar, to_utc
from tower.policy.schema import SlaPolicy
from tower.sla.models import ACTIVE_STATES, ClockState, SlaClock


@dataclass(frozen=True)
class _Target:
    """One clock's worth of subject: its key and what it is attached to."""

    subject: str
    team: str | None
    experiment_id: int | None
    collision_id: int | None


def handle_event(
    session: Session,
    ctx: ServiceContext,
    *,
    event: str,
    experiment: Experiment | None = None,
    collision: Collision | None = None,
    team: str | None = None,
) -> list[SlaClock]:
    """Apply a protocol event, happening now, to every SLA policy; the clocks it started,
    paused, resumed or stopped.

    `team` narrows a collision's event to that team's clock of per-team policies (a team
    acknowledging a collision stops its own clock, not the other team's).

    Pass the test for a test's events and the collision for a collision's events. A start
    while a clock of the subject is running or paused does nothing (a double submit is
    harmless); an event that both resumes and starts (`submitted` for reviews) resumes a
    paused clock rather than starting a new cycle. With both a test and a collision, the
    collision is the subject. A collision's pause, resume or stop event acts on all its
    clocks, every team's, including a team that has since left it.
    """
    if experiment is None and collision is None:
        raise ValueError(f"event {event!r} needs the test or the collision it happened to")
    moment = to_utc(ctx.now, "now")
    policy, calendar = ctx.policy, ctx.calendar
    changed: list[SlaClock] = []
    for sla in policy.sla:
        if event not in (sla.start, *sla.pause, *sla.resume, *sla.stop):
            continue
        targets = _targets(sla, experiment, collision)
        if team is not None and sla.per_team:
            targets = [target for target in targets if target.team == team]
        active = _active_clocks(session, sla, targets, None if team and sla.per_team else collision)
        busy = {clock.subject for clock in active}
        changed += [clock for clock in active if _apply(clock, sla, event, calendar, moment)]
        if event == sla.start:
            for target in targets:
                if target.subject not in busy:
                    started = _start(session, sla, policy, calendar, target, moment)
                    if started is not None:
                        changed.append(started)
    session.flush()
    return changed


def handle_collisions_event(
    session: Session,
    ctx: ServiceContext,
    *,
    event: str,
    collisions: Sequence[AnnouncedRecord],
    new: Collection[int] = (),
) -> None:
    """`handle_event` for many collisions at once (a resync opening thousands), with a few
    queries per batch of collisions instead of a few per clock. `new`: the ids of records
    this transaction created, which have no clock to look up."""
    if not collisions:
        return
    moment = to_utc(ctx.now, "now")
    for batch in batches(collisions):
        for sla in ctx.policy.sla:
            if event in (sla.start, *sla.pause, *sla.resume, *sla.stop):
                _collisions_event(session, ctx.policy, ctx.calendar, sla, event, batch, moment, new)
    session.flush()


def _collisions_event(
    session: Session,
    policy: Policy,
    calendar: BusinessCalendar,
    sla: SlaPolicy,
    event: str,
    collisions: Sequence[AnnouncedRecord],
    moment: datetime,
    new: Collection[int],
) -> None:
    """`event` on the clocks of `sla` for `collisions`: a stop is one UPDATE; a start writes
    the new clocks as rows, no object per clock."""
    ids = [c.id for c in collisions]
    if event in sla.stop and event not in (sla.start, *sla.pause, *sla.resume):
        _stop_clocks_of(session, sla, ids, moment)
        return
    known = [i for i in ids if i not in new]  # those that may have clocks already
    active = _active_clocks_of(session, sla, known)
    for clock in active:
        _apply(clock, sla, event, calendar, moment)
    if event != sla.start:
        return
    busy = {clock.subject for clock in active}
    waiting = [
        target
        for collision in collisions
        for target in _targets(sla, None, collision)
        if target.subject not in busy
    ]
    if not waiting:
        return
    cycles = _last_cycles(session, sla, known)
    hours = sla.target_hours(policy.calendar)
    due_at = calendar.add(moment, hours)
    rows = [
        {
            "policy_key": sla.key,
            "subject": target.subject,
            "experiment_id": target.experiment_id,
            "collision_id": target.collision_id,
            "team": target.team,
            "cycle": cycles.get(target.subject, 0) + 1,
            "state": ClockState.RUNNING,
            "started_at": moment,
            "due_at": due_at,
            "target_hours": hours,
            "warned": 0,
            "escalations": 0,
        }
        for target in waiting
    ]
    session.execute(insert(SlaClock), rows)


def _apply(
    clock: SlaClock, sla: SlaPolicy, event: str, calendar: BusinessCalendar, moment: datetime
) -> bool:
    """Pause, resume or stop `clock` as `event` says; whether it changed."""
    if clock.state == ClockState.PAUSED and event in sla.resume:
        _resume(clock, calendar, moment)
    elif clock.state == ClockState.RUNNING and event in sla.pause:
        clock.state, clock.paused_at = ClockState.PAUSED, moment
    elif event in sla.stop:
        clock.state, clock.stopped_at = ClockState.STOPPED, moment
    else:
        return False
    return True


def _active_clocks_of(session: Session, sla: SlaPolicy, collision_ids: list[int]) -> list[SlaClock]:
    found: list[SlaClock] = []
    for chunk in batches(collision_ids):
        query = select(SlaClock).where(
            SlaClock.policy_key == sla.key,
            SlaClock.state.in_(ACTIVE_STATES),
            SlaClock.collision_id.in_(chunk),
        )
        found += session.scalars(query)
    return found


def _stop_clocks_of(
    session: Session, sla: SlaPolicy, collision_ids: list[int], moment: datetime
) -> None:
    """Stop every running or paused clock of `sla` on the collisions `collision_ids`, in
    place (a change resolving hundreds of collisions builds no object per clock)."""
    for chunk in batches(collision_ids):
        session.execute(
            update(SlaClock)
            .where(
                SlaClock.policy_key == sla.key,
                SlaClock.state.in_(ACTIVE_STATES),
                SlaClock.collision_id.in_(chunk),
            )
            .values(state=ClockState.STOPPED, stopped_at=moment)
        )


def _last_cycles(session: Session, sla: SlaPolicy, collision_ids: list[int]) -> dict[str, int]:
    """The last cycle of each subject of `sla` on the collisions `collision_ids`, found by
    the collisions' ids (indexed: a resync asks while it writes tens of thousands of
    clocks, and PostgreSQL, with no statistics yet for them, scanned them by subject)."""
    found: dict[str, int] = {}
    for chunk in batches(collision_ids):
        query = (
            select(SlaClock.subject, func.max(SlaClock.cycle))
            .where(SlaClock.policy_key == sla.key, SlaClock.collision_id.in_(chunk))
            .group_by(SlaClock.subject)
        )
        found.update((subject, cycle) for subject, cycle in session.execute(query))
    return found


def _targets(
    sla: SlaPolicy, experiment: Experiment | None, collision: AnnouncedRecord | None
) -> list[_Target]:
    if collision is None:
        assert experiment is not None
        return [_Target(experiment.key, experiment.team, experiment.id, None)]
    ref = f"C-{collision.id}"
    if not sla.per_team:
        return [_Target(ref, None, None, collision.id)]
    return [_Target(f"{ref}:{team}", team, None, collision.id) for team in collision.teams]


def _active_clocks(
    session: Session, sla: SlaPolicy, targets: Sequence[_Target], collision: Collision | None
) -> list[SlaClock]:
    """The running and paused clocks of the event's subjects.

    For a collision, every clock of the collision counts, so a team that has since left it
    still has its clock paused or stopped with the others.
    """
    subjects: ColumnElement[bool] = SlaClock.subject.in_([t.subject for t in targets])
    if collision is not None:
        subjects = or_(subjects, SlaClock.collision_id == collision.id)
    query = (
        select(SlaClock)
        .where(SlaClock.policy_key == sla.key, SlaClock.state.in_(ACTIVE_STATES), subjects)
        .order_by(SlaClock.subject, SlaClock.cycle)
    )
    return list(session.scalars(query))


def _start(
    session: Session,
    sla: SlaPolicy,
    policy: Policy,
    calendar: BusinessCalendar,
    target: _Target,
    at: datetime,
) -> SlaClock | None:
    """A new cycle for the subject; None if a concurrent transaction started it first.
    One statement: the cycle after the subject's last, inserted unless it exists."""
    last = select(func.coalesce(func.max(SlaClock.cycle), 0)).where(
        SlaClock.policy_key == sla.key, SlaClock.subject == target.subject
    )
    target_hours = sla.target_hours(policy.calendar)
    started = insert_unless_present(
        session,
        SlaClock,
        policy_key=sla.key,
        subject=target.subject,
        experiment_id=target.experiment_id,
        collision_id=target.collision_id,
        team=target.team,
        cycle=last.scalar_subquery() + 1,
        state=ClockState.RUNNING,
        started_at=at,
        due_at=calendar.add(at, target_hours),
        target_hours=target_hours,
        warned=0,
        escalations=0,
    )
    clock: SlaClock | None = session.scalars(started.returning(SlaClock)).first()
    return clock


def _resume(clock: SlaClock, calendar: BusinessCalendar, at: datetime) -> None:
    """Run again, due later by exactly the business time spent paused."""
    assert clock.paused_at is not None
    resumed = max(at, clock.paused_at)
    left = calendar.between(clock.paused_at, clock.due_at)
    if left > 0:
        clock.due_at = calendar.add(resumed, left)
    else:  # paused while overdue: it stays overdue by the same business time
        paused_for = calendar.between(clock.paused_at, resumed)
        if paused_for > 0:
            clock.due_at = calendar.add(clock.due_at, paused_for)
    clock.state, clock.paused_at = ClockState.RUNNING, None
