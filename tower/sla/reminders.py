"""The SLA sweep: warnings, breach notices and escalations of the running clocks.

The sweep is idempotent: warnings, the breach notice and each escalation are counted on the
clock (`warned`, `breached_at`, `escalations`) and queued with a dedupe key, so a sweep after
any downtime sends each reminder it missed exactly once, and a second sweep sends nothing.
It takes a session and never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.collisions.models import Collision
from tower.context import ServiceContext
from tower.db import BATCH
from tower.experiments.models import Experiment
from tower.messages import Message
from tower.outbox.kinds import NotificationKind
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notify import batch_stem, notify
from tower.outbox.payloads import MergedNotices, SlaNotice
from tower.policy import Policy
from tower.policy.calendar import to_utc
from tower.policy.schema import EscalationStep, SlaPolicy
from tower.sla import notices
from tower.sla.models import ClockState, SlaClock

# Escalation step k (k = 1, 2, ... after the breach notice) is taken once the clock is
# k x this share of its target overdue: with a 2-business-day review, the team channel hears
# one business day after the breach and the managers two business days after it.
ESCALATION_EVERY_SHARE_OF_TARGET = 0.5
# Business-hour comparisons forgive float rounding, far below a second.
TOLERANCE_HOURS = 1e-9


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


def sweep(session: Session, ctx: ServiceContext) -> SweepReport:
    """Queue every warning, breach notice and escalation due now and not yet sent.

    Only running clocks fire; a clock whose policy is no longer in the policy file is left
    alone. Warnings and the breach notice go to the first ladder step that reaches anyone;
    escalation k goes to ladder step k, and a step that reaches nobody is passed over.
    """
    ctx = ctx.at(to_utc(ctx.now, "now"))  # a naive moment is refused
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
        queued = notify(
            session,
            ctx,
            NotificationKind.SLA_NOTICES,
            [recipient],
            Message.of("\n\n").join(_said(m) for m in messages),
            dedupe_stem=batch_stem("sla-notices", (m.dedupe_key for m in messages)),
            payload=MergedNotices(
                notices=[m.id for m in messages], kinds=[m.kind for m in messages]
            ),
        )
        if not queued:
            continue
        [merged] = queued
        session.flush()
        for message in messages:
            message.status = MessageStatus.MERGED
            message.payload = _merged_into(message, merged.id)
    session.flush()


def _merged_into(message: OutboxMessage, merged: int) -> dict[str, object]:
    """The payload of a notice this sweep queued, naming the message it went out in."""
    notice = SlaNotice.model_validate(message.payload)
    return notice.model_copy(update={"merged_into": merged}).to_json()


def _said(message: OutboxMessage) -> Message:
    """What a notice queued by this sweep says, as data."""
    return Message.from_json(message.parts or [message.text])


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
        about = _about(clock, threshold=threshold)
        report.warnings += _queue(
            session, ctx, NotificationKind.SLA_WARNING, f"warn:{index}", first, text, about
        )
        clock.warned = index + 1
    if breached:
        text = notices.breach_text(
            sla, subject, hours_left=left, due_at=due_at, target_hours=clock.target_hours, zone=zone
        )
        report.breaches += _queue(
            session, ctx, NotificationKind.SLA_BREACH, "breach", first, text, _about(clock)
        )
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
        about = _about(clock, step=step, number=k)
        report.escalations += _queue(
            session, ctx, NotificationKind.SLA_ESCALATION, f"escalate:{k}", reached, text, about
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
    return notices.ClockSubject(label=Message.of(clock.subject), parties=())


def _first_reachable(
    ladder: Sequence[EscalationStep], policy: Policy, subject: notices.ClockSubject
) -> list[str]:
    for step in ladder:
        reached = notices.recipients(step, policy, subject)
        if reached:
            return reached
    return []


def _about(
    clock: SlaClock,
    *,
    threshold: float | None = None,
    step: str | None = None,
    number: int | None = None,
) -> SlaNotice:
    """The payload of a notice about `clock`: a warning names its threshold, an escalation
    its ladder step and number."""
    return SlaNotice(
        clock_id=clock.id,
        policy=clock.policy_key,
        subject=clock.subject,
        cycle=clock.cycle,
        due_at=clock.due_at,
        threshold=threshold,
        step=step,
        number=number,
    )


def _queue(
    session: Session,
    ctx: ServiceContext,
    kind: NotificationKind,
    key: str,
    recipients: Sequence[str],
    text: Message,
    about: SlaNotice,
) -> list[OutboxMessage]:
    """Queue one message per recipient; the dedupe key names the recipient only if several."""
    return notify(
        session,
        ctx,
        kind,
        recipients,
        text,
        dedupe_stem=f"sla:{about.clock_id}:{key}",
        payload=about,
        recipient_in_key=len(recipients) > 1,
    )
