"""The safety net: re-check the whole portfolio and write only what differs.

`tower resync`, the worker (at start, every 15 minutes, and when the policy changes) and
`tower sweep` run it. It reads and computes outside any write transaction, then writes the
differences (records, scores, plan) in one short one, announcing through the one place
that opens collisions. If a change lands while it computes, it computes again; overtaken
`ATTEMPTS` times (writers never pause), it holds them off once and re-checks inside its
write transaction, so it always gets through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tower.collisions.sync import SyncReport, finding_details
from tower.context import ServiceContext
from tower.db import read_only, refresh_planner_statistics
from tower.engine.analysis import PipelineAnalysis, analyse
from tower.engine.findings import Finding
from tower.engine.mde_cost import SampleNeedsByKey
from tower.messages import Message, Typed
from tower.outbox.kinds import NotificationKind
from tower.outbox.notify import messages_for
from tower.outbox.payloads import DeadlineMissed
from tower.outbox.service import NewMessage, enqueue_all
from tower.pipeline import collision_flows, read_model, registry
from tower.pipeline.index import portfolio_items

ATTEMPTS = 3
BULK_ROWS = 1000  # rows a re-check writes that make the planner's statistics worth refreshing


@dataclass
class ResyncReport:
    """What a full re-check changed."""

    tests: int
    findings: int
    opened: int
    resolved: int
    rows_written: int
    seconds: float
    sync: SyncReport = field(repr=False)  # the records it opened, kept and resolved
    analysis: PipelineAnalysis = field(repr=False)

    @property
    def changed(self) -> bool:
        return bool(self.opened or self.resolved or self.rows_written)

    def summary(self) -> str:
        text = (
            f"re-checked {self.tests} tests ({self.findings} collisions) in "
            f"{self.seconds:.1f} s: {self.opened} opened, {self.resolved} resolved, "
            f"{self.rows_written} scores and plan rows written"
        )
        outside = self.analysis.outside
        if outside:
            # Every one of them, for the person who must edit them (this text goes to the
            # command's output and the worker's log, never to Slack).
            named = ", ".join(f"{key} ({', '.join(names)})" for key, names in outside.items())
            text += (
                f"; {len(outside)} tests name what the policy no longer has, left out until "
                f"edited: {named}"
            )
        return text


def resync(factory: sessionmaker[Session], ctx: ServiceContext) -> ResyncReport:
    """Re-check everything, then write the differences in one short transaction (after
    `ATTEMPTS` overtaken re-checks, in one that holds writers off while it computes)."""
    started = time.perf_counter()
    for _ in range(ATTEMPTS):
        with read_only(factory) as session:
            seen = registry.peek(session)
            items = portfolio_items(session)
        analysis = analyse(items, ctx.policy, today=ctx.today)
        with factory.begin() as session:
            row = registry.state(session, for_update=True)
            if registry.mark_of(row) != seen:
                continue  # a change landed meanwhile: compute again
            return write_analysis(session, ctx, analysis, started)
    with factory.begin() as session:
        registry.state(session, for_update=True)  # every writer waits from here on
        return recheck_all(session, ctx, started=started)


def recheck_all(
    session: Session, ctx: ServiceContext, *, started: float | None = None
) -> ResyncReport:
    """Re-check everything inside the caller's transaction (an import changing much of the
    portfolio scans it once rather than checking each test)."""
    started = time.perf_counter() if started is None else started
    session.flush()
    analysis = analyse(portfolio_items(session), ctx.policy, today=ctx.today)
    return write_analysis(session, ctx, analysis, started)


def write_analysis(
    session: Session, ctx: ServiceContext, analysis: PipelineAnalysis, started: float
) -> ResyncReport:
    """Records, scores and plan as the analysis says; the state row says what they match."""
    teams = {key: footprint.item.spec.team for key, footprint in analysis.footprints.items()}
    needs = SampleNeedsByKey(analysis.footprints, analysis.compiler)

    def details(finding: Finding) -> dict[str, Any]:
        fixes = analysis.fixes.get(finding.fingerprint, ())
        return finding_details(finding, teams, fixes, needs)

    sync: SyncReport = collision_flows.reconcile(
        session, ctx, analysis.findings, scope=None, details=details, batch=True
    )
    written = read_model.store_analysis(session, analysis)
    _tell_missed_deadlines(session, ctx, analysis)
    row = registry.state(session)
    fingerprint = registry.policy_fingerprint(ctx.policy)
    facts = {
        "checked_policy": fingerprint,
        "scored_on": ctx.today,
        "planned_version": row.version,
        "planned_on": ctx.today,
    }
    stale = {name: value for name, value in facts.items() if getattr(row, name) != value}
    if stale or written or sync.opened or sync.reopened or sync.resolved:
        for name, value in stale.items():
            setattr(row, name, value)
        row.checked_at = row.planned_at = ctx.now
    session.flush()
    if written + len(sync.opened) + len(sync.reopened) + len(sync.resolved) >= BULK_ROWS:
        refresh_planner_statistics(session)
    return ResyncReport(
        tests=len(analysis.footprints),
        findings=len(analysis.findings),
        opened=len(sync.opened) + len(sync.reopened),
        resolved=len(sync.resolved),
        rows_written=written,
        seconds=time.perf_counter() - started,
        sync=sync,
        analysis=analysis,
    )


def _tell_missed_deadlines(
    session: Session, ctx: ServiceContext, analysis: PipelineAnalysis
) -> None:
    """The owner and the managers hear, once per deadline, of each test the plan cannot
    fit before its deadline."""
    messages: list[NewMessage] = []
    for key, placement in analysis.placements.items():
        if not placement.misses_deadline or placement.deadline is None:
            continue
        spec = analysis.footprints[key].item.spec
        text = Message.of(
            f"{key} '", Typed(spec.title), f"' misses its deadline: {placement.explanation}"
        )
        deadline = placement.deadline
        messages += messages_for(
            ctx,
            NotificationKind.DEADLINE_MISSED,
            [spec.owner, *ctx.policy.managers_destination()],
            text,
            dedupe_stem=f"deadline-missed:{key}:{deadline.isoformat()}",
            payload=DeadlineMissed(key=key, deadline=deadline),
        )
    enqueue_all(session, messages)
