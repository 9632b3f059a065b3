"""The release protocol's use cases: submit, decide, launch, complete, record, edit.

Every adapter (CLI, Slack, the worker) goes through these. Each one checks who acts, checks
the move against the state machine and the gates, writes an audit event with before/after
snapshots, drives the SLA clocks, re-checks the collisions it touches, and queues its notifications
in the same transaction. Services never commit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tower.audit import service as audit_service
from tower.audit.models import AuditEvent
from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.context import ServiceContext
from tower.engine.findings import format_day
from tower.errors import TowerError
from tower.experiments import permissions
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import (
    EDITABLE_STATUSES,
    ExperimentResult,
    ExperimentSpec,
    ExperimentStatus,
    validate_spec,
)
from tower.pipeline import flows as pipeline_flows
from tower.pipeline import registry
from tower.protocol import notices, notifications
from tower.protocol.arbitration import standings
from tower.protocol.gates import Gate, approval_gates, failing
from tower.protocol.lifecycle import Action, next_status
from tower.protocol.models import Decision, DecisionKind
from tower.sla import clocks as sla_clocks
from tower.text import require_within, user_text

# Editing any of these after approval voids the approval.
FOOTPRINT_FIELDS = frozenset(
    {
        "surfaces",
        "audiences",
        "exclude_audiences",
        "start",
        "end",
        "traffic",
        "exclusion_group",
        "primary_kpi",
        "baseline",
        "mde",
    }
)
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


class StaleVersion(TowerError):
    """Someone changed the test since the actor opened it."""


class GatesFailed(TowerError):
    """The test does not pass the approval gates; each failing gate says what to fix."""

    def __init__(self, experiment: Experiment, gates: list[Gate]) -> None:
        self.gates = gates
        lines = [f"{experiment.key} cannot be approved yet:"]
        lines += [f"  {gate.name}: {gate.message}" for gate in failing(gates)]
        super().__init__("\n".join(lines))


class InvalidEdit(TowerError):
    """An edit with values that break the rules; nothing was changed."""


@dataclass
class Outcome:
    """What an action did, in words for the person who took it."""

    experiment: Experiment
    changed: bool
    message: str
    gates: list[Gate] = field(default_factory=list)


# -- loading ---------------------------------------------------------------------------


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
    if expected_version is not None and expected_version != experiment.version:
        raise StaleVersion(
            f"{experiment.key} changed since you opened it (you saw version "
            f"{expected_version}, it is now {experiment.version}): look again and retry"
        )


def last_submitter(session: Session, experiment: Experiment) -> str | None:
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


# -- actions ---------------------------------------------------------------------------


def register(session: Session, ctx: ServiceContext, spec: ExperimentSpec, *, actor: str) -> Outcome:
    """Register a new test and submit it at once (what `/tower register` does)."""
    permissions.require_may_register(ctx.policy, actor, spec.team)
    problems = validate_spec(spec, ctx.policy)
    if problems:
        raise InvalidEdit("\n".join(f"{p.field}: {p.message}" for p in problems))
    # Writers queue on the registry's row (PostgreSQL; SQLite lets one writer in at a time
    # anyway), so two registrations at once never pick the same number.
    registry.state(session, for_update=True)
    experiment = experiment_service.create(
        session,
        number=experiment_service.highest_number(session) + 1,
        spec=spec,
        status=ExperimentStatus.DRAFT,
        actor=actor,
        action="registered",
    )
    outcome = _submit(session, ctx, experiment, actor=actor)
    return Outcome(experiment, True, f"{experiment.key} registered and submitted", outcome.gates)


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
    return _submit(session, ctx, experiment, actor=actor, expected_version=expected_version)


def _submit(
    session: Session,
    ctx: ServiceContext,
    experiment: Experiment,
    *,
    actor: str,
    expected_version: int | None = None,
) -> Outcome:
    key = experiment.key
    permissions.require_team_or_manager(ctx.policy, actor, experiment, "submit")
    if experiment.status == ExperimentStatus.SUBMITTED:
        return Outcome(experiment, False, f"{key} is already submitted")
    check_version(experiment, expected_version)
    experiment.submitted_at = ctx.now
    _move(session, ctx, experiment, Action.SUBMIT, actor)
    gates = _request_approval(session, ctx, experiment)
    return Outcome(experiment, True, f"{key} submitted for review", gates)


def _request_approval(session: Session, ctx: ServiceContext, experiment: Experiment) -> list[Gate]:
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
    check_version(experiment, expected_version)
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
        return Outcome(experiment, True, f"approval {have} of {need} recorded for {key}", gates)
    _move(session, ctx, experiment, Action.APPROVE, actor, reason)
    notifications.tell_decision(
        session, ctx, experiment, notices.decision(experiment, "approved", actor, reason)
    )
    return Outcome(experiment, True, f"{key} approved", gates)


def request_changes(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
) -> Outcome:
    """A manager sends the test back to its owner; the review clock pauses meanwhile."""
    return _decide(session, ctx, key, Action.REQUEST_CHANGES, actor, reason, expected_version)


def reject(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
) -> Outcome:
    """A manager turns the test down for good, saying why."""
    return _decide(session, ctx, key, Action.REJECT, actor, reason, expected_version)


def withdraw(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    reason: str = "",
    expected_version: int | None = None,
) -> Outcome:
    """The team takes the test off the pipeline before it runs."""
    require_within(reason, "reason")
    experiment = load_for_team(
        session, ctx, key, actor=actor, verb="withdraw", expected_version=expected_version
    )
    _move(session, ctx, experiment, Action.WITHDRAW, actor, reason)
    return Outcome(experiment, True, f"{key} withdrawn")


def cancel(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
) -> Outcome:
    """Stop an approved or live test; the owner or a manager, with a reason."""
    experiment = load_for_team(
        session, ctx, key, actor=actor, verb="cancel", expected_version=expected_version
    )
    _require_reason(reason, "cancel", key)
    _move(session, ctx, experiment, Action.CANCEL, actor, reason)
    text = notices.moved(experiment, f"cancelled: {user_text(reason)}")
    notifications.tell_team(session, ctx, experiment, text)
    return Outcome(experiment, True, f"{key} cancelled")


def launch(session: Session, ctx: ServiceContext, key: str, *, actor: str = "tower") -> Outcome:
    """Take an approved test live on its start date, if its gates still pass."""
    experiment = experiment_service.get_for_change(session, key)
    next_status(key, experiment.status, Action.LAUNCH)
    gates = gates_for(session, ctx, experiment)
    blocked = [g for g in failing(gates) if g.name not in ("lead time",)]
    if blocked:
        text = notices.launch_blocked(experiment, blocked)
        notifications.tell_launch_blocked(session, ctx, experiment, text)
        return Outcome(experiment, False, text, gates)
    _move(session, ctx, experiment, Action.LAUNCH, actor)
    notifications.tell_team(session, ctx, experiment, notices.moved(experiment, "live"))
    return Outcome(experiment, True, f"{key} is live", gates)


def complete(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str = "tower",
    expected_version: int | None = None,
) -> Outcome:
    """End a live test; its owner is asked for the result (the results clock starts)."""
    if actor == "tower":
        experiment = experiment_service.get_for_change(session, key)
        check_version(experiment, expected_version)
    else:
        experiment = load_for_team(
            session, ctx, key, actor=actor, verb="complete", expected_version=expected_version
        )
    _move(session, ctx, experiment, Action.COMPLETE, actor)
    kpi = user_text(experiment.primary_kpi) if experiment.primary_kpi else "its KPI"
    notifications.tell_owner(
        session,
        ctx,
        experiment,
        "results_requested",
        f"{notices.label(experiment)} has completed: record its result (winner, loser or "
        f"inconclusive, and the observed lift on {kpi}).",
    )
    return Outcome(experiment, True, f"{key} completed")


def record_result(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    result: str,
    lift: float | None,
    note: str = "",
    expected_version: int | None = None,
) -> Outcome:
    """Record what a completed test found; it feeds the playbook."""
    require_within(note, "note")
    experiment = load_for_team(
        session,
        ctx,
        key,
        actor=actor,
        verb="record the result of",
        expected_version=expected_version,
    )
    try:
        verdict = ExperimentResult(result)
    except ValueError:
        allowed = ", ".join(r.value for r in ExperimentResult)
        raise InvalidEdit(f"result {result!r} is not one of {allowed}") from None
    if lift is not None and not math.isfinite(lift):
        raise InvalidEdit(f"the observed lift must be a number, not {lift}")
    next_status(key, experiment.status, Action.RECORD_RESULT)
    experiment.result, experiment.observed_lift, experiment.result_note = verdict, lift, note
    _move(session, ctx, experiment, Action.RECORD_RESULT, actor, note)
    return Outcome(experiment, True, f"result of {key} recorded: {verdict.value}")


def edit(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    changes: Mapping[str, Any],
    expected_version: int | None = None,
) -> Outcome:
    """Change a test's fields; changing the footprint, window or KPI voids an approval."""
    experiment = load_for_team(
        session, ctx, key, actor=actor, verb="edit", expected_version=expected_version
    )
    if experiment.status not in EDITABLE_STATUSES:
        raise InvalidEdit(
            f"{key} is {experiment.status.value}: only tests not yet live can be edited"
        )
    spec = replace(experiment.spec(), **changes)
    problems = validate_spec(spec, ctx.policy)
    if problems:
        raise InvalidEdit(
            "\n".join([f"{key} was not changed:", *(f"  {p.field}: {p.message}" for p in problems)])
        )
    changed = [name for name in changes if getattr(spec, name) != getattr(experiment.spec(), name)]
    if not changed:
        return Outcome(experiment, False, f"{key} already has those values")
    before = experiment_service.snapshot(experiment)
    experiment.apply(spec)
    voiding = sorted(set(changed) & FOOTPRINT_FIELDS)
    voided = experiment.status == ExperimentStatus.APPROVED and bool(voiding)
    if voiding:  # approvals so far were for the old footprint, partial ones included
        _void_approvals(session, experiment)
    if voided:
        experiment.status = ExperimentStatus.SUBMITTED
    _flush(session, experiment)
    audit_service.record(
        session,
        actor=actor,
        action="edit",
        experiment_id=experiment.id,
        reason="approval voided" if voided else "",
        before=before,
        after=experiment_service.snapshot(experiment),
    )
    if voided:
        sla_clocks.handle_event(session, ctx, event="submitted", experiment=experiment)
        text = notices.approval_voided(experiment, voiding, actor)
        notifications.tell_approval_voided(session, ctx, experiment, text)
    pipeline_flows.record_change(session, ctx, [experiment])
    if experiment.status == ExperimentStatus.SUBMITTED:
        # The managers' request shows this version's gates and buttons, in place.
        _request_approval(session, ctx, experiment)
    message = f"{key} updated ({', '.join(changed)})"
    return Outcome(experiment, True, message + ("; its approval is void" if voided else ""))


