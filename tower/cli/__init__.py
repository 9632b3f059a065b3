"""The `tower` command line: one adapter over Tower's services (the Slack bot is the other)."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from tower.cli.bench_commands import bench_command
from tower.cli.collision_commands import ack_command, waive_command
from tower.cli.context import AppContext
from tower.cli.database_commands import init_database
from tower.cli.demo_commands import demo_command
from tower.cli.outbox_commands import outbox_group
from tower.cli.output import error_console
from tower.cli.pipeline_commands import (
    check_command,
    conflicts_command,
    pipeline_command,
    plan_command,
)
from tower.cli.policy_commands import policy_group
from tower.cli.protocol_commands import COMMANDS as PROTOCOL_COMMANDS
from tower.cli.registry_commands import (
    export_command,
    import_command,
    list_command,
    show_command,
)
from tower.cli.worker_commands import resync_command, sweep_command, worker_command
from tower.errors import TowerError
from tower.policy import PolicyError
from tower.settings import Settings


class TowerGroup(click.Group):
    """Shows errors meant for people as plain messages (exit code 1), never as tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (TowerError, PolicyError) as error:
            error_console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
            raise SystemExit(1) from None


@click.group(cls=TowerGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Tower: one registry, one score and one set of rules for every test and campaign.

    Settings come from the environment: DATABASE_URL (default sqlite:///tower.db) and
    TOWER_POLICY (default ./tower.yaml).
    """
    ctx.obj = AppContext(Settings.from_env())


for command in (
    policy_group,
    init_database,
    import_command,
    export_command,
    list_command,
    show_command,
    pipeline_command,
    conflicts_command,
    plan_command,
    check_command,
    waive_command,
    ack_command,
    *PROTOCOL_COMMANDS,
    outbox_group,
    sweep_command,
    resync_command,
    worker_command,
    demo_command,
    bench_command,
):
    main.add_command(command)
