"""`tower worker` (the scheduler process), `tower sweep` (every due job once) and
`tower resync` (the whole portfolio re-checked)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import click

from tower.cli.context import AppContext
from tower.cli.output import console
from tower.worker import jobs
from tower.worker.policy_file import PolicyFile
from tower.worker.scheduler import Intervals, run_worker


def _show_notifications() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@click.command("sweep")
@click.option(
    "--now",
    type=click.DateTime(
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]
    ),
    help="Run as of this moment (ISO 8601; without an offset it is UTC). Default: now.",
)
@click.pass_obj
def sweep_command(app: AppContext, now: datetime | None) -> None:
    """Run every due job once and exit: resync, transitions, SLA reminders, digest, outbox."""
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    _show_notifications()
    ctx = app.service_context(now)
    report = jobs.run_due_jobs(app.session_factory, ctx, app.notifier())
    console.print(
        f"Sweep at {ctx.now.isoformat(timespec='seconds')}: {report.summary()}",
        markup=False,
        highlight=False,
    )


@click.command("resync")
@click.pass_obj
def resync_command(app: AppContext) -> None:
    """Re-check the whole portfolio, write only what differs and announce new collisions."""
    report = jobs.JobsReport()
    jobs.run_resync(app.session_factory, app.service_context(), report)
    if report.resync is not None:
        console.print(f"Resync: {report.resync.summary()}", markup=False, highlight=False)
    if report.slot_notices:
        told = f"{report.slot_notices} team channel(s) told of slots given across teams"
        console.print(told, markup=False, highlight=False)


@click.command("worker")
@click.option("--dispatch-every", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option("--sla-every", type=float, default=60.0, show_default=True, help="Seconds.")
@click.option("--transitions-every", type=float, default=300.0, show_default=True, help="Seconds.")
@click.pass_obj
def worker_command(
    app: AppContext, dispatch_every: float, sla_every: float, transitions_every: float
) -> None:
    """Run the scheduler until stopped (SIGTERM or Ctrl-C); one active worker at a time."""
    _show_notifications()
    intervals = Intervals(
        dispatch=timedelta(seconds=dispatch_every),
        sla=timedelta(seconds=sla_every),
        transitions=timedelta(seconds=transitions_every),
    )
    policy = PolicyFile(app.settings.policy_path, app.policy)
    run_worker(app.engine, app.session_factory, policy, app.notifier(), intervals)
