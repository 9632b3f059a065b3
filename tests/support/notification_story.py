"""The notification story (`tests/outbox/test_notification_rows.py`): a test registered,
edited, sent back, approved, held back by a freeze, launched and completed, others rejected,
cancelled, colliding and overdue, the digest sent; and the outbox rows each step queues."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.factories import END, START, cart_test, utc
from tests.support.files import DATA
from tests.support.people import MANAGER, OWNER, TEAMMATE
from tower.context import ServiceContext
from tower.outbox.models import OutboxMessage
from tower.policy import Policy
from tower.policy.schema import FreezeWindow
from tower.protocol import edits, review, runs
from tower.worker import jobs

PINNED = DATA / "notification_rows.json"


BEGIN = utc(3, 2, 10)  # Monday 2 March 2026, 10:00


@dataclass(frozen=True)
class Step:
    """One transaction of the story: what it is called, when it happens, what it does."""

    name: str
    moment: datetime
    act: Callable[[Session, ServiceContext], object]


def story(policy: Policy) -> list[Step]:
    """The story, in time order."""
    frozen = policy.model_copy(
        update={
            "freeze_windows": [
                FreezeWindow(name="Spring sale", start=START, end=END, surfaces=["web/checkout"])
            ]
        }
    )

    def register(key_spec: dict[str, Any]) -> Callable[[Session, ServiceContext], object]:
        made = cart_test(start=START, end=END, **key_spec)
        return lambda s, c: edits.register(s, c, made, actor=made.owner)

    def in_freeze(session: Session, ctx: ServiceContext) -> object:
        return runs.launch(session, ServiceContext.create(frozen, ctx.now), "T-1")

    def approved_then_cancelled(session: Session, ctx: ServiceContext) -> object:
        review.approve(session, ctx, "T-3", actor=MANAGER)
        return runs.cancel(session, ctx, "T-3", actor=OWNER, reason="Budget moved")

    def sweep(session: Session, ctx: ServiceContext) -> None:
        jobs.run_sla_sweep(sessionmaker(bind=session.get_bind()), ctx, jobs.JobsReport())

    def digest(session: Session, ctx: ServiceContext) -> None:
        jobs.run_digest(sessionmaker(bind=session.get_bind()), ctx, jobs.JobsReport())

    return [
        Step("T-1 registered", BEGIN, register({})),
        Step(
            "T-1 retitled while submitted",
            BEGIN,
            lambda s, c: edits.edit(
                s, c, "T-1", actor=OWNER, changes={"title": "Sticky basket, green"}
            ),
        ),
        Step(
            "T-1 sent back",
            BEGIN,
            lambda s, c: review.request_changes(
                s, c, "T-1", actor=MANAGER, reason="Say which KPI moves"
            ),
        ),
        Step("T-1 submitted again", BEGIN, lambda s, c: review.submit(s, c, "T-1", actor=OWNER)),
        Step("T-1 approved", BEGIN, lambda s, c: review.approve(s, c, "T-1", actor=MANAGER)),
        Step(
            "T-1 footprint edited after approval",
            BEGIN,
            lambda s, c: edits.edit(s, c, "T-1", actor=OWNER, changes={"traffic": 50.0}),
        ),
        Step(
            "T-1 approved again",
            BEGIN,
            lambda s, c: review.approve(s, c, "T-1", actor=MANAGER, reason="Fine at 50%"),
        ),
        Step("T-2 registered", BEGIN, register({"title": "Hero", "surfaces": ("web/home",)})),
        Step(
            "T-2 rejected",
            BEGIN,
            lambda s, c: review.reject(s, c, "T-2", actor=MANAGER, reason="Not this quarter"),
        ),
        Step("T-3 registered", BEGIN, register({"title": "Gallery", "surfaces": ("web/product",)})),
        Step("T-3 approved and cancelled", BEGIN, approved_then_cancelled),
        Step(
            "T-4 registered",
            BEGIN,
            register({"title": "One-click pay", "surfaces": ("web/checkout/payment",)}),
        ),
        Step(
            "T-5 registered, colliding with T-4",
            BEGIN,
            register(
                {"title": "Wallets", "owner": TEAMMATE, "surfaces": ("web/checkout/payment",)}
            ),
        ),
        Step("reminders swept", utc(3, 4, 12), sweep),
        Step("reminders swept again", utc(3, 4, 12), sweep),
        Step("weekly digest", utc(3, 9, 9), digest),
        Step("T-1 held back by a freeze", utc(3, 16, 9), in_freeze),
        Step("T-1 launched", utc(3, 16, 9), lambda s, c: runs.launch(s, c, "T-1")),
        Step("T-1 completed", utc(3, 30, 10), lambda s, c: runs.complete(s, c, "T-1")),
        Step(
            "T-1 result recorded",
            utc(3, 30, 11),
            lambda s, c: runs.record_result(s, c, "T-1", actor=OWNER, result="winner", lift=0.04),
        ),
    ]


def rows_after(session: Session, last_id: int) -> list[dict[str, Any]]:
    """The outbox rows past `last_id`, payloads as stored (their keys in stored order)."""
    stored = cast(OutboxMessage.payload, String).label("stored_payload")
    query = (
        select(OutboxMessage, stored).where(OutboxMessage.id > last_id).order_by(OutboxMessage.id)
    )
    return [
        {
            "kind": message.kind,
            "recipient": message.recipient,
            "dedupe_key": message.dedupe_key,
            "payload": json.loads(payload),
            "text": message.text,
            "due": message.next_attempt_at.isoformat(),
            "status": message.status.value,
        }
        for message, payload in session.execute(query)
    ]


def run_story(factory: sessionmaker[Session], policy: Policy) -> dict[str, list[dict[str, Any]]]:
    """Each step's name and the outbox rows it queued."""
    queued: dict[str, list[dict[str, Any]]] = {}
    last_id = 0
    for step in story(policy):
        with factory.begin() as session:
            step.act(session, ServiceContext.create(policy, step.moment))
        with factory() as session:
            queued[step.name] = rows_after(session, last_id)
            last_id = session.scalar(select(func.max(OutboxMessage.id))) or 0
    return queued