def set_priority(
    session: Session,
    ctx: ServiceContext,
    key: str,
    *,
    actor: str,
    lever: float | None = None,
    deadline: date | None = None,
    clear_deadline: bool = False,
) -> Outcome:
    """A manager sets the business lever (clamped by the score) or the business deadline."""
    experiment = experiment_service.get_for_change(session, key)
    permissions.require_manager(ctx.policy, actor, experiment, "set the priority of")
    if lever is not None and not (math.isfinite(lever) and lever > 0):
        raise InvalidEdit(f"the lever must be a positive number, not {lever}")
    if deadline is not None and deadline < experiment.start:
        raise InvalidEdit(
            f"the deadline {format_day(deadline)} is before {key} starts "
            f"({format_day(experiment.start)}): give a deadline on or after its start"
        )
    before = {"lever": experiment.lever, "deadline": _iso(experiment.deadline)}
    if lever is not None:
        experiment.lever = lever
    if deadline is not None or clear_deadline:
        experiment.deadline = deadline
    after = {"lever": experiment.lever, "deadline": _iso(experiment.deadline)}
    if after == before:
        return Outcome(experiment, False, f"{key} already has that priority")
    _flush(session, experiment)
    audit_service.record(
        session,
        actor=actor,
        action="prioritize",
        experiment_id=experiment.id,
        before=before,
        after=after,
    )
    pipeline_flows.record_change(session, ctx, [experiment])
    return Outcome(
        experiment, True, f"{key}: lever {experiment.lever:g}, deadline {after['deadline']}"
    )


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def gates_for(session: Session, ctx: ServiceContext, experiment: Experiment) -> list[Gate]:
    """The test's gates against the collision records (every change keeps them current),
    its collisions arbitrated by the pipeline's ranks."""
    records = _records_of(session, experiment)
    return approval_gates(experiment, ctx, records, standings(session, experiment, records))


