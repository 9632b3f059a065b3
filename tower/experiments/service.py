"""Use cases on the test registry. Services take a session and never commit."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from tower.audit import service as audit_service
from tower.errors import NotFoundError, TowerError
from tower.experiments.models import Experiment
from tower.experiments.spec import (
    FINISHED_STATUSES,
    KEY_MAX_NUMBER,
    ExperimentSpec,
    ExperimentStatus,
    format_key,
    parse_key,
)

NO_KEY_LEFT = f"no new key fits after {format_key(KEY_MAX_NUMBER)}, the largest the registry holds"


class NoKeyLeft(TowerError):
    """A new test would need a key past the largest the registry holds."""


def get_by_key(session: Session, key: str) -> Experiment:
    """The test with human key `key` (`T-42`); `NotFoundError` if there is none."""
    return _one_by_key(session, key, select(Experiment))


def get_for_change(session: Session, key: str) -> Experiment:
    """The test `key`, locked until this transaction ends, as it stands now: whoever acts
    on it meanwhile waits, then sees what this one did (two managers approving at once,
    a double click). PostgreSQL locks the row (`SELECT ... FOR UPDATE`); SQLite lets one
    writing transaction in at a time already (`BEGIN IMMEDIATE`)."""
    query = select(Experiment).with_for_update().execution_options(populate_existing=True)
    return _one_by_key(session, key, query)


def _one_by_key(session: Session, key: str, query: Select[Experiment]) -> Experiment:
    try:
        number = parse_key(key)
    except ValueError as error:
        raise NotFoundError(str(error)) from None
    experiment = session.scalar(query.where(Experiment.number == number))
    if experiment is None:
        raise NotFoundError(f"there is no test {key.strip()}")
    return experiment


def list_experiments(
    session: Session,
    *,
    team: str | None = None,
    teams: Collection[str] | None = None,
    owner: str | None = None,
    statuses: Collection[ExperimentStatus] = (),
) -> list[Experiment]:
    """Tests in window order (start date, then key), optionally for one team (or several),
    one owner, or some states."""
    query = select(Experiment).order_by(Experiment.start, Experiment.number)
    if team is not None:
        query = query.where(Experiment.team == team)
    if teams is not None:
        query = query.where(Experiment.team.in_(list(teams)))
    if owner is not None:
        query = query.where(Experiment.owner == owner)
    if statuses:
        query = query.where(Experiment.status.in_(list(statuses)))
    return list(session.scalars(query))


def unfinished(*, owner: str | None = None, teams: Collection[str] | None = None) -> Select[Any]:
    """Tests not finished yet, in window order: all, or those `owner` owns or any of `teams`
    runs (either, when both are given)."""
    query = (
        select(Experiment)
        .where(Experiment.status.not_in(list(FINISHED_STATUSES)))
        .order_by(Experiment.start, Experiment.number)
    )
    whose = []
    if owner is not None:
        whose.append(Experiment.owner == owner)
    if teams is not None:
        whose.append(Experiment.team.in_(list(teams)))
    return query.where(or_(*whose)) if whose else query


def highest_number(session: Session) -> int:
    """The largest test number in use (0 when the registry is empty)."""
    return session.scalar(select(func.coalesce(func.max(Experiment.number), 0))) or 0


def snapshot(experiment: Experiment) -> dict[str, object]:
    """What an audit event records of a test: its fields and its state."""
    return {**experiment.spec().as_dict(), "status": experiment.status.value}


def create(
    session: Session,
    *,
    number: int,
    spec: ExperimentSpec,
    status: ExperimentStatus,
    actor: str,
    action: str = "created",
) -> Experiment:
    """Add a test with the given number (the spec must already be valid); `NoKeyLeft` if
    the number is past the last key the registry holds."""
    if number > KEY_MAX_NUMBER:
        raise NoKeyLeft(f"{NO_KEY_LEFT}: nothing was registered")
    experiment = Experiment(number=number, status=status, created_by=actor)
    experiment.apply(spec)
    session.add(experiment)
    session.flush()
    audit_service.record(
        session, actor=actor, action=action, experiment_id=experiment.id, after=snapshot(experiment)
    )
    return experiment


def overwrite(
    session: Session,
    experiment: Experiment,
    *,
    spec: ExperimentSpec,
    status: ExperimentStatus,
    actor: str,
    action: str,
) -> bool:
    """Replace a test's fields and state; returns False (and writes nothing) if none differ."""
    if experiment.spec() == spec and experiment.status == status:
        return False
    before = snapshot(experiment)
    experiment.apply(spec)
    experiment.status = status
    session.flush()
    audit_change(session, experiment, actor=actor, action=action, before=before)
    return True


def audit_change(
    session: Session,
    experiment: Experiment,
    *,
    actor: str,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    """Audit a change written to the test: who, which action, why, and what it was `before`
    and is `after` (by default its `snapshot` now)."""
    audit_service.record(
        session,
        actor=actor,
        action=action,
        experiment_id=experiment.id,
        reason=reason,
        before=before,
        after=snapshot(experiment) if after is None else after,
    )
