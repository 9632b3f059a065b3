"""The release protocol through its services: the state machine, the approval gates, who may
decide, void-on-edit, optimistic locking, audit events and the SLA clocks it drives.

Every test uses the small policy (tests/data/policy.yaml): manager U0TOWERMGR, told in the
tower channel C0TOWER; checkout-squad (agile: U0ANNA, U0BEN; channel C0CHECKOUT); ecommerce
(bau: U0CARLA; channel C0ECOM); London business hours 09:00-17:30 on GB working days; the
default protocol (lead 2 business days, 7 to 56 days, 3 tests per surface, 1 approval, no
self-approval) and the default SLAs (review 2 business days = 17 business hours, conflicts
acknowledged in 4 business hours per team, results in 5 business days = 42.5 hours).

The service clock is fixed: Monday 2 March 2026, 10:00 in London (GMT, so 10:00 UTC too). A
test runs from Monday 16 to Sunday 29 March 2026 on web/checkout/cart unless a test says
otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tests.support.databases import server_url
from tests.support.factories import END, NOW, START, at, register, spec, utc
from tests.support.files import SMALL_POLICY
from tests.support.people import BAU_OWNER, MANAGER, OWNER, TEAMMATE, TOWER_CHANNEL
from tower import migrate
from tower.audit.models import AuditEvent
from tower.collisions import service as collision_service
from tower.collisions.actions import CollisionActionError
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.collisions.refs import format_ref, keys_of
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory
from tower.engine.analysis import analyse
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.portfolio import PortfolioItem
from tower.errors import TowerError
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.permissions import PermissionDenied
from tower.experiments.spec import ExperimentResult
from tower.experiments.spec import ExperimentStatus as S
from tower.outbox.models import OutboxMessage
from tower.pipeline import collision_flows, reads, registry, slots
from tower.pipeline import index as index_module
from tower.pipeline.index import PortfolioIndex, portfolio_items, warm_index
from tower.pipeline.resync import recheck_all
from tower.policy import Policy, parse_policy
from tower.policy.schema import FreezeWindow
from tower.protocol import edits, review, runs
from tower.protocol.gates import Gate
from tower.protocol.lifecycle import Action, IllegalTransition, next_status
from tower.protocol.models import Decision, DecisionKind
from tower.protocol.outcome import GatesFailed, InvalidEdit, Outcome, StaleVersion
from tower.protocol.refusals import record_refusal
from tower.sla.models import ClockState, SlaClock

DEPUTY = "U0DEPUTY"  # a second manager, for the tests that add one
GATE_NAMES = [
    "policy",
    "required fields",
    "collisions",
    "surface capacity",
    "freeze windows",
    "send days",
    "lead time",
    "duration",
]

# --------------------------------------------------------------------------- helpers


BAU: dict[str, Any] = {"team": "ecommerce", "owner": BAU_OWNER, "title": "Basket banner"}


def with_protocol(policy: Policy, **changes: Any) -> Policy:
    return policy.model_copy(update={"protocol": policy.protocol.model_copy(update=changes)})


def with_deputy(policy: Policy, **protocol_changes: Any) -> Policy:
    """The policy with a second manager, DEPUTY (and any protocol changes)."""
    two = policy.model_copy(update={"managers": [MANAGER, DEPUTY]})
    return with_protocol(two, **protocol_changes)


def with_freeze(policy: Policy, **window: Any) -> Policy:
    values: dict[str, Any] = {
        "name": "Spring sale",
        "start": date(2026, 3, 20),
        "end": date(2026, 3, 22),
        "surfaces": ["web/checkout"],
        "team_kinds": ["bau"],
    }
    values.update(window)
    return policy.model_copy(update={"freeze_windows": [FreezeWindow(**values)]})


def status_of(experiment: Experiment) -> S:
    """The test's state now (a call, so type checkers do not keep an earlier assertion)."""
    return experiment.status


def gate(gates: list[Gate], name: str) -> Gate:
    [found] = [g for g in gates if g.name == name]
    return found


def gates_now(session: Session, ctx: ServiceContext, key: str = "T-1") -> list[Gate]:
    return review.gates_for(session, ctx, experiment_service.get_by_key(session, key))


def events(session: Session, experiment: Experiment) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.experiment_id == experiment.id)
    return list(session.scalars(query.order_by(AuditEvent.id)))


def decisions(session: Session, experiment: Experiment) -> list[Decision]:
    query = select(Decision).where(Decision.experiment_id == experiment.id)
    return list(session.scalars(query.order_by(Decision.id)))


