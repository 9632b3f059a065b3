"""Listeners, one module per kind of Slack request, each with `register(app, deps)`."""

from __future__ import annotations

from slack_bolt import App

from bot.deps import BotDeps
from bot.listeners.actions import register as register_actions
from bot.listeners.commands import register as register_commands
from bot.listeners.events import register as register_events
from bot.listeners.options import register as register_options
from bot.listeners.submissions import register as register_submissions


def register_listeners(app: App, deps: BotDeps) -> None:
    for register in (
        register_commands,
        register_actions,
        register_submissions,
        register_options,
        register_events,
    ):
        register(app, deps)
