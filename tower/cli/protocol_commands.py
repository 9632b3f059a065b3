"""`tower submit|approve|reject|request-changes|withdraw|cancel|complete|record-result|edit|
prioritize|gates|audit|sla|playbook`: the release protocol from the command line.

`--by USER` names the actor; it is checked against the policy's managers and team members
exactly as the Slack bot checks it. `--version N` says which version of the test you looked
at: if it changed since, nothing happens and you are told.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from sqlalchemy.orm import Session

from tower.audit import service as audit_service
from tower.cli.context import AppContext
from tower.cli.output import console, emit_json, emit_table, format_option, keyed_listing
from tower.context import ServiceContext
from tower.experiments import service as experiment_service
from tower.experiments.csv_rows import read_fields
from tower.experiments.playbook import playbook
from tower.protocol import edits, review, runs, steps
from tower.protocol.outcome import InvalidEdit, Outcome
from tower.protocol.refusals import refusals_recorded
from tower.sla import queries as sla_queries

Run = Callable[[Session, ServiceContext], Outcome]


def _by(function: Any) -> Any:
    return click.option("--by", "actor", required=True, help="Your Slack user ID.")(function)


def _version(function: Any) -> Any:
    return click.option(
        "--version", "expected_version", type=int, help="The version of the test you saw."
    )(function)


def _act(app: AppContext, key: str, actor: str, action: str, run: Run) -> None:
    """Run one protocol action in one transaction; audit a refused attempt in another."""
    refused = refusals_recorded(app.session_factory, key=key, actor=actor, action=action)
    with refused, app.transaction() as session:
        outcome = run(session, app.service_context())
        message, gates = outcome.message, [g.as_dict() for g in outcome.gates]
    console.print(message, markup=False, highlight=False)
    for gate in gates:
        mark = "ok  " if gate["passed"] else "FAIL"
        console.print(f"  {mark} {gate['name']}: {gate['message']}", markup=False, highlight=False)


def _simple(name: str, action: str, run: Callable[..., Outcome], doc: str) -> click.Command:
    """A command `tower NAME KEY --by USER [--version N]`."""

    @click.command(name, help=doc)
    @click.argument("key")
    @_by
    @_version
    @click.pass_obj
    def command(app: AppContext, key: str, actor: str, expected_version: int | None) -> None:
        _act(
            app,
            key,
            actor,
            action,
            lambda s, c: run(s, c, key, actor=actor, expected_version=expected_version),
        )

    return command


def _reasoned(
    name: str,
    action: str,
    run: Callable[..., Outcome],
    doc: str,
    *,
    reason_help: str,
    required: bool,
) -> click.Command:
    """A command `tower NAME KEY --by USER [--version N] --reason TEXT`."""

    @click.command(name, help=doc)
    @click.argument("key")
    @_by
    @_version
    @click.option("--reason", required=required, default=None if required else "", help=reason_help)
    @click.pass_obj
    def command(
        app: AppContext, key: str, actor: str, expected_version: int | None, reason: str
    ) -> None:
        _act(
            app,
            key,
            actor,
            action,
            lambda s, c: run(
                s, c, key, actor=actor, expected_version=expected_version, reason=reason
            ),
        )

    return command


submit_command = _simple("submit", "submit", review.submit, "Send test KEY for review.")
complete_command = _simple(
    "complete",
    "complete",
    runs.complete,
    "End live test KEY early (the worker completes tests after their end date).",
)
approve_command = _reasoned(
    "approve",
    "approve",
    review.approve,
    "Approve test KEY (managers; never your own test unless the policy allows it).",
    reason_help="A note for the owner.",
    required=False,
)
reject_command = _reasoned(
    "reject",
    "reject",
    review.reject,
    "Reject test KEY (managers, with a reason).",
    reason_help="Why the test is turned down.",
    required=True,
)
request_changes_command = _reasoned(
    "request-changes",
    "request_changes",
    review.request_changes,
    "Send test KEY back to its owner for changes (managers, with a reason).",
    reason_help="What to change.",
    required=True,
)
withdraw_command = _reasoned(
    "withdraw",
    "withdraw",
    runs.withdraw,
    "Take test KEY off the pipeline before it runs.",
    reason_help="Why.",
    required=False,
)
cancel_command = _reasoned(
    "cancel",
    "cancel",
    runs.cancel,
    "Stop an approved or live test KEY.",
    reason_help="Why the test stops.",
    required=True,
)


@click.command("record-result")
@click.argument("key")
@_by
@_version
@click.option("--result", required=True, type=click.Choice(["winner", "loser", "inconclusive"]))
@click.option("--lift", type=float, help="Observed relative lift on the primary KPI (0.04 = 4%).")
@click.option("--note", default="", help="What was learnt.")
@click.pass_obj
def record_result_command(
    app: AppContext,
    key: str,
    actor: str,
    expected_version: int | None,
    result: str,
    lift: float | None,
    note: str,
) -> None:
    """Record the result of completed test KEY."""
    _act(
        app,
        key,
        actor,
        "record_result",
        lambda s, c: runs.record_result(
            s,
            c,
            key,
            actor=actor,
            result=result,
            lift=lift,
            note=note,
            expected_version=expected_version,
        ),
    )


@click.command("edit")
@click.argument("key")
@_by
@_version
@click.option(
    "--set",
    "assignments",
    multiple=True,
    required=True,
    metavar="FIELD=VALUE",
    help="A field as in the roadmap CSV, e.g. --set start=2027-01-04 --set 'audiences=gold;silver'",
)
@click.pass_obj
def edit_command(
    app: AppContext,
    key: str,
    actor: str,
    expected_version: int | None,
    assignments: tuple[str, ...],
) -> None:
    """Change fields of test KEY; changing the footprint, window or KPI voids an approval."""
    texts = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator:
            raise click.BadParameter(f"{assignment!r} is not FIELD=VALUE", param_hint="--set")
        texts[name.strip()] = value

    def edit(session: Session, ctx: ServiceContext) -> Outcome:
        # Who may edit is settled before what they typed is read: an outsider's attempt is
        # refused and audited whatever its values.
        steps.load_for_team(session, ctx, key, actor=actor, verb="edit")
        values, errors = read_fields(texts)
        if errors:
            lines = [f"{key} was not changed:", *(f"  {e.column}: {e.message}" for e in errors)]
            raise InvalidEdit("\n".join(lines))
        return edits.edit(
            session, ctx, key, actor=actor, changes=values, expected_version=expected_version
        )

    _act(app, key, actor, "edit", edit)


@click.command("prioritize")
@click.argument("key")
@_by
@click.option(
    "--lever", type=float, help="Business lever (the score clamps it to the policy's range)."
)
@click.option("--deadline", type=click.DateTime(formats=["%Y-%m-%d"]), help="Business deadline.")
@click.option("--no-deadline", is_flag=True, help="Remove the deadline.")
@click.pass_obj
def prioritize_command(
    app: AppContext,
    key: str,
    actor: str,
    lever: float | None,
    deadline: datetime | None,
    no_deadline: bool,
) -> None:
    """Set test KEY's business lever or deadline (managers)."""
    _act(
        app,
        key,
        actor,
        "prioritize",
        lambda s, c: edits.set_priority(
            s,
            c,
            key,
            actor=actor,
            lever=lever,
            deadline=None if deadline is None else deadline.date(),
            clear_deadline=no_deadline,
        ),
    )


