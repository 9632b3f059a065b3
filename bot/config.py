"""The bot's settings, read from the environment when it starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tower.errors import TowerError

if TYPE_CHECKING:  # the Web API client is loaded by the commands that post, not by every one
    from slack_sdk import WebClient

DEFAULT_PORT = 3000
DEFAULT_TIMEOUT = 30  # seconds the Web API client waits for an answer (slack_sdk's default)


class SlackConfigError(TowerError):
    """A setting the bot needs is missing."""


@dataclass(frozen=True)
class SlackSettings:
    """SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, SLACK_API_URL, SLACK_TIMEOUT
    (seconds the Web API client waits for an answer) and PORT."""

    bot_token: str | None
    signing_secret: str | None
    app_token: str | None
    api_url: str | None
    port: int
    timeout: int = DEFAULT_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SlackSettings:
        env = os.environ if environ is None else environ
        port = env.get("PORT") or str(DEFAULT_PORT)
        if not port.isdigit():
            raise SlackConfigError(f"PORT must be a number, not {port!r}")
        timeout = env.get("SLACK_TIMEOUT") or str(DEFAULT_TIMEOUT)
        if not timeout.isdigit() or int(timeout) < 1:
            raise SlackConfigError(
                f"SLACK_TIMEOUT must be a whole number of seconds, not {timeout!r}"
            )
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            api_url=env.get("SLACK_API_URL") or None,
            port=int(port),
            timeout=int(timeout),
        )

    @property
    def configured(self) -> bool:
        """Whether Slack can be reached at all (a bot token is set)."""
        return self.bot_token is not None

    def require(self, *names: str) -> None:
        """Fail with the names of the environment variables that are missing."""
        missing = [
            env
            for env, attribute in (
                ("SLACK_BOT_TOKEN", "bot_token"),
                ("SLACK_SIGNING_SECRET", "signing_secret"),
                ("SLACK_APP_TOKEN", "app_token"),
            )
            if attribute in names and getattr(self, attribute) is None
        ]
        if missing:
            raise SlackConfigError(f"set {', '.join(missing)} (see the README's Slack set-up)")

    def client(self) -> WebClient:
        """A Web API client, pointed at SLACK_API_URL when set (a local fake in tests).

        It makes each call once: slack_sdk's default handler would post again after a
        dropped connection, when the first post may have landed. The outbox retries what
        failed, and looks first for what may have landed."""
        from slack_sdk import WebClient

        self.require("bot_token")
        client = WebClient(token=self.bot_token, timeout=self.timeout, retry_handlers=[])
        if self.api_url:
            client.base_url = self.api_url
        return client
