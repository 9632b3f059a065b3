"""The weekly digest: the state of the pipeline in one message to the tower channel."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.collisions.refs import format_ref, keys_of
from tower.context import ServiceContext
from tower.engine.kinds import Severity
from tower.experiments.models import Experiment
from tower.messages import Message, Typed
from tower.paging import first_objects
from tower.pipeline import reads
from tower.sla.models import ClockState, SlaClock

TOP = 5
LISTED = 10  # blocking collisions and overdue clocks named; the rest are counted


def digest_text(session: Session, ctx: ServiceContext) -> Message:
    """Counts by state, the top of the ranked pipeline, open blockers and late promises."""
    counted = session.execute(select(Experiment.status, func.count()).group_by(Experiment.status))
    states = Counter({status.value: count for status, count in counted})
    kinds = {team.key: team.kind for team in ctx.policy.teams}
    top = reads.pipeline_page(session, ctx.policy, kinds, limit=TOP).items  # read in full
    ranked = [row for row in top if row["rank"]]
    week = ctx.today.isocalendar()
    lines: list[Message | str] = [
        f"Tower weekly digest, week {week.week} of {week.year}: "
        + ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in sorted(states.items()))
    ]
    lines.append("Top of the pipeline:")
    lines += [
        Message.of(
            f"  {row['rank']}. {row['key']} ",
            Typed(row["title"]),
            f" ({row['team']}), score {_figure(row['score'])}",
        )
        for row in ranked[:TOP]
    ]
    blockers = collision_service.collision_page(
        session,
        statuses=[CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED],
        severities=[Severity.BLOCKING],
        limit=LISTED,
    )
    lines.append(f"Unresolved blocking collisions: {blockers.total}")
    lines += [f"  {format_ref(c)} {c.kind.value}: {' + '.join(keys_of(c))}" for c in blockers.items]
    if blockers.more:
        lines.append(f"  ...and {blockers.more} more: `tower conflicts`")
    overdue = select(SlaClock).where(
        SlaClock.state == ClockState.RUNNING, SlaClock.due_at <= ctx.now
    )
    late = first_objects(session, overdue.order_by(SlaClock.due_at, SlaClock.id), LISTED)
    lines.append(f"Overdue SLA clocks: {late.total}")
    lines += [
        f"  {clock.policy_key} {clock.subject} (due {clock.due_at:%d %b %H:%M} UTC)"
        for clock in late.items
    ]
    if late.more:
        lines.append(f"  ...and {late.more} more: `tower sla`")
    return Message.of("\n").join(lines)


def _figure(value: float | None) -> str:
    return "∞" if value is None else f"{value:.3g}"
