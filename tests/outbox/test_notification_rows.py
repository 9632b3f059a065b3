"""Every notification the protocol, the SLA sweep and the digest queue, pinned row by row.

A story runs through the services on a fresh database (so ids start at 1 on every engine):
a test is registered, edited, sent back, approved, re-approved after a footprint edit, held
back by a freeze, launched, completed; others are rejected, cancelled, collide and go
overdue; the digest goes out. The outbox rows each step queues (kind, recipient, dedupe key,
payload, text, when due, status) must be those in tests/data/notification_rows.json,
recorded before the fan-outs became `notify` calls. The dedupe keys make a retry harmless
and the payloads let a reply find the message it replaces: changing either is deliberate,
never a side effect of tidying code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.support.notification_story import PINNED, run_story
from tower import migrate
from tower.db import create_database_engine, create_session_factory
from tower.policy import Policy


@pytest.fixture
def fresh_factory(scratch_database_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(scratch_database_url)
    engine = create_database_engine(scratch_database_url)
    yield create_session_factory(engine)
    engine.dispose()


def test_every_step_queues_the_rows_it_always_has(
    fresh_factory: sessionmaker[Session], small_policy: Policy
) -> None:
    expected = json.loads(PINNED.read_text())
    queued = run_story(fresh_factory, small_policy)
    assert list(queued) == list(expected)
    for name, rows in expected.items():
        assert queued[name] == rows, name
    with fresh_factory() as session:
        order_kept = session.get_bind().dialect.name == "sqlite"  # PostgreSQL's JSONB sorts
    if order_kept:  # the payloads' JSON text too, keys in the same order
        assert json.dumps(queued) == json.dumps(expected)


def test_the_story_covers_every_kind_of_notification_the_services_queue() -> None:
    kinds = {row["kind"] for rows in json.loads(PINNED.read_text()).values() for row in rows}
    assert {
        "approval_requested",
        "approval_decided",
        "approval_voided",
        "decision",
        "launch_blocked",
        "status_live",
        "status_cancelled",
        "results_requested",
        "sla_warning",
        "sla_breach",
        "sla_escalation",
        "sla_notices",
        "digest",
    } <= kinds
