"""Who hears of the protocol's moves, queued through `notify` in the move's transaction.

Each notification is keyed by the test's version (a status change: by the status), so a
retried action queues nothing twice; the approval request and the decision that answers it
are one message in the managers' channel, updated in place.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.messages import Message
from tower.outbox.kinds import NotificationKind
from tower.outbox.notify import notify
from tower.outbox.payloads import ExperimentRef, Payload, Replace, VersionRef
from tower.protocol import notices


def ask_approval(
    session: Session, ctx: ServiceContext, experiment: Experiment, text: Message
) -> None:
    """The managers' request to decide on this version; it replaces the request for an
    earlier version of the test in place, so its buttons never act on a stale version."""
    notify(
        session,
        ctx,
        NotificationKind.APPROVAL_REQUESTED,
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
    tell_owner(session, ctx, experiment, NotificationKind.DECISION, text)
    notify(
        session,
        ctx,
        NotificationKind.APPROVAL_DECIDED,
        notices.managers_destination(ctx.policy),
        text + f" ({ctx.now:%a %d %b %Y %H:%M} UTC)",
        dedupe_stem=_once_per_version("decided", experiment),
        payload=ExperimentRef(key=experiment.key),
        follows=_the_request(experiment),
    )


def tell_owner(
    session: Session,
    ctx: ServiceContext,
    experiment: Experiment,
    kind: NotificationKind,
    text: Message,
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
    """The owner and the team's channel hear that the test went live or was cancelled
    (once)."""
    status = experiment.status.value
    notify(
        session,
        ctx,
        _STATUS_KINDS[experiment.status],
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
        session,
        ctx,
        experiment,
        NotificationKind.LAUNCH_BLOCKED,
        "launch-blocked",
        text,
        ExperimentRef(key=experiment.key),
    )


def tell_approval_voided(
    session: Session, ctx: ServiceContext, experiment: Experiment, text: Message
) -> None:
    """The owner and the managers hear that an edit voided the test's approval."""
    _tell_owner_and_managers(
        session,
        ctx,
        experiment,
        NotificationKind.APPROVAL_VOIDED,
        "voided",
        text,
        _versioned(experiment),
    )


def _tell_owner_and_managers(
    session: Session,
    ctx: ServiceContext,
    experiment: Experiment,
    kind: NotificationKind,
    stem: str,
    text: Message,
    payload: Payload,
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


def _versioned(experiment: Experiment) -> VersionRef:
    return VersionRef(key=experiment.key, version=experiment.version)


def _the_request(experiment: Experiment) -> Replace:
    """The managers' approval request for the test, whichever version it was for."""
    return Replace(kind=NotificationKind.APPROVAL_REQUESTED, key=experiment.key)


# What the owner and the team hear when a test moves to a status (`tell_team`).
_STATUS_KINDS = {
    ExperimentStatus.LIVE: NotificationKind.STATUS_LIVE,
    ExperimentStatus.CANCELLED: NotificationKind.STATUS_CANCELLED,
}
