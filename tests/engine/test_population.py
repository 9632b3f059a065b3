"""One population model behind every count of people, through the command line.

Each example is a small organisation of its own: a policy file, tests imported from a CSV,
and `tower conflicts --all --format json` read as a user would.
"""

from __future__ import annotations

import json
import textwrap
from datetime import date, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.cli import succeeded, tower
from tests.support.factories import import_tests
from tests.support.organisations import PROPERTY, organisations, policy_of
from tower.engine import population as population_module
from tower.engine.audience import AudienceModel
from tower.engine.graph import build_graph
from tower.engine.population import PAIR_REGIONS
from tower.policy import parse_policy

POLICY_HEAD = """
managers: [U0MGR]
teams:
  - {key: web-squad, name: Web Squad, kind: agile, members: [U0ANNA]}
surfaces:
  web: {weekly_visitors: 100000, children: {home: {}}}
"""

FLYERS = POLICY_HEAD + textwrap.dedent(
    """
    audiences:
      all:
        size: 5000
        children:
          flyers: {size: 1000, children: {frequent: {size: 300}}}
          corporate: {size: 500, children: {travel_bookers: {size: 200}}}
    overlaps: [{a: frequent, b: travel_bookers, share: 0.5}]
    """
)

READERS = POLICY_HEAD + textwrap.dedent(
    """
    audiences:
      all:
        size: 10000
        children:
          guests: {size: 3000, children: {readers: {size: 2000}}}
          cardholders: {size: 5000}
          app: {size: 2000}
    overlaps:
      - {a: app, b: cardholders, share: 0.9}
      - {a: readers, b: app, share: 0.02}
    """
)


def organisation(url: str, folder: Path, policy_yaml: str, tests: list[dict[str, str]]) -> Path:
    """`tower init` and `tower import` of web-squad `tests` on web/home, four weeks
    ahead, under `policy_yaml`; the policy file's path."""
    policy = folder / "tower.yaml"
    policy.write_text(policy_yaml, encoding="utf-8")
    start = date.today() + timedelta(days=28)
    common = {"team": "web-squad", "surfaces": "web/home"}
    rows = [{**common, **test} for test in tests]
    import_tests(url, folder / "roadmap.csv", start, rows, policy=policy)
    return policy


def conflicts(url: str, policy: Path) -> list[dict[str, Any]]:
    result = succeeded(tower(url, "conflicts", "--all", "--format", "json", policy=policy))
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_an_overlap_reaches_both_sides_descendants_and_ancestors(
    scratch_database_url: str, tmp_path: Path
) -> None:
    segments = ["flyers", "frequent", "corporate", "travel_bookers"]
    tests = [{"title": f"Home for {name}", "audiences": name} for name in segments]
    policy = organisation(scratch_database_url, tmp_path, FLYERS, tests)
    keys = {f"T-{n}": name for n, name in enumerate(segments, start=1)}

    surface = [row for row in conflicts(scratch_database_url, policy) if row["kind"] == "surface"]
    pairs = {tuple(row["keys"]): row for row in surface}
    assert set(pairs) == {
        ("T-1", "T-2"), ("T-1", "T-3"), ("T-1", "T-4"),
        ("T-2", "T-3"), ("T-2", "T-4"), ("T-3", "T-4"),
    }  # fmt: skip
    sizes = {"flyers": 1000, "frequent": 300, "corporate": 500, "travel_bookers": 200}
    # Across the two branches every pair shares the overlap's 100 people; a segment and
    # its own child share the child.
    shared = {("T-1", "T-2"): 300, ("T-3", "T-4"): 200}
    for pair, row in pairs.items():
        people = shared.get(pair, 100)
        assert row["affected"] == {
            key: pytest.approx(people / sizes[keys[key]], abs=1e-4) for key in pair
        }, pair