def outbox(session: Session, kind: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    return list(session.scalars(query))


def clocks(session: Session, policy_key: str, subject: str = "T-1") -> list[SlaClock]:
    query = select(SlaClock).where(SlaClock.policy_key == policy_key, SlaClock.subject == subject)
    return list(session.scalars(query.order_by(SlaClock.cycle)))


def the_clock(session: Session, policy_key: str, subject: str = "T-1") -> SlaClock:
    [clock] = clocks(session, policy_key, subject)
    return clock


def row_counts(session: Session) -> dict[str, int]:
    """How many rows each table the protocol writes to holds."""
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (AuditEvent, Decision, OutboxMessage, SlaClock, Collision)
    }


def open_blocking(session: Session, key: str = "T-1") -> list[Collision]:
    return [
        c
        for c in collision_service.list_collisions(
            session, statuses=[CollisionStatus.OPEN], severities=[Severity.BLOCKING]
        )
        if key in keys_of(c)
    ]


@contextmanager
def refused(session: Session) -> Iterator[None]:
    """Run a refused action the way the edge does: its transaction (a savepoint) rolls back."""
    with session.begin_nested():
        yield


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
Take = Callable[[Session, ServiceContext], Outcome]
TAKE: dict[Action, Take] = {
    Action.SUBMIT: lambda s, c: review.submit(s, c, "T-1", actor=OWNER),
    Action.APPROVE: lambda s, c: review.approve(s, c, "T-1", actor=MANAGER),
    Action.REQUEST_CHANGES: lambda s, c: review.request_changes(
        s, c, "T-1", actor=MANAGER, reason="Add a guardrail KPI"
    ),
    Action.REJECT: lambda s, c: review.reject(s, c, "T-1", actor=MANAGER, reason="Duplicate"),
    Action.WITHDRAW: lambda s, c: runs.withdraw(s, c, "T-1", actor=OWNER, reason="Dropped"),
    Action.LAUNCH: lambda s, c: runs.launch(s, c, "T-1"),
    Action.COMPLETE: lambda s, c: runs.complete(s, c, "T-1", actor=OWNER),
    Action.RECORD_RESULT: lambda s, c: runs.record_result(
        s, c, "T-1", actor=OWNER, result="winner", lift=0.04, note="Roll it out"
    ),
    Action.CANCEL: lambda s, c: runs.cancel(s, c, "T-1", actor=OWNER, reason="Bug found"),
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


# --------------------------------------------------------------------------- gates


def test_gates_are_listed_in_reading_order_and_all_pass_for_a_sound_test(
    session: Session, small_policy: Policy
) -> None:
    register(session, S.SUBMITTED)
    gates = gates_now(session, at(small_policy))
    assert [g.name for g in gates] == GATE_NAMES
    assert all(g.passed for g in gates), gates
    assert gate(gates, "lead time").message == "10 business days between submission and start"
    assert gate(gates, "duration").message == "14 days"


@pytest.mark.parametrize(
    ("changes", "fix"),
    [
        ({"hypothesis": ""}, "add a hypothesis"),
        ({"hypothesis": "   "}, "add a hypothesis"),
        ({"primary_kpi": None}, "add a primary KPI"),
        ({"baseline": None}, "add the KPI's baseline rate"),
        (
            {"hypothesis": "", "primary_kpi": None, "baseline": None},
            "add a hypothesis, a primary KPI and the KPI's baseline rate",
        ),
    ],
    ids=["no-hypothesis", "blank-hypothesis", "no-kpi", "no-baseline", "all-three"],
)
def test_the_required_fields_gate_says_what_to_add(
    session: Session, small_policy: Policy, changes: dict[str, Any], fix: str
) -> None:
    experiment = register(session, S.SUBMITTED, **changes)
    ctx = at(small_policy)
    required = gate(gates_now(session, ctx), "required fields")
    assert (required.passed, required.message) == (False, fix)

    with pytest.raises(GatesFailed) as raised, refused(session):
        review.approve(session, ctx, "T-1", actor=MANAGER)
    assert f"required fields: {fix}" in str(raised.value)
    assert experiment.status == S.SUBMITTED
    assert decisions(session, experiment) == []


def test_an_open_blocking_collision_fails_until_a_manager_waives_it_with_a_reason(
    session: Session, small_policy: Policy
) -> None:
    """Two submitted tests on one page: the lower-ranked one must yield (its gate fails
    until a manager waives the collision); the higher-ranked one passes and says why."""
    first = register(session, S.SUBMITTED)
    second = register(session, S.SUBMITTED, number=2, surfaces=("web/checkout",), **BAU)
    ctx = at(small_policy)
    recheck_all(session, ctx)  # the safety net finds tests written behind the services' back
    [record] = open_blocking(session)
    assert record.kind == CollisionKind.SURFACE
    ref = format_ref(record)
    tie = "both 189: a tie goes by confidence, then by registration"

    held = gate(gates_now(session, ctx, "T-1"), "collisions")
    assert held.passed
    assert (
        held.message
        == f"it yields in none: {ref} surface with T-2, which ranks lower ({tie}): it yields"
    )
    clash = gate(gates_now(session, ctx, "T-2"), "collisions")
    assert not clash.passed
    assert clash.message.startswith(f"{ref} surface with T-1, which ranks higher ({tie}): move to ")
    assert clash.message.endswith(" or ask for a waiver")
    with pytest.raises(GatesFailed, match=f"collisions: {ref} surface with T-1"), refused(session):
        review.approve(session, ctx, "T-2", actor=MANAGER)

    # Seen is not solved: an acknowledged blocking collision still blocks.
    collision_flows.acknowledge(session, ctx, ref, actor=BAU_OWNER)
    assert not gate(gates_now(session, ctx, "T-2"), "collisions").passed

    with pytest.raises(CollisionActionError, match="only a control-tower manager"):
        collision_flows.waive(session, ctx, ref, actor=BAU_OWNER, reason="We agreed")
    with pytest.raises(CollisionActionError, match="say why"):
        collision_flows.waive(session, ctx, ref, actor=MANAGER, reason="  ")
    assert not gate(gates_now(session, ctx, "T-2"), "collisions").passed

    collision_flows.waive(
        session, ctx, ref, actor=MANAGER, reason="Both teams agreed to share the cart"
    )
    assert record.status == CollisionStatus.WAIVED
    assert gate(gates_now(session, ctx, "T-2"), "collisions").passed  # the waiver is kept
    assert review.approve(session, ctx, "T-2", actor=MANAGER).message == "T-2 approved"
    assert review.approve(session, ctx, "T-1", actor=MANAGER).message == "T-1 approved"
    assert (first.status, second.status) == (S.APPROVED, S.APPROVED)


@pytest.mark.parametrize(
    ("window", "changes", "passes"),
    [
        ({"team_kinds": ["bau"]}, BAU, False),
        ({"team_kinds": ["bau"]}, {}, True),
        ({"team_kinds": ["agile", "bau"]}, {}, False),
        ({"team_kinds": ["agile", "bau"], "surfaces": ["email"]}, {}, True),
        ({"team_kinds": ["agile", "bau"], "surfaces": []}, {}, False),
        (
            {"team_kinds": ["agile", "bau"], "start": date(2026, 3, 9), "end": date(2026, 3, 15)},
            {},
            True,
        ),
    ],
    ids=[
        "bau-window-bau-test",
        "bau-window-agile-test",
        "both-kinds-agile-test",
        "other-surface",
        "every-surface",
        "ends-before-start",
    ],
)
def test_a_freeze_window_applies_to_its_surfaces_days_and_team_kinds(
    session: Session,
    small_policy: Policy,
    window: dict[str, Any],
    changes: dict[str, Any],
    passes: bool,
) -> None:
    policy = with_freeze(small_policy, **window)
    experiment = register(session, S.SUBMITTED, **changes)
    freeze = gate(gates_now(session, at(policy)), "freeze windows")
    assert freeze.passed is passes
    if passes:
        assert freeze.message == "no freeze window covers its surfaces and days"
        return
    kind = "bau" if changes else "agile"
    assert freeze.message == (
        "freeze 'Spring sale' (Fri 20 Mar 2026 to Sun 22 Mar 2026) covers web/checkout/cart "
        f"for {kind} teams: start after Sun 22 Mar 2026 or run elsewhere"
    )
    with pytest.raises(GatesFailed, match="freeze windows: freeze 'Spring sale'"), refused(session):
        review.approve(session, at(policy), "T-1", actor=MANAGER)
    assert experiment.status == S.SUBMITTED


@pytest.mark.parametrize(
    ("submitted", "passes", "message"),
    [
        # Thursday then Friday and Monday: exactly the 2 business days the protocol needs.
        (utc(3, 5, 10), True, "2 business days between submission and start"),
        # Friday: the weekend does not count, only Monday does.
        (
            utc(3, 6, 10),
            False,
            "starts 1 business days after submission, the protocol needs 2: "
            "start on Tue 10 Mar 2026 or later",
        ),
    ],
    ids=["thursday-exactly-two", "friday-one-short"],
)
def test_lead_time_counts_business_days_from_submission_to_start(
    session: Session, small_policy: Policy, submitted: datetime, passes: bool, message: str
) -> None:
    experiment = register(session, start=date(2026, 3, 9), end=date(2026, 3, 15))
    outcome = review.submit(session, at(small_policy, submitted), "T-1", actor=OWNER)
    assert (gate(outcome.gates, "lead time").passed, gate(outcome.gates, "lead time").message) == (
        passes,
        message,
    )

    # The lead counts from the submission, not from the moment a manager looks at it.
    reviewed = at(small_policy, utc(3, 6, 16))
    assert gate(gates_now(session, reviewed), "lead time").message == message
    if passes:
        review.approve(session, reviewed, "T-1", actor=MANAGER)
        assert experiment.status == S.APPROVED
    else:
        with (
            pytest.raises(GatesFailed, match="lead time: starts 1 business days"),
            refused(session),
        ):
            review.approve(session, reviewed, "T-1", actor=MANAGER)
        assert experiment.status == S.SUBMITTED


@pytest.mark.parametrize(
    ("days", "passes", "message"),
    [
        (6, False, "runs 6 days; the protocol allows 7 to 56"),
        (7, True, "7 days"),
        (56, True, "56 days"),
        (57, False, "runs 57 days; the protocol allows 7 to 56"),
    ],
)
def test_duration_counts_both_ends_of_the_window(
    session: Session, small_policy: Policy, days: int, passes: bool, message: str
) -> None:
    register(session, S.SUBMITTED, end=START + timedelta(days=days - 1))
    ctx = at(small_policy)
    duration = gate(gates_now(session, ctx), "duration")
    assert (duration.passed, duration.message) == (passes, message)
    if not passes:
        with pytest.raises(GatesFailed, match=f"duration: {message}"), refused(session):
            review.approve(session, ctx, "T-1", actor=MANAGER)


@pytest.mark.parametrize(("send_days", "passes"), [(["mon"], True), (["wed", "sun"], False)])
def test_a_test_starting_on_a_day_its_surface_does_not_send_fails_naming_the_nearest_start(
    session: Session, send_days: list[str], passes: bool
) -> None:
    """START is a Monday; web/checkout sends only on `send_days`, and its cart inherits
    them: the nearest allowed start is named (the Sunday before, nearer than Wednesday)."""
    text = SMALL_POLICY.read_text(encoding="utf-8").replace(
        "checkout: {weekly_visitors: 300000,",
        f"checkout: {{weekly_visitors: 300000, send_days: [{', '.join(send_days)}],",
    )
    policy = parse_policy(text)
    register(session, S.SUBMITTED)
    sending = gate(gates_now(session, at(policy)), "send days")
    assert sending.passed == passes
    if not passes:
        assert sending.message == (
            "web/checkout/cart sends only on Wed and Sun: start on Sun 15 Mar 2026"
        )
        with pytest.raises(GatesFailed, match="send days: web/checkout/cart"), refused(session):
            review.approve(session, at(policy), "T-1", actor=MANAGER)


def test_a_surface_over_capacity_fails_its_own_gate_until_waived(
    session: Session, small_policy: Policy
) -> None:
    """One test at a time on the cart: the lower-ranked of two must yield."""
    policy = with_protocol(small_policy, max_concurrent_per_surface=1)
    ctx = at(policy)
    register(session, S.SUBMITTED, audiences=("anonymous",))
    second = register(session, S.SUBMITTED, number=2, audiences=("logged_in",), **BAU)
    recheck_all(session, ctx)

    [record] = open_blocking(session)
    assert record.kind == CollisionKind.CAPACITY
    ref = format_ref(record)
    held = gate(gates_now(session, ctx, "T-1"), "surface capacity")
    assert held.passed, held.message
    assert held.message.startswith(f"it yields in none: {ref} capacity with T-2, which ranks lower")
    gates = gates_now(session, ctx, "T-2")
    # Disjoint audiences: no clash between the two tests, only too many on one surface.
    assert gate(gates, "collisions").passed
    capacity = gate(gates, "surface capacity")
    assert not capacity.passed
    assert capacity.message.startswith(f"{ref} capacity with T-1, which ranks higher (")
    assert capacity.message.endswith(" or ask for a waiver")
    with pytest.raises(GatesFailed, match=f"surface capacity: {ref} capacity"), refused(session):
        review.approve(session, ctx, "T-2", actor=MANAGER)

    collision_flows.waive(
        session, ctx, ref, actor=MANAGER, reason="The cart can take both this week"
    )
    assert gate(gates_now(session, ctx, "T-2"), "surface capacity").passed
    review.approve(session, ctx, "T-2", actor=MANAGER)
    assert second.status == S.APPROVED


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


# --------------------------------------------------------------------------- optimistic locking

STALE: list[tuple[S, Take]] = [
    (S.DRAFT, lambda s, c: review.submit(s, c, "T-1", actor=OWNER, expected_version=1)),
    (S.SUBMITTED, lambda s, c: review.approve(s, c, "T-1", actor=MANAGER, expected_version=1)),
    (
        S.SUBMITTED,
        lambda s, c: review.request_changes(
            s, c, "T-1", actor=MANAGER, reason="More data", expected_version=1
        ),
    ),
    (
        S.SUBMITTED,
        lambda s, c: review.reject(s, c, "T-1", actor=MANAGER, reason="No", expected_version=1),
    ),
    (S.APPROVED, lambda s, c: runs.withdraw(s, c, "T-1", actor=OWNER, expected_version=1)),
    (
        S.LIVE,
        lambda s, c: runs.cancel(s, c, "T-1", actor=OWNER, reason="Bug", expected_version=1),
    ),
    (S.LIVE, lambda s, c: runs.complete(s, c, "T-1", actor=OWNER, expected_version=1)),
    (
        S.COMPLETED,
        lambda s, c: runs.record_result(
            s, c, "T-1", actor=OWNER, result="loser", lift=-0.01, expected_version=1
        ),
    ),
    (
        S.SUBMITTED,
        lambda s, c: edits.edit(
            s, c, "T-1", actor=OWNER, changes={"traffic": 50.0}, expected_version=1
        ),
    ),
]


@pytest.mark.parametrize(
    ("status", "act"),
    STALE,
    ids=[
        "submit",
        "approve",
        "request-changes",
        "reject",
        "withdraw",
        "cancel",
        "complete",
        "record-result",
        "edit",
    ],
)
def test_acting_on_a_version_that_is_no_longer_current_changes_nothing(
    session: Session, small_policy: Policy, status: S, act: Take
) -> None:
    experiment = register(session, status)
    ctx = at(small_policy)
    edits.set_priority(session, ctx, "T-1", actor=MANAGER, lever=1.5)  # version 1 -> 2
    assert experiment.version == 2
    counts = row_counts(session)

    with pytest.raises(StaleVersion) as raised:
        act(session, ctx)

    assert str(raised.value) == (
        "T-1 changed since you opened it (you saw version 1, it is now 2): look again and retry"
    )
    assert not session.dirty and not session.new
    assert (experiment.status, experiment.version) == (status, 2)
    assert row_counts(session) == counts


def test_a_change_committed_meanwhile_by_someone_else_is_seen_before_acting(
    session: Session, small_policy: Policy
) -> None:
    """A change reads the test afresh, locked, whatever an earlier read left in the
    session: a test another manager rejected meanwhile cannot be approved on a stale copy."""
    experiment = register(session, S.SUBMITTED)
    session.commit()  # the test as the manager opened it, in an earlier transaction
    ctx = at(small_policy)
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment.id)
        .values(version=Experiment.version + 1, status=S.REJECTED)
        .execution_options(synchronize_session=False)
    )
    assert (experiment.version, experiment.status) == (1, S.SUBMITTED)  # the stale copy

    with pytest.raises(TowerError, match="rejected"):
        review.approve(session, ctx, "T-1", actor=MANAGER)
    assert (experiment.version, experiment.status) == (2, S.REJECTED)
    with pytest.raises(StaleVersion, match="you saw version 1, it is now 2"):
        runs.withdraw(session, ctx, "T-1", actor=OWNER, expected_version=1)


