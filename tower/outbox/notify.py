"""One notification for several recipients: a row each in the outbox, keyed so that
queuing it again (a retried request, a second sweep) is harmless."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.messages import Message
from tower.outbox.models import OutboxMessage
from tower.outbox.service import enqueue


@dataclass(frozen=True)
class Follows:
    """The earlier message a notification follows up: Slack `replaces` it in place, or
    answers in its thread (`thread_of`). The earlier message is the latest one sent to the
    same recipient of `kind` whose payload holds the `match` values (what
    `dispatcher.earlier_receipt` looks up)."""

    how: Literal["replaces", "thread_of"]
    kind: str
    match: Mapping[str, Any] = field(default_factory=dict)

    def reference(self) -> dict[str, Any]:
        """The payload entry that names the earlier message."""
        return {self.how: {"kind": self.kind, **self.match}}


def notify(
    session: Session,
    ctx: ServiceContext,
    kind: str,
    recipients: Iterable[str],
    text: Message | str,
    *,
    dedupe_stem: str,
    payload: Mapping[str, Any] | None = None,
    follows: Follows | None = None,
    recipient_in_key: bool = True,
) -> list[OutboxMessage]:
    """Queue `text` for each recipient, due at the service clock, in the caller's
    transaction; the messages queued (one whose dedupe key is taken already is not).

    A message's dedupe key is `dedupe_stem:recipient`, or the stem alone when
    `recipient_in_key` is False (for a notice that goes to one recipient only). Its payload
    is `payload`, then the reference to the message it `follows`.
    """
    body = {**(payload or {}), **(follows.reference() if follows else {})}
    queued = []
    for recipient in recipients:
        message = enqueue(
            session,
            kind=kind,
            recipient=recipient,
            text=text,
            at=ctx.now,
            dedupe_key=f"{dedupe_stem}:{recipient}" if recipient_in_key else dedupe_stem,
            payload=body,
        )
        if message is not None:
            queued.append(message)
    return queued
