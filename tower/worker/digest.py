"""The weekly digest: the state of the pipeline in one message to the tower channel."""

from __future__ import annotations

from collections import Counter

from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus, Severity
from tower.context import ServiceContext
from tower.engine.analysis import analyse
from tower.pipeline.service import portfolio_items
from tower.sla import service as sla_service
from tower.sla.models import ClockState
from tower.text import user_text

TOP = 5


def digest_text(session: Session, ctx: ServiceContext) -> str:
    """Counts by state, the top of the ranked pipeline, open blockers and late promises."""
    items = portfolio_items(session)
    analysis = analyse(items, ctx.policy, today=ctx.today)
    states = Counter(item.status.value for item in items)
    week = ctx.today.isocalendar()
    lines = [
        f"Tower weekly digest, week {week.week} of {week.year}: "
        + ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in sorted(states.items()))
    ]
    lines.append("Top of the pipeline:")
    lines += [
        f"  {test.rank}. {test.item.key} {user_text(test.item.spec.title)} "
        f"({test.item.spec.team}), score {test.score.value:.3g}"
        for test in analysis.ranked[:TOP]
    ]
    blockers = collision_service.list_collisions(
        session,
        statuses=[CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED],
        severities=[Severity.BLOCKING],
    )
    lines.append(f"Unresolved blocking collisions: {len(blockers)}")
    lines += [
        f"  {collision_service.format_ref(c)} {c.kind.value}: "
        f"{' + '.join(collision_service.keys_of(c))}"
        for c in blockers
    ]
    late = [
        clock
        for clock in sla_service.clocks_for(session)
        if clock.state == ClockState.RUNNING and clock.due_at <= ctx.now
    ]
    lines.append(f"Overdue SLA clocks: {len(late)}")
    lines += [
        f"  {clock.policy_key} {clock.subject} (due {clock.due_at:%d %b %H:%M} UTC)"
        for clock in late
    ]
    return "\n".join(lines)
