"""Where an earlier message landed, so a later one can replace it or answer in its thread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.outbox.models import MessageStatus, OutboxMessage
from tower.outbox.notifier import Receipt


def earlier_receipt(
    session: Session, recipient: str, reference: Mapping[str, Any] | None
) -> Receipt | None:
    """Where the latest message sent to `recipient` matching `reference` landed.

    A reference names the earlier message's `kind` (or `kinds`, any of them) and payload
    values, e.g. `{"kind": "approval_requested", "key": "T-4"}`; a payload list matches a
    value it holds (`{"collisions": "C-4"}` finds a summary naming C-4 among others).
    """
    if not reference or not ("kind" in reference or "kinds" in reference):
        return None
    kinds = list(reference.get("kinds") or [reference["kind"]])
    wanted = {name: value for name, value in reference.items() if name not in ("kind", "kinds")}
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
