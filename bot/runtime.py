"""Assemble the bot from the environment: settings, database, policy, Slack client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt import App
from sqlalchemy import Engine

from bot.app import create_app
from bot.config import SlackSettings
from bot.deps import BotDeps
from bot.repeats import Repeats
from tower.db import create_database_engine, create_session_factory
from tower.pipeline.warming import Warming, warm_up_in_background
from tower.policy import load_policy
from tower.settings import Settings


@dataclass
class Bot:
    app: App
    engine: Engine
    deps: BotDeps
    slack: SlackSettings
    warming: Warming

    def repeats(self) -> Repeats:
        """What makes each form submission act once, for this bot's endpoint."""
        assert self.slack.signing_secret is not None  # create_app required it
        return Repeats(self.deps.session_factory, self.slack.signing_secret)


def build_bot(settings: Settings | None = None, slack: SlackSettings | None = None) -> Bot:
    """The bot as configured by DATABASE_URL, TOWER_POLICY and the SLACK_* variables."""
    settings = settings or Settings.from_env()
    slack = slack or SlackSettings.from_env()
    engine = create_database_engine(settings.database_url)
    deps = BotDeps(create_session_factory(engine), load_policy(settings.policy_path))
    app = create_app(slack, deps)
    return Bot(app, engine, deps, slack, keep_warm(app, deps))


def keep_warm(app: App, deps: BotDeps) -> Warming:
    """Start warming the bot's index, and tell the warming of every request Bolt takes
    (it keeps up closely while requests come, and rests while none do)."""
    warming = warm_up_in_background(deps.session_factory, deps.context(), slots=True)

    def nudge(next: Callable[[], None]) -> None:  # Bolt passes it by this name
        warming.nudge()
        next()

    app.middleware(nudge)
    return warming
