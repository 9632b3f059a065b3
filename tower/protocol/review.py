"""Review: a test submitted, the managers asked to decide with its gates in view, and their
decisions (approve, send back for changes, reject)."""

from __future__ import annotations

from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.audit import service as audit_service
from tower.audit.models import AuditEvent
from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.context import ServiceContext
from tower.experiments import permissions
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.protocol import notices, notifications, steps
from tower.protocol.arbitration import standings
from tower.protocol.gates import Gate, approval_gates, failing
from tower.protocol.lifecycle import Action, next_status
from tower.protocol.models import Decision, DecisionKind
from tower.protocol.outcome import GatesFailed, Outcome
from tower.text import require_within


def submit(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    expected_version: int | None = None,
) -> Outcome:
    """Send a test for review; managers get the approval request with its gates."""
    experiment = experiment_service.get_for_change(session, key)
    return send_for_review(session, ctx, experiment, actor=actor, expected_version=expected_version)


def send_for_review(
    session: Session,
    ctx: ServiceContext,
    experiment: Experiment,
    *,
    actor: str,
    expected_version: int | None = None,
) -> Outcome:
    """`submit` for a test already loaded (a registration submits what it just created)."""
    key = experiment.key
    permissions.require_team_or_manager(ctx.policy, actor, experiment, "submit")
    if experiment.status == ExperimentStatus.SUBMITTED:
        return Outcome(experiment, False, f"{key} is already submitted")
    steps.check_version(experiment, expected_version)
    experiment.submitted_at = ctx.now
    steps.move(session, ctx, experiment, Action.SUBMIT, actor)
    gates = request_approval(session, ctx, experiment)
    return Outcome(experiment, True, f"{key} submitted for review", gates)


def request_approval(session: Session, ctx: ServiceContext, experiment: Experiment) -> list[Gate]:
    """Ask the managers to decide on this version; a request for an earlier version of the
    same test is replaced in place, so its buttons never act on a stale version."""
    gates = gates_for(session, ctx, experiment)
    required = ctx.policy.protocol.approvals_required
    text = notices.approval_request(experiment, gates, f"{required} approval(s) needed")
    notifications.ask_approval(session, ctx, experiment, text)
    return gates


def approve(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    expected_version: int | None = None,
    reason: str = "",
) -> Outcome:
    """A manager approves; the test is approved once the policy's number of approvals is met."""
    require_within(reason, "reason")
    experiment = experiment_service.get_for_change(session, key)
    permissions.require_manager(ctx.policy, actor, experiment, "approve")
    permissions.require_not_own(
        ctx.policy, actor, experiment, last_submitter(session, experiment), "approve"
    )
    if actor in approvers(session, experiment):
        return Outcome(experiment, False, f"you already approved {key}")
    steps.check_version(experiment, expected_version)
    next_status(key, experiment.status, Action.APPROVE)
    gates = gates_for(session, ctx, experiment)
    if failing(gates):
        raise GatesFailed(experiment, gates)
    session.add(
        Decision(
            experiment_id=experiment.id,
            kind=DecisionKind.APPROVE,
            actor=actor,
            reason=reason,
            experiment_version=experiment.version,
        )
    )
    session.flush()
    have, need = len(approvers(session, experiment)), ctx.policy.protocol.approvals_required
    if have < need:
        audit_service.record(
            session,
            actor=actor,
            action="approval",
            experiment_id=experiment.id,
            reason=f"approval {have} of {need}" + (f": {reason}" if reason else ""),
        )
        recorded = f"approval {have} of {need} recorded for {key}"
        return Outcome(experiment, True, recorded, gates, awaiting_more=True)
    steps.move(session, ctx, experiment, Action.APPROVE, actor, reason)
    notifications.tell_decision(
        session, ctx, experiment, notices.decision(experiment, "approved", actor, reason)
    )
    return Outcome(experiment, True, f"{key} approved", gates)


def decide(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    action: Action,
    actor: str,
    reason: str,
    expected_version: int | None = None,
) -> Outcome:
    """A manager's decision that needs a reason: send the test back to its owner
    (`Action.REQUEST_CHANGES`; the review clock pauses meanwhile) or turn it down for good
    (`Action.REJECT`). `request_changes` and `reject` name the two."""
    experiment = experiment_service.get_for_change(session, key)
    verb = action.verb
    permissions.require_manager(ctx.policy, actor, experiment, verb)
    permissions.require_not_own(
        ctx.policy, actor, experiment, last_submitter(session, experiment), verb
    )
    steps.require_reason(reason, verb, key)
    kind, done, past = _REASONED[action]
    target = next_status(key, experiment.status, action) if experiment.status != done else None
    if target is None:
        return Outcome(experiment, False, f"{key} is already {experiment.status.value}")
    steps.check_version(experiment, expected_version)
    session.add(
        Decision(
            experiment_id=experiment.id,
            kind=kind,
            actor=actor,
            reason=reason,
            experiment_version=experiment.version,
        )
    )
    steps.void_approvals(session, experiment)
    steps.move(session, ctx, experiment, action, actor, reason)
    notifications.tell_decision(
        session, ctx, experiment, notices.decision(experiment, past, actor, reason)
    )
    return Outcome(experiment, True, f"{key} {past}")


# The decisions that need a reason: what each records, the state it leaves the test in
# (deciding again there is a no-op) and how its outcome says it.
_REASONED: dict[Action, tuple[DecisionKind, ExperimentStatus, str]] = {
    Action.REQUEST_CHANGES: (
        DecisionKind.REQUEST_CHANGES,
        ExperimentStatus.CHANGES_REQUESTED,
        "sent back for changes",
    ),
    Action.REJECT: (DecisionKind.REJECT, ExperimentStatus.REJECTED, "rejected"),
}
request_changes = partial(decide, action=Action.REQUEST_CHANGES)
reject = partial(decide, action=Action.REJECT)


def last_submitter(session: Session, experiment: Experiment) -> str | None:
    """Who last submitted the test: they may not decide on it themselves."""
    query = (
        select(AuditEvent.actor)
        .where(AuditEvent.experiment_id == experiment.id, AuditEvent.action == Action.SUBMIT)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def approvers(session: Session, experiment: Experiment) -> list[str]:
    """Managers whose approval of the current submission still stands."""
    query = select(Decision.actor).where(
        Decision.experiment_id == experiment.id,
        Decision.kind == DecisionKind.APPROVE,
        Decision.voided.is_(False),
    )
    return sorted(set(session.scalars(query)))


def gates_for(session: Session, ctx: ServiceContext, experiment: Experiment) -> list[Gate]:
    """The test's gates against the collision records (every change keeps them current),
    its collisions arbitrated by the pipeline's ranks."""
    records = _records_of(session, experiment)
    return approval_gates(experiment, ctx, records, standings(session, experiment, records))


def _records_of(session: Session, experiment: Experiment) -> list[Collision]:
    """The test's unresolved collision records: what its gates look at."""
    unresolved = (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED)
    return collision_service.records_involving(session, experiment.key, unresolved)
