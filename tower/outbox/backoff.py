"""How long a message waits after a failed attempt, and after how many it is dead-lettered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

DEFAULT_BASE_DELAY = timedelta(seconds=30)
DEFAULT_MAX_DELAY = timedelta(hours=1)
DEFAULT_MAX_ATTEMPTS = 8


def backoff_delay(
    attempts: int,
    *,
    base_delay: timedelta = DEFAULT_BASE_DELAY,
    max_delay: timedelta = DEFAULT_MAX_DELAY,
) -> timedelta:
    """How long a message waits after its `attempts`-th failed attempt (1, 2, ...)."""
    try:
        return min(max_delay, base_delay * (1 << min(max(attempts - 1, 0), 62)))
    except OverflowError:  # far beyond any sane max_delay
        return max_delay


@dataclass(frozen=True)
class Backoff:
    """One run's retry policy: `max_attempts` failed attempts, then a dead letter."""

    max_attempts: int
    base_delay: timedelta
    max_delay: timedelta

    def delay(self, attempts: int) -> timedelta:
        return backoff_delay(attempts, base_delay=self.base_delay, max_delay=self.max_delay)
