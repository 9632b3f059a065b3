"""The steps the protocol's use cases share.

A use case loads the test, checking who acts and that they saw its current version; each
move through the state machine writes an audit event with before/after snapshots, drives
the SLA clocks and re-checks the plan and the collisions it touches, in the caller's
transaction. Services never commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tower.audit import service as audit_service
from tower.context import ServiceContext
from tower.experiments import permissions
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.pipeline import flows as pipeline_flows
from tower.protocol.lifecycle import Action, next_status
from tower.protocol.models import Decision, DecisionKind
from tower.protocol.outcome import InvalidEdit, StaleVersion
from tower.sla import clocks as sla_clocks
from tower.text import require_within

SLA_EVENTS = {
    Action.SUBMIT: "submitted",
    Action.APPROVE: "approved",
    Action.REQUEST_CHANGES: "changes_requested",
    Action.REJECT: "rejected",
    Action.WITHDRAW: "withdrawn",
    Action.CANCEL: "cancelled",
    Action.COMPLETE: "completed",
    Action.RECORD_RESULT: "results_recorded",
}


def load_for_team(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    verb: str,
    expected_version: int | None = None,
) -> Experiment:
    """The test, locked for change, provided `actor` may `verb` it (its owner, its team or a
    manager) and it is still the version they saw (when they say which). Permission comes
    first: an outsider learns nothing of the test's version."""
    experiment = experiment_service.get_for_change(session, key)
    permissions.require_team_or_manager(ctx.policy, actor, experiment, verb)
    check_version(experiment, expected_version)
    return experiment


def check_version(experiment: Experiment, expected_version: int | None) -> None:
    """Refuse a change to a version other than the one the actor saw (when they say)."""
    if expected_version is not None and expected_version != experiment.version:
        raise StaleVersion(
            f"{experiment.key} changed since you opened it (you saw version "
            f"{expected_version}, it is now {experiment.version}): look again and retry"
        )


def move(
    session: Session,
    ctx: ServiceContext,
    experiment: Experiment,
    action: Action,
    actor: str,
    reason: str = "",
) -> None:
    """Take `action` on the test: its new status written and audited with before/after
    snapshots, its SLA clocks driven, the plan and its collisions brought up to date."""
    require_within(reason, "reason")
    before = experiment_service.snapshot(experiment)
    experiment.status = next_status(experiment.key, experiment.status, action)
    flush_version(session, experiment)
    audit_service.record(
        session,
        actor=actor,
        action=action.value,
        experiment_id=experiment.id,
        reason=reason,
        before=before,
        after=experiment_service.snapshot(experiment),
    )
    event = SLA_EVENTS.get(action)
    if event is not None:
        sla_clocks.handle_event(session, ctx, event=event, experiment=experiment)
    pipeline_flows.record_change(session, ctx, [experiment])


def flush_version(session: Session, experiment: Experiment) -> None:
    """Write the change now; a concurrent change to the same version is a StaleVersion."""
    key = experiment.key  # read now: a failed flush expires the object
    try:
        session.flush()
    except StaleDataError:
        raise StaleVersion(
            f"{key} changed since you opened it: someone acted on it at the same "
            "time; look again and retry"
        ) from None


def require_reason(reason: str, verb: str, key: str) -> None:
    """Refuse a `verb` on test `key` that does not say why."""
    if not reason.strip():
        raise InvalidEdit(f"say why you {verb} {key} (a reason is required)")
    require_within(reason, "reason")


def void_approvals(session: Session, experiment: Experiment) -> None:
    """Approvals given so far no longer count (a decision or an edit overtook them)."""
    for decision in session.scalars(
        select(Decision).where(
            Decision.experiment_id == experiment.id,
            Decision.kind == DecisionKind.APPROVE,
            Decision.voided.is_(False),
        )
    ):
        decision.voided = True
