"""A collision record's details: written and read through one typed value, stored as the
same JSON as before (what `tower conflicts --format json` shows)."""

from __future__ import annotations

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
    details = CollisionDetails.parse(STORED)
    assert details.keys == ("T-1", "T-2") and details.teams == ("ecommerce", "crm")
    assert (details.first_day, details.last_day) == (date(2027, 1, 4), date(2027, 1, 10))
    assert details.days == 7 and details.window == "2027-01-04 to 2027-01-10"
    assert details.stored() == STORED


def test_a_clash_without_costs_stores_no_cost_keys() -> None:
    plain = {key: value for key, value in STORED.items() if key not in {"days_to_mde", "mde_cost"}}
    assert CollisionDetails.parse(plain).stored() == plain


def test_what_an_opened_record_lacks_reads_as_absent() -> None:
    """A record a re-check just opened keeps only what announcing it needs."""
    announced = {"keys": ["T-1", "T-2"], "teams": ["ecommerce", "crm"], "fixes": []}
    details = CollisionDetails.parse(announced)
    assert details.first_day is None and details.days is None and details.scope == ""
    assert CollisionDetails.parse({}).keys == ()
