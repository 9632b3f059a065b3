"""Small pieces every listener shares: who is acting, and telling them privately."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.app import BotDeps
from bot.mrkdwn import escape
from tower.protocol import service as protocol
from tower.protocol.permissions import PermissionDenied

logger = logging.getLogger("tower.bot")


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


def audit_refusal(
    deps: BotDeps, *, key: str, actor: str, action: str, error: PermissionDenied
) -> None:
    """Record an attempt the actor was not allowed to make, in a transaction of its own."""
    try:
        with deps.transaction() as (session, _):
            protocol.record_denial(session, key=key, actor=actor, action=action, message=str(error))
    except Exception:  # the refusal stands even if auditing it fails
        logger.exception("could not audit the refused %s of %s by %s", action, key, actor)
