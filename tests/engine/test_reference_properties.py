"""The engine, and who yields in its blocking collisions (issue 13, item 4), against the
brute-force reference (`tests/support/reference.py`) on generated organisations
(`tests/support/organisations.py`): surface trees up
to three deep, segment trees with overlaps between siblings, cousins and nested lines,
exclusions, exclusion groups, contact caps, funnels and capacity limits; portfolios of up
to 12 tests in every state the engine counts.

`make test` runs the seeded profile (200 examples a property); `HYPOTHESIS_PROFILE=deep`
runs 5,000. A failure found stays below as an `@example`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import combinations
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.support import reference
from tests.support.organisations import FIRST_DAY, PROPERTY, organisations, policy_of
from tests.support.reference import Activity, Organisation
from tower.engine.detector import CollisionEngine
from tower.engine.findings import Finding
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.planner import Planner
from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.engine.scope import Scope, ScopeKind
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.protocol.arbitration import Contender, verdict

STATES = [
    ExperimentStatus.DRAFT,
    ExperimentStatus.SUBMITTED,
    ExperimentStatus.CHANGES_REQUESTED,
    ExperimentStatus.APPROVED,
    ExperimentStatus.LIVE,
]


# --- portfolios on generated organisations ------------------------------------------


def surface_paths(data: dict[str, Any]) -> list[str]:
    return Organisation.from_policy(data).surfaces


@st.composite
def portfolios(draw: st.DrawFn, data: dict[str, Any]) -> list[PortfolioItem]:
    """Up to 12 tests on the organisation `data`, numbered in registration order."""
    paths = surface_paths(data)
    segments = list(Organisation.from_policy(data).parents)[1:]
    items = []
    for number in range(1, draw(st.integers(min_value=1, max_value=12)) + 1):
        start = draw(st.integers(min_value=0, max_value=20))
        length = draw(st.integers(min_value=1, max_value=8))
        targets = draw(st.lists(st.sampled_from(segments), max_size=2, unique=True))
        excluded = draw(st.lists(st.sampled_from(segments), max_size=1))
        excluded = [x for x in excluded if x not in targets]
        spec = ExperimentSpec(
            title=f"Test {number}",
            team=draw(st.sampled_from(["squad", "crm"])),
            owner="U0OWNER",
            kind=ExperimentKind.AB_TEST,
            surfaces=tuple(
                draw(st.lists(st.sampled_from(paths), min_size=1, max_size=2, unique=True))
            ),
            start=FIRST_DAY + timedelta(days=start),
            end=FIRST_DAY + timedelta(days=start + length - 1),
            audiences=tuple(targets),
            exclude_audiences=tuple(excluded),
            traffic=draw(st.sampled_from([0.5, 10.0, 50.0, 100.0])),
            exclusion_group=draw(st.sampled_from([None, None, None, "g1", "g2"])),
        )
        status = draw(st.sampled_from(STATES))
        deadline = None
        if draw(st.booleans()):
            deadline = spec.end + timedelta(days=draw(st.integers(min_value=0, max_value=15)))
        items.append(PortfolioItem(f"T-{number}", number, status, spec, deadline=deadline))
    return items


def as_reference(item: PortfolioItem, start: int | None = None) -> Activity:
    spec = item.spec
    first = spec.start.toordinal() if start is None else start
    return Activity(
        key=item.key,
        surfaces=spec.surfaces,
        targets=spec.audiences,
        excluded=spec.exclude_audiences,
        start=first,
        end=first + (spec.end - spec.start).days,
        traffic=spec.traffic / 100,
        group=spec.exclusion_group,
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[PortfolioItem]]:
    data = draw(organisations())
    return data, draw(portfolios(data))


def engine_scan(data: dict[str, Any], items: Sequence[PortfolioItem]) -> list[Finding]:
    compiler = Compiler(policy_of(data))
    return CollisionEngine(compiler, compiler.compile_active(items)).scan()


def of_kind(findings: Sequence[Finding], kind: CollisionKind) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


# --- failures found, kept ---------------------------------------------------------------


def _found_policy(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "teams": [{"key": "squad", "name": "Squad", "kind": "agile"}],
        "surfaces": {"web": {"children": {"a": {}, "b": {}}}, "sms": {"children": {"p": {}}}},
        "audiences": {"all": {"size": 1000, "children": {"s1": {"size": 0}}}},
    }
    return data | sections


def _found_test(
    number: int,
    *surfaces: str,
    group: str | None = None,
    status: ExperimentStatus = ExperimentStatus.DRAFT,
    days: tuple[int, int] = (0, 0),
    traffic: float = 50.0,
) -> PortfolioItem:
    """T-`number` on `surfaces`, running `days` (after the first day, inclusive)."""
    spec = ExperimentSpec(
        title=f"Test {number}",
        team="squad",
        owner="U0OWNER",
        kind=ExperimentKind.AB_TEST,
        surfaces=surfaces,
        start=FIRST_DAY + timedelta(days=days[0]),
        end=FIRST_DAY + timedelta(days=days[1]),
        traffic=traffic,
        exclusion_group=group,
    )
    return PortfolioItem(f"T-{number}", number, status, spec)


# Funnel keys came upstream first, not in registration order.
FUNNEL_KEYS_IN_REGISTRATION_ORDER = (
    _found_policy(funnels={"buy": ["web/a", "web/b"]}),
    [_found_test(1, "web/b"), _found_test(2, "web/a")],
)
# Two arms of one group under a cap of one: the planner looked for no other activity.
TWO_ARMS_UNDER_A_CAP_OF_ONE = (
    _found_policy(contact_caps=[{"channel": "sms", "max": 1, "per_days": 1}]),
    [_found_test(1, "sms/p", group="g1"), _found_test(2, "sms/p", group="g1")],
)
# A test on two steps (web/a/x and web/b) and one on the first (web/a/y): the funnel pair
# was lost when the first test was taken as upstream for starting on the earlier step.
FUNNEL_WITH_A_TEST_ON_TWO_STEPS = (
    _found_policy(
        surfaces={"web": {"children": {"a": {"children": {"x": {}, "y": {}}}, "b": {}}}},
        funnels={"buy": ["web/a", "web/b"]},
    ),
    [_found_test(1, "web/b", "web/a/x"), _found_test(2, "web/a/y")],
)


# Who yields in a crowd over a limit: each test's (score, confidence) follows its tests.
# The first was found by the property; the others reading `verdict`, then held to the
# reference. In each, `verdict` let more tests through than the limit allows.
LIVE, SUBMITTED = ExperimentStatus.LIVE, ExperimentStatus.SUBMITTED
# One test at a time on web: T-1 (live) keeps days 12-19; live T-2 also runs days 13-20
# and never moves. The draft T-3 on day 20 was let through: T-2, not fitting beside T-1,
# was counted as yielding, and its days as free.
LIVE_TESTS_KEEP_ALL_THEIR_DAYS = (
    _found_policy(protocol={"max_concurrent_per_surface": 1}),
    [
        _found_test(1, "web", status=LIVE, days=(12, 19)),
        _found_test(2, "web", status=LIVE, days=(13, 20)),
        _found_test(3, "web", days=(20, 20)),
    ],
    [(None, 0.5), (None, 0.5), (None, 0.5)],
)
# Two live arms of g1 already take 120% on day 1; T-3's 50% on day 2 beside T-2's 60% was
# let through: T-2, not fitting beside T-1, was counted as giving its traffic up.
LIVE_ARMS_KEEP_ALL_THEIR_TRAFFIC = (
    _found_policy(),
    [
        _found_test(1, "web", group="g1", status=LIVE, days=(0, 1), traffic=60.0),
        _found_test(2, "web", group="g1", status=LIVE, days=(1, 2), traffic=60.0),
        _found_test(3, "web", group="g1", status=SUBMITTED, days=(2, 2), traffic=50.0),
    ],
    [(None, 0.5), (None, 0.5), (1.0, 0.5)],
)
# Two at a time on web. Group g1 ranks as T-1 (2): its T-2 (0.5) takes g1's slot on day 1
# beside T-4 (1.5); T-3 (1) was let through too, for outranking T-2 alone.
A_GROUP_RANKS_AS_ITS_BEST_ARM = (
    _found_policy(protocol={"max_concurrent_per_surface": 2}),
    [
        _found_test(1, "web", group="g1", status=SUBMITTED, days=(0, 0)),
        _found_test(2, "web", group="g1", status=SUBMITTED, days=(1, 1)),
        _found_test(3, "web", status=SUBMITTED, days=(1, 1)),
        _found_test(4, "web", status=SUBMITTED, days=(0, 1)),
        _found_test(5, "web", status=SUBMITTED, days=(0, 1)),
    ],
    [(2.0, 1.0), (0.5, 1.0), (1.0, 1.0), (1.5, 1.0), (0.5, 0.5)],
)
# One at a time on web. T-1 (2) keeps day 1; g1 keeps day 0 through T-2 (1), whose mate
# T-3 cannot fit on day 1. T-4 (0.5) on day 0 was let through: g1 was dropped whole.
ARMS_OF_A_GROUP_KEEP_THEIR_PLACES_ONE_BY_ONE = (
    _found_policy(protocol={"max_concurrent_per_surface": 1}),
    [
        _found_test(1, "web", status=SUBMITTED, days=(1, 1)),
        _found_test(2, "web", group="g1", status=SUBMITTED, days=(0, 0)),
        _found_test(3, "web", group="g1", status=SUBMITTED, days=(1, 1)),
        _found_test(4, "web", status=SUBMITTED, days=(0, 0)),
    ],
    [(2.0, 1.0), (1.0, 1.0), (1.0, 0.5), (0.5, 1.0)],
)
# Two at a time on web: live T-3 and T-4 run on day 1. T-2 was let through beside them
# because its group's live arm T-1 (day 0 only) ranked g1 as live: nothing ranks above.
A_LIVE_ARM_MAKES_NO_ROOM_BESIDE_LIVE_TESTS = (
    _found_policy(protocol={"max_concurrent_per_surface": 2}),
    [
        _found_test(1, "web", group="g1", status=LIVE, days=(0, 0)),
        _found_test(2, "web", group="g1", status=SUBMITTED, days=(1, 1)),
        _found_test(3, "web", status=LIVE, days=(0, 1)),
        _found_test(4, "web", status=LIVE, days=(1, 1)),
        _found_test(5, "web", status=LIVE, days=(0, 0)),
    ],
    [(None, 0.5), (1.0, 1.0), (None, 0.5), (None, 0.5), (None, 0.5)],
)


# --- properties ------------------------------------------------------------------------


@PROPERTY
@given(cases())
def test_surface_pairs_severity_and_days_match_the_reference(
    case: tuple[dict[str, Any], list[PortfolioItem]],
) -> None:
    data, items = case
    found = {
        reference.Pair(
            (f.keys[0], f.keys[1]),
            f.severity.value,
            f.first_day.toordinal(),
            f.last_day.toordinal(),
        )
        for f in of_kind(engine_scan(data, items), CollisionKind.SURFACE)
    }
    org = Organisation.from_policy(data)
    assert found == reference.surface_pairs(org, [as_reference(i) for i in items])


@PROPERTY
@given(cases())
@example(FUNNEL_KEYS_IN_REGISTRATION_ORDER)
@example(FUNNEL_WITH_A_TEST_ON_TWO_STEPS)
def test_funnel_pairs_match_the_reference_and_are_warnings(
    case: tuple[dict[str, Any], list[PortfolioItem]],
) -> None:
    data, items = case
    funnels = of_kind(engine_scan(data, items), CollisionKind.FUNNEL)
    assert all(f.severity == Severity.WARNING for f in funnels)
    org = Organisation.from_policy(data)
    expected = reference.funnel_pairs(org, [as_reference(i) for i in items])
    assert {(f.keys[0], f.keys[1]) for f in funnels} == expected


@PROPERTY
@given(cases())
def test_every_smallest_cap_breach_is_found_and_no_cap_finding_is_false(
    case: tuple[dict[str, Any], list[PortfolioItem]],
) -> None:
    data, items = case
    org = Organisation.from_policy(data)
    tests = {i.key: as_reference(i) for i in items}
    findings = of_kind(engine_scan(data, items), CollisionKind.CONTACT_CAP)
    for channel, keys in reference.smallest_cap_breaches(org, list(tests.values())):
        scope = Scope(ScopeKind.CHANNEL, channel)
        assert any(f.scope == scope and keys <= set(f.keys) for f in findings), sorted(keys)
    for finding in findings:
        channel = finding.scope.name
        most = next(cap[1] for cap in org.caps if cap[0] == channel)
        for crowd in combinations(finding.keys, most + 1):
            assert reference.breaks_cap(org, channel, [tests[k] for k in crowd]), crowd


@PROPERTY
@given(cases())
def test_capacity_days_and_crowds_match_the_reference(
    case: tuple[dict[str, Any], list[PortfolioItem]],
) -> None:
    data, items = case
    org = Organisation.from_policy(data)
    breaches = reference.capacity_breaches(org, [as_reference(i) for i in items])
    findings = [
        f
        for f in of_kind(engine_scan(data, items), CollisionKind.CAPACITY)
        if f.scope.kind == ScopeKind.SURFACE
    ]
    for (node, day), crowd in breaches.items():
        assert any(
            f.first_day.toordinal() <= day <= f.last_day.toordinal() and crowd <= set(f.keys)
            for f in findings
        ), (node, date.fromordinal(day), sorted(crowd))
    for finding in findings:
        node = finding.scope.name
        for day in range(finding.first_day.toordinal(), finding.last_day.toordinal() + 1):
            assert (node, day) in breaches, (finding.scope, date.fromordinal(day))


@PROPERTY
@given(cases(), st.randoms(use_true_random=False))
def test_the_order_tests_arrive_in_changes_nothing(
    case: tuple[dict[str, Any], list[PortfolioItem]], rng: random.Random
) -> None:
    data, items = case
    shuffled = list(items)
    rng.shuffle(shuffled)

    def facts(findings: Sequence[Finding]) -> set[tuple[Any, ...]]:
        return {
            (f.kind, f.keys, f.severity, f.scope, f.first_day, f.last_day, f.people_per_week)
            for f in findings
        }

    assert facts(engine_scan(data, shuffled)) == facts(engine_scan(data, items))


@PROPERTY
@given(cases())
@example(TWO_ARMS_UNDER_A_CAP_OF_ONE)
def test_the_plan_keeps_its_promises(case: tuple[dict[str, Any], list[PortfolioItem]]) -> None:
    data, items = case
    compiler = Compiler(policy_of(data))
    footprints = compiler.compile_active(items)
    placements = Planner(compiler).plan(footprints)
    org = Organisation.from_policy(data)
    planned: list[tuple[Footprint, Activity]] = []
    kinds = {team["key"]: team["kind"] for team in data["teams"]}
    for footprint, placement in zip(footprints, placements, strict=True):
        item = footprint.item
        live = item.status == ExperimentStatus.LIVE
        if placement.planned_start is None or placement.planned_end is None:
            assert placement.reasons, placement.key
            assert placement.misses_deadline == (item.deadline is not None)
            if item.deadline is not None:
                assert "deadline" in placement.explanation
            continue
        assert placement.planned_start >= placement.requested_start
        assert (placement.planned_end - placement.planned_start) == (
            placement.requested_end - placement.requested_start
        )
        if live:
            assert placement.moved_days == 0
            planned.append((footprint, as_reference(item)))
            continue
        if item.deadline is not None:
            assert placement.planned_end <= item.deadline, placement.key
        start = placement.planned_start.toordinal()
        test = as_reference(item, start)
        kind = kinds[item.spec.team]
        assert not any(org.frozen(test.surfaces, kind, d) for d in test.days()), placement.key
        assert org.may_start(test.surfaces, start), placement.key
        planned.append((footprint, test))
    tests = [test for _, test in planned]
    running = {f.key for f, _ in planned if f.item.status == ExperimentStatus.LIVE}
    for pair in reference.surface_pairs(org, tests):
        assert pair.severity == "warning" or set(pair.keys) <= running, pair
    for channel, keys in reference.smallest_cap_breaches(org, tests):
        assert keys <= running, (channel, sorted(keys))
    for (node, day), crowd in reference.capacity_breaches(org, tests).items():
        assert crowd <= running, (node, date.fromordinal(day), sorted(crowd))
    for (group, day), arms in reference.group_overloads(tests).items():
        assert arms <= running, (group, date.fromordinal(day), sorted(arms))


@dataclass(frozen=True)
class _Record:
    """A collision record as the gates read it (the fields `verdict` uses)."""

    id: int
    kind: CollisionKind
    details: dict[str, Any]


def _yields_by_the_rules(me: Contender, other: Contender) -> bool:
    """Item 4, read directly: in a blocking pair a test yields only to a live test, or to
    one sent for review with a score ranked above it (higher score, then confidence, then
    registered first); a live test never yields; drafts and unscored tests hold nothing."""
    if me.status == ExperimentStatus.LIVE:
        return False
    if other.status == ExperimentStatus.LIVE:
        return True
    if other.status == ExperimentStatus.DRAFT or other.score is None:
        return False
    if me.score is None:
        return True
    return (other.score, other.confidence or 0.0, -other.number) > (
        me.score,
        me.confidence or 0.0,
        -me.number,
    )


SCORES = st.none() | st.sampled_from([0.5, 1.0, 2.0])  # None: it cannot be scored
CONFIDENCES = st.sampled_from([0.5, 0.8, 1.0])
Ranks = list[tuple[float | None, float]]  # each test's score and confidence, in order


@st.composite
def ranked_cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[PortfolioItem], Ranks]:
    """A case, and a score (or none) and a confidence for each of its tests."""
    data, items = draw(cases())
    return data, items, [(draw(SCORES), draw(CONFIDENCES)) for _ in items]


def _weighed(items: Sequence[PortfolioItem], ranks: Ranks) -> dict[str, Contender]:
    """Each test as arbitration weighs it, with its score (or none) and confidence."""
    return {
        item.key: Contender(
            item.key,
            item.number,
            item.status,
            score,
            confidence,
            item.spec.traffic / 100,
            item.spec.exclusion_group,
            item.spec.start,
            item.spec.end,
        )
        for item, (score, confidence) in zip(items, ranks, strict=True)
    }


def _record(number: int, finding: Finding) -> _Record:
    """The record of `finding` as the gates read it (the details `verdict` uses)."""
    details = {
        "keys": list(finding.keys),
        "scope": str(finding.scope),
        "first_day": finding.first_day.isoformat(),
        "last_day": finding.last_day.isoformat(),
        "days": finding.days,
    }
    return _Record(number, finding.kind, details)


@PROPERTY
@given(cases(), st.data())
def test_who_yields_in_a_blocking_pair_is_decided_by_the_score(
    case: tuple[dict[str, Any], list[PortfolioItem]], data: st.DataObject
) -> None:
    """The gates (`tower approve`) and launch ask `arbitration.verdict`: a test that must
    yield fails its gate and is held at its start; one that need not is approved."""
    organisation, items = case
    policy = policy_of(organisation)
    weighed = _weighed(items, [(data.draw(SCORES), data.draw(CONFIDENCES)) for _ in items])
    blocking = [
        f
        for f in of_kind(engine_scan(organisation, items), CollisionKind.SURFACE)
        if f.severity == Severity.BLOCKING
    ]
    for number, finding in enumerate(blocking, start=1):
        record = _record(number, finding)
        first, second = finding.keys
        for me, other in ((first, second), (second, first)):
            decided = verdict(record, me, weighed, policy)  # type: ignore[arg-type]
            assert decided.must_yield == _yields_by_the_rules(weighed[me], weighed[other]), (
                me,
                other,
            )


def _contestant(contender: Contender) -> reference.Contestant:
    return reference.Contestant(
        key=contender.key,
        number=contender.number,
        state=contender.status.value,
        score=contender.score,
        confidence=contender.confidence or 0.0,
        share=contender.share,
        group=contender.group,
        start=contender.start.toordinal(),
        end=contender.end.toordinal(),
    )


def _yields_by_the_reference(
    finding: Finding, me: str, weighed: dict[str, Contender], org: Organisation
) -> bool:
    """Item 4's rule for a crowd over a limit, worked out by the reference."""
    mine = _contestant(weighed[me])
    others = [_contestant(weighed[key]) for key in finding.keys if key != me]
    first, last = finding.first_day.toordinal(), finding.last_day.toordinal()
    if finding.kind == CollisionKind.CONTACT_CAP:
        channel = finding.scope.name
        most = min(cap[1] for cap in org.caps if cap[0] == channel)
        return reference.yields_in_cap_crowd(mine, others, most)
    if finding.scope.kind == ScopeKind.GROUP:
        return reference.yields_in_a_full_group(mine, others, first, last)
    return reference.yields_on_a_full_surface(mine, others, org.limit, first, last)


