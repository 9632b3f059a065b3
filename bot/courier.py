"""Delivery right after a change, on a thread of its own.

A listener that queued messages asks the courier to deliver them and returns at once: it
never waits for Slack, for a paced channel, or for another listener's delivery. The courier
sends the messages it was asked to put first (a registrant's DM), then whatever else is due.
Anything it cannot send stays queued for the worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from tower.outbox.dispatcher import dispatch_due
from tower.outbox.notifier import Notifier

logger = logging.getLogger("tower.bot")


class Courier:
    """One delivery thread per process, woken by `request`."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        notifier: Notifier,
        clock: Callable[[], datetime],
    ) -> None:
        self._session_factory = session_factory
        self._notifier = notifier
        self._clock = clock
        self._wake = threading.Condition()
        self._first: list[int] = []
        self._asked = False
        self._working = False
        self._thread: threading.Thread | None = None

    def request(self, *, first: int | None = None) -> None:
        """Deliver what is queued soon, outbox message `first` before the rest."""
        with self._wake:
            if first is not None:
                self._first.append(first)
            self._asked = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tower-courier", daemon=True)
                self._thread.start()
            self._wake.notify()

    @property
    def busy(self) -> bool:
        """Whether a delivery is asked for or under way."""
        with self._wake:
            return self._asked or self._working

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._asked:
                    self._wake.wait()
                first, self._first = self._first, []
                self._asked, self._working = False, True
            try:
                self._deliver(first)
            except Exception:  # the worker will deliver it; the user's action already stands
                logger.exception("immediate delivery failed; the worker will retry")
            finally:
                with self._wake:
                    self._working = False

    def _deliver(self, first: list[int]) -> None:
        """Send `first`, then what else is due one message at a time, sending any message
        asked for first meanwhile before the next: a backlog paced at one message a second
        per channel never holds a registrant's DM back."""
        while True:
            if first:
                self._send(only=first)
            if not self._send(limit=1):
                return
            with self._wake:
                first, self._first = self._first, []

    def _send(self, *, only: list[int] | None = None, limit: int = 100) -> int:
        report = dispatch_due(
            self._session_factory, self._notifier, now=self._clock(), only=only, limit=limit
        )
        return report.attempted