def _records_of(session: Session, experiment: Experiment) -> list[Collision]:
    """The test's unresolved collision records: what its gates look at."""
    unresolved = (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED)
    return collision_service.records_involving(session, experiment.key, unresolved)


def record_denial(
    session: Session, *, key: str | None, actor: str, action: str, message: str
) -> None:
    """Audit an attempt the actor was not allowed to make (in its own transaction), on the
    test `key` when there is one (a registration for another team has none yet)."""
    experiment_id = experiment_service.get_by_key(session, key).id if key else None
    audit_service.record(
        session, actor=actor, action=f"denied:{action}", experiment_id=experiment_id, reason=message
    )


# -- shared steps ----------------------------------------------------------------------


def _decide(
    session: Session,
    ctx: ServiceContext,
    key: str,
    action: Action,
    actor: str,
    reason: str,
    expected_version: int | None,
) -> Outcome:
    experiment = experiment_service.get_for_change(session, key)
    verb = action.verb
    permissions.require_manager(ctx.policy, actor, experiment, verb)
    permissions.require_not_own(
        ctx.policy, actor, experiment, last_submitter(session, experiment), verb
    )
    _require_reason(reason, verb, key)
    target = (
        next_status(key, experiment.status, action) if experiment.status != _done(action) else None
    )
    if target is None:
        return Outcome(experiment, False, f"{key} is already {experiment.status.value}")
    check_version(experiment, expected_version)
    kind = DecisionKind.REJECT if action == Action.REJECT else DecisionKind.REQUEST_CHANGES
    session.add(
        Decision(
            experiment_id=experiment.id,
            kind=kind,
            actor=actor,
            reason=reason,
            experiment_version=experiment.version,
        )
    )
    _void_approvals(session, experiment)
    _move(session, ctx, experiment, action, actor, reason)
    past = "rejected" if action == Action.REJECT else "sent back for changes"
    notifications.tell_decision(
        session, ctx, experiment, notices.decision(experiment, past, actor, reason)
    )
    return Outcome(experiment, True, f"{key} {past}")


