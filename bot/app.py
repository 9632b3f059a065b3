"""The Bolt app: built by a factory from settings and the listeners' dependencies.

Listeners parse what Slack sends, call Tower's services in one transaction, and render the
answer; they hold no business rule and no SQL. Right after a change they deliver what it
queued in the outbox, so people see it at once; the worker delivers anything left over.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.config import SlackSettings
from bot.deps import BotDeps
from bot.failures import explain_failure
from bot.listeners import register_listeners
from bot.notifier import SlackNotifier


def create_app(settings: SlackSettings, deps: BotDeps, *, client: WebClient | None = None) -> App:
    """A Bolt app verifying every request's signature, with all of Tower's listeners."""
    settings.require("bot_token", "signing_secret")
    web = client or settings.client()
    if deps.notifier is None:
        deps.notifier = SlackNotifier(web, people=deps.policy.people)
    app = App(
        signing_secret=settings.signing_secret,
        client=web,  # carries the bot token
        token_verification_enabled=False,  # no auth.test at start; Bolt checks lazily
        process_before_response=True,  # the request's thread runs its listener to the ack
    )
    register_listeners(app, deps)

    @app.error
    def tell_the_user(error: Exception, body: dict[str, Any], client: WebClient) -> None:
        explain_failure(error, body, client)

    return app