def test_registrations_at_the_same_moment_each_get_their_own_number(
    scratch_database_url: str, small_policy: Policy
) -> None:
    """Six people register at once, from six connections (two server processes, several
    threads each): every registration lands, each with its own key."""
    migrate.upgrade(scratch_database_url)
    ctx = at(small_policy)
    engine = create_database_engine(scratch_database_url)
    factory = create_session_factory(engine)
    barrier = threading.Barrier(6, timeout=20)
    keys: list[str] = []
    errors: list[BaseException] = []

    def register_one(title: str) -> None:
        try:
            barrier.wait()
            with factory.begin() as session:
                outcome = edits.register(session, ctx, spec(title=title), actor=OWNER)
                keys.append(outcome.experiment.key)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=register_one, args=(f"Test {n}",)) for n in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        engine.dispose()
    assert errors == []
    assert sorted(keys) == sorted(f"T-{n}" for n in range(1, 7))


@pytest.fixture
def factory(scratch_database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions that commit for real, on a database of this test's own."""
    migrate.upgrade(scratch_database_url)
    engine = create_database_engine(scratch_database_url)
    try:
        yield create_session_factory(engine)
    finally:
        engine.dispose()


def test_a_registration_moves_the_registry_on_once_and_leaves_its_process_caught_up(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    """A registration starts a clock and queues messages, each in a savepoint of its own.
    Committing a savepoint is not committing the change: the registry's version moves on
    once, and the process that wrote the change knows its index already holds it (the next
    change reads no row marks)."""
    ctx = at(small_policy)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="First"), actor=OWNER)
    with factory.begin() as session:
        before = registry.peek(session)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="Second"), actor=OWNER)
        assert session.scalars(select(SlaClock)).all()  # savepoints were committed
    with factory.begin() as session:
        after = registry.peek(session)
        index = warm_index(session, small_policy, ctx.today)
    assert after.version == before.version + 1
    assert index.mark == after


