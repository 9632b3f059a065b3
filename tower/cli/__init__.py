"""The `tower` command line: one adapter over Tower's services (the Slack bot is the other).

`create_cli` builds it; the console script (`bot.cli:main`) builds it with the Slack parts,
and `main` here is the command line without them (what tests run in process).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from typing import Any

import click
from rich.markup import escape

from tower.cli.context import AppContext, NotifierFactory, console_notifier
from tower.cli.lazy import LazyGroup
from tower.errors import TowerError
from tower.policy import PolicyError
from tower.settings import Settings

# Each command's module, imported only when that command runs (a listing needs neither the
# engine nor Alembic nor the benchmark loaded).
COMMAND_MODULES = {
    "policy": "tower.cli.policy_commands",
    "init": "tower.cli.database_commands",
    **dict.fromkeys(("import", "export", "list", "show"), "tower.cli.registry_commands"),
    **dict.fromkeys(("pipeline", "conflicts", "plan", "check"), "tower.cli.pipeline_commands"),
    **dict.fromkeys(("waive", "ack"), "tower.cli.collision_commands"),
    "arbitration": "tower.cli.arbitration_commands",
    **dict.fromkeys(
        (
            "submit",
            "approve",
            "reject",
            "request-changes",
            "withdraw",
            "cancel",
            "complete",
            "record-result",
            "edit",
            "prioritize",
            "gates",
            "audit",
            "sla",
            "playbook",
        ),
        "tower.cli.protocol_commands",
    ),
    "outbox": "tower.cli.outbox_commands",
    **dict.fromkeys(("sweep", "resync", "worker"), "tower.cli.worker_commands"),
    "demo": "tower.cli.demo_commands",
    "bench": "tower.cli.bench_commands",
}


class TowerGroup(LazyGroup):
    """Shows errors meant for people as plain messages (exit code 1), never as tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (TowerError, PolicyError) as error:
            from tower.cli.output import error_console

            error_console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
            raise SystemExit(1) from None


HELP = """Tower: one registry, one score and one set of rules for every test and campaign.

Settings come from the environment: DATABASE_URL (default sqlite:///tower.db) and
TOWER_POLICY (default ./tower.yaml).
"""


def create_cli(
    notifier_factory: NotifierFactory = console_notifier,
    *,
    commands: Iterable[click.Command] = (),
    lazy_commands: Mapping[str, str] | None = None,
    freeze_start_up: bool = False,
) -> TowerGroup:
    """The `tower` group: every command of `COMMAND_MODULES`, plus `commands` and
    `lazy_commands` (name -> module) an adapter adds; each run's notifications go where
    `notifier_factory` says.

    `freeze_start_up`: for a process that ends with its one command (the console script).
    What start-up loaded (modules, classes) then lives as long as the process, and the
    collector need not walk it again each time a listing of 20,000 rows fills the heap (a
    sixth of a read's time). Tests running commands in process leave it off.
    """

    @click.pass_context
    def start(ctx: click.Context) -> None:
        if freeze_start_up:
            gc.freeze()
        ctx.obj = AppContext(Settings.from_env(), notifier_factory)

    group = TowerGroup(
        name="tower",
        help=HELP,
        callback=start,
        lazy_commands={**COMMAND_MODULES, **(lazy_commands or {})},
    )
    for command in commands:
        group.add_command(command)
    return group


main = create_cli()
