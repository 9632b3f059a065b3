"""Requests answered once (tower/repeats) against a real database: the first copy acts,
later ones get its answer; a first copy that died is taken over; old ones are forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tower.repeats import service as repeats

NOW = datetime(2026, 12, 7, 10, tzinfo=UTC)


def test_the_first_copy_acts_and_the_others_get_its_answer(session: Session) -> None:
    assert repeats.claim(session, "a" * 64, now=NOW) is True
    assert repeats.claim(session, "a" * 64, now=NOW) is False
    assert repeats.answer_to(session, "a" * 64) is None  # still at work
    answer = repeats.Answer(200, "application/json", '{"response_action": "clear"}')
    repeats.record(session, "a" * 64, answer)
    assert repeats.answer_to(session, "a" * 64) == answer
    assert repeats.claim(session, "a" * 64, now=NOW + timedelta(minutes=5)) is False
    assert repeats.claim(session, "b" * 64, now=NOW) is True  # another request


def test_a_first_copy_that_never_answered_is_taken_over(session: Session) -> None:
    assert repeats.claim(session, "c" * 64, now=NOW) is True
    assert repeats.claim(session, "c" * 64, now=NOW + repeats.ABANDONED) is False
    later = NOW + repeats.ABANDONED + timedelta(seconds=1)
    assert repeats.claim(session, "c" * 64, now=later) is True
    assert repeats.claim(session, "c" * 64, now=later) is False


def test_a_request_is_forgotten_after_ten_minutes(session: Session) -> None:
    assert repeats.claim(session, "d" * 64, now=NOW) is True
    repeats.record(session, "d" * 64, repeats.Answer(200, "", ""))
    later = NOW + repeats.REMEMBERED + timedelta(seconds=1)
    assert repeats.claim(session, "d" * 64, now=later) is True
