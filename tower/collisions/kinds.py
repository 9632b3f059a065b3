"""Where a collision record is in its life (what kind of clash it is, and how serious, are
the engine's words: `tower.engine.kinds`)."""

from __future__ import annotations

import enum


class CollisionStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    WAIVED = "waived"
