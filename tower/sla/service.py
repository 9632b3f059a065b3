"""SLA clocks: started, paused, resumed and stopped by protocol events; swept for reminders.

Events (`submitted`, `collision_opened`, ...) drive every SLA policy at once. A clock is about
a test (`T-42`), a collision (`C-7`) or, for a `per_team` policy, one team's part in a
collision (`C-7:checkout-squad`). A stop and a later start make a new cycle of the same
promise; a pause pushes the due time back by exactly the business time spent paused.

The sweep is idempotent: warnings, the breach notice and each escalation are counted on the
clock (`warned`, `breached_at`, `escalations`) and queued with a dedupe key, so a sweep after
any downtime sends each reminder it missed exactly once, and a second sweep sends nothing.
Services take a session and never commit.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.orm import Session

from tower.collisions.models import AnnouncedRecord, Collision
from tower.context import ServiceContext
from tower.db import BATCH, batches, insert_unless_present
from tower.experiments.models import Experiment
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notify import notify
from tower.policy import Policy
from tower.policy.calendar import BusinessCalendar
from tower.policy.schema import EscalationStep, SlaPolicy
from tower.sla import notices
from tower.sla.models import ClockState, SlaClock

# Escalation step k (k = 1, 2, ... after the breach notice) is taken once the clock is
# k x this share of its target overdue: with a 2-business-day review, the team channel hears
# one business day after the breach and the managers two business days after it.
ESCALATION_EVERY_SHARE_OF_TARGET = 0.5
# Business-hour comparisons forgive float rounding, far below a second.
TOLERANCE_HOURS = 1e-9
ACTIVE_STATES = (ClockState.RUNNING, ClockState.PAUSED)


@dataclass
class SweepReport:
    """The outbox messages one sweep queued, by kind."""

    warnings: list[OutboxMessage] = field(default_factory=list)
    breaches: list[OutboxMessage] = field(default_factory=list)
    escalations: list[OutboxMessage] = field(default_factory=list)

    @property
    def queued(self) -> int:
        """How many messages the sweep queued in all."""
        return len(self.warnings) + len(self.breaches) + len(self.escalations)


@dataclass(frozen=True)
class _Target:
    """One clock's worth of subject: its key and what it is attached to."""

    subject: str
    team: str | None
    experiment_id: int | None
    collision_id: int | None


# Events


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
    moment = _aware(ctx.now, "now")
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
    moment = _aware(ctx.now, "now")
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


# Sweep


def sweep(session: Session, ctx: ServiceContext) -> SweepReport:
    """Queue every warning, breach notice and escalation due now and not yet sent.

    Only running clocks fire; a clock whose policy is no longer in the policy file is left
    alone. Warnings and the breach notice go to the first ladder step that reaches anyone;
    escalation k goes to ladder step k, and a step that reaches nobody is passed over.
    """
    ctx = ctx.at(_aware(ctx.now, "now"))  # a naive moment is refused
    policies = {sla.key: sla for sla in ctx.policy.sla}
    report = SweepReport()
    running = session.scalars(  # streamed: an imported portfolio runs tens of thousands
        select(SlaClock)
        .where(SlaClock.state == ClockState.RUNNING)
        .order_by(SlaClock.id)
        .execution_options(yield_per=BATCH)
    )
    for clock in running:
        sla = policies.get(clock.policy_key)
        if sla is not None:
            _sweep_clock(session, ctx, clock, sla, report)
    session.flush()
    _merge_per_recipient(session, ctx, report)
    return report


def _merge_per_recipient(session: Session, ctx: ServiceContext, report: SweepReport) -> None:
    """One message per recipient: when a sweep queued several notices for one person or
    channel, they go out together; each notice's row stays as its record (`merged`)."""
    by_recipient: dict[str, list[OutboxMessage]] = defaultdict(list)
    for message in [*report.warnings, *report.breaches, *report.escalations]:
        by_recipient[message.recipient].append(message)
    for recipient, messages in by_recipient.items():
        if len(messages) < 2:
            continue
        messages.sort(key=lambda m: m.id)
        keys = ",".join(m.dedupe_key for m in messages)
        digest = hashlib.sha256(keys.encode()).hexdigest()[:16]
        queued = notify(
            session,
            ctx,
            "sla_notices",
            [recipient],
            "\n\n".join(m.text for m in messages),
            dedupe_stem=f"sla-notices:{digest}",
            payload={"notices": [m.id for m in messages], "kinds": [m.kind for m in messages]},
        )
        if not queued:
            continue
        [merged] = queued
        session.flush()
        for message in messages:
            message.status = MessageStatus.MERGED
            message.payload = {**message.payload, "merged_into": merged.id}
    session.flush()


