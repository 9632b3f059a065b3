"""What kind of clash the engine finds, and how serious it is."""

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
