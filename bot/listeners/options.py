"""Searchable options for the modal's surface and audience pickers (`block_suggestion`)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.app import BotDeps
from bot.ids import ActionId

MAX_OPTIONS = 100


def register(app: App, deps: BotDeps) -> None:
    surfaces = sorted(deps.policy.surface_paths)
    segments = sorted(deps.policy.segment_names)
    choices = {
        ActionId.SURFACES.value: surfaces,
        ActionId.AUDIENCES.value: segments,
        ActionId.EXCLUDE_AUDIENCES.value: segments,
    }
    for action_id, values in choices.items():
        app.options(action_id)(_suggest(values))


def _suggest(values: list[str]) -> Any:
    def suggest(ack: Ack, payload: dict[str, Any]) -> None:
        query = str(payload.get("value") or "").strip().lower()
        matches = [v for v in values if query in v.lower()][:MAX_OPTIONS]
        ack(options=[{"text": {"type": "plain_text", "text": v[:75]}, "value": v} for v in matches])

    return suggest