def _void_approvals(session: Session, experiment: Experiment) -> None:
    """Approvals given so far no longer count (a decision or an edit overtook them)."""
    for decision in session.scalars(
        select(Decision).where(
            Decision.experiment_id == experiment.id,
            Decision.kind == DecisionKind.APPROVE,
            Decision.voided.is_(False),
        )
    ):
        decision.voided = True


def _done(action: Action) -> ExperimentStatus:
    return (
        ExperimentStatus.REJECTED if action == Action.REJECT else ExperimentStatus.CHANGES_REQUESTED
    )


def _move(
    session: Session,
    ctx: ServiceContext,
    experiment: Experiment,
    action: Action,
    actor: str,
    reason: str = "",
) -> None:
    require_within(reason, "reason")
    before = experiment_service.snapshot(experiment)
    experiment.status = next_status(experiment.key, experiment.status, action)
    _flush(session, experiment)
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


def _flush(session: Session, experiment: Experiment) -> None:
    key = experiment.key  # read now: a failed flush expires the object
    try:
        session.flush()
    except StaleDataError:
        raise StaleVersion(
            f"{key} changed since you opened it: someone acted on it at the same "
            "time; look again and retry"
        ) from None


def _require_reason(reason: str, verb: str, key: str) -> None:
    if not reason.strip():
        raise InvalidEdit(f"say why you {verb} {key} (a reason is required)")
    require_within(reason, "reason")