def test_a_test_written_after_its_change_was_checked_is_seen_by_the_next_change(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    """A transaction registers T-1 on the cart, then moves it to the home page without
    the write path (a script, a migration). The next registration on the home page, in
    the same process, must meet T-1 where it now is."""
    ctx = at(small_policy)
    with factory.begin() as session:
        first = edits.register(session, ctx, spec(title="First"), actor=OWNER).experiment
        first.apply(replace(first.spec(), surfaces=("web/home",)))
    with factory.begin() as session:
        edits.register(session, ctx, spec(surfaces=("web/home",), **BAU), actor=BAU_OWNER)
        found = [keys_of(r) for r in session.scalars(select(Collision))]
    assert ["T-1", "T-2"] in found


def held_items(index: PortfolioIndex) -> dict[int, Any]:
    return {number: (item.status, item.spec) for number, item in index.items.items()}


def test_a_lagging_process_reloads_just_the_tests_changed_since_it_last_looked(
    factory: sessionmaker[Session], small_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's index (loaded here apart from this process's warm one) lags three
    changes: it catches up from the registry's recent changes, without comparing every
    test's row, and then holds what a fresh load holds."""
    ctx = at(small_policy)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="First"), actor=OWNER)
    with factory.begin() as session:
        lagging = PortfolioIndex.load(session, small_policy, ctx.today)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="Second"), actor=OWNER)
    with factory.begin() as session:
        runs.withdraw(session, ctx, "T-1", actor=OWNER)
    with factory.begin() as session:
        edits.edit(session, ctx, "T-2", actor=OWNER, changes={"surfaces": ("web/home",)})

    every_row = registry.row_marks

    def compare_only_some(session: Session, numbers: set[int] | None = None) -> Any:
        if numbers is None:
            raise AssertionError("caught up by comparing every test's row")
        return every_row(session, numbers)

    with factory.begin() as session, monkeypatch.context() as patched:
        patched.setattr(registry, "row_marks", compare_only_some)
        lagging.catch_up(session, registry.peek(session))
    with factory.begin() as session:
        fresh = PortfolioIndex.load(session, small_policy, ctx.today)
    assert held_items(lagging) == held_items(fresh)
    assert lagging.footprints.keys() == fresh.footprints.keys() == {"T-2"}
    assert lagging.mark == fresh.mark


