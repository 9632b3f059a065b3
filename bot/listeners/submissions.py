"""Modal submissions: register a test, edit one, or give the reason for a decision.

Bad input comes back inline on the field that is wrong (`response_action: errors`) and
nothing is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.deps import BotDeps
from bot.ids import ActionId, BlockId, CallbackId
from bot.listeners.common import actor_of, tell_privately
from bot.views.buttons import NotOurs
from bot.views.memos import EditMemo, ReasonMemo
from bot.views.modal import submitted_texts
from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.collisions.refs import format_ref
from tower.context import ServiceContext
from tower.db import utcnow
from tower.engine.score import Score
from tower.errors import TowerError
from tower.experiments import permissions
from tower.experiments import service as experiment_service
from tower.experiments.csv_rows import read_fields
from tower.experiments.models import Experiment
from tower.experiments.permissions import PermissionDenied
from tower.experiments.spec import ExperimentKind, ExperimentSpec, validate_spec
from tower.messages import Message, Typed
from tower.outbox.kinds import NotificationKind
from tower.outbox.leases import Claimed, claim_queued
from tower.outbox.notify import notify
from tower.outbox.payloads import ExperimentRef
from tower.pipeline import slots
from tower.policy import Policy
from tower.protocol import edits, review
from tower.protocol.refusals import record_refusal_apart

MODAL_FIELDS = frozenset(block.value for block in BlockId if block != BlockId.REASON)
# A registration joining hundreds of crowds names the most urgent few in its DM.
DM_COLLISIONS = 5


NOT_OURS = "This form is not one of Tower's: nothing was done. Open it again from Tower."


M = TypeVar("M", EditMemo, ReasonMemo)


@dataclass(frozen=True)
class Submission(Generic[M]):
    """A submission of one of Tower's forms, as its handler gets it: Bolt's arguments, the
    submitter and the form's memo, read (`bot.views.memos`)."""

    ack: Ack
    body: dict[str, Any]
    view: dict[str, Any]
    client: WebClient
    actor: str
    memo: M


def field_errors(
    texts: dict[str, str], policy: Policy, base: ExperimentSpec | None, owner: str
) -> tuple[ExperimentSpec | None, dict[str, str]]:
    """The spec a modal describes, or the message to show on each bad field."""
    values, errors = read_fields({k: v for k, v in texts.items() if k in MODAL_FIELDS})
    problems: dict[str, str] = {}
    for error in errors:
        problems.setdefault(error.column, error.message)
    if problems:
        return None, problems
    if base is None:
        spec = ExperimentSpec(
            title=values.get("title", ""),
            team=values.get("team", ""),
            owner=owner,
            kind=values.get("kind") or ExperimentKind.AB_TEST,
            surfaces=values.get("surfaces", ()),
            start=values["start"],
            end=values["end"],
        )
        spec = replace(
            spec,
            **{
                k: v
                for k, v in values.items()
                if k not in ("title", "team", "kind", "surfaces", "start", "end")
            },
        )
    else:
        spec = replace(base, **values)
    for problem in validate_spec(spec, policy):
        block = problem.field if problem.field in MODAL_FIELDS else BlockId.TEAM.value
        problems.setdefault(block, problem.message)
    return (None, problems) if problems else (spec, {})


