"""Buttons: Approve, Request changes, Reject on approval requests; Acknowledge, Move to next
free slot, Ask for a waiver on conflict alerts; Register on the App Home.

The server checks the actor's role for every click, whatever the button claims; a refused
click is explained privately and audited. Repeated clicks and Slack's retries never decide
twice: Tower treats a repeat as a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.deps import BotDeps
from bot.ids import ActionId
from bot.listeners.commands import open_register_modal
from bot.listeners.common import acked_then, actor_of, tell_privately
from bot.mrkdwn import escape
from bot.views.buttons import ApprovalButton, CollisionButton, NotOurs, ShowAllButton, TowerButton
from bot.views.modal import list_modal, reason_modal, test_modal
from tower.collisions import alerts
from tower.collisions import service as collision_service
from tower.collisions.models import Collision
from tower.collisions.refs import format_ref, keys_of
from tower.context import ServiceContext
from tower.errors import TowerError
from tower.experiments import permissions
from tower.experiments import service as experiment_service
from tower.experiments.permissions import PermissionDenied
from tower.outbox import queries as outbox_queries
from tower.pipeline import collision_flows, reads, slots
from tower.protocol import review
from tower.protocol.refusals import record_refusal_apart

B = TypeVar("B", bound=TowerButton)


def clicked(
    deps: BotDeps, kind: type[B], handler: Callable[[dict[str, Any], WebClient, B], None]
) -> Callable[[Ack, dict[str, Any], WebClient], None]:
    """A listener of a button of `kind`: it acknowledges at once, reads the button's value
    (`bot.views.buttons`) and runs `handler(body, client, button)`. A value Tower never
    writes (tampered, damaged) is answered privately with what is wrong, and nothing is
    done."""

    def read(body: dict[str, Any], client: WebClient) -> None:
        try:
            button = kind.parse(str(body["actions"][0].get("value") or ""))
        except NotOurs as wrong:
            tell_privately(
                client, body, f"This button is not one of Tower's: nothing was done ({wrong})."
            )
            return
        handler(body, client, button)

    return acked_then(deps, read)


def _where(body: dict[str, Any]) -> dict[str, str]:
    channel = (body.get("channel") or {}).get("id") or ""
    ts = (body.get("message") or {}).get("ts") or ""
    return {"channel": channel, "ts": ts}


def act(
    deps: BotDeps,
    client: WebClient,
    body: dict[str, Any],
    *,
    key: str,
    action: str,
    run: Callable[[Session, ServiceContext], str | None],
) -> bool:
    """Run one action in one transaction; tell the actor privately what happened or why not."""
    actor = actor_of(body)
    try:
        with deps.transaction() as (session, ctx):
            note = run(session, ctx)
    except PermissionDenied as denied:
        record_refusal_apart(deps.session_factory, denied, key=key, actor=actor, action=action)
        tell_privately(client, body, str(denied))
        return False
    except TowerError as error:
        tell_privately(client, body, str(error))
        return False
    if note:
        tell_privately(client, body, note)
    deps.deliver_now()
    return True


def register(app: App, deps: BotDeps) -> None:
    def approve(body: dict[str, Any], client: WebClient, button: ApprovalButton) -> None:
        key, version, actor = button.key, button.version, actor_of(body)

        def run(session: Session, ctx: ServiceContext) -> str | None:
            outcome = review.approve(session, ctx, key, actor=actor, expected_version=version)
            # A test approved is announced in its channels; anything else is said privately.
            return None if outcome.changed and not outcome.awaiting_more else outcome.message

        act(deps, client, body, key=key, action="approve", run=run)

    app.action(ActionId.APPROVE.value)(clicked(deps, ApprovalButton, approve))

    def ask_reason(action: ActionId) -> Callable[..., None]:
        def handler(body: dict[str, Any], client: WebClient, button: ApprovalButton) -> None:
            key, version, actor = button.key, button.version, actor_of(body)
            try:
                with deps.transaction() as (session, ctx):
                    experiment = experiment_service.get_by_key(session, key)
                    permissions.require_manager(
                        ctx.policy, actor, experiment, action.value.replace("_", " ")
                    )
            except PermissionDenied as denied:
                record_refusal_apart(
                    deps.session_factory, denied, key=key, actor=actor, action=action.value
                )
                tell_privately(client, body, str(denied))
                return
            except TowerError as error:
                tell_privately(client, body, str(error))
                return
            view = reason_modal(action.value, key, version, _where(body))
            client.views_open(trigger_id=body["trigger_id"], view=view)

        return clicked(deps, ApprovalButton, handler)

    app.action(ActionId.REQUEST_CHANGES.value)(ask_reason(ActionId.REQUEST_CHANGES))
    app.action(ActionId.REJECT.value)(ask_reason(ActionId.REJECT))

    def on_collision(
        action: str, run_flow: Callable[..., Collision], done: str
    ) -> Callable[..., None]:
        """A collision alert's button: run `run_flow` on the collision, say `done`."""

        def handler(body: dict[str, Any], client: WebClient, button: CollisionButton) -> None:
            ref, key, actor = button.ref, button.key, actor_of(body)

            def run(session: Session, ctx: ServiceContext) -> str:
                record = run_flow(session, ctx, ref, actor=actor)
                return done.format(ref=format_ref(record))

            act(deps, client, body, key=key or "", action=action, run=run)

        return clicked(deps, CollisionButton, handler)

    app.action(ActionId.ACKNOWLEDGE.value)(
        on_collision("acknowledge", collision_flows.acknowledge, "You acknowledged {ref}.")
    )
    app.action(ActionId.ASK_FOR_WAIVER.value)(
        on_collision(
            "ask_for_waiver",
            collision_flows.request_waiver,
            "The managers are asked to waive {ref}.",
        )
    )

    def show_all_collisions(body: dict[str, Any], client: WebClient, button: ShowAllButton) -> None:
        """*Show all* on a summary: every collision it announced, in a modal."""
        try:
            with deps.read_transaction() as (session, _):
                message = outbox_queries.get_message(session, button.message_id)
                refs = list((message.payload or {}).get("collisions") or [])
                lines = [
                    f"*{format_ref(c)}* {escape(alerts.line_of(c))} ({c.status.value})"
                    for c in collision_service.by_refs(session, refs)
                ]
        except TowerError as error:
            tell_privately(client, body, str(error))
            return
        client.views_open(trigger_id=body["trigger_id"], view=list_modal("Collisions", lines))

    app.action(ActionId.SHOW_ALL_COLLISIONS.value)(
        clicked(deps, ShowAllButton, show_all_collisions)
    )

    def move_to_free_slot(body: dict[str, Any], client: WebClient, button: CollisionButton) -> None:
        ref, actor = button.ref, actor_of(body)
        try:
            with deps.read_transaction() as (session, ctx):
                view = _moved_edit_view(session, ctx, ref, actor)
        except PermissionDenied as denied:
            record_refusal_apart(deps.session_factory, denied, key=None, actor=actor, action="move")
            tell_privately(client, body, str(denied))
            return
        except TowerError as error:
            tell_privately(client, body, str(error))
            return
        client.views_open(trigger_id=body["trigger_id"], view=view)

    app.action(ActionId.MOVE_TO_FREE_SLOT.value)(clicked(deps, CollisionButton, move_to_free_slot))

    def open_register(body: dict[str, Any], client: WebClient) -> None:
        open_register_modal(deps, client, body["trigger_id"], actor_of(body))

    app.action(ActionId.OPEN_REGISTER.value)(acked_then(deps, open_register))


def _moved_edit_view(session: Session, ctx: ServiceContext, ref: str, actor: str) -> dict[str, Any]:
    """The edit modal of the clicker's test in the collision, moved to its next free slot."""
    record = collision_service.get_collision(session, ref)
    keys = keys_of(record)
    experiments = [experiment_service.get_by_key(session, key) for key in keys]
    ranks = reads.ranks(session, [e.number for e in experiments])
    target = permissions.test_to_move(ctx.policy, actor, experiments, ranks)
    placement = slots.placement_now(session, ctx, target.key)
    spec = target.spec()
    if placement is not None and placement.planned_start and placement.moved_days:
        assert placement.planned_end is not None
        spec = replace(spec, start=placement.planned_start, end=placement.planned_end)
    editable = [team.key for team in permissions.teams_to_register_for(ctx.policy, actor)]
    return test_modal(
        ctx.policy, editable or [spec.team], spec=spec, key=target.key, version=target.version
    )
