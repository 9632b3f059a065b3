"""The registry's version: every transaction that changes a test bumps it, once.

A transaction that changes a test gets a stamp (a random hex string): each test row it
writes carries it (`Experiment.change_stamp`), and at commit `registry_state` takes version
+ 1 and that stamp. A process holding a warm index of the portfolio compares its mark
(version, stamp) with the row's to know whether it lags, and the rows' (version,
change_stamp) to know which tests to reload. Stamps are never reused, so a rolled-back
change can never pass for a committed one.
"""

from __future__ import annotations

import hashlib
import uuid
import weakref
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session, SessionTransaction

from tower.db import insert_unless_present
from tower.experiments.models import Experiment
from tower.pipeline.models import REGISTRY_STATE_ID, RegistryChange, RegistryState
from tower.policy import Policy

KEPT_CHANGES = 1000  # recent registry changes kept: a process lagging more compares every row
PRUNE_EVERY = 100  # older changes are pruned every this many versions (one statement fewer)
_STAMP = "tower.change_stamp"  # session.info: the stamp of this transaction's changes
_BUMPED = "tower.registry_bumped"  # session.info: the state row already carries the stamp
_WRITTEN = "tower.written_tests"  # session.info: the tests this transaction wrote
_BUMPED_AT = "tower.bumped_at"  # session.info: their versions when the state row was bumped
_LOCKED = "tower.registry_locked"  # session.info: this transaction holds the state row's lock


@dataclass(frozen=True)
class RegistryMark:
    """Which committed state of the registry a process has seen."""

    version: int
    stamp: str


_fingerprints: dict[int, tuple[weakref.ref[Policy], str]] = {}


def policy_fingerprint(policy: Policy) -> str:
    """A short digest of everything the policy says: equal policies, equal fingerprints.
    A policy is frozen, so its digest is worked out once (each change asks for it)."""
    known = _fingerprints.get(id(policy))
    if known is not None and known[0]() is policy:
        return known[1]
    digest = hashlib.sha256(policy.model_dump_json().encode()).hexdigest()[:32]
    forget = partial(_fingerprints.pop, id(policy), None)
    _fingerprints[id(policy)] = (weakref.ref(policy, lambda _: forget()), digest)
    return digest


def change_stamp(session: Session) -> str:
    """The stamp of this transaction's changes to the registry (made on first use)."""
    stamp: str = session.info.setdefault(_STAMP, uuid.uuid4().hex)
    return stamp


def state(session: Session, *, for_update: bool = False) -> RegistryState:
    """The registry state row, made on first use; `for_update` serialises writers on it
    (read once per transaction: while this one holds the lock, no one else moves it)."""
    locked = _locked(session)
    if locked is not None:
        return locked
    query = select(RegistryState).where(RegistryState.id == REGISTRY_STATE_ID)
    if for_update:  # and read afresh: the row may have moved on since it was loaded
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.scalar(query)
    if row is None:  # a new database: the first writers may arrive together
        values = {"id": REGISTRY_STATE_ID, "version": 0, "stamp": ""}
        session.execute(insert_unless_present(session, RegistryState, **values))
        row = session.scalar(query.execution_options(populate_existing=True))
        assert row is not None
    if for_update:
        session.info[_LOCKED] = row
    return row


def _locked(session: Session) -> RegistryState | None:
    """The state row, if this transaction holds its lock (so it is as current as can be)."""
    row: RegistryState | None = session.info.get(_LOCKED)
    return row if row is not None and row in session else None


def peek(session: Session) -> RegistryMark:
    """The registry's mark, read without writing (a fresh database: version 0)."""
    row = _locked(session) or session.scalar(
        select(RegistryState).where(RegistryState.id == REGISTRY_STATE_ID)
    )
    return RegistryMark(0, "") if row is None else mark_of(row)


def plan_mark(session: Session) -> tuple[object, ...]:
    """What changes when a new plan is stored: its registry version and time."""
    locked = _locked(session)
    if locked is not None:
        return (locked.planned_version, locked.planned_at)
    query = select(RegistryState.planned_version, RegistryState.planned_at).where(
        RegistryState.id == REGISTRY_STATE_ID
    )
    row = session.execute(query).first()
    return () if row is None else tuple(row)


def mark_of(row: RegistryState) -> RegistryMark:
    return RegistryMark(row.version, row.stamp)


