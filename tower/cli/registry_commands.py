"""`tower import|export|list|show`: the test registry from the command line."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import click

from tower.audit import service as audit_service
from tower.cli.context import AppContext
from tower.cli.output import console, emit_json, emit_table, format_option, keyed_listing
from tower.experiments import service as experiment_service
from tower.experiments.csv_rows import decode_roadmap
from tower.experiments.csv_transfer import OPERATOR, export_roadmap, import_roadmap
from tower.experiments.models import Experiment
from tower.experiments.permissions import PermissionDenied
from tower.experiments.spec import ExperimentStatus
from tower.pipeline.resync import recheck_all

LIST_COLUMNS = ("key", "title", "team", "owner", "kind", "surfaces", "window", "traffic", "status")


def experiment_record(experiment: Experiment) -> dict[str, Any]:
    """The stable JSON shape of one test: key, status, version, then every field."""
    return {
        "key": experiment.key,
        "status": experiment.status.value,
        "version": experiment.version,
        **experiment.spec().as_dict(),
    }


@click.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--by",
    "actor",
    help="Who imports, a user of the policy: a manager imports anything, a team member only "
    "their team's tests not yet approved, and no states. Without it, the operator running "
    "Tower imports anything.",
)
@click.pass_obj
def import_command(app: AppContext, path: Path, actor: str | None) -> None:
    """Import a roadmap CSV: all rows or none, and importing it again changes nothing."""
    text = decode_roadmap(path.read_bytes(), str(path))
    try:
        with app.transaction() as session:
            stream = io.StringIO(text, newline="")
            report = import_roadmap(
                session, stream, policy=app.policy, actor=actor, source=str(path)
            )
            changes = recheck_all(session, app.service_context())
    except PermissionDenied as denied:
        with app.transaction() as session:
            audit_service.record(
                session, actor=actor or OPERATOR, action="denied:import", reason=str(denied)
            )
        raise
    console.print(f"Imported {path}: {report.summary()}", markup=False, highlight=False)
    opened, resolved = changes.opened, changes.resolved
    if opened or resolved:
        console.print(
            f"Collisions: {opened} opened, {resolved} resolved (see `tower conflicts`)",
            markup=False,
            highlight=False,
        )


@click.command("export")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.pass_obj
def export_command(app: AppContext, path: Path) -> None:
    """Export every test to a roadmap CSV (`-` for standard output)."""
    with app.transaction() as session:
        if str(path) == "-":
            export_roadmap(session, sys.stdout)
            return
        with path.open("w", newline="", encoding="utf-8") as stream:
            count = export_roadmap(session, stream)
    console.print(f"Exported {count} tests to {path}", markup=False, highlight=False)


@click.command("list")
@click.option("--team", help="Only this team's tests.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([status.value for status in ExperimentStatus]),
    help="Only tests in this state (repeat for several).",
)
@format_option
@click.pass_obj
def list_command(
    app: AppContext, team: str | None, statuses: tuple[str, ...], output_format: str
) -> None:
    """List the portfolio: every registered test in window order."""
    with app.read_transaction() as session:
        experiments = experiment_service.list_experiments(
            session, team=team, statuses=[ExperimentStatus(s) for s in statuses]
        )
        records = [experiment_record(e) for e in experiments]
    if output_format == "json":
        emit_json(records)
        return
    rows = [
        {
            **record,
            "team": _team_label(app, record["team"]),
            "window": f"{record['start']} → {record['end']}",
            "traffic": f"{record['traffic']:g}%",
        }
        for record in records
    ]
    emit_table(f"Portfolio: {len(rows)} tests", LIST_COLUMNS, rows, "No tests registered yet.")


def _team_label(app: AppContext, key: str) -> str:
    team = app.policy.team(key)
    return key if team is None else f"{team.name} ({team.kind})"


@keyed_listing("show")
def show_command(app: AppContext, key: str, output_format: str) -> None:
    """Show one test with its history."""
    with app.read_transaction() as session:
        experiment = experiment_service.get_by_key(session, key)
        record = experiment_record(experiment)
        history = [
            {"at": e.at.isoformat(timespec="seconds"), "actor": e.actor, "action": e.action}
            for e in audit_service.events_for(session, experiment.id)
        ]
    if output_format == "json":
        emit_json({**record, "history": history})
        return
    emit_table(
        f"{record['key']}: {record['title']}",
        ("field", "value"),
        [{"field": name, "value": value} for name, value in record.items()],
        "",
    )
    emit_table("History", ("at", "actor", "action"), history, "No history.")
