"""The release protocol's state machine through its services: every action in every state
(legal pairs move, illegal ones name the way out), what a transition keeps (the result, the
reason, the audit event), reasons required and bounded, refused attempts audited.

Every test uses the small policy (tests/data/policy.yaml) and the services' fixed clock,
described in tests/support/protocol.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from tests.support.factories import at, register
from tests.support.people import MANAGER, OWNER, TEAMMATE
from tests.support.protocol import (
    TAKE,
    decisions,
    events,
    refused,
    row_counts,
)
from tower.experiments.permissions import PermissionDenied
from tower.experiments.spec import ExperimentResult
from tower.experiments.spec import ExperimentStatus as S
from tower.policy import Policy
from tower.protocol import review
from tower.protocol.lifecycle import Action, IllegalTransition, next_status
from tower.protocol.outcome import InvalidEdit, Outcome
from tower.protocol.refusals import record_refusal

# --------------------------------------------------------------------------- state machine

LEGAL: dict[tuple[S, Action], S] = {
    (S.DRAFT, Action.SUBMIT): S.SUBMITTED,
    (S.CHANGES_REQUESTED, Action.SUBMIT): S.SUBMITTED,
    (S.SUBMITTED, Action.APPROVE): S.APPROVED,
    (S.SUBMITTED, Action.REQUEST_CHANGES): S.CHANGES_REQUESTED,
    (S.SUBMITTED, Action.REJECT): S.REJECTED,
    (S.DRAFT, Action.WITHDRAW): S.WITHDRAWN,
    (S.SUBMITTED, Action.WITHDRAW): S.WITHDRAWN,
    (S.CHANGES_REQUESTED, Action.WITHDRAW): S.WITHDRAWN,
    (S.APPROVED, Action.WITHDRAW): S.WITHDRAWN,
    (S.APPROVED, Action.LAUNCH): S.LIVE,
    (S.LIVE, Action.COMPLETE): S.COMPLETED,
    (S.COMPLETED, Action.RECORD_RESULT): S.RESULTS_RECORDED,
    (S.APPROVED, Action.CANCEL): S.CANCELLED,
    (S.LIVE, Action.CANCEL): S.CANCELLED,
}
# A double click repeats a move already made: nothing happens, and it is not an error.
REPEATS = {
    (S.SUBMITTED, Action.SUBMIT),
    (S.CHANGES_REQUESTED, Action.REQUEST_CHANGES),
    (S.REJECTED, Action.REJECT),
}
VERBS = {
    Action.SUBMIT: "submit",
    Action.APPROVE: "approve",
    Action.REQUEST_CHANGES: "request changes",
    Action.REJECT: "reject",
    Action.WITHDRAW: "withdraw",
    Action.LAUNCH: "launch",
    Action.COMPLETE: "complete",
    Action.RECORD_RESULT: "record result",
    Action.CANCEL: "cancel",
}
PAIRS = [(status, action) for status in S for action in Action]
ACTORS = {
    Action.SUBMIT: OWNER,
    Action.APPROVE: MANAGER,
    Action.REQUEST_CHANGES: MANAGER,
    Action.REJECT: MANAGER,
    Action.WITHDRAW: OWNER,
    Action.LAUNCH: "tower",
    Action.COMPLETE: OWNER,
    Action.RECORD_RESULT: OWNER,
    Action.CANCEL: OWNER,
}


def allowed_verbs(status: S) -> set[str]:
    return {VERBS[action] for (source, action) in LEGAL if source == status}


def pair_id(pair: tuple[S, Action]) -> str:
    return f"{pair[0].value}-{pair[1].value}"


def assert_names_state_and_allowed(message: str, status: S, action: Action) -> None:
    state = status.value.replace("_", " ")
    assert message.startswith(f"T-1 is {state}: it cannot {VERBS[action]} (allowed: ")
    listed = message.split("(allowed: ", 1)[1].removesuffix(")")
    expected = allowed_verbs(status)
    if expected:
        assert set(listed.split(", ")) == expected
    else:
        assert listed == "nothing: it is final"


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_the_state_machine_moves_legal_pairs_and_names_the_way_out_of_illegal_ones(
    pair: tuple[S, Action],
) -> None:
    status, action = pair
    if pair in LEGAL:
        assert next_status("T-1", status, action) == LEGAL[pair]
        return
    with pytest.raises(IllegalTransition) as raised:
        next_status("T-1", status, action)
    assert_names_state_and_allowed(str(raised.value), status, action)


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_every_action_in_every_state_through_the_services(
    session: Session, small_policy: Policy, pair: tuple[S, Action]
) -> None:
    status, action = pair
    experiment = register(session, status)
    version, history = experiment.version, len(events(session, experiment))
    ctx = at(small_policy)

    if pair in LEGAL:
        outcome = TAKE[action](session, ctx)
        target = LEGAL[pair]
        assert outcome.changed
        assert experiment.status == target
        assert experiment.version == version + 1
        event = events(session, experiment)[-1]
        assert (event.action, event.actor) == (action.value, ACTORS[action])
        assert event.before is not None and event.after is not None
        assert (event.before["status"], event.after["status"]) == (status.value, target.value)
        for name in ("surfaces", "audiences", "start", "end", "primary_kpi", "impact"):
            assert name in event.before and name in event.after
    elif pair in REPEATS:
        outcome = TAKE[action](session, ctx)
        assert not outcome.changed
        assert (experiment.status, experiment.version) == (status, version)
        assert len(events(session, experiment)) == history
    else:
        with pytest.raises(IllegalTransition) as raised, refused(session):
            TAKE[action](session, ctx)
        assert_names_state_and_allowed(str(raised.value), status, action)
        assert (experiment.status, experiment.version) == (status, version)
        assert len(events(session, experiment)) == history


def test_a_recorded_result_is_kept_on_the_test(session: Session, small_policy: Policy) -> None:
    experiment = register(session, S.COMPLETED)
    outcome = TAKE[Action.RECORD_RESULT](session, at(small_policy))
    assert outcome.message == "result of T-1 recorded: winner"
    assert (experiment.result, experiment.observed_lift, experiment.result_note) == (
        ExperimentResult.WINNER,
        0.04,
        "Roll it out",
    )


def test_a_transition_records_its_reason_in_the_audit_event(
    session: Session, small_policy: Policy
) -> None:
    experiment = register(session, S.SUBMITTED)
    review.request_changes(
        session, at(small_policy), "T-1", actor=MANAGER, reason="Add a guardrail KPI"
    )
    event = events(session, experiment)[-1]
    assert (event.action, event.actor, event.reason) == (
        "request_changes",
        MANAGER,
        "Add a guardrail KPI",
    )
    assert event.before is not None and event.after is not None
    assert event.before == {**event.after, "status": "submitted"}


@pytest.mark.parametrize("decide", [review.request_changes, review.reject])
@pytest.mark.parametrize("reason", ["", "   "])
def test_sending_back_or_rejecting_needs_a_reason(
    session: Session,
    small_policy: Policy,
    decide: Callable[..., Outcome],
    reason: str,
) -> None:
    experiment = register(session, S.SUBMITTED)
    with pytest.raises(InvalidEdit, match="a reason is required"), refused(session):
        decide(session, at(small_policy), "T-1", actor=MANAGER, reason=reason)
    assert experiment.status == S.SUBMITTED
    assert decisions(session, experiment) == []


def test_a_refused_attempt_can_be_audited(session: Session, small_policy: Policy) -> None:
    experiment = register(session, S.SUBMITTED)
    with pytest.raises(PermissionDenied) as raised, refused(session):
        review.approve(session, at(small_policy), "T-1", actor=TEAMMATE)

    record_refusal(session, raised.value, key="T-1", actor=TEAMMATE, action="approve")
    event = events(session, experiment)[-1]
    assert (event.action, event.actor) == ("denied:approve", TEAMMATE)
    assert event.reason == "only a control-tower manager can approve T-1"
    assert experiment.status == S.SUBMITTED


def test_a_reason_past_fifty_thousand_characters_is_refused_and_nothing_changes(
    session: Session, small_policy: Policy
) -> None:
    from tower.text import TextTooLong

    experiment = register(session, S.SUBMITTED)
    counts = row_counts(session)
    with pytest.raises(TextTooLong, match="keep the reason to at most 50,000 characters"):
        review.reject(session, at(small_policy), "T-1", actor=MANAGER, reason="x" * 50_001)
    assert experiment.status == S.SUBMITTED and row_counts(session) == counts
    outcome = review.reject(session, at(small_policy), "T-1", actor=MANAGER, reason="x" * 50_000)
    assert outcome.changed and outcome.experiment.status == S.REJECTED
