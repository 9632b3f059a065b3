"""Collision use cases with their side effects: reconcile and announce, acknowledge, waive.

Each tells the people involved and drives the collision's SLA clocks in the caller's
transaction. They sit in the pipeline, above the records (`tower.collisions`), the SLA
clocks and the outbox they drive.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

from sqlalchemy.orm import Session

from tower.collisions import actions as collision_actions
from tower.collisions import alerts
from tower.collisions import service as collision_service
from tower.collisions.details import CollisionDetails
from tower.collisions.models import AnnouncedRecord, Collision
from tower.collisions.refs import format_ref
from tower.collisions.sync import DetailWriter, RecordScope, SyncReport, match_records
from tower.context import ServiceContext
from tower.engine.findings import Finding
from tower.engine.kinds import Severity
from tower.messages import Message, Person, Typed
from tower.outbox.kinds import NotificationKind
from tower.outbox.notify import messages_for
from tower.outbox.payloads import CollisionRef, Follows, Replace, Thread
from tower.outbox.service import NewMessage, enqueue_all
from tower.sla import clocks as sla_clocks
from tower.sla import queries as sla_queries


def reconcile(
    session: Session,
    ctx: ServiceContext,
    findings: Sequence[Finding],
    *,
    scope: RecordScope | None,
    details: DetailWriter,
    batch: bool = False,
) -> SyncReport:
    """The one place collision records open, reopen and resolve: bring the records in
    `scope` (None: all) in line with `findings`, and in the same transaction queue
    the announcements of the blocking ones (`batch`: one summary per channel) and drive
    their acknowledgement clocks."""
    report = match_records(session, findings, scope=scope, details=details)
    _announce(session, ctx, report, batch=batch)
    return report


def _announce(session: Session, ctx: ServiceContext, report: SyncReport, *, batch: bool) -> None:
    """Queue alerts (or summaries) for blocking collisions that opened or resolved, and
    start or stop their clocks."""
    stamp = ctx.now.isoformat(timespec="seconds")
    changed: list[AnnouncedRecord] = [*report.opened, *report.reopened]
    opened = [r for r in changed if r.severity == Severity.BLOCKING]
    resolved: list[AnnouncedRecord] = [
        r for r in report.resolved if r.severity == Severity.BLOCKING
    ]
    grouped, summarised = alerts.summaries(ctx.policy, opened, resolved, batch=batch)
    messages: list[NewMessage] = []
    for summary in grouped:
        messages += messages_for(
            ctx,
            alerts.SUMMARY_KIND,
            [summary.recipient],
            summary.text(),
            dedupe_stem=summary.dedupe_stem,
            payload=summary.payload(),
        )
    for record in opened:
        told = _opened_text(record)
        messages += _told(ctx, record, alerts.ALERT_KIND, told, stamp, skip=summarised)
    for record in resolved:
        text = f"Collision {format_ref(record)} ({' + '.join(_keys(record))}) no longer holds."
        messages += _told(
            ctx,
            record,
            NotificationKind.COLLISION_RESOLVED,
            text,
            stamp,
            follows="replaces",
            skip=summarised,
        )
    enqueue_all(session, messages)
    new = {record.id for record in report.opened}
    for event, records in (("collision_opened", opened), ("collision_resolved", resolved)):
        sla_clocks.handle_collisions_event(session, ctx, event=event, collisions=records, new=new)


def acknowledge(session: Session, ctx: ServiceContext, ref: str, *, actor: str) -> Collision:
    """A team says it has seen the collision: its acknowledgement clock stops. A second
    involved team acknowledges for itself; anyone else hears who acknowledged it, and when."""
    try:
        record = collision_actions.acknowledge(session, ctx.policy, ref, actor=actor, at=ctx.now)
    except collision_actions.AlreadyAcknowledged as already:
        record = already.collision
        teams = _teams_of(ctx, record, actor)
        if not sla_queries.running_clocks(session, record, teams):
            raise
    teams = _teams_of(ctx, record, actor)
    text = Message.of(f"Collision {format_ref(record)} acknowledged by ", Person(actor))
    stamp = ctx.now.isoformat(timespec="seconds")
    _tell(session, ctx, record, NotificationKind.COLLISION_ACKNOWLEDGED, text, stamp)
    acting: list[str | None] = [*teams] or [None]  # a manager acts for the collision
    for team in acting:
        sla_clocks.handle_event(
            session, ctx, event="collision_acknowledged", collision=record, team=team
        )
    return record


def _teams_of(ctx: ServiceContext, record: Collision, actor: str) -> list[str]:
    """The teams involved in `record` that `actor` belongs to."""
    return [
        key
        for key in CollisionDetails.of(record).teams
        if (team := ctx.policy.team(key)) is not None and actor in team.members
    ]


def waive(session: Session, ctx: ServiceContext, ref: str, *, actor: str, reason: str) -> Collision:
    """A manager accepts the collision on purpose: everyone involved is told why."""
    record = collision_actions.waive(session, ctx.policy, ref, actor=actor, reason=reason)
    sla_clocks.handle_event(session, ctx, event="collision_waived", collision=record)
    pair = " + ".join(_keys(record))
    text = Message.of(
        f"Collision {format_ref(record)} ({pair}) was waived by ",
        Person(actor),
        ": ",
        Typed(reason),
    )
    stamp = ctx.now.isoformat(timespec="seconds")
    _tell(session, ctx, record, NotificationKind.COLLISION_WAIVED, text, stamp)
    return record


def request_waiver(session: Session, ctx: ServiceContext, ref: str, *, actor: str) -> Collision:
    """Someone involved asks the managers to waive the collision (in the alert's thread)."""
    record = collision_service.get_collision(session, ref)
    collision_actions.require_involved_or_manager(ctx.policy, record, actor, "ask a waiver on")
    text = Message.of(Person(actor), f" asks a manager to waive collision {format_ref(record)}")
    stamp = ctx.now.isoformat(timespec="seconds")
    _tell(session, ctx, record, NotificationKind.WAIVER_REQUESTED, text, stamp)
    return record


def _tell(
    session: Session,
    ctx: ServiceContext,
    record: Collision,
    kind: NotificationKind,
    text: Message | str,
    stamp: str,
) -> None:
    """Queue `text` for every recipient of `record`, in the thread of the message that
    announced it (`_told`)."""
    enqueue_all(session, _told(ctx, record, kind, text, stamp, follows="thread_of"))


def _told(
    ctx: ServiceContext,
    record: AnnouncedRecord,
    kind: NotificationKind,
    text: Message | str,
    stamp: str,
    *,
    follows: Literal["replaces", "thread_of"] | None = None,
    skip: Collection[str] = (),
) -> list[NewMessage]:
    """`text` for every recipient (but those in `skip`); `follows` ties it to the message
    that announced the collision (`_announcement`), so Slack updates that message or
    answers in its thread."""
    ref = format_ref(record)
    recipients = [r for r in alerts.recipients(ctx.policy, record) if r not in skip]
    return messages_for(
        ctx,
        kind,
        recipients,
        text,
        dedupe_stem=f"{kind}:{ref}:{stamp}",
        payload=CollisionRef.of(ref, _keys(record)),
        follows=None if follows is None else _announcement(ref, follows),
    )


def _announcement(ref: str, how: Literal["replaces", "thread_of"]) -> Follows:
    """The message that announced collision `ref`: its alert, or the summary naming it.
    A collision a summary announced has no alert of its own to replace: a replacement
    then answers in the summary's thread."""
    in_thread = Thread(kinds=[alerts.ALERT_KIND, alerts.SUMMARY_KIND], collisions=ref)
    if how == "thread_of":
        return in_thread
    return Replace(kind=alerts.ALERT_KIND, collision=ref, otherwise=in_thread)


def _opened_text(record: AnnouncedRecord) -> Message:
    owners = Message.of(" ").join(Person(owner) for owner in record.owners)
    flag = " (agile vs BAU)" if record.agile_vs_bau else ""
    fixes = CollisionDetails.of(record).fixes
    lines: list[Message | str] = [
        Message.of(f"Blocking {record.kind.value} collision {format_ref(record)}{flag}: ", owners),
        record.explanation,
    ]
    lines += [f"Fix {n}: {fix}" for n, fix in enumerate(fixes, start=1)]
    return Message.of("\n").join(lines)


def _keys(record: AnnouncedRecord) -> list[str]:
    return list(CollisionDetails.of(record).keys)