@keyed_listing("gates")
def gates_command(app: AppContext, key: str, output_format: str) -> None:
    """Show which approval gates test KEY passes now, and what to fix."""
    with app.read_transaction() as session:
        ctx = app.service_context()
        experiment = experiment_service.get_by_key(session, key)
        gates = [g.as_dict() for g in review.gates_for(session, ctx, experiment)]
    if output_format == "json":
        emit_json(gates)
        return
    emit_table(f"Gates of {key}", ("name", "passed", "message"), gates, "")


@keyed_listing("audit")
def audit_command(app: AppContext, key: str, output_format: str) -> None:
    """The history of test KEY: who did what, when, why, and what changed."""
    with app.transaction() as session:
        experiment = experiment_service.get_by_key(session, key)
        events = [
            {
                "at": e.at.isoformat(timespec="seconds"),
                "actor": e.actor,
                "action": e.action,
                "reason": e.reason,
                "changed": _changed(e.before, e.after),
                "before": e.before,
                "after": e.after,
            }
            for e in audit_service.events_for(session, experiment.id)
        ]
    if output_format == "json":
        emit_json(events)
        return
    emit_table(
        f"Audit of {key}", ("at", "actor", "action", "reason", "changed"), events, "No events."
    )


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if before is None or after is None:
        return ""
    return ", ".join(
        f"{name}: {before.get(name)} → {after.get(name)}"
        for name in after
        if before.get(name) != after.get(name)
    )


@click.command("sla")
@click.argument("key", required=False)
@click.option("--all", "show_all", is_flag=True, help="Include stopped clocks.")
@format_option
@click.pass_obj
def sla_command(app: AppContext, key: str | None, show_all: bool, output_format: str) -> None:
    """SLA clocks (of test KEY or collision C-n), with due time and state."""
    ctx = app.service_context()
    with app.transaction() as session:
        rows = [
            sla_queries.clock_status(clock, ctx.calendar, ctx.now)
            for clock in sla_queries.clocks_for(session, key)
            if show_all or clock.state.value != "stopped"
        ]
    if output_format == "json":
        emit_json(rows)
        return
    columns = (
        "policy",
        "subject",
        "cycle",
        "state",
        "due_at",
        "business_hours_left",
        "breached_at",
    )
    emit_table("SLA clocks", columns, rows, "No SLA clocks.")


@click.command("playbook")
@format_option
@click.pass_obj
def playbook_command(app: AppContext, output_format: str) -> None:
    """What worked: recorded results by surface and primary KPI."""
    with app.transaction() as session:
        entries = playbook(session)
    if output_format == "json":
        emit_json(entries)
        return
    columns = (
        "surface",
        "kpi",
        "tests",
        "winners",
        "losers",
        "inconclusive",
        "average_winning_lift",
    )
    emit_table("Playbook", columns, entries, "No results recorded yet.")


COMMANDS = (
    submit_command,
    approve_command,
    reject_command,
    request_changes_command,
    withdraw_command,
    cancel_command,
    complete_command,
    record_result_command,
    edit_command,
    prioritize_command,
    gates_command,
    audit_command,
    sla_command,
    playbook_command,
)