def test_a_process_lagging_past_the_recent_changes_compares_every_row(
    factory: sessionmaker[Session], small_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "KEPT_CHANGES", 2)
    ctx = at(small_policy)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="First"), actor=OWNER)
    with factory.begin() as session:
        lagging = PortfolioIndex.load(session, small_policy, ctx.today)
    for title in ("Second", "Third", "Fourth"):
        with factory.begin() as session:
            edits.register(session, ctx, spec(title=title), actor=OWNER)
    with factory.begin() as session:
        lagging.catch_up(session, registry.peek(session))
        fresh = PortfolioIndex.load(session, small_policy, ctx.today)
    assert held_items(lagging) == held_items(fresh)
    assert len(lagging.items) == 4


def test_after_a_registration_rolls_back_the_next_change_works_on_the_tests_that_exist(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    """The messages are queued in savepoints that commit; the registration then fails. The
    next change in the same process works on the tests that exist, not on that one."""
    ctx = at(small_policy)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="First"), actor=OWNER)
    with pytest.raises(RuntimeError), factory.begin() as session:
        edits.register(session, ctx, spec(title="Never"), actor=OWNER)
        raise RuntimeError("the request failed after the change")
    with factory.begin() as session:
        third = edits.register(session, ctx, spec(title="Third"), actor=OWNER)
        index = warm_index(session, small_policy, ctx.today)
        held = {item.key: item.spec.title for item in index.items.values()}
    assert third.experiment.key == "T-2"
    assert held == {"T-1": "First", "T-2": "Third"}


