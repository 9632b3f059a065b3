"""The kinds of notification: every kind queued is a `NotificationKind`, stored as the same
string as before, and a row of a kind this version does not know still reads and goes out."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from tests.support.notification_story import PINNED
from tower.outbox import service as outbox_service
from tower.outbox.kinds import NotificationKind
from tower.outbox.leases import claim_queued
from tower.outbox.notifier import ConsoleNotifier
from tower.outbox.payloads import PAYLOADS

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def pinned_kinds() -> set[str]:
    """The kinds of the pinned rows, and the kinds their payloads name."""
    found: set[str] = set()
    for rows in json.loads(PINNED.read_text()).values():
        for row in rows:
            found.add(row["kind"])
            found.update(row["payload"].get("kinds", []))
            for how in ("replaces", "thread_of"):
                reference = row["payload"].get(how, {})
                found.update(reference.get("kinds", []))
                if "kind" in reference:
                    found.add(reference["kind"])
    return found


def test_every_kind_the_pinned_rows_hold_is_a_member_stored_as_the_same_string() -> None:
    kinds = pinned_kinds()
    assert len(kinds) >= 14
    for stored in kinds:
        kind = NotificationKind(stored)
        assert kind == stored and str(kind) == stored and json.dumps(kind) == json.dumps(stored)
        assert NotificationKind.read(stored) is kind


def test_the_kinds_queued_outside_the_pinned_story_are_members_too() -> None:
    for stored in (
        "registered",
        "deadline_missed",
        "slot_given",
        "collisions_summary",
        "collision_resolved",
        "collision_acknowledged",
        "collision_waived",
        "waiver_requested",
    ):
        assert NotificationKind.read(stored) == stored


def test_every_kind_has_the_model_of_its_payload() -> None:
    assert set(PAYLOADS) == set(NotificationKind)


@pytest.mark.parametrize("stored", ["collision.opened", "weekly_recap", ""])
def test_a_kind_this_version_does_not_know_reads_as_none(stored: str) -> None:
    assert NotificationKind.read(stored) is None


def test_a_row_of_an_unknown_kind_from_an_older_version_still_reads_and_goes_out(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    message = outbox_service.enqueue(
        session,
        kind="weekly_recap",  # what an older Tower queued, under a name no longer used
        recipient="C0TOWER",
        text="Week 9 in review",
        dedupe_key="recap:2026-W09",
        payload={"week": "2026-W09", "replaces": {"kind": "weekly_recap"}, "extra": [1]},
        at=NOW,
    )
    assert message is not None

    delivery = claim_queued(session, message, wall_time=NOW).delivery

    assert (delivery.kind, delivery.text) == ("weekly_recap", "Week 9 in review")
    assert delivery.payload["extra"] == [1]
    assert delivery.replace is None  # nothing of its kind was sent before
    with caplog.at_level(logging.INFO, logger="tower.notify"):
        ConsoleNotifier().send(delivery)
    assert "[weekly_recap] -> C0TOWER: Week 9 in review" in caplog.text