@PROPERTY
@given(ranked_cases())
@example(LIVE_TESTS_KEEP_ALL_THEIR_DAYS)
@example(LIVE_ARMS_KEEP_ALL_THEIR_TRAFFIC)
@example(A_GROUP_RANKS_AS_ITS_BEST_ARM)
@example(ARMS_OF_A_GROUP_KEEP_THEIR_PLACES_ONE_BY_ONE)
@example(A_LIVE_ARM_MAKES_NO_ROOM_BESIDE_LIVE_TESTS)
def test_who_yields_in_a_crowd_over_a_limit_is_decided_by_the_score(
    case: tuple[dict[str, Any], list[PortfolioItem], Ranks],
) -> None:
    """Item 4 where a limit lets L share: a surface over `max_concurrent_per_surface`, an
    exclusion group over 100% of traffic, a crowd over a contact cap's `max`. Every test
    in every such finding of the scan gets the verdict the reference works out."""
    organisation, items, ranks = case
    policy = policy_of(organisation)
    org = Organisation.from_policy(organisation)
    weighed = _weighed(items, ranks)
    crowds = [
        f
        for f in engine_scan(organisation, items)
        if f.kind in (CollisionKind.CAPACITY, CollisionKind.CONTACT_CAP)
    ]
    for number, finding in enumerate(crowds, start=1):
        assert finding.severity == Severity.BLOCKING
        kind = "group" if finding.scope.kind == ScopeKind.GROUP else finding.kind.value
        event(f"{kind} finding")
        record = _record(number, finding)
        said = {
            key: verdict(record, key, weighed, policy).must_yield  # type: ignore[arg-type]
            for key in finding.keys
        }
        expected = {
            key: _yields_by_the_reference(finding, key, weighed, org) for key in finding.keys
        }
        if any(expected.values()):
            event(f"{kind} finding where a test yields")
        assert said == expected, (finding.kind, finding.scope, finding.first_day, finding.last_day)
