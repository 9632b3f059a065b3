"""`tower arbitration`: the contested slots ahead, and how the score settles each."""

from __future__ import annotations

from datetime import datetime

import click

from tower.cli.context import AppContext
from tower.cli.output import console, emit_json, format_option
from tower.protocol.contested import MAX_WEEKS, ContestedSlot, Side, contested_slots


@click.command("arbitration")
@click.option(
    "--weeks",
    default=6,
    show_default=True,
    type=int,
    help=f"How many weeks ahead to look (1 to {MAX_WEEKS}).",
)
@click.option("--team", default=None, help="Only the slots this team's tests contest.")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Look ahead from this date (default: today in the policy's time zone).",
)
@format_option
@click.pass_obj
def arbitration_command(
    app: AppContext, weeks: int, team: str | None, today: datetime | None, output_format: str
) -> None:
    """Contested slots ahead: where, when, who keeps it, who yields and why."""
    day = app.service_context().today if today is None else today.date()
    with app.read_transaction() as session:
        slots = contested_slots(session, app.policy, today=day, weeks=weeks, team=team)
    if output_format == "json":
        emit_json([slot.as_dict() for slot in slots])
        return
    if not slots:
        console.print(f"No contested slot in the {weeks} week(s) from {day}.")
        return
    for slot in slots:
        _print_slot(slot)


def _print_slot(slot: ContestedSlot) -> None:
    data = slot.as_dict()
    console.print(
        f"[bold]{data['collision']}[/] {data['kind']} on {slot.where}, "
        f"{data['first_day']} to {data['last_day']}",
        highlight=False,
    )
    for side in slot.keeps:
        console.print(f"  keeps:  {_side(side)}", markup=False, highlight=False)
    for side in slot.yields:
        said = _side(side)
        start, end = side.planned or (None, None)
        said += f"; planned {start} to {end}" if start else "; no slot in the plan"
        if side.extra_days_to_mde:
            said += f"; {side.extra_days_to_mde} more day(s) to its MDE if they share"
        console.print(f"  yields: {said}", markup=False, highlight=False)
    console.print(f"  deciding: {slot.deciding}", markup=False, highlight=False)
    waiver = data["waiver"]
    if waiver:
        console.print(
            f"  waived by {waiver['by']}: {waiver['reason']}", markup=False, highlight=False
        )


def _side(side: Side) -> str:
    who = side.contender
    rank = "unranked" if who.rank is None else f"rank {who.rank}"
    score = "" if who.score is None else f", score {who.score:.3g}"
    return f"{who.key} ({side.team}, {side.team_kind or 'unknown kind'}, {rank}{score})"
