"""Short writes on one outbox message, each in a transaction of its own, tried again while
the database is busy: a dispatcher's lease confirmations and its outcomes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger("tower.outbox")

_T = TypeVar("_T")

RECORD_ATTEMPTS = 5


def retrying_while_busy(
    session_factory: sessionmaker[Session], message_id: int, write: Callable[[Session], _T]
) -> _T:
    """`write` in a short transaction of its own, tried again while the database is busy."""
    attempt = 1
    while True:
        try:
            with session_factory.begin() as session:
                return write(session)
        except OperationalError:
            if attempt == RECORD_ATTEMPTS:
                raise
            logger.warning("outbox message %d: the database is busy, writing again", message_id)
            time.sleep(0.1 * attempt)
            attempt += 1
