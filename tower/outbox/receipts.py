"""Where an earlier message landed, so a later one can replace it or answer in its thread."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import Receipt
from tower.outbox.payloads import Earlier


def earlier_receipt(session: Session, recipient: str, reference: Earlier | None) -> Receipt | None:
    """Where the latest message sent to `recipient` that `reference` names landed: of its
    kind (or one of its kinds), holding its payload values; a payload list holds a value it
    contains (`collisions="C-4"` finds a summary naming C-4 among others)."""
    if reference is None:
        return None
    kinds, wanted = reference.kinds_wanted, reference.match
    candidates = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.recipient == recipient,
            OutboxMessage.kind.in_(kinds),
            OutboxMessage.status == MessageStatus.SENT,
        )
        .order_by(OutboxMessage.id.desc())
    )
    for candidate in candidates:
        payload = candidate.payload or {}
        if candidate.receipt and all(_holds(payload.get(k), v) for k, v in wanted.items()):
            return dict(candidate.receipt)
    return None


def _holds(found: Any, wanted: Any) -> bool:
    return wanted in found if isinstance(found, list) else bool(found == wanted)
