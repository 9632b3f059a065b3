"""`tower waive|ack`: act on a collision record."""

from __future__ import annotations

from contextlib import AbstractContextManager

import click

from tower.cli.context import AppContext
from tower.cli.output import console
from tower.collisions.refs import format_ref
from tower.pipeline import collision_flows
from tower.protocol.refusals import refusals_recorded


def _audited(app: AppContext, actor: str, action: str) -> AbstractContextManager[None]:
    """A refused attempt is audited `denied:ACTION` with the actor, and still fails."""
    return refusals_recorded(app.session_factory, key=None, actor=actor, action=action)


@click.command("waive")
@click.argument("collision")
@click.option("--by", "actor", required=True, help="The manager's Slack user ID.")
@click.option("--reason", required=True, help="Why the clash is accepted.")
@click.pass_obj
def waive_command(app: AppContext, collision: str, actor: str, reason: str) -> None:
    """Accept collision COLLISION (C-12) on purpose: managers only, with a reason."""
    with _audited(app, actor, "waive"), app.transaction() as session:
        record = collision_flows.waive(
            session, app.service_context(), collision, actor=actor, reason=reason
        )
        ref = format_ref(record)
    console.print(f"{ref} waived by {actor}: {reason}", markup=False, highlight=False)


@click.command("ack")
@click.argument("collision")
@click.option("--by", "actor", required=True, help="Your Slack user ID.")
@click.pass_obj
def ack_command(app: AppContext, collision: str, actor: str) -> None:
    """Acknowledge collision COLLISION (C-12) for your team."""
    with _audited(app, actor, "ack"), app.transaction() as session:
        record = collision_flows.acknowledge(session, app.service_context(), collision, actor=actor)
        ref = format_ref(record)
    console.print(f"{ref} acknowledged by {actor}", markup=False, highlight=False)
