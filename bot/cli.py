"""The `tower` command with the Slack parts added: `tower serve`, and a worker that delivers
to Slack when SLACK_BOT_TOKEN is set. `tower/` itself never imports Slack; this module
composes the two at run time (`main` is the console script; importing it changes nothing).
"""

from __future__ import annotations

import logging
import os

import click

from bot.config import SlackSettings
from tower.cli import TowerGroup, create_cli
from tower.cli.context import AppContext
from tower.outbox.notifier import ConsoleNotifier, Notifier


def slack_or_console(app: AppContext) -> Notifier:
    """Slack when a bot token is configured, else the console."""
    slack = SlackSettings.from_env()
    if not slack.configured:
        return ConsoleNotifier()
    from bot.notifier import SlackNotifier

    return SlackNotifier(slack.client(), people=app.policy.people)


@click.command("serve")
@click.option("--socket", "socket_mode", is_flag=True, help="Socket Mode: no public URL needed.")
@click.option("--port", type=int, default=None, help="HTTP port (default: $PORT or 3000).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="HTTP worker processes (default: $WEB_CONCURRENCY or 2, one per core).",
)
@click.pass_obj
def serve_command(
    app: AppContext, socket_mode: bool, port: int | None, workers: int | None
) -> None:
    """Serve the Slack bot: HTTP on POST /slack/events (and GET /healthz), or Socket Mode."""
    slack = SlackSettings.from_env()
    app.session_factory  # noqa: B018 - says now, in words, if the database is not ready
    app.policy  # noqa: B018 - lists a bad policy's problems once, before any worker boots
    if socket_mode:
        _serve_socket_mode(app, slack)
        return
    from bot.server import serve_http

    app.engine.dispose()  # each worker opens its own connections after the fork
    slack.require("bot_token", "signing_secret")
    count = workers or int(os.environ.get("WEB_CONCURRENCY", "2"))
    click.echo(f"Serving Slack requests on http://0.0.0.0:{port or slack.port}/slack/events")
    serve_http(app.settings, port=port or slack.port, workers=count)


def _serve_socket_mode(app: AppContext, slack: SlackSettings) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import create_app
    from bot.deps import BotDeps
    from bot.runtime import keep_warm

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    deps = BotDeps(app.session_factory, app.policy)
    bolt = create_app(slack, deps)
    keep_warm(bolt, deps)
    slack.require("app_token")
    SocketModeHandler(bolt, slack.app_token).start()  # type: ignore[no-untyped-call]


def build(*, freeze_start_up: bool = False) -> TowerGroup:
    """`tower` with Slack: notifications to Slack when configured, `serve`, and the
    product benchmark (imported when it runs)."""
    return create_cli(
        slack_or_console,
        commands=[serve_command],
        lazy_commands={"product-bench": "bot.product_bench.command"},
        freeze_start_up=freeze_start_up,
    )


def main() -> None:
    """The console script `tower`: one command, then the process ends."""
    build(freeze_start_up=True)()
