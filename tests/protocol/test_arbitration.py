"""The score decides at the gates and at launch, through the command line.

Three tests want the retail home page's hero in the same fortnight: T-3, a draft, ranks
first; T-1 (submitted) second; T-2 (submitted) third. A draft holds nothing, so T-1 yields
to no one: it is approved and goes live on its start day. T-2 must yield to T-1: it cannot
be approved until the collision is waived (or T-2 moves).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import failed, succeeded, tower
from tests.support.factories import HERO_TESTS, import_hero_tests
from tests.support.people import MANAGER


@pytest.fixture
def hero(scratch_database_url: str, tmp_path: Path) -> tuple[str, date]:
    """A database holding the three hero tests, four weeks ahead; its URL and their start."""
    start = date.today() + timedelta(days=28)
    import_hero_tests(scratch_database_url, tmp_path, start, HERO_TESTS)
    return scratch_database_url, start


def as_json(url: str, *args: str) -> Any:
    return json.loads(succeeded(tower(url, *args, "--format", "json")).stdout)


def status_of(url: str, key: str) -> str:
    return str(as_json(url, "show", key)["status"])


def exported_status(url: str, key: str) -> str:
    rows = csv.DictReader(io.StringIO(succeeded(tower(url, "export", "-")).stdout))
    return next(row["status"] for row in rows if row["key"] == key)


def test_the_top_ranked_of_three_colliding_tests_goes_live_and_the_lower_one_waits(
    hero: tuple[str, date],
) -> None:
    url, start = hero
    ranks = {row["key"]: row["rank"] for row in as_json(url, "pipeline")}
    assert ranks == {"T-3": 1, "T-1": 2, "T-2": 3}
    pairs = {
        tuple(row["keys"]): row["id"]
        for row in as_json(url, "conflicts")
        if row["kind"] == "surface"
    }
    assert set(pairs) == {("T-1", "T-2"), ("T-1", "T-3"), ("T-2", "T-3")}

    # T-1 yields in none: the draft above it holds nothing, T-2 ranks below it.
    gates = {gate["name"]: gate for gate in as_json(url, "gates", "T-1")}
    collisions = gates["collisions"]
    assert collisions["passed"], collisions
    assert f"{pairs['T-1', 'T-3']} surface with T-3: a draft holds nothing" in collisions["message"]
    assert f"{pairs['T-1', 'T-2']} surface with T-2, which ranks lower (" in collisions["message"]

    # T-2 yields to T-1 (not to the draft): refused, nothing written.
    refused = failed(tower(url, "approve", "T-2", "--by", MANAGER))
    said = " ".join(refused.output.split())
    assert f"{pairs['T-1', 'T-2']} surface with T-1, which ranks higher (" in said
    assert "or ask for a waiver" in said
    assert "T-3" not in said
    assert status_of(url, "T-2") == "submitted"

    # T-1 is approved, and goes live on its start day.
    succeeded(tower(url, "approve", "T-1", "--by", MANAGER))
    assert exported_status(url, "T-1") == "approved"
    succeeded(tower(url, "sweep", "--now", f"{start.isoformat()}T10:00:00+00:00"))
    assert status_of(url, "T-1") == "live"
    assert status_of(url, "T-2") == "submitted"

    # Waived, the clash no longer stops T-2.
    reason = "Both heroes share the fortnight on purpose"
    succeeded(tower(url, "waive", pairs["T-1", "T-2"], "--by", MANAGER, "--reason", reason))
    succeeded(tower(url, "approve", "T-2", "--by", MANAGER))
    assert status_of(url, "T-2") == "approved"


def test_arbitration_shows_who_keeps_the_slot_who_yields_and_why(
    hero: tuple[str, date],
) -> None:
    url, start = hero
    today = (start - timedelta(days=7)).isoformat()

    # The draft holds nothing and yields to nothing: only T-1 and T-2 contest a slot.
    [slot] = as_json(url, "arbitration", "--today", today)
    assert slot["kind"] == "surface"
    assert slot["where"] == "web/home/hero"
    assert (slot["first_day"], slot["last_day"]) == (
        start.isoformat(),
        (start + timedelta(days=13)).isoformat(),
    )
    [keeps], [yields] = slot["keeps"], slot["yields"]
    assert (keeps["key"], keeps["team"], keeps["team_kind"], keeps["rank"]) == (
        "T-1",
        "checkout-squad",
        "agile",
        2,
    )
    assert (yields["key"], yields["rank"]) == ("T-2", 3)
    assert yields["planned_start"] == (start + timedelta(days=14)).isoformat()
    assert slot["deciding"].startswith("impact 2 vs 1")
    assert slot["waiver"] is None

    # Out of the window looked at, or another team's: nothing.
    assert as_json(url, "arbitration", "--today", today, "--weeks", "1") == []
    assert as_json(url, "arbitration", "--today", today, "--team", "crm") == []
    for wrong, named in (
        (("--weeks", "53"), "--weeks must be from 1 to 52, not 53"),
        (("--team", "nobody"), "unknown team 'nobody'"),
    ):
        refused = failed(tower(url, "arbitration", *wrong))
        assert named in refused.output


def test_both_teams_hear_once_when_the_plan_gives_one_teams_slot_to_the_other(
    scratch_database_url: str, tmp_path: Path
) -> None:
    url = scratch_database_url
    start = date.today() + timedelta(days=14)
    rows = [
        {"key": "T-1", "title": "Hero: one big image", "impact": "2", "status": "submitted"},
        {"key": "T-2", "title": "Hero: search box", "impact": "1", "status": "submitted"},
    ]
    rows[1] |= {"team": "search-squad", "owner": "U0DAN"}
    import_hero_tests(url, tmp_path, start, rows)

    succeeded(tower(url, "resync"))
    told = [row for row in as_json(url, "outbox", "list", "--all") if row["kind"] == "slot_given"]
    # The checkout squad's T-1 keeps the hero; the search squad's T-2 yields: each channel
    # hears it once, in one message, with who keeps, who yields, where it goes and why.
    assert sorted(row["recipient"] for row in told) == ["C0CHECKOUT", "C0SEARCH"]
    for row in told:
        assert "web/home/hero" in row["text"]
        assert "T-1 (Checkout Squad, agile, rank 1) keeps it" in row["text"]
        assert "T-2 (Search & Discovery Squad, agile, rank 2) yields, planned " in row["text"]
        assert "impact 2 vs 1" in row["text"]

    succeeded(tower(url, "resync"))  # planned again: nobody hears twice
    again = [row for row in as_json(url, "outbox", "list", "--all") if row["kind"] == "slot_given"]
    assert len(again) == 2
