"""Typed records: each JSON shape the CLI prints is a `TypedDict`; the analysed record and
the one read from the stored plan are the same shape, the JSON keys in the printed order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests.support.records import COLLISION_FIELDS, PLAN_FIELDS
from tower.collisions.kinds import CollisionStatus
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.planner import Placement
from tower.pipeline.reads import Planned, placement_row
from tower.pipeline.records import (
    CheckRecord,
    CollisionRecord,
    PipelineRecord,
    PlacementRecord,
    as_json,
    collision_record,
    placement_record,
)


@dataclass
class Facts:
    """A collision row as a listing reads it (`CollisionFacts`)."""

    id: int = 4
    kind: CollisionKind = CollisionKind.SURFACE
    severity: Severity = Severity.BLOCKING
    status: CollisionStatus = CollisionStatus.OPEN
    agile_vs_bau: bool = True
    explanation: str = "Both change web/home in the same week"
    details: dict[str, Any] = field(
        default_factory=lambda: {
            "keys": ["T-1", "T-2"],
            "first_day": "2026-03-16",
            "affected": {"T-1": 1.0, "T-2": 0.5},
            "fixes": ["Move T-2 after 2026-03-22"],
        }
    )
    acknowledged_by: str | None = None
    waived_by: str | None = None
    waiver_reason: str | None = None


def test_a_collision_record_has_its_declared_keys_in_the_printed_order() -> None:
    record = collision_record(Facts())
    assert list(record) == list(COLLISION_FIELDS)
    assert set(record) == CollisionRecord.__required_keys__
    assert record["id"] == "C-4" and record["kind"] == "surface"
    assert record["fixes"] == ["Move T-2 after 2026-03-22"]
    assert (record["days_to_mde"], record["mde_cost"]) == (None, None)


def test_the_analysed_and_the_stored_placement_are_one_shape_and_one_json() -> None:
    start, end = date(2026, 3, 16), date(2026, 3, 29)
    moved = (date(2026, 3, 23), date(2026, 4, 5))
    analysed = placement_record(
        Placement("T-2", 3, start, end, *moved, ("T-1 outranks it on web/home",)), "Banner"
    )
    stored = placement_row(
        Planned(2, "Banner", start, end, None, 3, *moved, False, analysed["explanation"], 0.8)
    )
    assert list(analysed) == list(stored) == list(PLAN_FIELDS)
    assert set(analysed) == PlacementRecord.__required_keys__
    assert json.dumps(analysed) == json.dumps(stored)
    assert analysed["moved_days"] == 7 and analysed["planned_start"] == "2026-03-23"


def test_every_shape_declares_the_fields_the_readme_documents() -> None:
    assert set(PipelineRecord.__required_keys__) == {
        "rank",
        "key",
        "title",
        "team",
        "team_kind",
        "status",
        "score",
        "model",
        "factors",
        "problem",
    }
    assert CheckRecord.__required_keys__ == {
        "key",
        "title",
        "rank",
        "score",
        "problem",
        "placement",
    }
    assert CheckRecord.__optional_keys__ == {"collisions"}


def test_a_record_handed_on_as_a_plain_dict_is_a_copy_with_the_same_json() -> None:
    record = collision_record(Facts())
    plain = as_json(record)
    assert plain == record and plain is not record
    assert json.dumps(plain) == json.dumps(record)
