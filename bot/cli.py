"""The `tower` command with the Slack parts added: `tower serve`, and a worker that delivers
to Slack when SLACK_BOT_TOKEN is set. `tower/` itself never imports Slack; this module
composes the two (it is the console script's entry point).
"""

from __future__ import annotations

import logging
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import click

from bot.config import SlackSettings
from tower.cli import main
from tower.cli.context import AppContext
from tower.outbox.notifier import ConsoleNotifier, Notifier


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger("tower.http").info(format, *args)


def slack_or_console(app: AppContext) -> Notifier:
    """Slack when a bot token is configured, else the console."""
    slack = SlackSettings.from_env()
    if not slack.configured:
        return ConsoleNotifier()
    from bot.notifier import SlackNotifier

    return SlackNotifier(slack.client())


@click.command("serve")
@click.option("--socket", "socket_mode", is_flag=True, help="Socket Mode: no public URL needed.")
@click.option("--port", type=int, default=None, help="HTTP port (default: $PORT or 3000).")
@click.pass_obj
def serve_command(app: AppContext, socket_mode: bool, port: int | None) -> None:
    """Serve the Slack bot: HTTP on POST /slack/events (and GET /healthz), or Socket Mode."""
    from bot.app import BotDeps, create_app
    from bot.web import create_wsgi, database_reachable
    from tower.pipeline.flows import warm_up_in_background

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    slack = SlackSettings.from_env()
    deps = BotDeps(app.session_factory, app.policy)
    bolt = create_app(slack, deps)
    warm_up_in_background(app.session_factory, deps.context())
    if socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        slack.require("app_token")
        SocketModeHandler(bolt, slack.app_token).start()  # type: ignore[no-untyped-call]
        return
    server = make_server(
        "0.0.0.0",
        port or slack.port,
        create_wsgi(bolt, database_reachable(app.engine)),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    click.echo(f"Serving Slack requests on http://0.0.0.0:{server.server_port}/slack/events")
    server.serve_forever()


AppContext.notifier_factory = staticmethod(slack_or_console)
main.add_command(serve_command)
main.lazy_commands["product-bench"] = "bot.product_bench.command"  # imported when it runs

__all__ = ["main"]
