"""The policy file as a long-running worker sees it: read again when it changes.

A worker runs for days. When someone edits the policy file, the worker takes the new
policy at its next look (about a minute), so the resync that follows checks the portfolio
against it; a worker that kept the old one would see records checked against the new
policy (by `tower resync` from a shell) as stale and check them back against the old.
An edit that does not pass the policy check is logged with every problem and changes
nothing: the worker keeps the last valid policy.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tower.policy import Policy, PolicyError, load_policy

logger = logging.getLogger("tower.worker")


class PolicyFile:
    """The last valid policy read from `path`, read again when the file changes."""

    def __init__(self, path: Path | str, policy: Policy) -> None:
        self.path = Path(path)
        self.policy = policy
        self._seen = self._stamp()

    def current(self) -> Policy:
        """The policy now: the file's, if it changed and is valid; else the one held."""
        stamp = self._stamp()
        if stamp == self._seen:
            return self.policy
        self._seen = stamp
        try:
            self.policy = load_policy(self.path)
        except PolicyError as error:
            logger.error("the edited policy is not taken; the last valid one stays: %s", error)
            return self.policy
        logger.info("policy %s changed: taken", self.path)
        return self.policy

    def _stamp(self) -> tuple[int, int] | None:
        """When the file last changed, and its size (None when it cannot be read)."""
        try:
            status = self.path.stat()
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size
