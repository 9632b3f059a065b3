"""Small pieces every listener shares: who is acting, and telling them privately."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.deps import BotDeps
from bot.mrkdwn import escape

logger = logging.getLogger("tower.bot")


def acked_then(
    deps: BotDeps, handler: Callable[[dict[str, Any], WebClient], None]
) -> Callable[[Ack, dict[str, Any], WebClient], None]:
    """A listener that acknowledges at once, then runs `handler(body, client)` off the
    request's thread (`BotDeps.after_ack`)."""

    def listener(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        deps.after_ack(lambda: handler(body, client), body, client)

    return listener


def actor_of(body: dict[str, Any]) -> str:
    """The Slack user behind a request, whatever its kind."""
    user = body.get("user") or {}
    return str(user.get("id") or body.get("user_id") or "")


def tell_privately(client: WebClient, body: dict[str, Any], text: str) -> None:
    """An ephemeral message to the person who acted, where they acted (else a DM)."""
    user = actor_of(body)
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=escape(text))
        else:
            opened = client.conversations_open(users=user)
            client.chat_postMessage(channel=opened["channel"]["id"], text=escape(text))
    except SlackApiError:
        logger.exception("could not tell %s privately", user)
