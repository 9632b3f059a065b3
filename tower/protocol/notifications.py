"""Who hears of the protocol's moves, queued through `notify` in the move's transaction.

Each notification is keyed by the test's version (a status change: by the status), so a
retried action queues nothing twice; the approval request and the decision that answers it
are one message in the managers' channel, updated in place.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.experiments.models import Experiment
from tower.messages import Message
from tower.outbox.notify import Follows, notify
from tower.protocol import notices


def ask_approval(
    session: Session, ctx: ServiceContext, experiment: Experiment, text: Message
) -> None:
    """The managers' request to decide on this version; it replaces the request for an
    earlier version of the test in place, so its buttons never act on a stale version."""
    notify(
        session,
        ctx,
        "approval_requested",
        notices.managers_destination(ctx.policy),
        text,
        dedupe_stem=_once_per_version("approval", experiment),
        payload=_versioned(experiment),
        follows=_the_request(experiment),
    )


def tell_decision(
    session: Session, ctx: ServiceContext, experiment: Experiment, text: Message
) -> None:
    """The owner hears the managers' decision, and the approval request shows it in its
    place, with when it was taken."""
    tell_owner(session, ctx, experiment, "decision", text)
    notify(
        session,
        ctx,
        "approval_decided",
        notices.managers_destination(ctx.policy),
        text + f" ({ctx.now:%a %d %b %Y %H:%M} UTC)",
        dedupe_stem=_once_per_version("decided", experiment),
        payload={"key": experiment.key},
        follows=_the_request(experiment),
    )


def tell_owner(
    session: Session, ctx: ServiceContext, experiment: Experiment, kind: str, text: Message
) -> None:
    """The test's owner hears `text`, once per version of the test."""
    notify(
        session,
        ctx,
        kind,
        [experiment.owner],
        text,
        dedupe_stem=_once_per_version(kind, experiment),
        payload=_versioned(experiment),
    )


def tell_team(session: Session, ctx: ServiceContext, experiment: Experiment, text: Message) -> None:
    """The owner and the team's channel hear that the test moved to its status (once)."""
    status = experiment.status.value
    notify(
        session,
        ctx,
        f"status_{status}",
        [experiment.owner, *notices.team_channel(ctx.policy, experiment)],
        text,
        dedupe_stem=f"status:{experiment.key}:{status}",
        payload=_versioned(experiment),
    )


def tell_launch_blocked(
    session: Session, ctx: ServiceContext, experiment: Experiment, text: Message
) -> None:
    """The owner and the managers hear that the test cannot go live, and why."""
    _tell_owner_and_managers(
        session, ctx, experiment, "launch_blocked", "launch-blocked", text, {"key": experiment.key}
    )


def tell_approval_voided(
    session: Session, ctx: ServiceContext, experiment: Experiment, text: Message
) -> None:
    """The owner and the managers hear that an edit voided the test's approval."""
    _tell_owner_and_managers(
        session, ctx, experiment, "approval_voided", "voided", text, _versioned(experiment)
    )


def _tell_owner_and_managers(
    session: Session,
    ctx: ServiceContext,
    experiment: Experiment,
    kind: str,
    stem: str,
    text: Message,
    payload: dict[str, Any],
) -> None:
    notify(
        session,
        ctx,
        kind,
        [experiment.owner, *notices.managers_destination(ctx.policy)],
        text,
        dedupe_stem=_once_per_version(stem, experiment),
        payload=payload,
    )


def _once_per_version(prefix: str, experiment: Experiment) -> str:
    """`prefix:T-4:v3`: the stem of a notification sent once per version of the test."""
    return f"{prefix}:{experiment.key}:v{experiment.version}"


def _versioned(experiment: Experiment) -> dict[str, Any]:
    return {"key": experiment.key, "version": experiment.version}


def _the_request(experiment: Experiment) -> Follows:
    """The managers' approval request for the test, whichever version it was for."""
    return Follows("replaces", "approval_requested", {"key": experiment.key})
