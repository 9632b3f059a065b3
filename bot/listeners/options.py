"""Searchable options for the modal's pickers (`block_suggestion`): surfaces, audiences,
and teams or KPIs when a policy has more than a static select holds."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk.models.blocks import StaticSelectElement

from bot.deps import BotDeps
from bot.ids import ActionId, BlockId
from bot.views.modal import option
from tower.experiments import permissions

# The most options one answer may hold, as for a static select.
MAX_OPTIONS = StaticSelectElement.options_max_length


def register(app: App, deps: BotDeps) -> None:
    surfaces = sorted(deps.policy.surface_paths)
    segments = sorted(deps.policy.segment_names)
    choices = {
        ActionId.SURFACES.value: surfaces,
        ActionId.AUDIENCES.value: segments,
        ActionId.EXCLUDE_AUDIENCES.value: segments,
        BlockId.PRIMARY_KPI.value: list(deps.policy.kpis),
    }
    for action_id, values in choices.items():
        app.options(action_id)(_suggest(values))

    @app.options(BlockId.TEAM.value)
    def suggest_team(ack: Ack, payload: dict[str, Any], body: dict[str, Any]) -> None:
        """Teams the person may register for (all of them for a manager), searchable."""
        user = str((body.get("user") or {}).get("id") or "")
        teams = permissions.teams_to_register_for(deps.policy, user)
        query = str(payload.get("value") or "").strip().lower()
        matches = [t for t in teams if query in t.key.lower() or query in t.name.lower()]
        ack(options=[_option(t.name, t.key) for t in matches[:MAX_OPTIONS]])


def _option(label: str, value: str) -> dict[str, Any]:
    return option(label, value).to_dict()


def _suggest(values: list[str]) -> Any:
    def suggest(ack: Ack, payload: dict[str, Any]) -> None:
        query = str(payload.get("value") or "").strip().lower()
        matches = [v for v in values if query in v.lower()][:MAX_OPTIONS]
        ack(options=[_option(v, v) for v in matches])

    return suggest
