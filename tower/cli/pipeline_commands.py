"""`tower pipeline|conflicts|plan|check`: the ranked pipeline, its collisions and its plan.

Each reads stored state in a read-only transaction: none of them writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import click

from tower.cli.context import AppContext
from tower.cli.output import (
    console,
    emit_json,
    emit_json_list,
    emit_lines,
    emit_table,
    error_console,
    format_option,
)
from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.engine.kinds import Severity
from tower.experiments import service as experiment_service
from tower.pipeline import reads, records
from tower.pipeline.records import CollisionRecord
from tower.pipeline.service import PipelineView, view


def today_option(function: Any) -> Any:
    """`--today YYYY-MM-DD`: the day the analysis is for (urgency counts from it)."""
    return click.option(
        "--today",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Analyse as of this date (default: today in the policy's time zone).",
    )(function)


def _view(app: AppContext, session: Any, today: datetime | None) -> PipelineView:
    """The stored pipeline, or the registry analysed in memory as of `--today`."""
    day: date | None = None if today is None else today.date()
    found = view(session, app.policy, today=day)
    _tell_notes(found.notes)
    return found


def _tell_notes(notes: list[str]) -> None:
    """What the reader should know about how current the data is (on standard error, so
    `--format json` prints only JSON)."""
    for note in notes:
        error_console.print(f"note: {note}", markup=False, highlight=False)


@click.command("pipeline")
@today_option
@format_option
@click.pass_obj
def pipeline_command(app: AppContext, today: datetime | None, output_format: str) -> None:
    """The ranked pipeline: every active test with its score and factors."""
    with app.read_transaction() as session:
        rows = _view(app, session, today).pipeline_rows()
    if output_format == "json":
        emit_json(rows)
        return
    factor_names: list[dict[str, Any]] = next((r["factors"] for r in rows if r["factors"]), [])
    columns = ["rank", "key", "title", "team", "score", *(f["name"] for f in factor_names)]
    table = [
        {
            **row,
            "rank": row["rank"] or "-",
            "team": f"{row['team']} ({row['team_kind']})",
            "score": "unscored" if row["score"] is None else f"{row['score']:.3g}",
            **{f["name"]: _figure(f["value"]) for f in row["factors"]},
        }
        for row in rows
    ]
    model = app.policy.scoring.model
    emit_table(f"Pipeline ({model} model)", columns, table, "No active tests.")
    for row in rows:
        if row["problem"]:
            console.print(f"{row['key']}: {row['problem']}", markup=False, highlight=False)


@click.command("conflicts")
@click.option("--all", "show_all", is_flag=True, help="Also warnings, info and closed ones.")
@today_option
@format_option
@click.pass_obj
def conflicts_command(
    app: AppContext, show_all: bool, today: datetime | None, output_format: str
) -> None:
    """Unresolved blocking collisions; `--all` shows every collision."""
    with app.read_transaction() as session:
        _tell_notes(reads.standing(session, app.policy).notes())
        found = collision_service.stream_collision_rows(
            session,
            statuses=() if show_all else [CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED],
            severities=() if show_all else [Severity.BLOCKING],
        )
        rows = (records.collision_record(c) for c in found)
        if output_format == "json":
            emit_json_list(rows)
            return
        _print_collisions(
            list(rows), "No unresolved blocking collisions." if not show_all else "No collisions."
        )


def _print_collisions(rows: list[CollisionRecord], empty: str) -> None:
    if not rows:
        console.print(empty)
        return
    emit_lines((line for row in rows for line in _collision_lines(row)), wrap=True)


def _collision_lines(row: CollisionRecord) -> Iterator[str]:
    """A collision as a person reads it: its reference and tests, then what it means and
    how to fix it (styled on a terminal only: click drops the styles elsewhere)."""
    flag = ""
    if row["agile_vs_bau"]:
        flag = "  " + click.style("agile vs BAU", fg="magenta", bold=True)
    yield (
        f"{click.style(row['id'], bold=True)} {row['severity']} {row['kind']} ({row['status']}): "
        f"{' + '.join(row['keys'])}{flag}"
    )
    yield f"  {row['explanation']}"
    if row["mde_cost"]:
        yield f"  {row['mde_cost']}"
    for position, fix in enumerate(row["fixes"], start=1):
        yield f"  fix {position}: {fix}"
    if row["waived_by"]:
        yield f"  waived by {row['waived_by']}: {row['waiver_reason']}"


@click.command("plan")
@today_option
@format_option
@click.pass_obj
def plan_command(app: AppContext, today: datetime | None, output_format: str) -> None:
    """Requested and planned windows, in rank order, and why a test moved."""
    with app.read_transaction() as session:
        rows = _view(app, session, today).plan_rows()
    if output_format == "json":
        emit_json(rows)
        return
    table = [
        {
            **row,
            "requested": f"{row['requested_start']} → {row['requested_end']}",
            "planned": "no slot"
            if row["planned_start"] is None
            else f"{row['planned_start']} → {row['planned_end']}",
        }
        for row in rows
    ]
    columns = ("rank", "key", "title", "requested", "planned", "explanation")
    moved = sum(1 for row in rows if row["moved_days"])
    emit_table(f"Plan: {moved} of {len(rows)} tests moved", columns, table, "Nothing to plan.")


@click.command("check")
@click.argument("key")
@today_option
@format_option
@click.pass_obj
def check_command(app: AppContext, key: str, today: datetime | None, output_format: str) -> None:
    """One test's score, planned slot and collisions."""
    with app.read_transaction() as session:
        experiment = experiment_service.get_by_key(session, key)
        record = _view(app, session, today).check_row(experiment)
        live = [CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED, CollisionStatus.WAIVED]
        found = [
            records.collision_record(c)
            for c in collision_service.collision_rows(session, statuses=live, key=experiment.key)
        ]
        record["collisions"] = found
    if output_format == "json":
        emit_json(record)
        return
    console.print(f"[bold]{record['key']}[/] {record['title']}", highlight=False)
    score = record["score"]
    if score is None:
        console.print(f"  not ranked: {record['problem'] or 'not active'}", markup=False)
    else:
        console.print(f"  rank {record['rank']}, score {_figure(score['value'])}", highlight=False)
        for factor in score["factors"]:
            console.print(
                f"    {factor['name']} = {_figure(factor['value'])}: {factor['note']}",
                markup=False,
                highlight=False,
            )
    if record["placement"] is not None:
        console.print(f"  plan: {record['placement']['explanation']}", markup=False)
    _print_collisions(found, "  no collisions")


def _figure(value: float | None) -> str:
    return "∞" if value is None else f"{value:.3g}"
