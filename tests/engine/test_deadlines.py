"""Deadlines bind the plan, through the command line.

Two checkout-squad tests want the retail home page's hero for the same two weeks: T-1
ranks first, so T-2 must wait until T-1 ends. With a deadline T-2 cannot meet that way,
the plan gives it no slot, says why naming the deadline, and its owner and the managers
hear of it once.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import failed, succeeded, tower
from tests.support.factories import HERO_TESTS, import_hero_tests
from tests.support.people import MANAGER
from tests.support.records import PLAN_FIELDS


def as_json(url: str, *args: str) -> Any:
    return json.loads(succeeded(tower(url, *args, "--format", "json")).stdout)


@pytest.fixture
def start() -> date:
    return date.today() + timedelta(days=28)


@pytest.fixture
def hero(scratch_database_url: str, tmp_path: Path, start: date) -> str:
    """The image (T-1) and the video (T-2) for the hero, both sent for review."""
    import_hero_tests(scratch_database_url, tmp_path, start, HERO_TESTS[:2])
    return scratch_database_url


def plan_of(url: str) -> dict[str, dict[str, Any]]:
    succeeded(tower(url, "resync"))
    return {row["key"]: row for row in as_json(url, "plan")}


def test_a_deadline_the_plan_cannot_meet_leaves_no_slot_and_says_why_once(
    hero: str, start: date
) -> None:
    deadline = start + timedelta(days=20)  # T-2 could only start on day 14: it would end on 27
    succeeded(tower(hero, "prioritize", "T-2", "--by", MANAGER, "--deadline", deadline.isoformat()))

    plan = plan_of(hero)
    assert all(set(row) == set(PLAN_FIELDS) for row in plan.values())
    missed = plan["T-2"]
    assert (missed["planned_start"], missed["planned_end"]) == (None, None)
    assert (missed["deadline"], missed["misses_deadline"]) == (deadline.isoformat(), True)
    last = start + timedelta(days=13)
    assert missed["explanation"] == (
        f"no slot ends by its deadline {deadline:%a} {deadline.day} {deadline:%b %Y}: "
        f"T-1 ranks higher on web/home/hero until {last.day} {last:%b}"
    )
    assert plan["T-1"]["misses_deadline"] is False

    succeeded(tower(hero, "resync"))  # planned again: nobody hears twice
    told = [
        row for row in as_json(hero, "outbox", "list", "--all") if row["kind"] == "deadline_missed"
    ]
    assert sorted(row["recipient"] for row in told) == sorted(["U0ANNA", "C0TOWER"])
    assert all("T-2 'Hero: a video' misses its deadline" in row["text"] for row in told)


def test_a_deadline_the_next_free_slot_meets_moves_the_test_there(hero: str, start: date) -> None:
    deadline = start + timedelta(days=27)  # exactly the end of the slot after T-1
    succeeded(tower(hero, "prioritize", "T-2", "--by", MANAGER, "--deadline", deadline.isoformat()))
    moved = plan_of(hero)["T-2"]
    assert moved["planned_end"] == deadline.isoformat()
    assert moved["misses_deadline"] is False


def test_a_deadline_before_the_start_is_refused_naming_both_dates(hero: str, start: date) -> None:
    before = start - timedelta(days=1)
    refused = failed(
        tower(hero, "prioritize", "T-2", "--by", MANAGER, "--deadline", before.isoformat())
    )
    said = " ".join(refused.output.split())
    assert f"the deadline {before:%a} {before.day} {before:%b %Y} is before T-2 starts" in said
    assert f"({start:%a} {start.day} {start:%b %Y})" in said
    assert plan_of(hero)["T-2"]["deadline"] is None  # nothing written
