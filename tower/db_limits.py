"""What the database's columns hold, for checking input before it reaches them (a module of
its own, free of SQLAlchemy, so the engine's words may use it)."""

from __future__ import annotations

# The largest value of an Integer column on every database Tower runs on (PostgreSQL's
# int4): test numbers, collision ids and outbox ids stay within it.
INTEGER_MAX = 2**31 - 1
