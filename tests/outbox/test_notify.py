"""`notify`: one notification for several recipients, a row each, safe to queue again."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.outbox.kinds import NotificationKind
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notify import notify
from tower.outbox.payloads import ExperimentRef, Replace, Thread, VersionRef
from tower.policy import Policy

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def rows(session: Session) -> list[tuple[str, str, str, dict[str, object]]]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    return [(m.kind, m.recipient, m.dedupe_key, m.payload) for m in session.scalars(query)]


def test_each_recipient_gets_a_row_keyed_by_the_stem_and_the_recipient(
    session: Session, small_policy: Policy
) -> None:
    ctx = ServiceContext.create(small_policy, NOW)
    queued = notify(
        session,
        ctx,
        NotificationKind.APPROVAL_VOIDED,
        ["U0ANNA", "C0TOWER"],
        "The approval of T-4 is void.",
        dedupe_stem="voided:T-4:v3",
        payload=VersionRef(key="T-4", version=3),
    )
    assert [(m.status, m.text, m.next_attempt_at) for m in queued] == [
        (MessageStatus.PENDING, "The approval of T-4 is void.", NOW)
    ] * 2
    assert rows(session) == [
        ("approval_voided", "U0ANNA", "voided:T-4:v3:U0ANNA", {"key": "T-4", "version": 3}),
        ("approval_voided", "C0TOWER", "voided:T-4:v3:C0TOWER", {"key": "T-4", "version": 3}),
    ]


def test_queued_again_it_adds_nothing_and_returns_nothing(
    session: Session, small_policy: Policy
) -> None:
    ctx = ServiceContext.create(small_policy, NOW)
    digest = NotificationKind.DIGEST
    first = notify(session, ctx, digest, ["C0TOWER"], "Week 10", dedupe_stem="digest:W10")
    again = notify(session, ctx, digest, ["C0TOWER"], "Week 10, again", dedupe_stem="digest:W10")
    assert len(first) == 1 and again == []
    [message] = session.scalars(select(OutboxMessage))
    assert message.text == "Week 10"


def test_a_notice_for_one_recipient_may_be_keyed_by_the_stem_alone(
    session: Session, small_policy: Policy
) -> None:
    ctx = ServiceContext.create(small_policy, NOW)
    notify(
        session,
        ctx,
        NotificationKind.SLA_BREACH,
        ["U0ANNA"],
        "Overdue",
        dedupe_stem="sla:7:breach",
        recipient_in_key=False,
    )
    assert [key for _, _, key, _ in rows(session)] == ["sla:7:breach"]


def test_a_follow_up_names_the_earlier_message_after_its_own_payload(
    session: Session, small_policy: Policy
) -> None:
    ctx = ServiceContext.create(small_policy, NOW)
    request = Replace(kind=NotificationKind.APPROVAL_REQUESTED, key="T-4")
    notify(
        session,
        ctx,
        NotificationKind.APPROVAL_DECIDED,
        ["C0TOWER"],
        "Approved",
        dedupe_stem="decided:T-4:v3",
        payload=ExperimentRef(key="T-4"),
        follows=request,
    )
    thread = Thread(kind=NotificationKind.COLLISION_OPENED)
    seen = NotificationKind.COLLISION_ACKNOWLEDGED
    notify(session, ctx, seen, ["C0TOWER"], "Seen", dedupe_stem="seen:C-1", follows=thread)
    [decided, note] = rows(session)
    assert decided[3] == {"key": "T-4", "replaces": {"kind": "approval_requested", "key": "T-4"}}
    assert list(decided[3]) == ["key", "replaces"]
    assert note[3] == {"thread_of": {"kind": "collision_opened"}}
