"""The approval gates, in reading order, each failing with what to fix: required fields,
open blocking collisions and surface capacity until waived, freeze windows, send days,
lead time in business days, duration.

Every test uses the small policy (tests/data/policy.yaml) and the services' fixed clock,
described in tests/support/protocol.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.support.factories import START, at, register, utc
from tests.support.files import SMALL_POLICY
from tests.support.people import BAU_OWNER, MANAGER, OWNER
from tests.support.protocol import (
    BAU,
    decisions,
    gate,
    gates_now,
    open_blocking,
    refused,
    with_freeze,
    with_protocol,
)
from tower.collisions.actions import CollisionActionError
from tower.collisions.kinds import CollisionStatus
from tower.collisions.refs import format_ref
from tower.engine.kinds import CollisionKind
from tower.experiments.spec import ExperimentStatus as S
from tower.pipeline import collision_flows
from tower.pipeline.resync import recheck_all
from tower.policy import Policy, parse_policy
from tower.protocol import review
from tower.protocol.outcome import GatesFailed

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
