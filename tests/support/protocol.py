"""What the release protocol's tests (tests/protocol/) share: helpers to change the policy,
read back gates, audit events, decisions, messages and clocks, and every action as its usual
actor takes it.

Every test uses the small policy (tests/data/policy.yaml): manager U0TOWERMGR, told in the
tower channel C0TOWER; checkout-squad (agile: U0ANNA, U0BEN; channel C0CHECKOUT); ecommerce
(bau: U0CARLA; channel C0ECOM); London business hours 09:00-17:30 on GB working days; the
default protocol (lead 2 business days, 7 to 56 days, 3 tests per surface, 1 approval, no
self-approval) and the default SLAs (review 2 business days = 17 business hours, conflicts
acknowledged in 4 business hours per team, results in 5 business days = 42.5 hours).

The service clock is fixed: Monday 2 March 2026, 10:00 in London (GMT, so 10:00 UTC too). A
test runs from Monday 16 to Sunday 29 March 2026 on web/checkout/cart unless a test says
otherwise (tests/support/factories.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.people import BAU_OWNER, MANAGER, OWNER
from tower.audit.models import AuditEvent
from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.collisions.refs import keys_of
from tower.context import ServiceContext
from tower.engine.kinds import Severity
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus as S
from tower.outbox.models import OutboxMessage
from tower.policy import Policy
from tower.policy.schema import FreezeWindow
from tower.protocol import review, runs
from tower.protocol.gates import Gate
from tower.protocol.lifecycle import Action
from tower.protocol.models import Decision
from tower.protocol.outcome import Outcome
from tower.sla.models import SlaClock

DEPUTY = "U0DEPUTY"  # a second manager, for the tests that add one


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
