"""Typed payloads: each kind's model writes exactly the JSON stored before payloads were
typed (keys in the same order), reads what older versions stored, and the earlier message a
payload names (`Replace`, `Thread`) is parsed when a message is read for delivery."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from tests.support.notification_story import PINNED
from tower.context import ServiceContext
from tower.outbox import service as outbox_service
from tower.outbox.kinds import NotificationKind as Kind
from tower.outbox.leases import claim_queued
from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notify import notify
from tower.outbox.payloads import (
    CollisionRef,
    CollisionsSummary,
    DeadlineMissed,
    ExperimentRef,
    SlaNotice,
    SlotsGiven,
    Thread,
    UrgentCollision,
    VersionRef,
    follow_ups,
    payload_of,
)
from tower.policy import Policy

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def written_again(kind: str, stored: dict[str, Any]) -> dict[str, Any]:
    """A stored payload read by the model of its kind, then written as a new row would be."""
    payload = payload_of(kind, stored)
    assert payload is not None, (kind, stored)
    replaces, thread_of = follow_ups(stored)
    return {
        **payload.to_json(),
        **(replaces.references() if replaces else {}),
        **(thread_of.references() if thread_of else {}),
    }


def test_every_pinned_payload_reads_and_writes_back_byte_for_byte() -> None:
    rows = [row for rows in json.loads(PINNED.read_text()).values() for row in rows]
    assert rows
    for row in rows:
        again = written_again(row["kind"], row["payload"])
        assert json.dumps(again) == json.dumps(row["payload"]), row["dedupe_key"]


@pytest.mark.parametrize(
    ("kind", "payload", "stored"),
    [
        (Kind.REGISTERED, ExperimentRef(key="T-4"), {"key": "T-4"}),
        (Kind.DECISION, VersionRef(key="T-4", version=3), {"key": "T-4", "version": 3}),
        (
            Kind.DEADLINE_MISSED,
            DeadlineMissed(key="T-4", deadline=date(2026, 4, 30)),
            {"key": "T-4", "deadline": "2026-04-30"},
        ),
        (Kind.SLOT_GIVEN, SlotsGiven(decisions=["C-4:T-1>T-2"]), {"decisions": ["C-4:T-1>T-2"]}),
        (
            Kind.COLLISION_OPENED,
            CollisionRef.of("C-4", ["T-1", "T-2"]),
            {"collision": "C-4", "collisions": ["C-4"], "keys": ["T-1", "T-2"]},
        ),
        (
            Kind.COLLISIONS_SUMMARY,
            CollisionsSummary(
                collisions=["C-4", "C-5"],
                resolved=[],
                urgent=[UrgentCollision(collision="C-4", keys=["T-1", "T-2"], line="blocking")],
            ),
            {
                "collisions": ["C-4", "C-5"],
                "resolved": [],
                "urgent": [{"collision": "C-4", "keys": ["T-1", "T-2"], "line": "blocking"}],
            },
        ),
    ],
)
def test_the_payloads_the_pinned_story_does_not_queue_keep_their_shape(
    kind: Kind, payload: Any, stored: dict[str, Any]
) -> None:
    assert json.dumps(payload.to_json()) == json.dumps(stored)
    assert payload_of(kind, stored) == payload


def test_an_sla_notice_stores_its_due_time_with_its_offset_and_only_the_fields_it_has() -> None:
    due = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    breach = SlaNotice(clock_id=5, policy="review", subject="T-4", cycle=1, due_at=due)
    assert breach.to_json() == {
        "clock_id": 5,
        "policy": "review",
        "subject": "T-4",
        "cycle": 1,
        "due_at": "2026-03-04T10:00:00+00:00",
    }
    merged = breach.model_copy(update={"merged_into": 35}).to_json()
    assert list(merged)[-1] == "merged_into"


def test_a_payload_from_an_older_version_reads_whatever_else_it_holds() -> None:
    stored = {"key": "T-4", "version": 2, "blocks": [{"type": "section"}], "note": None}
    assert payload_of("approval_requested", stored) == VersionRef(key="T-4", version=2)


@pytest.mark.parametrize(
    ("kind", "stored"),
    [
        ("approval_requested", {"version": 2}),  # no key: not a payload of its kind
        ("digest", {"week": ["2026-W10"]}),
        ("weekly_recap", {"week": "2026-W10"}),  # a kind this version does not know
        ("digest", None),
    ],
)
def test_a_payload_that_does_not_fit_its_kind_reads_as_none(
    kind: str, stored: dict[str, Any] | None
) -> None:
    assert payload_of(kind, stored) is None


def test_a_reference_must_name_the_kind_of_the_earlier_message() -> None:
    with pytest.raises(ValidationError):
        Thread(collisions="C-4")


def test_a_stored_reference_reads_its_kinds_and_the_values_it_matches() -> None:
    replaces, thread_of = follow_ups(
        {
            "replaces": {"kind": "collision_opened", "collision": "C-4"},
            "thread_of": {"kinds": ["collision_opened", "collisions_summary"], "collisions": "C-4"},
        }
    )
    assert replaces is not None and thread_of is not None
    assert (replaces.kinds_wanted, replaces.match) == (["collision_opened"], {"collision": "C-4"})
    assert thread_of.kinds_wanted == ["collision_opened", "collisions_summary"]
    assert thread_of.match == {"collisions": "C-4"}


@pytest.mark.parametrize(
    "stored",
    [
        None,
        {},
        {"replaces": "C-4", "thread_of": ["collision_opened"]},
        {"replaces": {"key": "T-4"}, "thread_of": {"kinds": []}},  # no kind named
    ],
)
def test_a_payload_naming_no_earlier_message_or_a_broken_reference_follows_none(
    stored: dict[str, Any] | None,
) -> None:
    assert follow_ups(stored) == (None, None)


def older_row(session: Session, kind: str, payload: dict[str, Any]) -> OutboxMessage:
    """A row about collision C-4 as an older version queued it."""
    row = outbox_service.enqueue(
        session,
        kind=kind,
        recipient="C0TOWER",
        text=kind,
        dedupe_key=f"{kind}:C-4:old",
        payload=payload,
    )
    assert row is not None
    return row


def sent_alert(session: Session, payload: dict[str, Any]) -> None:
    """A collision alert an older version queued and Slack placed."""
    alert = older_row(session, "collision_opened", payload)
    alert.status, alert.receipt = MessageStatus.SENT, {"channel": "C0TOWER", "ts": "1.000001"}
    session.flush()


def test_a_follow_up_is_delivered_onto_the_message_its_typed_reference_names(
    session: Session, small_policy: Policy
) -> None:
    sent_alert(session, {"collision": "C-4", "collisions": ["C-4"], "keys": [], "old": True})
    ctx = ServiceContext.create(small_policy, NOW)
    in_thread = Thread(kinds=[Kind.COLLISION_OPENED, Kind.COLLISIONS_SUMMARY], collisions="C-4")
    [message] = notify(
        session,
        ctx,
        Kind.COLLISION_WAIVED,
        ["C0TOWER"],
        "Waived",
        dedupe_stem="waived:C-4",
        payload=CollisionRef.of("C-4", ["T-1", "T-2"]),
        follows=in_thread,
    )
    delivery = claim_queued(session, message, wall_time=NOW).delivery
    assert delivery.thread == {"channel": "C0TOWER", "ts": "1.000001"}
    assert delivery.replace is None


def test_a_follow_up_whose_reference_does_not_fit_still_goes_out_as_a_new_message(
    session: Session,
) -> None:
    sent_alert(session, {"collision": "C-4", "collisions": ["C-4"], "keys": []})
    broken = {"collision": "C-4", "replaces": {"collision": "C-4"}, "thread_of": 7}
    older = older_row(session, "collision_resolved", broken)
    delivery = claim_queued(session, older, wall_time=NOW).delivery
    assert (delivery.replace, delivery.thread) == (None, None)
    assert delivery.payload["replaces"] == {"collision": "C-4"}
