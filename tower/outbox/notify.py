"""One notification for several recipients: a row each in the outbox, keyed so that
queuing it again (a retried request, a second sweep) is harmless."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Concatenate, ParamSpec

from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.messages import Message
from tower.outbox.kinds import NotificationKind
from tower.outbox.models import OutboxMessage
from tower.outbox.payloads import Follows, Payload
from tower.outbox.service import NewMessage, enqueue_message

P = ParamSpec("P")


def messages_for(
    ctx: ServiceContext,
    kind: NotificationKind,
    recipients: Iterable[str],
    text: Message | str,
    *,
    dedupe_stem: str,
    payload: Payload | None = None,
    follows: Follows | None = None,
    recipient_in_key: bool = True,
) -> list[NewMessage]:
    """`text` for each recipient, due at the service clock: the messages `notify` queues,
    or a batch's to queue together (`enqueue_all`).

    A message's dedupe key is `dedupe_stem:recipient`, or the stem alone when
    `recipient_in_key` is False (for a notice that goes to one recipient only). Its payload
    is `payload`, then the reference to the message it `follows`: a `Replace` (Slack
    updates that message in place) or a `Thread` (it answers in that message's thread).
    """
    body = {
        **(payload.to_json() if payload else {}),
        **(follows.references() if follows else {}),
    }
    return [
        NewMessage(
            kind,
            recipient,
            text,
            f"{dedupe_stem}:{recipient}" if recipient_in_key else dedupe_stem,
            body,
            ctx.now,
        )
        for recipient in recipients
    ]


def _queued_one_by_one(
    make: Callable[P, list[NewMessage]],
) -> Callable[Concatenate[Session, P], list[OutboxMessage]]:
    """`make`, its messages queued one by one in the session's transaction: it answers the
    messages queued (one whose dedupe key is taken already is not)."""

    def queue(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> list[OutboxMessage]:
        queued = [enqueue_message(session, new) for new in make(*args, **kwargs)]
        return [message for message in queued if message is not None]

    return queue


# `notify(session, ctx, kind, recipients, text, dedupe_stem=...)`: queue `messages_for` the
# arguments after the session, in its transaction; the messages queued.
notify = _queued_one_by_one(messages_for)


def batch_stem(kind: str, names: Iterable[str]) -> str:
    """The dedupe stem of a message about a batch of things: `kind:` and a digest of their
    names in the order given, short however long the batch, so one batch is queued once."""
    digest = hashlib.sha256(",".join(names).encode()).hexdigest()[:16]
    return f"{kind}:{digest}"
