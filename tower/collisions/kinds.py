"""What kind of clash a collision is, how serious, and where it is in its life."""

from __future__ import annotations

import enum


class CollisionKind(enum.StrEnum):
    SURFACE = "surface"
    CAPACITY = "capacity"
    CONTACT_CAP = "contact_cap"
    FUNNEL = "funnel"


class Severity(enum.StrEnum):
    BLOCKING = "blocking"
    WARNING = "warning"
    INFO = "info"


class CollisionStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    WAIVED = "waived"
