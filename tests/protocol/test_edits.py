"""Void on edit: editing an approved test's footprint, window or KPI voids its approval (a
partial one too) and re-checks it for collisions; other edits keep it; a bad value changes
nothing.

Every test uses the small policy (tests/data/policy.yaml) and the services' fixed clock,
described in tests/support/protocol.py.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.support.factories import END, at, register, utc
from tests.support.people import MANAGER, OWNER, TOWER_CHANNEL
from tests.support.protocol import (
    BAU,
    DEPUTY,
    clocks,
    decisions,
    events,
    open_blocking,
    outbox,
    refused,
    row_counts,
    with_deputy,
)
from tower.collisions.refs import keys_of
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus as S
from tower.policy import Policy
from tower.protocol import edits, review
from tower.protocol.outcome import GatesFailed, InvalidEdit
from tower.sla.models import ClockState

# --------------------------------------------------------------------------- void on edit

VOIDING_EDITS: list[dict[str, Any]] = [
    {"surfaces": ("web/checkout/payment",)},
    {"audiences": ("logged_in",)},
    {"exclude_audiences": ("anonymous",)},
    {"start": date(2026, 3, 17), "end": date(2026, 3, 30)},
    {"end": date(2026, 3, 28)},
    {"traffic": 50.0},
    {"exclusion_group": "checkout"},
    {"primary_kpi": "revenue_per_visitor"},
    {"baseline": 0.04},
    {"mde": 0.1},
]


def approved_through_the_protocol(session: Session, policy: Policy) -> Experiment:
    """T-1 submitted at 10:00 and approved at 11:00 on Monday 2 March."""
    experiment = register(session)
    review.submit(session, at(policy), "T-1", actor=OWNER)
    review.approve(session, at(policy, utc(3, 2, 11)), "T-1", actor=MANAGER)
    assert experiment.status == S.APPROVED
    return experiment


@pytest.mark.parametrize("changes", VOIDING_EDITS, ids=lambda c: "+".join(c))
def test_editing_the_footprint_window_or_kpi_of_an_approved_test_voids_its_approval(
    session: Session, small_policy: Policy, changes: dict[str, Any]
) -> None:
    experiment = approved_through_the_protocol(session, small_policy)
    edited_at = utc(3, 2, 12)

    outcome = edits.edit(session, at(small_policy, edited_at), "T-1", actor=OWNER, changes=changes)

    assert outcome.changed
    assert outcome.message.endswith("; its approval is void")
    assert experiment.status == S.SUBMITTED
    assert all(d.voided for d in decisions(session, experiment))
    assert review.approvers(session, experiment) == []
    voided = outbox(session, "approval_voided")
    assert sorted(m.recipient for m in voided) == sorted([OWNER, TOWER_CHANNEL])
    for message in voided:
        assert all(name in message.text for name in changes)
        assert "back to submitted" in message.text
    event = events(session, experiment)[-1]
    assert (event.action, event.actor, event.reason) == ("edit", OWNER, "approval voided")
    assert event.before is not None and event.after is not None
    assert (event.before["status"], event.after["status"]) == ("approved", "submitted")
    # The review clock starts again: the approval stopped cycle 1, the edit starts cycle 2.
    first, second = clocks(session, "review")
    assert first.state == ClockState.STOPPED
    assert (second.cycle, second.state, second.started_at) == (2, ClockState.RUNNING, edited_at)
    assert second.due_at == utc(3, 4, 12)  # 17 business hours later


def test_an_edit_that_voids_an_approval_is_rechecked_for_collisions(
    session: Session, small_policy: Policy
) -> None:
    experiment = approved_through_the_protocol(session, small_policy)
    register(session, S.LIVE, number=2, surfaces=("web/home",), **BAU)  # it holds its page
    ctx = at(small_policy, utc(3, 2, 12))

    edits.edit(session, ctx, "T-1", actor=OWNER, changes={"surfaces": ("web/home",)})

    assert experiment.status == S.SUBMITTED
    [record] = open_blocking(session)
    assert keys_of(record) == ["T-1", "T-2"]
    assert outbox(session, "collision_opened")
    with pytest.raises(GatesFailed, match="collisions:"), refused(session):
        review.approve(session, ctx, "T-1", actor=MANAGER)


@pytest.mark.parametrize(
    "changes",
    [{"title": "Sticky basket, v2"}, {"hypothesis": "Sharper wording."}, {"impact": 2.0}],
    ids=lambda c: "+".join(c),
)
def test_editing_other_fields_keeps_the_approval(
    session: Session, small_policy: Policy, changes: dict[str, Any]
) -> None:
    experiment = approved_through_the_protocol(session, small_policy)
    version = experiment.version

    outcome = edits.edit(
        session, at(small_policy, utc(3, 2, 12)), "T-1", actor=OWNER, changes=changes
    )

    assert outcome.changed and "void" not in outcome.message
    assert (experiment.status, experiment.version) == (S.APPROVED, version + 1)
    assert not any(d.voided for d in decisions(session, experiment))
    assert review.approvers(session, experiment) == [MANAGER]
    assert outbox(session, "approval_voided") == []
    assert [c.state for c in clocks(session, "review")] == [ClockState.STOPPED]
    assert events(session, experiment)[-1].reason == ""


def test_an_edit_with_a_bad_value_changes_nothing(session: Session, small_policy: Policy) -> None:
    experiment = approved_through_the_protocol(session, small_policy)
    version, counts = experiment.version, row_counts(session)
    with pytest.raises(InvalidEdit, match="end: the end 2026-03-01 is before the start"):
        edits.edit(session, at(small_policy), "T-1", actor=OWNER, changes={"end": date(2026, 3, 1)})
    assert not session.dirty
    assert (experiment.status, experiment.version, experiment.end) == (S.APPROVED, version, END)
    assert row_counts(session) == counts


def test_a_footprint_edit_voids_a_partial_approval_too(
    session: Session, small_policy: Policy
) -> None:
    policy = with_deputy(small_policy, approvals_required=2)
    experiment = register(session)
    review.submit(session, at(policy), "T-1", actor=OWNER)
    review.approve(session, at(policy, utc(3, 2, 11)), "T-1", actor=MANAGER)

    edits.edit(
        session,
        at(policy, utc(3, 2, 12)),
        "T-1",
        actor=OWNER,
        changes={"surfaces": ("web/checkout/payment",)},
    )
    assert review.approvers(session, experiment) == []
    outcome = review.approve(session, at(policy, utc(3, 2, 13)), "T-1", actor=DEPUTY)
    assert outcome.message == "approval 1 of 2 recorded for T-1"
    assert experiment.status == S.SUBMITTED
