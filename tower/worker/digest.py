"""The weekly digest: the state of the pipeline in one message to the tower channel."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus, Severity
from tower.context import ServiceContext
from tower.experiments import service as experiment_service
from tower.pipeline.service import view
from tower.sla import service as sla_service
from tower.sla.models import ClockState
from tower.text import user_text

TOP = 5
LISTED = 10  # blocking collisions and overdue clocks named; the rest are counted


def digest_text(session: Session, ctx: ServiceContext) -> str:
    """Counts by state, the top of the ranked pipeline, open blockers and late promises."""
    states = Counter(e.status.value for e in experiment_service.list_experiments(session))
    ranked = [row for row in view(session, ctx.policy).pipeline_rows() if row["rank"]]
    week = ctx.today.isocalendar()
    lines = [
        f"Tower weekly digest, week {week.week} of {week.year}: "
        + ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in sorted(states.items()))
    ]
    lines.append("Top of the pipeline:")
    lines += [
        f"  {row['rank']}. {row['key']} {user_text(row['title'])} ({row['team']}), "
        f"score {_figure(row['score'])}"
        for row in ranked[:TOP]
    ]
    blockers = collision_service.collision_page(
        session,
        statuses=[CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED],
        severities=[Severity.BLOCKING],
        limit=LISTED,
    )
    lines.append(f"Unresolved blocking collisions: {blockers.total}")
    lines += [
        f"  {collision_service.format_ref(c)} {c.kind.value}: "
        f"{' + '.join(collision_service.keys_of(c))}"
        for c in blockers.items
    ]
    if blockers.more:
        lines.append(f"  ...and {blockers.more} more: `tower conflicts`")
    late = [
        clock
        for clock in sla_service.clocks_for(session)
        if clock.state == ClockState.RUNNING and clock.due_at <= ctx.now
    ]
    lines.append(f"Overdue SLA clocks: {len(late)}")
    lines += [
        f"  {clock.policy_key} {clock.subject} (due {clock.due_at:%d %b %H:%M} UTC)"
        for clock in late[:LISTED]
    ]
    if len(late) > LISTED:
        lines.append(f"  ...and {len(late) - LISTED} more: `tower sla`")
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "∞" if value is None else f"{value:.3g}"
