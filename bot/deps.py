"""What every listener needs: the database, the policy, the clock and a way to send.

Each request is handled on its own thread up to its acknowledgement
(`process_before_response`): a reply that fits in the ack is built there, and work that
follows the ack (a registration, a click's effects, the App Home) is handed to
`BotDeps.after_ack`, a small pool of threads. So no request thread waits on another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.courier import Courier
from bot.failures import explain_failure
from tower.context import ServiceContext
from tower.db import read_only
from tower.outbox.dispatcher import deliver_claimed
from tower.outbox.leases import Claimed
from tower.outbox.notifier import Notifier
from tower.policy import Policy

logger = logging.getLogger("tower.bot")
AFTER_ACK_THREADS = 8


@dataclass
class BotDeps:
    """What every listener needs: the database, the policy, the clock and a notifier."""

    session_factory: sessionmaker[Session]
    policy: Policy
    notifier: Notifier | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _courier: Courier | None = field(default=None, repr=False)
    _courier_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _after_ack: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(AFTER_ACK_THREADS, "tower-after-ack"),
        repr=False,
    )
    _pending: int = field(default=0, repr=False)  # after-ack work not finished yet
    _pending_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def context(self) -> ServiceContext:
        return ServiceContext.create(self.policy, self.clock())

    @contextmanager
    def transaction(self) -> Iterator[tuple[Session, ServiceContext]]:
        """One unit of work with the time it happens at."""
        with self.session_factory.begin() as session:
            yield session, self.context()

    @contextmanager
    def read_transaction(self) -> Iterator[tuple[Session, ServiceContext]]:
        """A read-only unit of work (any write in it is an error) with the time it is read."""
        with read_only(self.session_factory) as session:
            yield session, self.context()

    @property
    def delivering(self) -> bool:
        """Whether this process still has work after an ack to do, or messages to send."""
        with self._pending_lock:
            if self._pending:
                return True
        return self._courier is not None and self._courier.busy

    def after_ack(self, work: Callable[[], None], body: dict[str, Any], client: WebClient) -> None:
        """Run `work` once the request is acknowledged, off its thread; if it fails, the
        person who acted is told in words (`explain_failure`)."""

        def run() -> None:
            try:
                work()
            except Exception as error:
                explain_failure(error, body, client)
            finally:
                with self._pending_lock:
                    self._pending -= 1

        with self._pending_lock:
            self._pending += 1
        self._after_ack.submit(run)

    @property
    def delivers(self) -> bool:
        """Whether this process sends messages itself (it has a notifier)."""
        return self.notifier is not None

    def send_claimed(self, claimed: Claimed | None) -> None:
        """Send a message its change claimed (`claim_queued`), on this thread, now that the
        change committed; if that fails, it stays queued for the worker."""
        if claimed is None or self.notifier is None:
            return
        try:
            deliver_claimed(self.session_factory, self.notifier, claimed, now=self.clock())
        except Exception:
            logger.exception("sending a claimed message failed; the worker will retry")

    def deliver_now(self, *, first: int | None = None) -> None:
        """Have what the last change queued sent right away (outbox message `first` before
        any backlog), off the listener's thread; failures stay queued for the worker."""
        if self.notifier is None:
            return
        with self._courier_lock:
            if self._courier is None:
                self._courier = Courier(self.session_factory, self.notifier, self.clock)
        self._courier.request(first=first)