def register(app: App, deps: BotDeps) -> None:
    @app.view(CallbackId.REGISTER.value)
    def on_register(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        actor = actor_of(body)
        texts = submitted_texts(view)
        if not texts.get("start") or not texts.get("end"):
            missing = {name: "pick a date" for name in ("start", "end") if not texts.get(name)}
            ack(response_action="errors", errors=missing)
            return
        team = texts.get(BlockId.TEAM.value, "")
        if deps.policy.team(team) is not None:  # an unknown team is a field error below
            try:  # who may register for the team comes before what the form says
                permissions.require_may_register(deps.policy, actor, team)
            except PermissionDenied as denied:
                record_refusal_apart(
                    deps.session_factory, denied, key=None, actor=actor, action="register"
                )
                ack(response_action="errors", errors={BlockId.TEAM.value: str(denied)})
                return
        spec, problems = field_errors(texts, deps.policy, None, actor)
        if spec is None:
            ack(response_action="errors", errors=problems)
            return
        ack()  # the form is valid: it closes at once, and the work goes on after

        def record() -> None:
            # The DM is worked out, queued and claimed with the registration, and sent as
            # soon as it commits: between the change and its DM, no other transaction
            # waits its turn to write (a slot costs milliseconds, `pipeline.slots`).
            try:
                with deps.transaction() as (session, ctx):
                    registered = edits.register(session, ctx, spec, actor=actor).experiment
                    text = _summary(session, ctx, registered)
                    key = registered.key
                    dm = _queue_dm(session, ctx, key, actor, text, claim=deps.delivers)
            except TowerError as error:
                tell_privately(
                    client, {"user": {"id": actor}}, f"Your test was not registered: {error}"
                )
                return
            deps.send_claimed(dm)
            deps.deliver_now()

        deps.after_ack(record, body, client)

    def on_form(
        callback: CallbackId, block: BlockId, kind: type[M]
    ) -> Callable[[Callable[[Submission[M]], None]], Callable[[Submission[M]], None]]:
        """Listen to submissions of Tower's form `callback`, whose memo is a `kind`: one
        that is not Tower's is answered on its `block` with NOT_OURS and what is wrong,
        and nothing is done; the handler gets the others."""

        def listen(handle: Callable[[Submission[M]], None]) -> Callable[[Submission[M]], None]:
            @app.view(callback.value)
            def listener(
                ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
            ) -> None:
                try:
                    memo = kind.parse(str(view.get("private_metadata") or ""))
                except NotOurs as wrong:
                    ack(response_action="errors", errors={block.value: f"{NOT_OURS} ({wrong})"})
                    return
                handle(Submission(ack, body, view, client, actor_of(body), memo))

            return handle

        return listen

    @on_form(CallbackId.EDIT, BlockId.TITLE, EditMemo)
    def on_edit(form: Submission[EditMemo]) -> None:
        ack, body, client, actor = form.ack, form.body, form.client, form.actor
        key, version = form.memo.key, form.memo.version
        try:
            with deps.transaction() as (session, ctx):
                experiment = experiment_service.get_by_key(session, key)
                # Who may edit comes before what the form says: an outsider is refused.
                permissions.require_team_or_manager(ctx.policy, actor, experiment, "edit")
                spec, problems = field_errors(
                    submitted_texts(form.view), ctx.policy, experiment.spec(), experiment.owner
                )
                if spec is None:
                    ack(response_action="errors", errors=problems)
                    return
                changes = {name: getattr(spec, name) for name in MODAL_FIELDS}
                outcome = edits.edit(
                    session, ctx, key, actor=actor, changes=changes, expected_version=version
                )
        except TowerError as error:
            _answer_on_form(deps, ack, error, BlockId.TITLE, key=key, actor=actor, action="edit")
            return
        ack()
        deps.after_ack(lambda: tell_privately(client, body, outcome.message), body, client)
        deps.deliver_now()

    @on_form(CallbackId.DECISION_REASON, BlockId.REASON, ReasonMemo)
    def on_reason(form: Submission[ReasonMemo]) -> None:
        ack, actor = form.ack, form.actor
        key, version, action = form.memo.key, form.memo.version, form.memo.action
        reason = submitted_texts(form.view).get(BlockId.REASON.value, "").strip()
        if not reason:
            ack(response_action="errors", errors={BlockId.REASON.value: "say why"})
            return
        decide = review.reject if action == ActionId.REJECT.value else review.request_changes
        try:
            with deps.transaction() as (session, ctx):
                decide(session, ctx, key, actor=actor, reason=reason, expected_version=version)
        except TowerError as error:
            _answer_on_form(deps, ack, error, BlockId.REASON, key=key, actor=actor, action=action)
            return
        ack()
        deps.deliver_now()


def _answer_on_form(
    deps: BotDeps,
    ack: Ack,
    error: TowerError,
    block: BlockId,
    *,
    key: str,
    actor: str,
    action: str,
) -> None:
    """Answer a form whose submission failed on its `block`; a refusal is audited."""
    if isinstance(error, PermissionDenied):
        record_refusal_apart(deps.session_factory, error, key=key, actor=actor, action=action)
    ack(response_action="errors", errors={block.value: str(error)})


def _summary(session: Session, ctx: ServiceContext, experiment: Experiment) -> Message:
    """What the registrant is told: the test's score, rank, most urgent collisions (how
    many more) and next free slot."""
    key = experiment.key
    standing = slots.standing_now(session, ctx, key)
    lines: list[Message | str] = [
        Message.of(key, " '", Typed(experiment.title), "' is registered and submitted for review.")
    ]
    if standing is not None and isinstance(standing.score, Score):
        lines.append(
            f"Rank {standing.rank} of {standing.scored}, score {standing.score.value:.3g}."
        )
    elif standing is not None:
        lines.append(f"Not ranked: {standing.score}")
    collisions = collision_service.collision_page(
        session,
        statuses=[CollisionStatus.OPEN],
        involving=collision_service.ids_of_test(key),
        limit=DM_COLLISIONS,
    )
    lines += [f"Collision {format_ref(c)}: {c.explanation}" for c in collisions.items]
    if collisions.more:
        lines.append(f"…and {collisions.more} more collision(s): `/tower show {key}` lists them.")
    placement = None if standing is None else standing.placement
    if placement is not None and placement.moved_days:
        slot = f"{placement.planned_start} to {placement.planned_end}"
        lines.append(f"Next free slot: {slot} ({placement.explanation}).")
    return Message.of("\n").join(lines)


def _queue_dm(
    session: Session, ctx: ServiceContext, key: str, user: str, text: Message, *, claim: bool
) -> Claimed | None:
    """Queue the registrant's DM and (`claim`) claim it for sending right after this
    transaction commits; None if it was queued already, or is left to the courier."""
    queued = notify(
        session,
        ctx,
        NotificationKind.REGISTERED,
        [user],
        text,
        dedupe_stem=f"registered:{key}",
        payload=ExperimentRef(key=key),
    )
    if not queued or not claim:
        return None
    [message] = queued
    return claim_queued(session, message, wall_time=utcnow(), now=ctx.now)