def _sweep_clock(
    session: Session, ctx: ServiceContext, clock: SlaClock, sla: SlaPolicy, report: SweepReport
) -> None:
    policy, calendar, now = ctx.policy, ctx.calendar, ctx.now
    left = calendar.between(now, clock.due_at)
    elapsed, overdue = clock.target_hours - left, -left
    pending_warnings = [
        (index, threshold)
        for index, threshold in enumerate(sorted(sla.warn_at))
        if index >= clock.warned and elapsed >= threshold * clock.target_hours - TOLERANCE_HOURS
    ]
    breached = clock.breached_at is None and now >= clock.due_at
    ladder = sla.escalation
    # Being overdue by any business time means the due time has passed: breached already.
    steps_due = [
        k
        for k in range(clock.escalations + 1, len(ladder))
        if overdue >= k * ESCALATION_EVERY_SHARE_OF_TARGET * clock.target_hours - TOLERANCE_HOURS
    ]
    if not (pending_warnings or breached or steps_due):
        return
    subject = _subject(session, clock, policy)
    first = _first_reachable(ladder, policy, subject)
    zone, due_at = calendar.zone, clock.due_at
    for index, threshold in pending_warnings:
        text = notices.warning_text(
            sla,
            subject,
            threshold=threshold,
            hours_left=left,
            due_at=due_at,
            target_hours=clock.target_hours,
            zone=zone,
        )
        extra: dict[str, Any] = {"threshold": threshold}
        report.warnings += _queue(
            session, ctx, clock, "warning", f"warn:{index}", first, text, extra
        )
        clock.warned = index + 1
    if breached:
        text = notices.breach_text(
            sla, subject, hours_left=left, due_at=due_at, target_hours=clock.target_hours, zone=zone
        )
        report.breaches += _queue(session, ctx, clock, "breach", "breach", first, text, {})
        clock.breached_at = due_at
    for k in steps_due:
        step = ladder[k]
        text = notices.escalation_text(
            sla,
            subject,
            step=step,
            number=k,
            ladder=ladder,
            hours_left=left,
            due_at=due_at,
            zone=zone,
        )
        reached = notices.recipients(step, policy, subject)
        extra = {"step": step, "number": k}
        report.escalations += _queue(
            session, ctx, clock, "escalation", f"escalate:{k}", reached, text, extra
        )
        clock.escalations = k


def _subject(session: Session, clock: SlaClock, policy: Policy) -> notices.ClockSubject:
    if clock.collision_id is not None:
        collision = session.get(Collision, clock.collision_id)
        if collision is not None:
            return notices.collision_subject(collision, policy, team=clock.team)
    elif clock.experiment_id is not None:
        experiment = session.get(Experiment, clock.experiment_id)
        if experiment is not None:
            return notices.experiment_subject(experiment)
    return notices.ClockSubject(label=clock.subject, parties=())


def _first_reachable(
    ladder: Sequence[EscalationStep], policy: Policy, subject: notices.ClockSubject
) -> list[str]:
    for step in ladder:
        reached = notices.recipients(step, policy, subject)
        if reached:
            return reached
    return []


def _queue(
    session: Session,
    ctx: ServiceContext,
    clock: SlaClock,
    kind: str,
    key: str,
    recipients: Sequence[str],
    text: str,
    extra: dict[str, Any],
) -> list[OutboxMessage]:
    """Queue one message per recipient; the dedupe key names the recipient only if several."""
    payload = {
        "clock_id": clock.id,
        "policy": clock.policy_key,
        "subject": clock.subject,
        "cycle": clock.cycle,
        "due_at": clock.due_at.isoformat(),
        **extra,
    }
    return notify(
        session,
        ctx,
        f"sla_{kind}",
        recipients,
        text,
        dedupe_stem=f"sla:{clock.id}:{key}",
        payload=payload,
        recipient_in_key=len(recipients) > 1,
    )


# Reading


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


def clocks_for(session: Session, subject_prefix: str | None = None) -> list[SlaClock]:
    """Clocks in due order, all or those of one subject.

    A prefix that ends in a digit is a whole key: `T-4` matches `T-4` but not `T-42`, and
    `C-7` matches `C-7` and its per-team clocks `C-7:team`. Any other prefix (`C-`, `T-4`
    followed by nothing numeric) matches every subject that starts with it.
    """
    query = select(SlaClock).order_by(SlaClock.due_at, SlaClock.id)
    if subject_prefix:
        prefix = subject_prefix.strip()
        if prefix[-1:].isdigit():
            query = query.where(
                or_(SlaClock.subject == prefix, SlaClock.subject.startswith(f"{prefix}:"))
            )
        else:
            query = query.where(SlaClock.subject.startswith(prefix))
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
        reference = _aware(now, "now")
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
        "paused_at": _iso(clock.paused_at),
        "stopped_at": _iso(clock.stopped_at),
        "warned": clock.warned,
        "breached_at": _iso(clock.breached_at),
        "escalations": clock.escalations,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _aware(moment: datetime, name: str) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} {moment.isoformat()} has no time zone: pass an aware datetime")
    return moment.astimezone(UTC)
