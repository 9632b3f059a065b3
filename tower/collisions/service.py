"""Look up collision records: by reference, by test, and listed most urgent first (as
records, or as plain rows when there are thousands)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import suppress
from typing import Any

from sqlalchemy import ColumnElement, Select, case, select
from sqlalchemy.orm import Session

from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision, collision_experiments
from tower.collisions.refs import CollisionFacts, parse_ref
from tower.db import BATCH
from tower.engine.kinds import CollisionKind, Severity
from tower.errors import NotFoundError
from tower.experiments.models import Experiment
from tower.experiments.spec import parse_key
from tower.paging import Page, first_rows

LIVE_STATUSES = (CollisionStatus.OPEN, CollisionStatus.ACKNOWLEDGED, CollisionStatus.WAIVED)

# Blocking, then warnings, then info (the stored names sort info before warning).
MOST_SEVERE_FIRST = case(
    {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}, value=Collision.severity
)


def get_collision(session: Session, ref: str) -> Collision:
    """The collision `C-12` (or `12`); `NotFoundError` if there is none."""
    try:
        id_ = parse_ref(ref, bare=True)
    except ValueError as error:
        raise NotFoundError(str(error)) from None
    collision = session.get(Collision, id_)
    if collision is None:
        raise NotFoundError(f"there is no collision {ref.strip()}")
    return collision


def by_refs(session: Session, refs: Collection[str]) -> list[Collision]:
    """The collisions named `C-12` in `refs` (unknown ones left out), most urgent first."""
    ids: list[int] = []
    for ref in refs:
        with suppress(ValueError):  # not a reference Tower writes: no collision
            ids.append(parse_ref(ref))
    query = select(Collision).where(Collision.id.in_(ids)).order_by(MOST_SEVERE_FIRST, Collision.id)
    return list(session.scalars(query))


def records_involving(
    session: Session, key: str, statuses: Collection[CollisionStatus] = LIVE_STATUSES
) -> list[Collision]:
    """The records of test `key` in `statuses`, in the order they were found."""
    return sorted((r for r in _live_records(session, [key], statuses).values()), key=lambda r: r.id)


def live_records(
    session: Session, keys: Collection[str], kinds: Collection[CollisionKind]
) -> list[Collision]:
    """The live records of `kinds` that involve one of `keys`."""
    return list(_live_records(session, keys, kinds=kinds).values())


def narrowed_to_live(
    query: Select[Any],
    scope: Collection[str] | None,
    statuses: Collection[CollisionStatus] = LIVE_STATUSES,
    kinds: Collection[CollisionKind] = (),
    *,
    inside: bool = False,
) -> Select[Any]:
    """`query` narrowed to open, acknowledged and waived records (or `statuses`), of the
    tests in `scope` (None: all), of `kinds` (all kinds when empty); `inside`: only those
    involving no other test."""
    query = query.where(Collision.status.in_(list(statuses)))
    if kinds:
        query = query.where(Collision.kind.in_(list(kinds)))
    if scope is not None:
        numbers = [parse_key(key) for key in scope]
        query = query.where(Collision.id.in_(_involving(Experiment.number.in_(numbers))))
        if inside:
            others = Experiment.number.not_in(numbers)
            own = collision_experiments.c.collision_id == Collision.id
            query = query.where(~_involving(others).where(own).exists())
    return query


def _live_records(
    session: Session,
    scope: Collection[str] | None,
    statuses: Collection[CollisionStatus] = LIVE_STATUSES,
    kinds: Collection[CollisionKind] = (),
) -> dict[str, Collision]:
    """The records `narrowed_to_live` narrows to, by fingerprint."""
    query = narrowed_to_live(select(Collision), scope, statuses, kinds)
    return {record.fingerprint: record for record in session.scalars(query)}


def _involving(tests: ColumnElement[bool]) -> Select[tuple[int]]:
    """The ids of the collisions that involve a test matching `tests`."""
    return (
        select(collision_experiments.c.collision_id)
        .join(Experiment, Experiment.id == collision_experiments.c.experiment_id)
        .where(tests)
    )


def list_collisions(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
) -> list[Collision]:
    """Collision records by severity, then in the order they were first found."""
    query = select(Collision).order_by(MOST_SEVERE_FIRST, Collision.id)
    if statuses:
        query = query.where(Collision.status.in_(list(statuses)))
    if severities:
        query = query.where(Collision.severity.in_(list(severities)))
    return list(session.scalars(query))


def collision_rows(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
    key: str | None = None,
) -> list[CollisionFacts]:
    """`list_collisions` read as plain rows (of test `key` only, when given): thousands of
    collisions listed without thousands of objects."""
    involving = None if key is None else ids_of_test(key)
    page = collision_page(
        session, statuses=statuses, severities=severities, involving=involving, limit=None
    )
    return page.items


def ids_of_test(key: str) -> Select[Any]:
    """The id of test `key`, as `collision_page` takes the tests whose collisions it pages."""
    return select(Experiment.id).where(Experiment.number == parse_key(key))


def stream_collision_rows(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
) -> Iterator[CollisionFacts]:
    """`collision_rows`, read a batch at a time (a listing of every collision)."""
    query = _rows_query(statuses, severities).execution_options(yield_per=BATCH)
    yield from session.execute(query)


def collision_page(
    session: Session,
    *,
    statuses: Collection[CollisionStatus] = (),
    severities: Collection[Severity] = (),
    involving: Select[Any] | None = None,
    limit: int | None,
) -> Page[CollisionFacts]:
    """The most urgent `limit` collisions as rows, and how many there are in all; those
    involving one of the experiments `involving` selects (by id), when given."""
    query = _rows_query(statuses, severities)
    if involving is not None:
        involved = select(collision_experiments.c.collision_id).where(
            collision_experiments.c.experiment_id.in_(involving)
        )
        query = query.where(Collision.id.in_(involved))
    return first_rows(session, query, limit)


def _rows_query(
    statuses: Collection[CollisionStatus], severities: Collection[Severity]
) -> Select[Any]:
    columns = [getattr(Collision, name) for name in CollisionFacts.__annotations__]
    query = select(*columns).order_by(MOST_SEVERE_FIRST, Collision.id)
    if statuses:
        query = query.where(Collision.status.in_(list(statuses)))
    if severities:
        query = query.where(Collision.severity.in_(list(severities)))
    return query