def test_after_an_edit_rolls_back_the_next_change_reads_again_only_that_test(
    factory: sessionmaker[Session], small_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed change costs the next one the tests it touched, not the portfolio: the
    warm index reads again only the rolled-back test, keeps its working plan, and the
    slots it gives are still those of a full plan."""
    ctx = at(small_policy)
    for title in ("First", "Second", "Third"):
        with factory.begin() as session:
            edits.register(session, ctx, spec(title=title), actor=OWNER)
    with factory.begin() as session:
        assert slots.placement_now(session, ctx, "T-3") is not None
        index = warm_index(session, small_policy, ctx.today)
        plan = index.working_plan
    later = {"start": START + timedelta(days=3), "end": END + timedelta(days=3)}
    with pytest.raises(RuntimeError), factory.begin() as session:
        edits.edit(session, ctx, "T-1", actor=OWNER, changes=later)
        assert slots.placement_now(session, ctx, "T-1") is not None  # planned as moved
        raise RuntimeError("the request failed after the change")

    read_again: list[list[int]] = []

    def recording(session: Session, numbers: Any = None) -> list[PortfolioItem]:
        read_again.append(sorted(numbers) if numbers is not None else [])
        return every_test(session, numbers)

    every_test = index_module.portfolio_items
    with monkeypatch.context() as patched, factory.begin() as session:
        patched.setattr(index_module, "portfolio_items", recording)
        edits.register(session, ctx, spec(title="Fourth"), actor=OWNER)
    # T-1 as committed, and T-4, whose row this change wrote before it compared them
    assert read_again == [[1, 4]]
    with factory.begin() as session:
        assert warm_index(session, small_policy, ctx.today) is index
        assert index.items[1].spec.start == START  # as committed, not as rolled back
        full = analyse(portfolio_items(session), small_policy, today=ctx.today).placements
        assert len(full) == 4
        for key, placement in full.items():
            assert slots.placement_now(session, ctx, key) == placement, key
    assert index.working_plan is plan  # replayed, not filed again from the stored plan


@pytest.mark.skipif(
    server_url() is None,
    reason="concurrent transactions on one row need PostgreSQL (SQLite serialises writers)",
)
def test_two_managers_approving_at_once_exactly_one_wins(
    scratch_database_url: str, small_policy: Policy
) -> None:
    """Both open version 1 of a submitted test and approve at once: one commit wins, the
    other's flush finds the row changed and its transaction rolls back whole."""
    migrate.upgrade(scratch_database_url)
    policy = with_deputy(small_policy)
    ctx = at(policy)
    engines: list[Engine] = [create_database_engine(scratch_database_url) for _ in range(2)]
    try:
        with create_session_factory(engines[0]).begin() as setup:
            register(setup, S.SUBMITTED)
        sessions = [create_session_factory(engine)() for engine in engines]
        for opened in sessions:  # both managers open the same submitted test, version 1
            assert experiment_service.get_by_key(opened, "T-1").version == 1
        barrier = threading.Barrier(2, timeout=10)
        results: dict[str, str] = {}

        def approve(session: Session, actor: str) -> None:
            barrier.wait()
            try:
                review.approve(session, ctx, "T-1", actor=actor, expected_version=1)
                session.commit()
                results[actor] = "approved"
            except Exception as lost:  # StaleVersion
                session.rollback()
                results[actor] = f"{type(lost).__name__}: {lost}"

        threads = [
            threading.Thread(target=approve, args=(sessions[0], MANAGER)),
            threading.Thread(target=approve, args=(sessions[1], DEPUTY)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert not any(thread.is_alive() for thread in threads)
        for opened in sessions:
            opened.close()

        assert sorted(results) == sorted([MANAGER, DEPUTY])
        won = [actor for actor, outcome in results.items() if outcome == "approved"]
        assert len(won) == 1, results
        [lost] = [outcome for outcome in results.values() if outcome != "approved"]
        assert "expected to update 1 row(s); 0 were matched" in lost or (
            "changed since you opened it" in lost
        ), lost
        with create_session_factory(engines[0])() as check:
            experiment = experiment_service.get_by_key(check, "T-1")
            assert (experiment.status, experiment.version) == (S.APPROVED, 2)
            effective = [(d.actor, d.kind) for d in decisions(check, experiment) if not d.voided]
            assert effective == [(won[0], DecisionKind.APPROVE)]
            approvals = [e for e in events(check, experiment) if e.action == "approve"]
            assert [e.actor for e in approvals] == won
            assert [m.recipient for m in outbox(check, "decision")] == [OWNER]
    finally:
        for engine in engines:
            engine.dispose()


def approve_at_once(
    url: str, policy: Policy, actors: list[str]
) -> tuple[list[str], Experiment, list[Decision], list[AuditEvent], list[OutboxMessage]]:
    """Each of `actors` runs `tower approve T-1 --by ACTOR` on its own connection, all
    released at one instant; what each was told, then the test as it ends."""
    migrate.upgrade(url)
    ctx = at(policy)
    engines = [create_database_engine(url) for _ in actors]
    try:
        with create_session_factory(engines[0]).begin() as setup:
            register(setup, S.SUBMITTED)
        barrier = threading.Barrier(len(actors), timeout=10)
        told: list[str] = []

        def approve(engine: Engine, actor: str) -> None:
            barrier.wait()
            try:
                with create_session_factory(engine).begin() as session:
                    told.append(review.approve(session, ctx, "T-1", actor=actor).message)
            except TowerError as refused:
                told.append(f"refused: {refused}")

        threads = [
            threading.Thread(target=approve, args=(engine, actor))
            for engine, actor in zip(engines, actors, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        with create_session_factory(engines[0])() as check:
            experiment = experiment_service.get_by_key(check, "T-1")
            return (
                sorted(told),
                experiment,
                decisions(check, experiment),
                events(check, experiment),
                outbox(check),
            )
    finally:
        for engine in engines:
            engine.dispose()


def test_two_managers_approving_at_once_when_two_approvals_are_required_both_count(
    scratch_database_url: str, small_policy: Policy
) -> None:
    policy = with_deputy(small_policy, approvals_required=2)
    told, experiment, made, audited, queued = approve_at_once(
        scratch_database_url, policy, [MANAGER, DEPUTY]
    )
    assert told == ["T-1 approved", "approval 1 of 2 recorded for T-1"]
    assert experiment.status == S.APPROVED
    assert sorted(d.actor for d in made if d.kind == DecisionKind.APPROVE) == [DEPUTY, MANAGER]
    assert [e.action for e in audited].count("approval") == 1
    assert [e.action for e in audited].count("approve") == 1
    assert [m.kind for m in queued].count("decision") == 1


def test_one_managers_double_click_counts_once(
    scratch_database_url: str, small_policy: Policy
) -> None:
    policy = with_deputy(small_policy, approvals_required=2)
    told, experiment, made, audited, _ = approve_at_once(
        scratch_database_url, policy, [MANAGER, MANAGER]
    )
    assert told == ["approval 1 of 2 recorded for T-1", "you already approved T-1"]
    assert experiment.status == S.SUBMITTED
    assert [(d.actor, d.kind, d.voided) for d in made] == [(MANAGER, DecisionKind.APPROVE, False)]
    assert [e.action for e in audited].count("approval") == 1


def test_two_managers_approving_at_once_decide_once(
    scratch_database_url: str, small_policy: Policy
) -> None:
    told, experiment, made, audited, queued = approve_at_once(
        scratch_database_url, with_deputy(small_policy), [MANAGER, DEPUTY]
    )
    assert told[0] == "T-1 approved" and told[1].startswith("refused: ")
    assert "approved" in told[1]
    assert experiment.status == S.APPROVED
    assert len([d for d in made if d.kind == DecisionKind.APPROVE]) == 1
    assert [e.action for e in audited].count("approve") == 1
    assert [m.kind for m in queued].count("decision") == 1


def test_a_second_standing_approval_of_one_manager_cannot_be_written(
    session: Session, small_policy: Policy
) -> None:
    experiment = register(session, S.SUBMITTED)
    for _ in range(2):
        session.add(
            Decision(
                experiment_id=experiment.id,
                kind=DecisionKind.APPROVE,
                actor=MANAGER,
                experiment_version=experiment.version,
            )
        )
    with pytest.raises(IntegrityError):
        session.flush()


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


def test_the_rank_table_brought_up_to_date_is_the_one_read_afresh(
    factory: sessionmaker[Session], small_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads share one rank table between changes; after a change only the tests it wrote
    are read again and put in their place: the order is the one a full read gives, through
    registrations, score changes and tests leaving."""
    ctx = at(small_policy)
    keys = []
    for number in range(1, 7):
        with factory.begin() as session:
            wanted = spec(title=f"Test {number}", impact=[0.5, 1, 2][number % 3], confidence=0.5)
            keys.append(edits.register(session, ctx, wanted, actor=OWNER).experiment.key)
    with factory.begin() as session:
        first = reads.rank_table(session)
    read_afresh = reads._read_table

    def no_full_read(session: Session) -> reads.RankTable:
        raise AssertionError("the whole table was read again")

    monkeypatch.setattr(reads, "_read_table", no_full_read)
    steps = [("register", 2), ("rescore", 3), ("withdraw", 0), ("register", 1), ("rescore", 0.25)]
    for step, impact in steps:
        with factory.begin() as session:
            if step == "register":
                wanted = spec(title=f"Late {impact}", impact=impact, confidence=0.8)
                keys.append(edits.register(session, ctx, wanted, actor=OWNER).experiment.key)
            else:
                test = experiment_service.get_by_key(session, keys[1 + len(keys) % 3])
                if step == "withdraw":
                    runs.withdraw(session, ctx, test.key, actor=OWNER)
                else:
                    edits.edit(session, ctx, test.key, actor=OWNER, changes={"impact": impact})
        with factory.begin() as session:
            shared = reads.rank_table(session)
            assert shared is not first  # brought up to date, not read as it was
            assert shared == read_afresh(session), step
            first = shared


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
