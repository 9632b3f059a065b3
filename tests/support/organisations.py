"""Generated organisations for the property tests: a policy as data, with surface trees,
segment trees with overlaps between siblings, cousins and nested lines, contact caps,
funnels, send days, freezes and capacity limits; and the Hypothesis profile they run under.

`make test` runs the seeded profile (200 examples a property); `HYPOTHESIS_PROFILE=deep`
runs 5,000.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from itertools import combinations
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.support.reference import Organisation
from tower.policy import Policy, validate_policy

FIRST_DAY = date(2027, 1, 4)  # a Monday
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@st.composite
def audience_trees(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, str | None]]]:
    """`all` and up to two levels below it; sizes drawn freely (children may outnumber
    their parent). The tree, and (segment, parent) in order."""
    names = iter(f"s{n}" for n in range(1, 40))
    order: list[tuple[str, str | None]] = [("all", None)]

    def node(parent: str, parent_size: int, depth: int, most: int) -> dict[str, Any]:
        children: dict[str, Any] = {}
        for _ in range(draw(st.integers(min_value=0 if depth else 1, max_value=most))):
            name = next(names)
            order.append((name, parent))
            sizes = [n for n in (0, 50, 200, 500, 1000, 3000) if n <= parent_size]
            size = draw(st.sampled_from(sizes))
            grand = node(name, size, depth + 1, 2) if depth < 1 else {}
            children[name] = {"size": size, **({"children": grand} if grand else {})}
        return children

    root_size = draw(st.sampled_from([1000, 5000]))
    tree = {"all": {"size": root_size, "children": node("all", root_size, 0, 3)}}
    return tree, order


@st.composite
def organisations(draw: st.DrawFn) -> dict[str, Any]:
    """A policy as data."""
    audiences, order = draw(audience_trees())
    parents = dict(order)

    def line(segment: str) -> set[str]:
        chain: set[str] = set()
        at: str | None = segment
        while at is not None:
            chain.add(at)
            at = parents[at]
        return chain

    segments = [name for name, _ in order if name != "all"]
    overlaps: list[dict[str, Any]] = []
    pairs = [(a, b) for a, b in combinations(segments, 2) if a not in line(b) and b not in line(a)]
    for a, b in draw(
        st.lists(st.sampled_from(pairs), max_size=3, unique=True) if pairs else st.just([])
    ):
        share = draw(st.sampled_from([0.05, 0.3, 0.5, 1.0]))
        overlaps.append({"a": a, "b": b, "share": share})
    web_children = draw(st.sampled_from([["a"], ["a", "b"], ["a", "b", "c"]]))
    web: dict[str, Any] = {
        name: ({"children": {"x": {}, "y": {}}} if name == "a" and draw(st.booleans()) else {})
        for name in web_children
    }
    data: dict[str, Any] = {
        "teams": [
            {"key": "squad", "name": "Squad", "kind": "agile"},
            {"key": "crm", "name": "CRM", "kind": "bau"},
        ],
        "surfaces": {"web": {"children": web}, "sms": {"children": {"p": {}, "q": {}}}},
        "audiences": audiences,
        "overlaps": overlaps,
        "contact_caps": [
            {
                "channel": "sms",
                "max": draw(st.integers(min_value=1, max_value=3)),
                "per_days": draw(st.integers(min_value=1, max_value=7)),
            }
        ],
        "protocol": {"max_concurrent_per_surface": draw(st.integers(min_value=1, max_value=3))},
    }
    if len(web_children) >= 2 and draw(st.booleans()):
        data["funnels"] = {"buy": [f"web/{name}" for name in web_children]}
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=3, unique=True))
        data["surfaces"]["sms"]["children"]["p"]["send_days"] = days
    paths = Organisation.from_policy(data).surfaces
    freezes = []
    for number in range(draw(st.integers(min_value=0, max_value=1))):
        first = FIRST_DAY + timedelta(days=draw(st.integers(min_value=0, max_value=20)))
        freezes.append(
            {
                "name": f"Freeze {number + 1}",
                "start": first,
                "end": first + timedelta(days=draw(st.integers(min_value=0, max_value=4))),
                "surfaces": draw(st.lists(st.sampled_from(paths), max_size=1)),
                "team_kinds": draw(st.sampled_from([["agile"], ["bau"], ["agile", "bau"]])),
            }
        )
    data["freeze_windows"] = freezes
    return data


def policy_of(data: dict[str, Any]) -> Policy:
    return validate_policy(data, source="generated policy")


# The seeded profile in CI; HYPOTHESIS_PROFILE=deep for 5,000 examples a property.
PROFILES = {
    "ci": settings(max_examples=200, derandomize=True),
    "deep": settings(max_examples=5000),
}
PROPERTY = settings(
    PROFILES[os.environ.get("HYPOTHESIS_PROFILE", "ci")],
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
