"""Events: the App Home, published when someone opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.deps import BotDeps
from bot.views.replies import LINES_PER_LIST, home_view
from tower.pipeline.overview import overview_for


def register(app: App, deps: BotDeps) -> None:
    @app.event("app_home_opened")
    def publish_home(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event.get("user")
        if not isinstance(user, str):
            return  # a Home opened by nobody Tower could answer

        def publish() -> None:
            with deps.read_transaction() as (session, ctx):
                home = home_view(overview_for(session, ctx, user, lines=LINES_PER_LIST))
            client.views_publish(user_id=user, view=home)

        deps.after_ack(publish, body, client)  # Bolt acknowledges the event at once
