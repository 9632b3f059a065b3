"""A test's course after review: launched on its start date if its gates still pass,
completed, its result recorded; or stopped (withdrawn, cancelled)."""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.experiments import service as experiment_service
from tower.experiments.spec import ExperimentResult
from tower.messages import Message, Typed
from tower.outbox.kinds import NotificationKind
from tower.protocol import notices, notifications, review, steps
from tower.protocol.gates import failing
from tower.protocol.lifecycle import Action, next_status
from tower.protocol.outcome import InvalidEdit, Outcome
from tower.text import require_within


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
    experiment = steps.load_for_team(
        session, ctx, key, actor=actor, verb="withdraw", expected_version=expected_version
    )
    steps.move(session, ctx, experiment, Action.WITHDRAW, actor, reason)
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
    experiment = steps.load_for_team(
        session, ctx, key, actor=actor, verb="cancel", expected_version=expected_version
    )
    steps.require_reason(reason, "cancel", key)
    steps.move(session, ctx, experiment, Action.CANCEL, actor, reason)
    text = notices.moved(experiment, Message.of("cancelled: ", Typed(reason)))
    notifications.tell_team(session, ctx, experiment, text)
    return Outcome(experiment, True, f"{key} cancelled")


def launch(session: Session, ctx: ServiceContext, key: str, *, actor: str = "tower") -> Outcome:
    """Take an approved test live on its start date, if its gates still pass."""
    experiment = experiment_service.get_for_change(session, key)
    next_status(key, experiment.status, Action.LAUNCH)
    gates = review.gates_for(session, ctx, experiment)
    blocked = [g for g in failing(gates) if g.name not in ("lead time",)]
    if blocked:
        text = notices.launch_blocked(experiment, blocked)
        notifications.tell_launch_blocked(session, ctx, experiment, text)
        return Outcome(experiment, False, text.plain(), gates)
    steps.move(session, ctx, experiment, Action.LAUNCH, actor)
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
        steps.check_version(experiment, expected_version)
    else:
        experiment = steps.load_for_team(
            session, ctx, key, actor=actor, verb="complete", expected_version=expected_version
        )
    steps.move(session, ctx, experiment, Action.COMPLETE, actor)
    kpi = Typed(experiment.primary_kpi) if experiment.primary_kpi else "its KPI"
    notifications.tell_owner(
        session,
        ctx,
        experiment,
        NotificationKind.RESULTS_REQUESTED,
        Message.of(
            notices.label(experiment),
            " has completed: record its result (winner, loser or inconclusive, and the "
            "observed lift on ",
            kpi,
            ").",
        ),
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
    experiment = steps.load_for_team(
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
    steps.move(session, ctx, experiment, Action.RECORD_RESULT, actor, note)
    return Outcome(experiment, True, f"result of {key} recorded: {verdict.value}")
