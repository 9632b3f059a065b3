"""Tower's scheduled jobs, each safe to run again and again: a run after downtime catches up
once, never once per missed run.

- transitions: approved tests go live on their start date (gates re-checked), live tests
  complete after their end date;
- SLA sweep: warnings, breaches and escalations, each sent once;
- weekly digest: once per ISO week, from Monday at opening time;
- resync: the whole portfolio re-checked (at start, every 15 minutes), and the plan made
  again whenever the registry or the policy moved on since the last one;
- outbox dispatch: deliver what the others (and every user action) queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tower.context import ServiceContext
from tower.db import read_only
from tower.errors import TowerError
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus, format_key
from tower.outbox.dispatcher import DispatchReport, dispatch_due
from tower.outbox.kinds import NotificationKind
from tower.outbox.notifier import Notifier
from tower.outbox.notify import notify
from tower.outbox.payloads import Digest
from tower.pipeline import reads
from tower.pipeline.resync import ResyncReport, resync
from tower.protocol import notices, runs
from tower.protocol.outcome import Outcome
from tower.protocol.slot_notices import tell_given_slots
from tower.sla import reminders as sla_reminders
from tower.worker.digest import digest_text

logger = logging.getLogger("tower.worker")

MAX_DISPATCH_ROUNDS = 1000  # a sweep stops delivering after this many rounds of 100


@dataclass
class JobsReport:
    """What one pass over the due jobs did."""

    launched: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    sla_messages: int = 0
    digest: bool = False
    resync: ResyncReport | None = None
    slot_notices: int = 0  # channel messages on slots given across teams
    dispatch: DispatchReport = field(default_factory=DispatchReport)

    def summary(self) -> str:
        return (
            f"launched {len(self.launched)}, held back {len(self.held)}, completed "
            f"{len(self.completed)}, SLA notices {self.sla_messages}, digest "
            f"{'queued' if self.digest else 'not due'}; "
            f"resync: {self.resync.summary() if self.resync else 'not due'}; "
            f"outbox: {self.dispatch.summary()}"
        )


def run_transitions(
    factory: sessionmaker[Session], ctx: ServiceContext, report: JobsReport
) -> None:
    """Launch approved tests whose start has come, complete live ones whose end has passed.

    One transaction per test, so one test's trouble never holds back the others.
    """
    with factory.begin() as session:
        due_launch = session.scalars(
            select(Experiment.number).where(
                Experiment.status == ExperimentStatus.APPROVED, Experiment.start <= ctx.today
            )
        ).all()
    for number in due_launch:
        key = format_key(number)
        outcome = _attempt(factory, partial(runs.launch, ctx=ctx, key=key))
        if outcome is not None:
            (report.launched if outcome.changed else report.held).append(key)
    # After the launches: a test whose whole window passed during downtime goes live and
    # completes in the same run.
    with factory.begin() as session:
        due_complete = session.scalars(
            select(Experiment.number).where(
                Experiment.status == ExperimentStatus.LIVE, Experiment.end < ctx.today
            )
        ).all()
    for number in due_complete:
        key = format_key(number)
        outcome = _attempt(factory, partial(runs.complete, ctx=ctx, key=key))
        if outcome is not None and outcome.changed:
            report.completed.append(key)


def _attempt(
    factory: sessionmaker[Session], action: Callable[[Session], Outcome]
) -> Outcome | None:
    try:
        with factory.begin() as session:
            return action(session)
    except TowerError as error:  # e.g. someone changed the test meanwhile: next run retries
        logger.warning("scheduled transition skipped: %s", error)
        return None


def run_sla_sweep(factory: sessionmaker[Session], ctx: ServiceContext, report: JobsReport) -> None:
    with factory.begin() as session:
        swept = sla_reminders.sweep(session, ctx)
        report.sla_messages += swept.queued


def run_digest(factory: sessionmaker[Session], ctx: ServiceContext, report: JobsReport) -> None:
    """Queue this week's digest once it is Monday opening time or later (once per week)."""
    opens = ctx.policy.calendar.working_hours[0]
    if ctx.today.weekday() == 0 and ctx.now.astimezone(ctx.calendar.zone).time() < opens:
        return  # Monday before opening: last week's digest stands
    year, week, _ = ctx.today.isocalendar()
    name = f"{year}-W{week:02d}"
    with factory.begin() as session:
        queued = notify(
            session,
            ctx,
            NotificationKind.DIGEST,
            notices.managers_destination(ctx.policy),
            digest_text(session, ctx),
            dedupe_stem=f"digest:{name}",
            payload=Digest(week=name),
        )
        report.digest = report.digest or bool(queued)


def run_resync(factory: sessionmaker[Session], ctx: ServiceContext, report: JobsReport) -> None:
    """Re-check the whole portfolio; only differences are written and announced. Then
    the teams whose slot the plan gives to another team's test hear it (once)."""
    report.resync = resync(factory, ctx)
    with factory.begin() as session:
        report.slot_notices += tell_given_slots(session, ctx)


def run_replan(factory: sessionmaker[Session], ctx: ServiceContext, report: JobsReport) -> None:
    """Resync when the plan lags the registry, the scores are from another day, or the
    records were checked against another policy."""
    with read_only(factory) as session:
        standing = reads.standing(session, ctx.policy)
    if standing.stale(ctx.today):
        run_resync(factory, ctx, report)


def run_dispatch(
    factory: sessionmaker[Session], ctx: ServiceContext, notifier: Notifier, report: JobsReport
) -> None:
    report.dispatch = dispatch_due(factory, notifier, now=ctx.now)


def deliver_everything(
    factory: sessionmaker[Session], ctx: ServiceContext, notifier: Notifier, report: JobsReport
) -> None:
    """Deliver every queued message not waiting for a retry, in rounds of a hundred (what a
    one-shot sweep does, whatever moment it reasons at)."""
    total = DispatchReport()
    for _ in range(MAX_DISPATCH_ROUNDS):
        round_ = dispatch_due(factory, notifier, now=ctx.now, unsent_too=True)
        total = total.plus(round_)
        if not round_.sent:
            break
    report.dispatch = total


def run_due_jobs(
    factory: sessionmaker[Session], ctx: ServiceContext, notifier: Notifier
) -> JobsReport:
    """Every job once, in an order that lets this pass deliver what it queued."""
    report = JobsReport()
    run_resync(factory, ctx, report)
    run_transitions(factory, ctx, report)
    run_sla_sweep(factory, ctx, report)
    run_digest(factory, ctx, report)
    deliver_everything(factory, ctx, notifier, report)
    return report
