"""Who decides: only a manager; their own test only if the policy allows it; never a test
they submitted; two required approvals need two managers; a repeat approval is a no-op.

Every test uses the small policy (tests/data/policy.yaml) and the services' fixed clock,
described in tests/support/protocol.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.support.factories import at, register
from tests.support.people import MANAGER, OWNER, TEAMMATE
from tests.support.protocol import (
    DEPUTY,
    Take,
    decisions,
    events,
    outbox,
    refused,
    row_counts,
    status_of,
    the_clock,
    with_deputy,
    with_protocol,
)
from tower.experiments.permissions import PermissionDenied
from tower.experiments.spec import ExperimentStatus as S
from tower.policy import Policy
from tower.protocol import review
from tower.sla.models import ClockState

# --------------------------------------------------------------------------- who decides


@pytest.mark.parametrize(
    "decide",
    [
        lambda s, c: review.approve(s, c, "T-1", actor=TEAMMATE),
        lambda s, c: review.request_changes(s, c, "T-1", actor=TEAMMATE, reason="Why not"),
        lambda s, c: review.reject(s, c, "T-1", actor=TEAMMATE, reason="Why not"),
    ],
    ids=["approve", "request-changes", "reject"],
)
def test_only_a_manager_decides(session: Session, small_policy: Policy, decide: Take) -> None:
    experiment = register(session, S.SUBMITTED)
    with (
        pytest.raises(PermissionDenied, match="only a control-tower manager can"),
        refused(session),
    ):
        decide(session, at(small_policy))
    assert experiment.status == S.SUBMITTED
    assert decisions(session, experiment) == []


@pytest.mark.parametrize("allow_self_approval", [False, True])
def test_a_manager_approves_their_own_test_only_if_the_policy_allows_it(
    session: Session, small_policy: Policy, allow_self_approval: bool
) -> None:
    policy = with_protocol(small_policy, allow_self_approval=allow_self_approval)
    experiment = register(session, S.SUBMITTED, owner=MANAGER)
    if allow_self_approval:
        review.approve(session, at(policy), "T-1", actor=MANAGER)
        assert experiment.status == S.APPROVED
        return
    with pytest.raises(PermissionDenied) as raised, refused(session):
        review.approve(session, at(policy), "T-1", actor=MANAGER)
    assert str(raised.value) == (
        f"{MANAGER} owns or submitted T-1 and cannot approve it: another manager must "
        "(the policy does not allow self-approval)"
    )
    assert experiment.status == S.SUBMITTED


@pytest.mark.parametrize("allow_self_approval", [False, True])
def test_the_manager_who_submitted_a_test_cannot_approve_it(
    session: Session, small_policy: Policy, allow_self_approval: bool
) -> None:
    policy = with_deputy(small_policy, allow_self_approval=allow_self_approval)
    experiment = register(session)
    review.submit(session, at(policy), "T-1", actor=DEPUTY)
    if allow_self_approval:
        review.approve(session, at(policy), "T-1", actor=DEPUTY)
        assert experiment.status == S.APPROVED
        return
    with pytest.raises(PermissionDenied, match=f"{DEPUTY} owns or submitted T-1"), refused(session):
        review.approve(session, at(policy), "T-1", actor=DEPUTY)
    assert experiment.status == S.SUBMITTED
    review.approve(session, at(policy), "T-1", actor=MANAGER)
    assert status_of(experiment) == S.APPROVED


def test_two_required_approvals_need_two_different_managers(
    session: Session, small_policy: Policy
) -> None:
    policy = with_deputy(small_policy, approvals_required=2)
    ctx = at(policy)
    experiment = register(session)
    review.submit(session, ctx, "T-1", actor=OWNER)

    first = review.approve(session, ctx, "T-1", actor=MANAGER)
    assert (first.changed, first.message) == (True, "approval 1 of 2 recorded for T-1")
    assert experiment.status == S.SUBMITTED
    assert events(session, experiment)[-1].action == "approval"
    assert the_clock(session, "review").state == ClockState.RUNNING

    again = review.approve(session, ctx, "T-1", actor=MANAGER)
    assert (again.changed, again.message) == (False, "you already approved T-1")
    assert experiment.status == S.SUBMITTED
    assert review.approvers(session, experiment) == [MANAGER]

    second = review.approve(session, ctx, "T-1", actor=DEPUTY)
    assert (second.changed, second.message) == (True, "T-1 approved")
    assert status_of(experiment) == S.APPROVED
    assert review.approvers(session, experiment) == sorted([MANAGER, DEPUTY])
    assert [m.recipient for m in outbox(session, "decision")] == [OWNER]
    assert the_clock(session, "review").state == ClockState.STOPPED


def test_a_repeat_approval_by_the_same_manager_is_a_no_op(
    session: Session, small_policy: Policy
) -> None:
    experiment = register(session, S.SUBMITTED)
    ctx = at(small_policy)
    review.approve(session, ctx, "T-1", actor=MANAGER)
    version, counts = experiment.version, row_counts(session)

    repeat = review.approve(session, ctx, "T-1", actor=MANAGER)
    assert (repeat.changed, repeat.message) == (False, "you already approved T-1")
    assert (experiment.status, experiment.version) == (S.APPROVED, version)
    assert row_counts(session) == counts
    assert len(decisions(session, experiment)) == 1
