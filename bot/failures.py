"""The bot's one error policy: tell the person who acted what went wrong, in words, and
keep the trace for the logs."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient

from bot.mrkdwn import escape
from tower.errors import TowerError

logger = logging.getLogger("tower.bot")


def explain_failure(error: Exception, body: dict[str, Any], client: WebClient) -> None:
    """Say what went wrong in words, privately; keep the trace for the logs."""
    if isinstance(error, TowerError):
        logger.info("refused: %s", error)
        said = str(error)
    else:
        logger.error("listener failed", exc_info=error)
        said = (
            "Something went wrong on Tower's side. Try again shortly; if it keeps "
            "failing, tell the tower team."
        )
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if user and channel:
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=escape(said))
        except Exception:  # telling them failed too: the log has it
            logger.exception("could not tell %s what went wrong", user)
