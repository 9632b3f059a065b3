"""The SLA clocks the protocol drives: the review clock (started, paused, resumed, stopped),
the results clock, and each team's clock to acknowledge a collision (stopped by a waiver).

Every test uses the small policy (tests/data/policy.yaml) and the services' fixed clock,
described in tests/support/protocol.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.factories import NOW, at, register, utc
from tests.support.people import BAU_OWNER, MANAGER, OWNER, TEAMMATE, TOWER_CHANNEL
from tests.support.protocol import (
    BAU,
    TAKE,
    open_blocking,
    outbox,
    the_clock,
)
from tower.collisions.actions import CollisionActionError
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.collisions.refs import format_ref
from tower.experiments.spec import ExperimentStatus as S
from tower.pipeline import collision_flows
from tower.pipeline.resync import recheck_all
from tower.policy import Policy
from tower.protocol import review, runs
from tower.protocol.lifecycle import Action
from tower.sla.models import ClockState, SlaClock

# --------------------------------------------------------------------------- SLA clocks


def test_a_submission_starts_a_review_clock_due_two_business_days_later(
    session: Session, small_policy: Policy
) -> None:
    experiment = register(session)
    review.submit(session, at(small_policy), "T-1", actor=OWNER)
    clock = the_clock(session, "review")
    assert (clock.state, clock.cycle, clock.experiment_id) == (
        ClockState.RUNNING,
        1,
        experiment.id,
    )
    assert clock.started_at == NOW
    assert clock.due_at == utc(3, 4, 10)  # 7.5 h Monday + 8.5 h Tuesday + 1 h Wednesday


def test_changes_requested_pause_the_review_clock_and_a_resubmission_resumes_it_later(
    session: Session, small_policy: Policy
) -> None:
    register(session)
    review.submit(session, at(small_policy), "T-1", actor=OWNER)
    paused_at, resumed_at = utc(3, 3, 10), utc(3, 5, 10)

    review.request_changes(
        session, at(small_policy, paused_at), "T-1", actor=MANAGER, reason="Add a guardrail"
    )
    clock = the_clock(session, "review")
    assert (clock.state, clock.paused_at, clock.due_at) == (
        ClockState.PAUSED,
        paused_at,
        utc(3, 4, 10),
    )

    review.submit(session, at(small_policy, resumed_at), "T-1", actor=OWNER)
    clock = the_clock(session, "review")  # still one clock: the same cycle resumed
    assert (clock.state, clock.cycle, clock.paused_at) == (ClockState.RUNNING, 1, None)
    # 8.5 business hours were left when paused; Tue 10:00 to Thu 10:00 is 17 business hours.
    assert clock.due_at == utc(3, 6, 10)
    calendar = at(small_policy).calendar
    assert calendar.between(utc(3, 4, 10), clock.due_at) == calendar.between(paused_at, resumed_at)


def test_approval_stops_the_review_clock(session: Session, small_policy: Policy) -> None:
    register(session)
    review.submit(session, at(small_policy), "T-1", actor=OWNER)
    review.approve(session, at(small_policy, utc(3, 2, 13)), "T-1", actor=MANAGER)
    clock = the_clock(session, "review")
    assert (clock.state, clock.stopped_at, clock.breached_at) == (
        ClockState.STOPPED,
        utc(3, 2, 13),
        None,
    )


@pytest.mark.parametrize("stop", [Action.REJECT, Action.WITHDRAW])
def test_a_rejection_or_withdrawal_stops_the_review_clock(
    session: Session, small_policy: Policy, stop: Action
) -> None:
    register(session)
    review.submit(session, at(small_policy), "T-1", actor=OWNER)
    TAKE[stop](session, at(small_policy, utc(3, 3, 9)))
    assert the_clock(session, "review").state == ClockState.STOPPED


def test_completion_starts_the_results_clock_and_the_result_stops_it(
    session: Session, small_policy: Policy
) -> None:
    experiment = register(session, S.LIVE)
    runs.complete(session, at(small_policy, utc(3, 16, 10)), "T-1", actor=OWNER)
    clock = the_clock(session, "results")
    assert (clock.state, clock.started_at, clock.experiment_id) == (
        ClockState.RUNNING,
        utc(3, 16, 10),
        experiment.id,
    )
    assert clock.due_at == utc(3, 23, 10)  # 5 business days of 8.5 hours
    [request] = outbox(session, "results_requested")
    assert request.recipient == OWNER
    assert "record its result" in request.text

    runs.record_result(
        session, at(small_policy, utc(3, 17, 11)), "T-1", actor=OWNER, result="loser", lift=-0.02
    )
    clock = the_clock(session, "results")
    assert (clock.state, clock.stopped_at) == (ClockState.STOPPED, utc(3, 17, 11))


def colliding_pair(session: Session, policy: Policy) -> Collision:
    """T-1 (checkout-squad) and T-2 (ecommerce) clash on the cart; a resync opens C-n."""
    register(session, S.SUBMITTED)
    register(session, S.SUBMITTED, number=2, **BAU)
    recheck_all(session, at(policy))
    [record] = open_blocking(session)
    return record


def test_a_collision_acknowledged_by_one_team_stops_only_that_teams_clock(
    session: Session, small_policy: Policy
) -> None:
    record = colliding_pair(session, small_policy)
    ref = format_ref(record)
    ours, theirs = f"{ref}:checkout-squad", f"{ref}:ecommerce"
    assert the_clock(session, "conflict-ack", ours).state == ClockState.RUNNING
    assert the_clock(session, "conflict-ack", theirs).state == ClockState.RUNNING
    assert the_clock(session, "conflict-ack", ours).due_at == utc(3, 2, 14)

    collision_flows.acknowledge(session, at(small_policy, utc(3, 2, 11)), ref, actor=OWNER)

    assert record.status == CollisionStatus.ACKNOWLEDGED
    mine = the_clock(session, "conflict-ack", ours)
    assert (mine.state, mine.stopped_at) == (ClockState.STOPPED, utc(3, 2, 11))
    assert the_clock(session, "conflict-ack", theirs).state == ClockState.RUNNING


def test_the_second_team_acknowledges_for_itself_then_a_third_click_says_who_and_when(
    session: Session, small_policy: Policy
) -> None:
    record = colliding_pair(session, small_policy)
    ref = format_ref(record)
    collision_flows.acknowledge(session, at(small_policy, utc(3, 2, 11)), ref, actor=OWNER)

    collision_flows.acknowledge(session, at(small_policy, utc(3, 2, 12)), ref, actor=BAU_OWNER)
    theirs = the_clock(session, "conflict-ack", f"{ref}:ecommerce")
    assert (theirs.state, theirs.stopped_at) == (ClockState.STOPPED, utc(3, 2, 12))
    assert (record.acknowledged_by, record.acknowledged_at) == (OWNER, utc(3, 2, 11))

    with pytest.raises(CollisionActionError, match=f"by {OWNER} on Mon 02 Mar .* 11:00 UTC"):
        collision_flows.acknowledge(session, at(small_policy, utc(3, 2, 13)), ref, actor=TEAMMATE)


def test_a_waiver_stops_every_teams_acknowledgement_clock(
    session: Session, small_policy: Policy
) -> None:
    record = colliding_pair(session, small_policy)
    ref = format_ref(record)
    collision_flows.waive(
        session, at(small_policy, utc(3, 2, 11)), ref, actor=MANAGER, reason="Agreed in stand-up"
    )
    states = {c.subject: c.state for c in session.scalars(select(SlaClock))}
    assert states[f"{ref}:checkout-squad"] == ClockState.STOPPED
    assert states[f"{ref}:ecommerce"] == ClockState.STOPPED
    waived = outbox(session, "collision_waived")
    assert sorted(m.recipient for m in waived) == sorted(["C0CHECKOUT", "C0ECOM", TOWER_CHANNEL])
    assert all("Agreed in stand-up" in m.text for m in waived)
