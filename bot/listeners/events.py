"""Events: the App Home, published when someone opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.app import BotDeps
from bot.views.replies import home_view
from tower.pipeline.overview import overview_for
from tower.pipeline.service import recheck


def register(app: App, deps: BotDeps) -> None:
    @app.event("app_home_opened")
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event["user"]
        with deps.transaction() as (session, ctx):
            analysis, _ = recheck(session, ctx.policy, today=ctx.today)
            view = home_view(overview_for(session, ctx, analysis, user))
        client.views_publish(user_id=user, view=view)
