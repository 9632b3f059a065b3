"""Registering a test and changing it: its fields (a change to its footprint voids its
approval) and, for managers, its priority."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.engine.findings import format_day
from tower.experiments import permissions
from tower.experiments import service as experiment_service
from tower.experiments.spec import (
    FOOTPRINT_FIELDS,
    ExperimentSpec,
    ExperimentStatus,
    validate_spec,
)
from tower.json_text import iso
from tower.pipeline import flows as pipeline_flows
from tower.pipeline import registry
from tower.protocol import notices, notifications, review, steps
from tower.protocol.outcome import InvalidEdit, Outcome
from tower.sla import clocks as sla_clocks


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
    outcome = review.send_for_review(session, ctx, experiment, actor=actor)
    return Outcome(experiment, True, f"{experiment.key} registered and submitted", outcome.gates)


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
    experiment = steps.load_for_team(
        session, ctx, key, actor=actor, verb="edit", expected_version=expected_version
    )
    if not experiment.status.is_editable:
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
    voiding = sorted(set(changed).intersection(FOOTPRINT_FIELDS))
    voided = experiment.status == ExperimentStatus.APPROVED and bool(voiding)
    if voiding:  # approvals so far were for the old footprint, partial ones included
        steps.void_approvals(session, experiment)
    if voided:
        experiment.status = ExperimentStatus.SUBMITTED
    steps.flush_version(session, experiment)
    reason = "approval voided" if voided else ""
    experiment_service.audit_change(
        session, experiment, actor=actor, action="edit", before=before, reason=reason
    )
    if voided:
        sla_clocks.handle_event(session, ctx, event="submitted", experiment=experiment)
        text = notices.approval_voided(experiment, voiding, actor)
        notifications.tell_approval_voided(session, ctx, experiment, text)
    pipeline_flows.record_change(session, ctx, [experiment])
    if experiment.status == ExperimentStatus.SUBMITTED:
        # The managers' request shows this version's gates and buttons, in place.
        review.request_approval(session, ctx, experiment)
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
    before = {"lever": experiment.lever, "deadline": iso(experiment.deadline)}
    if lever is not None:
        experiment.lever = lever
    if deadline is not None or clear_deadline:
        experiment.deadline = deadline
    after = {"lever": experiment.lever, "deadline": iso(experiment.deadline)}
    if after == before:
        return Outcome(experiment, False, f"{key} already has that priority")
    steps.flush_version(session, experiment)
    experiment_service.audit_change(
        session, experiment, actor=actor, action="prioritize", before=before, after=after
    )
    pipeline_flows.record_change(session, ctx, [experiment])
    return Outcome(
        experiment, True, f"{key}: lever {experiment.lever:g}, deadline {after['deadline']}"
    )
