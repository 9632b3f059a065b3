"""A warm engine kept up with `CollisionEngine.replace` finds what one built afresh finds.

A long-running server keeps one engine and replaces tests as they join, change or leave the
pipeline. After any sequence of replacements, with the indexes built on first use built or
not, its scan and its checks must return exactly the findings, in the same order and with
the same words, of an engine built from the new portfolio in number order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from operator import attrgetter

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.support.engine_policy import PROPERTY, compile_all, item, of_kind, only, portfolios
from tower.engine.crowding import by_number
from tower.engine.detector import CollisionEngine
from tower.engine.findings import Finding
from tower.engine.kinds import CollisionKind
from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.engine.scope import Scope, ScopeKind
from tower.experiments.spec import ExperimentSpec, ExperimentStatus

# What an edit takes from another version of a test: one part of it, or all of it.
EDITS = {
    "window": ("start", "end"),
    "surfaces": ("surfaces",),
    "audience": ("audiences", "exclude_audiences"),
    "group": ("exclusion_group", "traffic"),
    "team": ("team",),
    "everything": ("start", "end", "surfaces", "audiences", "exclude_audiences", "team"),
}


def told(findings: list[Finding]) -> list[tuple[Finding, str]]:
    """Each finding with its explanation: equal when every field and the words are."""
    return [(finding, finding.explanation) for finding in findings]


def fresh(compiler: Compiler, footprints: list[Footprint]) -> CollisionEngine:
    """An engine built anew from the portfolio in number order (as `portfolio_items` lists it)."""
    return CollisionEngine(compiler, by_number(footprints))


def keys(footprints: Iterable[Footprint]) -> list[str]:
    return [footprint.key for footprint in footprints]


def layout(engine: CollisionEngine) -> dict[str, object]:
    """The tests in each index a scan reads, in order (after a scan: it builds the funnel
    steps). Not the nested index: it keeps no order among tests starting the same day."""
    schedule = engine.pairs.schedule
    return {
        "portfolio": keys(engine.footprints),
        "pairs": keys(engine.pairs.footprints),
        "nodes": {node: keys(s.footprints) for node, s in schedule.by_node.items()},
        "occupied": schedule.occupied,
        "channels": {channel: keys(s.footprints) for channel, s in engine.by_channel.items()},
        "groups": {group: keys(members) for group, members in engine._groups.items()},
        "funnels": {
            name: [keys(s.footprints) for s in steps]
            for name, steps in vars(engine.pairs)["_funnel_steps"].items()
        },
    }


def assert_same_as_fresh(
    engine: CollisionEngine, compiler: Compiler, candidates: list[Footprint]
) -> None:
    built = fresh(compiler, engine.footprints)
    expected = built.scan()
    for finding in expected:
        event(f"finding: {finding.kind} {finding.scope.kind}")
    assert told(engine.scan()) == told(expected)
    assert layout(engine) == layout(built)
    for candidate in [*engine.footprints, *candidates]:
        assert told(engine.check(candidate)) == told(built.check(candidate)), candidate.key


def warm_up(engine: CollisionEngine, how: str, candidate: Footprint) -> None:
    """Build some of the engine's lazy indexes, or none."""
    if how == "prepare":
        engine.prepare_checks()  # the nested index and every crowd
    elif how == "scan":
        engine.scan()  # the crowds and the funnel steps
    elif how == "check":
        engine.check(candidate)  # the nested index, some crowds, the funnel steps


def version(number: int, spec: ExperimentSpec) -> PortfolioItem:
    """Test T-`number` with `spec`."""
    return PortfolioItem(f"T-{number}", number, ExperimentStatus.DRAFT, spec)


# --- the property ------------------------------------------------------------------------


