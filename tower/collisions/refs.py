"""How Tower names a collision (`C-12`), and what a record, or a row listed without one,
says of it."""

from __future__ import annotations

import re
from typing import Any, Protocol

from tower.collisions.details import CollisionDetails
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import AnnouncedRecord
from tower.db_limits import INTEGER_MAX
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.scope import Scope

ID_MAX = INTEGER_MAX  # the largest id the collisions table's column holds
_REF = re.compile(r"C-([1-9][0-9]*)")
_BARE_REF = re.compile(r"(?:C-)?([1-9][0-9]*)")


class CollisionFacts(Protocol):
    """What a listing shows of a collision: a record, or a row read without one."""

    id: int
    kind: CollisionKind
    severity: Severity
    status: CollisionStatus
    agile_vs_bau: bool
    explanation: str
    details: dict[str, Any]
    acknowledged_by: str | None
    waived_by: str | None
    waiver_reason: str | None


def format_ref(collision: AnnouncedRecord | CollisionFacts) -> str:
    """The human reference of a collision: `C-12`."""
    return f"C-{collision.id}"


def keys_of(collision: AnnouncedRecord | CollisionFacts) -> list[str]:
    """The tests in a collision, as recorded when it was last seen."""
    return list(CollisionDetails.of(collision).keys)


def scope_of(collision: AnnouncedRecord | CollisionFacts) -> Scope:
    """What a collision is about (a surface, group, channel or funnel), as recorded."""
    return Scope.parse(CollisionDetails.of(collision).scope)


def parse_ref(ref: str, *, bare: bool = False) -> int:
    """The id in a collision reference `C-12` (or `12` when `bare`), exactly as Tower writes
    it (`c-12` is not one); `ValueError` with a readable reason if it is not one."""
    text = ref.strip()
    match = (_BARE_REF if bare else _REF).fullmatch(text)
    if match is None:
        raise ValueError(f"there is no collision {text!r}: collision ids look like C-12")
    if len(match.group(1)) > len(str(ID_MAX)) or int(match.group(1)) > ID_MAX:
        raise ValueError(f"{text!r} is too big a collision id (the largest is C-{ID_MAX})")
    return int(match.group(1))
