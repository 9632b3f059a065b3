"""Act once on a request that may come again: the first copy claims its fingerprint and
records its answer; a copy arriving later gets that answer and does nothing.

Kept in the database, so every web process of `tower serve` shares them, for `REMEMBERED`
(ten minutes: Slack retries within seconds, a person re-sends within minutes). A first copy
that died before answering leaves its claim unanswered: after `ABANDONED` a later copy
takes the claim over and acts, so a request is never lost to a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tower.db import insert_unless_present
from tower.repeats.models import AnsweredRequest

REMEMBERED = timedelta(minutes=10)
ABANDONED = timedelta(seconds=30)


@dataclass(frozen=True)
class Answer:
    """What the first copy of a request was answered."""

    status: int
    content_type: str
    body: str


def claim(session: Session, fingerprint: str, *, now: datetime) -> bool:
    """Whether this copy of the request is the one to act (the first, or one taking over
    from a first that never answered); forgets requests older than `REMEMBERED`."""
    session.execute(delete(AnsweredRequest).where(AnsweredRequest.received_at < now - REMEMBERED))
    # RETURNING says whether the row was written (a driver may not count inserted rows).
    statement = insert_unless_present(
        session, AnsweredRequest, fingerprint=fingerprint, received_at=now
    )
    if session.scalar(statement.returning(AnsweredRequest.fingerprint)) is not None:
        return True
    taken_over = session.scalar(
        update(AnsweredRequest)
        .where(
            AnsweredRequest.fingerprint == fingerprint,
            AnsweredRequest.status.is_(None),
            AnsweredRequest.received_at < now - ABANDONED,
        )
        .values(received_at=now)
        .returning(AnsweredRequest.fingerprint)
        .execution_options(synchronize_session=False)
    )
    return taken_over is not None


def record(session: Session, fingerprint: str, answer: Answer) -> None:
    """Keep the answer the acting copy got, for the copies after it."""
    session.execute(
        update(AnsweredRequest)
        .where(AnsweredRequest.fingerprint == fingerprint)
        .values(status=answer.status, content_type=answer.content_type, body=answer.body)
        .execution_options(synchronize_session=False)
    )


def answer_to(session: Session, fingerprint: str) -> Answer | None:
    """The answer the first copy got, if it has one yet."""
    row = session.execute(
        select(AnsweredRequest.status, AnsweredRequest.content_type, AnsweredRequest.body).where(
            AnsweredRequest.fingerprint == fingerprint
        )
    ).one_or_none()
    if row is None or row.status is None:
        return None
    return Answer(row.status, row.content_type or "", row.body or "")