def test_an_exclusion_removes_particular_people(scratch_database_url: str, tmp_path: Path) -> None:
    no_card = {"title": "App users without a card", "audiences": "app"}
    tests = [
        {**no_card, "exclude_audiences": "cardholders"},
        {"title": "Readers' offer", "audiences": "readers", "traffic": "40"},
    ]
    policy = organisation(scratch_database_url, tmp_path, READERS, tests)

    [row] = conflicts(scratch_database_url, policy)
    # The 40 app users who read are guests, never cardholders: all 40 are among T-1's 200.
    assert (row["kind"], row["keys"], row["severity"]) == ("surface", ["T-1", "T-2"], "blocking")
    assert row["affected"] == {"T-1": pytest.approx(0.08), "T-2": pytest.approx(0.02)}


@pytest.mark.parametrize(
    ("first", "second", "people"),
    [
        ((["flyers"], []), (["corporate"], []), 100),
        ((["flyers"], []), (["travel_bookers"], []), 100),
        ((["frequent"], []), (["corporate"], []), 100),
        ((["flyers"], []), (["frequent"], []), 300),
        ((["flyers", "corporate"], []), ([], []), 1400),  # 1000 + 500 less 100 in both
        (([], ["flyers"]), (["corporate"], []), 400),  # the 100 in flyers too are out
    ],
)
def test_people_in_both_audiences(
    first: tuple[list[str], list[str]], second: tuple[list[str], list[str]], people: float
) -> None:
    model = AudienceModel(build_graph(parse_policy(FLYERS)).segments)
    a, b = model.compile(*first), model.compile(*second)
    assert model.shared(a, b) == pytest.approx(people)
    assert model.shared(b, a) == pytest.approx(people)


def test_children_that_outnumber_their_parent_still_load() -> None:
    policy = parse_policy(
        POLICY_HEAD + "audiences: {all: {size: 100, children: {a: {size: 80}, b: {size: 70}}}}"
    )
    model = AudienceModel(build_graph(policy).segments)
    assert model.compile([]).size == pytest.approx(150)  # the parent's own region is empty
    assert model.shared(model.compile(["a"]), model.compile(["b"])) == 0


@PROPERTY
@given(data=organisations(), draws=st.data(), pair_regions=st.sampled_from([PAIR_REGIONS, 0]))
def test_region_masks_agree_with_the_counts(
    data: dict[str, Any], draws: st.DataObject, pair_regions: int
) -> None:
    """The masks are a shortcut: when they meet in a region holding someone, the counts
    find people in all of them (a contact cap's 'reach one person'); when two do not meet
    at all, the counts find nobody in both; otherwise the counts decide. With no room for
    overlap regions (`pair_regions` 0) the masks are incomplete and only say yes."""
    with patch.object(population_module, "PAIR_REGIONS", pair_regions):
        model = AudienceModel(build_graph(policy_of(data)).segments)
    population = model.population
    complete = population.regions_complete
    assert complete or pair_regions == 0
    names = sorted(model.segments.ids)
    audiences = [
        model.compile(
            draws.draw(st.lists(st.sampled_from(names), max_size=2)),
            draws.draw(st.lists(st.sampled_from(names), max_size=1)),
        )
        for _ in range(draws.draw(st.integers(min_value=1, max_value=4)))
    ]
    common = relevant = -1
    for audience in audiences:
        common &= audience.regions
        relevant &= audience.overlap_mask
    counted = population.in_all([audience.members for audience in audiences], relevant)
    if complete:  # the regions' people are the counts' people, summed bit by bit
        assert population.people_in(common) == pytest.approx(counted, abs=1e-6)
    if common & population.solid_regions:
        assert counted > 0
    # Against the counts alone (the estimate included), not the masks' own answers.
    distinct = len({audience.id for audience in audiences})
    by_counts = model._work_out_in_all(audiences, distinct)[0] > 0
    assert model.reach_someone(audiences) == by_counts
    for first, second in combinations(audiences, 2):
        shared = model.shared(first, second)
        both = first.overlap_mask & second.overlap_mask
        assert shared == pytest.approx(
            population.shared(first.members, second.members, both), abs=1e-6
        )
        if first.regions & second.regions & population.solid_regions:
            assert shared > 0
        if complete and not first.regions & second.regions:
            assert shared == 0
        sharing = model.sharing_with(first, [second], lambda audience: audience)
        assert sharing == ([second] if shared > 0 else [])
