"""The lifecycle story: one test from registration to a recorded result, on a scripted clock.

An agile squad registers and submits a test that clashes with a BAU test; the manager's
approval fails on that gate; the manager waives the collision with a reason and approves;
the worker launches and completes the test; the results SLA warns; the owner records the
result. Every notification that goes out and the SLA clocks are shown along the way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session, sessionmaker

from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionStatus
from tower.collisions.refs import format_ref, keys_of
from tower.context import ServiceContext
from tower.errors import TowerError
from tower.experiments import service as experiment_service
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.outbox.dispatcher import dispatch_due
from tower.outbox.notifier import Delivery
from tower.pipeline import collision_flows
from tower.policy import Policy
from tower.protocol import review, runs
from tower.sla import queries as sla_queries
from tower.worker import jobs

OWNER = "U0ANNA"
MANAGER = "U0TOWERMGR"
STORY_SPEC = ExperimentSpec(
    title="Express pay button for loyalty members",
    team="checkout-squad",
    owner=OWNER,
    kind=ExperimentKind.AB_TEST,
    surfaces=("web/checkout/payment",),
    audiences=("loyalty",),
    start=date(2027, 1, 18),
    end=date(2027, 1, 31),
    traffic=50,
    primary_kpi="conversion_rate",
    baseline=0.031,
    mde=0.05,
    hypothesis=(
        "If loyalty members can pay with one tap, then more of them will complete checkout "
        "because typing card details is where they drop out."
    ),
    impact=2,
    confidence=0.8,
    effort_weeks=2,
)

Say = Callable[[str], None]


class _Printer:
    """A notifier that shows the deliveries about the story's test, as Slack would receive
    them, and counts the others (the rest of the demo portfolio moves on too)."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.key = ""
        self.others = 0

    def send(self, delivery: Delivery) -> None:
        if not self.key or not re.search(rf"\b{re.escape(self.key)}\b", delivery.text):
            self.others += 1
            return
        first, *rest = delivery.text.splitlines()
        self.say(f"    -> {delivery.recipient} [{delivery.kind}] {first}")
        for line in rest:
            self.say(f"       {line}")

    def flush_others(self) -> None:
        if self.others:
            self.say(f"    (and {self.others} notifications about other tests)")
            self.others = 0


def _utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def tell_story(factory: sessionmaker[Session], policy: Policy, say: Say) -> str:
    """Walk the story on the database behind `factory`; returns the new test's key."""
    printer = _Printer(say)

    def at(moment: datetime) -> ServiceContext:
        return ServiceContext.create(policy, moment)

    def step(
        moment: datetime, title: str, action: Callable[[Session, ServiceContext], str]
    ) -> None:
        ctx = at(moment)
        say(f"\n{ctx.now:%a %d %b %Y %H:%M} UTC - {title}")
        try:
            with factory.begin() as session:
                say(f"  {action(session, ctx)}")
        except TowerError as error:
            say(f"  refused: {error}")
        dispatch_due(factory, printer, now=ctx.now)
        printer.flush_others()

    def sweep(moment: datetime, title: str) -> None:
        ctx = at(moment)
        say(f"\n{ctx.now:%a %d %b %Y %H:%M} UTC - {title}")
        report = jobs.run_due_jobs(factory, ctx, printer)
        printer.flush_others()
        say(f"  sweep: {report.summary()}")

    key = ""

    def register(session: Session, ctx: ServiceContext) -> str:
        nonlocal key
        number = experiment_service.highest_number(session) + 1
        experiment = experiment_service.create(
            session, number=number, spec=STORY_SPEC, status=ExperimentStatus.DRAFT, actor=OWNER
        )
        key = printer.key = experiment.key
        return review.submit(session, ctx, key, actor=OWNER).message + (
            f" ({key}: {STORY_SPEC.title})"
        )

    def waive(session: Session, ctx: ServiceContext) -> str:
        records = [
            c
            for c in collision_service.list_collisions(session, statuses=[CollisionStatus.OPEN])
            if key in keys_of(c)
        ]
        reason = "Agreed with e-commerce: loyalty members get the express button, the bar stays"
        for record in records:
            collision_flows.waive(session, ctx, format_ref(record), actor=MANAGER, reason=reason)
        return f"waived {', '.join(format_ref(r) for r in records)}: {reason}"

    def clocks(session: Session, ctx: ServiceContext) -> str:
        rows = [
            sla_queries.clock_status(clock, ctx.calendar, ctx.now)
            for clock in sla_queries.clocks_for(session, key)
        ]
        return "SLA clocks:\n" + "\n".join(
            f"    {r['policy']} cycle {r['cycle']}: {r['state']}, due {r['due_at']}, "
            f"{r['business_hours_left']:.1f} business hours left"
            for r in rows
        )

    step(_utc(2026, 11, 23, 10, 0), "Anna registers and submits a test", register)
    step(
        _utc(2026, 11, 23, 10, 5),
        "Ben (not a manager) clicks Approve",
        lambda s, c: review.approve(s, c, key, actor="U0BEN").message,
    )
    step(
        _utc(2026, 11, 23, 10, 30),
        "The manager tries to approve",
        lambda s, c: review.approve(s, c, key, actor=MANAGER).message,
    )
    step(_utc(2026, 11, 23, 11, 0), "The manager waives the collision with a reason", waive)
    step(
        _utc(2026, 11, 23, 11, 5),
        "The manager approves",
        lambda s, c: review.approve(s, c, key, actor=MANAGER).message,
    )
    step(
        _utc(2026, 11, 23, 11, 6),
        "A double click on Approve",
        lambda s, c: review.approve(s, c, key, actor=MANAGER).message,
    )
    sweep(_utc(2027, 1, 18, 8, 0), "The worker's sweep on the start date")
    sweep(_utc(2027, 2, 1, 8, 0), "The worker's sweep after the end date")
    step(_utc(2027, 2, 1, 8, 1), "Where the promises stand", clocks)
    sweep(_utc(2027, 2, 5, 14, 0), "Three and a half business days later")
    step(
        _utc(2027, 2, 5, 15, 0),
        "Anna records the result",
        lambda s, c: (
            runs.record_result(
                s,
                c,
                key,
                actor=OWNER,
                result="winner",
                lift=0.042,
                note="Express pay lifted conversion for loyalty members; roll out to all",
            ).message
        ),
    )
    step(_utc(2027, 2, 5, 15, 1), "Where the promises stand", clocks)
    return key