def bump(session: Session, row: RegistryState) -> RegistryMark:
    """Record that this transaction changed the registry: the version moves on once per
    transaction (and again at commit if tests were written after this)."""
    stamp = change_stamp(session)
    written = written_tests(session)
    if session.info.get(_BUMPED) != stamp:
        row.version += 1
        row.stamp = stamp
        session.info[_BUMPED] = stamp
        numbers = sorted({experiment.number for experiment in written})
        session.add(RegistryChange(version=row.version, stamp=stamp, numbers=numbers))
        if row.version % PRUNE_EVERY == 0:
            session.execute(
                delete(RegistryChange).where(RegistryChange.version <= row.version - KEPT_CHANGES)
            )
        session.flush()
    session.info[_BUMPED_AT] = _versions(written)
    return mark_of(row)


def changed_since(session: Session, seen: RegistryMark, now: RegistryMark) -> set[int] | None:
    """The numbers of the tests written after `seen` up to `now`; None when that cannot be
    told from the recent changes (`seen` too old, or never committed): compare every row."""
    if not seen.version < now.version <= seen.version + KEPT_CHANGES:
        return None
    query = (
        select(RegistryChange)
        .where(RegistryChange.version >= seen.version, RegistryChange.version <= now.version)
        .order_by(RegistryChange.version)
    )
    changes = list(session.scalars(query))
    versions = [change.version for change in changes]
    if versions != list(range(seen.version, now.version + 1)):
        return None
    if changes[0].stamp != seen.stamp or changes[-1].stamp != now.stamp:
        return None  # `seen` was rolled back, or `now` is not what this says
    return {number for change in changes[1:] for number in change.numbers}


def _versions(experiments: list[Experiment]) -> dict[int, int]:
    return {experiment.number: experiment.version for experiment in experiments}


def row_marks(session: Session, numbers: set[int] | None = None) -> dict[int, tuple[int, str]]:
    """Each test's (version, change stamp), by number: what a warm index compares (of
    every test, or of `numbers`: those of them still registered)."""
    query = select(Experiment.number, Experiment.version, Experiment.change_stamp)
    if numbers is not None:
        query = query.where(Experiment.number.in_(sorted(numbers)))
    return {number: (version, stamp) for number, version, stamp in session.execute(query)}


@event.listens_for(Session, "before_flush")
def _stamp_changed_tests(session: Session, _context: Any, _instances: Any) -> None:
    changed = [
        obj
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, Experiment) and (obj in session.new or session.is_modified(obj))
    ]
    if changed:
        stamp = change_stamp(session)
        written: dict[int, Experiment] = session.info.setdefault(_WRITTEN, {})
        for experiment in changed:
            experiment.change_stamp = stamp
            written[id(experiment)] = experiment


def written_tests(session: Session) -> list[Experiment]:
    """The tests this transaction has written so far (flushed, and not rolled back)."""
    written: dict[int, Experiment] = session.info.get(_WRITTEN, {})
    return [experiment for experiment in written.values() if experiment in session]


@event.listens_for(Session, "before_commit")
def _bump_on_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the transaction goes on
        return
    if session.info.get(_STAMP) is None:
        return
    session.flush()
    written = written_tests(session)
    if written and _versions(written) != session.info.get(_BUMPED_AT):
        # Not bumped yet, or tests were written after it: move on (again), so that every
        # warm index, this process's too, reloads what changed.
        session.info.pop(_BUMPED, None)
        bump(session, state(session, for_update=True))


@event.listens_for(Session, "after_commit")
def _close_stamp(session: Session) -> None:
    # Committing a savepoint fires this too; the transaction, and its stamp, go on.
    if not session.in_nested_transaction():
        _forget_stamp(session)


@event.listens_for(Session, "after_rollback")
@event.listens_for(Session, "after_soft_rollback")
def _forget_stamp(session: Session, *_: Any) -> None:
    # After a rollback, even of a savepoint, changes get a new stamp: rows that were rolled
    # back may have carried the old one.
    session.info.pop(_STAMP, None)
    session.info.pop(_BUMPED, None)
    session.info.pop(_BUMPED_AT, None)
    session.info.pop(_LOCKED, None)  # a savepoint's rollback may have let its lock go


@event.listens_for(Session, "after_transaction_end")
def _forget_written(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the transaction itself, not a savepoint, has ended
        session.info.pop(_WRITTEN, None)
        session.info.pop(_LOCKED, None)


__all__ = [
    "RegistryMark",
    "bump",
    "change_stamp",
    "changed_since",
    "mark_of",
    "peek",
    "plan_mark",
    "policy_fingerprint",
    "row_marks",
    "state",
    "written_tests",
]