@settings(PROPERTY, max_examples=100)  # each example makes up to six changes: a few seconds
@given(portfolios(), portfolios(), st.data())
def test_a_replaced_portfolio_gives_what_a_fresh_engine_gives(
    items: list[PortfolioItem], versions: list[PortfolioItem], data: st.DataObject
) -> None:
    """Tests join (new, or back as they were), take a part of another version, or leave, one
    by one. `checked` is compared with a fresh engine after each change (so its lazy indexes
    are built from the first on); `lazy` only after the last, warmed up at random before
    each change (so changes meet its indexes built, partly built or not yet built)."""
    compiler, footprints = compile_all(*items)
    checked, lazy = CollisionEngine(compiler, footprints), CollisionEngine(compiler, footprints)
    present = {footprint.key: footprint.item for footprint in footprints}
    gone: dict[str, PortfolioItem] = {}
    numbers = len(items)
    specs = st.sampled_from([v.spec for v in versions])

    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        change = data.draw(st.sampled_from(["join", "leave", *EDITS]))
        event(f"change: {change}")
        new: PortfolioItem | None
        if change == "join" or not present:
            if len(gone) > 0 and data.draw(st.booleans()):  # back as it was
                new = gone.pop(data.draw(st.sampled_from(sorted(gone))))
            else:
                numbers += 1
                new = version(numbers, data.draw(specs))
            key = new.key
        else:
            key = data.draw(st.sampled_from(sorted(present)))
            old = present.pop(key)
            if change == "leave":
                new, gone[key] = None, old
            else:
                source = data.draw(specs)
                parts = {name: getattr(source, name) for name in EDITS[change]}
                new = replace(old, spec=replace(old.spec, **parts))
        if new is not None:
            present[key] = new
        footprint = None if new is None else compiler.compile(new)
        how = data.draw(st.sampled_from(["none", "prepare", "scan", "check"]))
        warm_up(lazy, how, compiler.compile(data.draw(st.sampled_from(versions))))
        checked.replace(key, footprint)
        lazy.replace(key, footprint)
        # A check of a new test, and of another version of one in the portfolio.
        outsider = version(numbers + 1, data.draw(specs))
        edited = outsider
        if present:
            edited = version(
                present[data.draw(st.sampled_from(sorted(present)))].number, data.draw(specs)
            )
        candidates = [compiler.compile(outsider), compiler.compile(edited)]
        assert_same_as_fresh(checked, compiler, candidates)
    assert [f.item for f in lazy.footprints] == sorted(present.values(), key=attrgetter("number"))
    assert_same_as_fresh(lazy, compiler, [])


# --- cases a reader can follow -------------------------------------------------------------


def test_a_test_leaving_resolves_its_pair_collision() -> None:
    compiler, footprints = compile_all(
        item(1, ["web/checkout"], 1, 10), item(2, ["web/checkout/cart"], 5, 12)
    )
    engine = CollisionEngine(compiler, footprints)
    engine.prepare_checks()
    assert only(engine.scan(), CollisionKind.SURFACE).keys == ("T-1", "T-2")
    engine.replace("T-2", None)
    assert engine.scan() == []
    assert engine.check(footprints[0]) == []


def test_moving_a_test_off_a_crowded_node_drops_the_capacity_finding() -> None:
    # Three tests on the payment page on the same days; the protocol allows two.
    compiler, footprints = compile_all(
        *(item(n, ["web/checkout/payment"], 1, 5, audiences=["anonymous"]) for n in (1, 2, 3))
    )
    engine = CollisionEngine(compiler, footprints)
    engine.prepare_checks()
    capacity = only(engine.scan(), CollisionKind.CAPACITY)
    assert (capacity.scope, capacity.keys) == (
        Scope(ScopeKind.SURFACE, "web/checkout/payment"),
        ("T-1", "T-2", "T-3"),
    )
    moved = compiler.compile(item(3, ["app/home"], 1, 5, audiences=["anonymous"]))
    engine.replace("T-3", moved)
    findings = engine.scan()
    assert of_kind(findings, CollisionKind.CAPACITY) == []
    assert only(findings).keys == ("T-1", "T-2")  # the surface collision that stays
    assert of_kind(engine.check(footprints[0]), CollisionKind.CAPACITY) == []


def test_a_test_joining_a_channel_pushes_a_contact_cap_over() -> None:
    # At most 2 e-mails per 7 days to the same people.
    compiler, footprints = compile_all(
        item(1, ["email/promo"], 1, 1, team="crm"),
        item(2, ["email/newsletter"], 3, 3, audiences=["logged_in"], team="crm"),
    )
    engine = CollisionEngine(compiler, footprints)
    engine.prepare_checks()
    assert engine.scan() == []
    joining = compiler.compile(item(3, ["email/promo"], 5, 5, audiences=["loyalty"]))
    engine.replace("T-3", joining)
    breach = only(engine.scan())
    assert (breach.kind, breach.keys) == (CollisionKind.CONTACT_CAP, ("T-1", "T-2", "T-3"))
    assert engine.check(footprints[0]) == [breach]


def test_a_test_that_left_can_come_back_and_an_absent_one_leave_again() -> None:
    compiler, footprints = compile_all(
        item(1, ["web/checkout"], 1, 10), item(2, ["web/checkout"], 5, 12)
    )
    engine = CollisionEngine(compiler, footprints)
    before = told(engine.scan())
    engine.replace("T-1", None)
    engine.replace("T-1", None)  # already gone: nothing to do
    engine.replace("T-1", footprints[0])
    assert engine.footprints == footprints
    assert told(engine.scan()) == before


def test_a_footprint_replaces_only_its_own_test() -> None:
    compiler, footprints = compile_all(item(1, ["web"], 1, 2), item(2, ["app"], 1, 2))
    engine = CollisionEngine(compiler, footprints)
    with pytest.raises(ValueError, match="T-2"):
        engine.replace("T-1", footprints[1])
