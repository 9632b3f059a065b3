"""A collision record's details: written and read through one typed value, stored as the
same JSON as before (what `tower conflicts --format json` shows)."""

from __future__ import annotations

import json
from datetime import date

from tower.collisions.details import CollisionDetails

STORED = {
    "keys": ["T-1", "T-2"],
    "teams": ["ecommerce", "crm"],
    "scope": "surface:web/checkout",
    "surfaces": ["web/checkout"],
    "first_day": "2027-01-04",
    "last_day": "2027-01-10",
    "days": 7,
    "people_per_week": 1250.5,
    "affected": {"T-1": 0.5, "T-2": 1.0},
    "fixes": ["Move T-2 to 2027-01-11"],
    "days_to_mde": {"T-1": {"alone": 14, "shared": 28}, "T-2": None},
    "mde_cost": "T-1 needs 14 days alone, 28 sharing.",
}


def test_stored_details_read_as_typed_values_and_write_back_unchanged() -> None:
    details = CollisionDetails(STORED)
    assert details.keys == ("T-1", "T-2") and details.teams == ("ecommerce", "crm")
    assert (details.first_day, details.last_day) == (date(2027, 1, 4), date(2027, 1, 10))
    assert details.days == 7 and details.window == "2027-01-04 to 2027-01-10"
    assert details.stored() == STORED


def _new(cost: tuple[dict[str, object], str] | None) -> CollisionDetails:
    return CollisionDetails.new(
        keys=("T-1", "T-2"),
        teams=("ecommerce", "crm"),
        scope="surface:web/checkout",
        surfaces=("web/checkout",),
        first_day=date(2027, 1, 4),
        last_day=date(2027, 1, 10),
        days=7,
        people_per_week=1250.5,
        affected={"T-1": 0.5, "T-2": 1.0},
        fixes=("Move T-2 to 2027-01-11",),
        cost=cost,
    )


def test_a_findings_details_are_stored_as_records_have_always_kept_them() -> None:
    costed = _new(({"T-1": {"alone": 14, "shared": 28}, "T-2": None}, str(STORED["mde_cost"])))
    assert json.dumps(costed.stored()) == json.dumps(STORED)  # the keys in the same order
    plain = {key: value for key, value in STORED.items() if key not in {"days_to_mde", "mde_cost"}}
    assert json.dumps(_new(None).stored()) == json.dumps(plain)  # no cost: no cost keys


def test_what_an_opened_record_lacks_reads_as_absent() -> None:
    """A record a re-check just opened keeps only what announcing it needs."""
    announced = {"keys": ["T-1", "T-2"], "teams": ["ecommerce", "crm"], "fixes": []}
    details = CollisionDetails(announced)
    assert details.first_day is None and details.days is None and details.scope == ""
    assert CollisionDetails({}).keys == ()
