"""The port a delivery channel implements, and the console channel that needs no set-up.

The dispatcher hands a notifier a `Delivery` (never the ORM row) and reads the outcome from
what `send` raises: nothing means delivered, `RateLimited` means "not now, try again after
this many seconds", `DeliveryFailed` means it did not go out (`permanent=True`: never will).
A notifier may return a receipt (where the message landed, e.g. Slack's channel and `ts`):
a later message can then replace that one in place (`Delivery.replace`) or answer it in its
thread (`Delivery.thread`).
The Slack notifier in `bot/` implements this port and nothing else of Tower.

A send whose outcome is unknown (the connection dropped after the request went out, no
answer came in time, or the process sending it died) raises `OutcomeUnknown`, and the
message is never sent again blind: before its next attempt the dispatcher asks a notifier
that can look back (`LooksBack.find`) whether it landed after all. Only an answer covering
the whole time since the first attempt proves it absent; else the message is held for a
person (status `failed`, `outcome unknown: ...`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from tower.messages import Message

logger = logging.getLogger("tower.notify")


Receipt = Mapping[str, str]


@dataclass(frozen=True)
class Delivery:
    """One message to deliver, detached from the database."""

    message_id: int
    dedupe_key: str
    kind: str
    recipient: str  # a Slack channel or user ID
    text: str  # plain text, as a console shows it (a person as `@U0ANNA`)
    payload: Mapping[str, Any] = field(default_factory=dict)  # e.g. Block Kit blocks
    replace: Receipt | None = None  # update this earlier message in place instead
    thread: Receipt | None = None  # post in this earlier message's thread
    # Set when an earlier attempt's outcome is unknown: when the first attempt began. The
    # message may already be there: look for it since then before sending it again.
    unsure_since: datetime | None = None
    # The message as data, for a channel to render (`tower.messages`); None for a message
    # queued before messages were data, whose `text` is in Slack's form already.
    message: Message | None = None


class Notifier(Protocol):
    """Something that delivers messages: Slack in production, the console otherwise."""

    def send(self, delivery: Delivery) -> Receipt | None:
        """Deliver `delivery` (returning where it landed, if that can be addressed later),
        or raise `RateLimited` or `DeliveryFailed` to say why not."""
        ...


@runtime_checkable
class LooksBack(Protocol):
    """A notifier that can tell whether a message it may have sent landed."""

    def find(self, delivery: Delivery, since: datetime) -> Receipt | None:
        """Where `delivery` landed if it was sent at or after `since`; None when an answer
        covering all that time proves it absent. Raises `OutcomeUnknown` when the whole
        time cannot be read, or `RateLimited` / `DeliveryFailed` to try again later."""
        ...


# How long one `send` may take, when a notifier does not say: past it, a post it began can
# no longer land (its client gave up), and another dispatcher may look for it.
DEFAULT_LONGEST_SEND = timedelta(minutes=2)


def longest_send(notifier: object) -> timedelta:
    """How long one `send` of `notifier` may take, its `longest_send` when it states one."""
    stated = getattr(notifier, "longest_send", None)
    return stated if isinstance(stated, timedelta) else DEFAULT_LONGEST_SEND


class DeliveryError(Exception):
    """Base of the outcomes a notifier reports instead of delivering."""


class RateLimited(DeliveryError):
    """The receiver asked to wait (HTTP 429, `Retry-After`): not a failed attempt."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"rate limited: retry after {retry_after_seconds:g} s")
        self.retry_after_seconds = retry_after_seconds


class DeliveryFailed(DeliveryError):
    """The message did not go out; `permanent` when retrying cannot help (unknown channel)."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class OutcomeUnknown(DeliveryError):
    """The message may or may not have gone out: never to be sent again blind."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConsoleNotifier:
    """Writes each delivery as one log line, `[kind] -> recipient: text`, on "tower.notify".

    A log keeps no history to look in: a line whose process died while writing it may be
    written again (`find` says it is absent)."""

    longest_send = timedelta(0)  # a line is written, or the process died writing it

    def send(self, delivery: Delivery) -> Receipt | None:
        text = " ".join(delivery.text.split())  # one line, whatever the message's layout
        logger.info("[%s] -> %s: %s", delivery.kind, delivery.recipient, text)
        return None

    def find(self, delivery: Delivery, since: datetime) -> Receipt | None:
        return None
