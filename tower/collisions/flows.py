"""Collision use cases with their side effects: re-check and announce, acknowledge, waive.

Each tells the people involved and drives the collision's SLA clocks in the caller's
transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from tower.collisions import service as collision_service
from tower.collisions.kinds import Severity
from tower.collisions.models import Collision
from tower.collisions.service import SyncReport, format_ref
from tower.context import ServiceContext
from tower.outbox.service import enqueue
from tower.sla import service as sla_service
from tower.text import user_text


def refresh(session: Session, ctx: ServiceContext) -> SyncReport:
    """Re-check the whole portfolio and announce what changed: after every change to a test."""
    from tower.pipeline.service import recheck

    _, report = recheck(session, ctx.policy, today=ctx.today)
    announce(session, ctx, report)
    return report


def announce(session: Session, ctx: ServiceContext, report: SyncReport) -> None:
    """Queue alerts for blocking collisions that opened or resolved, and drive their clocks."""
    stamp = ctx.now.isoformat(timespec="seconds")
    for record in [*report.opened, *report.reopened]:
        if record.severity != Severity.BLOCKING:
            continue
        _tell(session, ctx, record, "collision_opened", _opened_text(record), stamp)
        sla_service.handle_event(
            session,
            ctx.policy,
            ctx.calendar,
            event="collision_opened",
            at=ctx.now,
            collision=record,
        )
    for record in report.resolved:
        if record.severity != Severity.BLOCKING:
            continue
        text = f"Collision {format_ref(record)} ({' + '.join(_keys(record))}) no longer holds."
        _tell(session, ctx, record, "collision_resolved", text, stamp, follows="replaces")
        sla_service.handle_event(
            session,
            ctx.policy,
            ctx.calendar,
            event="collision_resolved",
            at=ctx.now,
            collision=record,
        )


def acknowledge(session: Session, ctx: ServiceContext, ref: str, *, actor: str) -> Collision:
    """A team says it has seen the collision: its acknowledgement clock stops."""
    record = collision_service.acknowledge(session, ctx.policy, ref, actor=actor)
    teams = [
        key
        for key in record.details.get("teams", [])
        if (team := ctx.policy.team(key)) is not None and actor in team.members
    ]
    text = f"Collision {format_ref(record)} acknowledged by <@{actor}>"
    stamp = ctx.now.isoformat(timespec="seconds")
    _tell(session, ctx, record, "collision_acknowledged", text, stamp, follows="thread_of")
    for team in teams or [None]:
        sla_service.handle_event(
            session,
            ctx.policy,
            ctx.calendar,
            event="collision_acknowledged",
            at=ctx.now,
            collision=record,
            team=team,
        )
    return record


def waive(session: Session, ctx: ServiceContext, ref: str, *, actor: str, reason: str) -> Collision:
    """A manager accepts the collision on purpose: everyone involved is told why."""
    record = collision_service.waive(session, ctx.policy, ref, actor=actor, reason=reason)
    sla_service.handle_event(
        session, ctx.policy, ctx.calendar, event="collision_waived", at=ctx.now, collision=record
    )
    pair = " + ".join(_keys(record))
    text = f"Collision {format_ref(record)} ({pair}) was waived by <@{actor}>: {user_text(reason)}"
    stamp = ctx.now.isoformat(timespec="seconds")
    _tell(session, ctx, record, "collision_waived", text, stamp, follows="thread_of")
    return record


def request_waiver(session: Session, ctx: ServiceContext, ref: str, *, actor: str) -> Collision:
    """Someone involved asks the managers to waive the collision (in the alert's thread)."""
    record = collision_service.get_collision(session, ref)
    text = f"<@{actor}> asks a manager to waive collision {format_ref(record)}"
    stamp = ctx.now.isoformat(timespec="seconds")
    _tell(session, ctx, record, "waiver_requested", text, stamp, follows="thread_of")
    return record


def recipients(ctx: ServiceContext, record: Collision) -> list[str]:
    """Each involved team's channel, then the tower channel, each once."""
    found: list[str] = []
    for team_key in record.details.get("teams", []):
        team = ctx.policy.team(team_key)
        if team is not None and team.channel and team.channel not in found:
            found.append(team.channel)
    if ctx.policy.tower_channel and ctx.policy.tower_channel not in found:
        found.append(ctx.policy.tower_channel)
    return found


def _tell(
    session: Session,
    ctx: ServiceContext,
    record: Collision,
    kind: str,
    text: str,
    stamp: str,
    *,
    follows: str | None = None,
) -> None:
    """Queue `text` for every recipient; `follows` ("replaces" or "thread_of") ties it to the
    alert that opened the collision, so Slack updates that message or answers in its thread."""
    ref = format_ref(record)
    payload: dict[str, object] = {"collision": ref, "keys": _keys(record)}
    if follows is not None:
        payload[follows] = {"kind": "collision_opened", "collision": ref}
    for recipient in recipients(ctx, record):
        enqueue(
            session,
            kind=kind,
            recipient=recipient,
            text=text,
            at=ctx.now,
            dedupe_key=f"{kind}:{ref}:{stamp}:{recipient}",
            payload=payload,
        )


def _opened_text(record: Collision) -> str:
    owners = " ".join(sorted({f"<@{e.owner}>" for e in record.experiments}))
    flag = " (agile vs BAU)" if record.agile_vs_bau else ""
    fixes = record.details.get("fixes", [])
    lines = [
        f"Blocking {record.kind.value} collision {format_ref(record)}{flag}: {owners}",
        record.explanation,
    ]
    lines += [f"Fix {n}: {fix}" for n, fix in enumerate(fixes, start=1)]
    return "\n".join(lines)


def _keys(record: Collision) -> list[str]:
    keys: list[str] = record.details.get("keys", [])
    return keys
