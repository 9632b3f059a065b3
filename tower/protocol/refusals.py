"""A refused attempt is audited: one rule for the CLI, the Slack bot and every action.

Whoever is refused (a member approving, an outsider acknowledging a collision, a person
registering for another team) gets an audit event `denied:ACTION` with their id and the
refusal's words, on the test the attempt named (none for a collision or a registration).
It is written in a transaction of its own: the attempt's rolled back, and the refusal
stands even when auditing it fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from tower.audit import service as audit_service
from tower.experiments import service as experiment_service
from tower.experiments.permissions import PermissionDenied

logger = logging.getLogger("tower.protocol")


def record_refusal(
    session: Session, denied: PermissionDenied, *, key: str | None, actor: str, action: str
) -> None:
    """Audit `denied`, the refusal of `actor`'s `action` (on test `key`, if it named one)."""
    experiment_id = experiment_service.get_by_key(session, key).id if key else None
    audit_service.record(
        session,
        actor=actor,
        action=f"denied:{action}",
        experiment_id=experiment_id,
        reason=str(denied),
    )


def record_refusal_apart(
    factory: sessionmaker[Session],
    denied: PermissionDenied,
    *,
    key: str | None,
    actor: str,
    action: str,
) -> None:
    """`record_refusal` in a transaction of its own; a failure to audit is logged."""
    try:
        with factory.begin() as session:
            record_refusal(session, denied, key=key, actor=actor, action=action)
    except Exception:  # the refusal stands even if auditing it fails
        logger.exception("could not audit the refused %s of %s by %s", action, key, actor)


@contextmanager
def refusals_recorded(
    factory: sessionmaker[Session], *, key: str | None, actor: str, action: str
) -> Iterator[None]:
    """Within it, a `PermissionDenied` is audited (`record_refusal_apart`), then raised."""
    try:
        yield
    except PermissionDenied as denied:
        record_refusal_apart(factory, denied, key=key, actor=actor, action=action)
        raise
