"""Errors a user can act on: every adapter shows their message as it is, never a traceback."""

from __future__ import annotations


class TowerError(Exception):
    """Base of every error whose message is written for the person who caused it."""


class NotFoundError(TowerError):
    """Something named by the user does not exist."""


class DatabaseNotReadyError(TowerError):
    """The database is missing Tower's tables or is behind the code's migrations."""
