"""`/tower ...`: register, list, queue, conflicts, show, plan and help.

Every reply that concerns only the caller is ephemeral, given in the acknowledgement itself
(Tower answers well within Slack's 3 seconds); `register` opens the modal first, while the
trigger id is fresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.deps import BotDeps
from bot.mrkdwn import escape, escape_typed, inert
from bot.views import replies
from bot.views.modal import list_modal, test_modal
from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.collisions.refs import CollisionFacts
from tower.engine.kinds import Severity
from tower.errors import TowerError
from tower.experiments import permissions
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.paging import Page, first_objects
from tower.pipeline import reads, records
from tower.pipeline.service import view

logger = logging.getLogger("tower.bot")


def register(app: App, deps: BotDeps) -> None:
    @app.command("/tower")
    def tower_command(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        words = (command.get("text") or "").split()
        name, arguments = (words[0].lower(), words[1:]) if words else ("help", [])
        user = command["user_id"]
        if name == "register":
            ack()
            trigger = command["trigger_id"]
            deps.after_ack(
                lambda: open_register_modal(deps, client, trigger, user), command, client
            )
            return
        handler = HANDLERS.get(name)
        if handler is None:
            ack(replies.help_reply(f"I don't know `{inert(name)}`."))
            return
        try:
            ack(handler(deps, user, arguments))
        except TowerError as error:
            said = escape_typed(str(error))  # it may quote what was typed
            ack(replies.said_reply(said))


def open_register_modal(deps: BotDeps, client: WebClient, trigger_id: str, user: str) -> None:
    """Open the register modal with the teams the user may register for."""
    policy = deps.policy
    teams = [team.key for team in permissions.teams_to_register_for(policy, user)]
    if not teams:
        nobody = "You are in no team of the policy: ask a manager to add you."
        client.views_open(trigger_id=trigger_id, view=list_modal("Tower", [nobody]))
        return
    client.views_open(trigger_id=trigger_id, view=test_modal(policy, teams))


def _list(deps: BotDeps, user: str, arguments: list[str]) -> dict[str, Any]:
    scope = arguments[0].lower() if arguments else "mine"
    if scope not in ("mine", "team", "all"):
        return replies.help_reply(f"`/tower list` takes mine, team or all, not `{inert(scope)}`.")
    teams = [t.key for t in deps.policy.teams_of(user)]
    query = experiment_service.unfinished(
        owner=user if scope == "mine" else None, teams=teams if scope == "team" else None
    )
    with deps.read_transaction() as (session, _):
        experiments: Page[Experiment] = first_objects(session, query, replies.LINES_PER_LIST)
        lines = experiments.map(
            lambda e: replies.test_line(
                {
                    "key": e.key,
                    "title": e.title,
                    "team": e.team,
                    "status": e.status.value,
                    "start": e.start,
                    "end": e.end,
                }
            )
        )
    title = {"mine": "Your tests", "team": "Your teams' tests", "all": "All active tests"}[scope]
    return replies.reply(
        replies.listing(title, lines, "None.", "`tower list` on the command line"), title
    )


def _queue(deps: BotDeps, user: str, arguments: list[str]) -> dict[str, Any]:
    kinds = {team.key: team.kind for team in deps.policy.teams}
    with deps.read_transaction() as (session, ctx):
        rows = reads.pipeline_page(session, ctx.policy, kinds, limit=replies.LINES_PER_LIST)
    return replies.reply(
        replies.listing(
            "The ranked pipeline",
            rows.map(lambda row: replies.pipeline_line(records.as_json(row))),
            "No active tests.",
            "`tower pipeline`",
        ),
        "The ranked pipeline",
    )


def _collision_line(collision: CollisionFacts) -> str:
    return replies.collision_line(records.as_json(records.collision_record(collision)))


def _conflicts(deps: BotDeps, user: str, arguments: list[str]) -> dict[str, Any]:
    with deps.read_transaction() as (session, _):
        found = collision_service.collision_page(
            session,
            statuses=[CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED],
            severities=[Severity.BLOCKING],
            limit=replies.LINES_PER_LIST,
        )
        lines = found.map(_collision_line)
    return replies.reply(
        replies.listing("Unresolved blocking collisions", lines, "None.", "`tower conflicts`"),
        "Conflicts",
    )


def _show(deps: BotDeps, user: str, arguments: list[str]) -> dict[str, Any]:
    if not arguments:
        return replies.help_reply("`/tower show` needs a test key, like `/tower show T-42`.")
    with deps.read_transaction() as (session, ctx):
        experiment = experiment_service.get_by_key(session, arguments[0])
        check = view(session, ctx.policy).check_row(experiment)
        collisions = [
            _collision_line(c)
            for c in collision_service.collision_rows(
                session,
                statuses=[
                    CollisionStatus.OPEN,
                    CollisionStatus.ACKNOWLEDGED,
                    CollisionStatus.WAIVED,
                ],
                key=experiment.key,
            )
        ]
        line = replies.test_line(
            {
                "key": experiment.key,
                "title": experiment.title,
                "team": experiment.team,
                "status": experiment.status.value,
                "start": experiment.start,
                "end": experiment.end,
            }
        )
    score = (
        "not ranked"
        if check["score"] is None
        else f"rank {check['rank']}, score {check['score']['value']:.3g}"
    )
    slot = "" if check["placement"] is None else f"\nPlan: {check['placement']['explanation']}"
    return replies.show_reply(experiment.key, f"{line}\n{score}{escape(slot)}", collisions)


def _plan(deps: BotDeps, user: str, arguments: list[str]) -> dict[str, Any]:
    with deps.read_transaction() as (session, _):
        moved = reads.moved_page(session, limit=replies.LINES_PER_LIST).map(
            lambda row: replies.plan_line(records.as_json(row))
        )
    return replies.reply(
        replies.listing(
            "Tests the plan moves", moved, "Every test keeps its window.", "`tower plan`"
        ),
        "The plan",
    )


def _help(deps: BotDeps, user: str, arguments: list[str]) -> dict[str, Any]:
    return replies.help_reply()


HANDLERS: dict[str, Callable[[BotDeps, str, list[str]], dict[str, Any]]] = {
    "list": _list,
    "queue": _queue,
    "conflicts": _conflicts,
    "show": _show,
    "plan": _plan,
    "help": _help,
}
