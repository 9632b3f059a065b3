"""The product benchmark's one error: something it needs cannot be used."""

from __future__ import annotations

from tower.errors import TowerError


class BenchSetupError(TowerError):
    """A database, a port, a command or the server cannot be used; the message says which.
    `tower` prints it as an error and exits with 1."""
