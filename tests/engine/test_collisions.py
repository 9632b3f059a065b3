"""Collision detection on a hand-built policy whose every answer is computed by hand
(tests/support/engine_policy.py).

Surfaces: web (5000 visitors a week) with home, product and checkout (1000) holding cart and
payment; app (2000) with home; email (no visitor counts) with promo and newsletter. The
purchase funnel is home -> product -> cart -> payment. Audiences: all 10000 = anonymous 4000
+ logged_in 4000 (loyalty 1000 inside) + app_users 2000 + partners 1000, with half of
app_users (1000 people) declared logged in. On email a test reaches its whole audience; on a
web page it reaches visitors x audience / 10000. At most 2 tests per surface; at most 2 email
activities per 7 days.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given

from tests.support.engine_policy import (
    PROPERTY,
    compile_all,
    day,
    item,
    of_kind,
    only,
    portfolios,
    scan,
)
from tower.engine.collisions import PairDetector, PairRules
from tower.engine.detector import CollisionEngine
from tower.engine.findings import Finding
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.naive import naive_surface_pairs
from tower.engine.portfolio import PortfolioItem
from tower.engine.scope import PAIR_SCOPE, Scope, ScopeKind
from tower.experiments.spec import ExperimentStatus

# --- windows ---------------------------------------------------------------------------


def test_adjacent_windows_that_do_not_touch_do_not_collide() -> None:
    assert scan(item(1, ["web/checkout"], 1, 10), item(2, ["web/checkout"], 11, 20)) == []


def test_windows_sharing_their_last_and_first_day_collide_on_that_day() -> None:
    finding = only(scan(item(1, ["web/checkout"], 1, 10), item(2, ["web/checkout"], 10, 20)))
    assert finding.kind == CollisionKind.SURFACE
    assert finding.first_day == finding.last_day == day(10)
    assert finding.days == 1
    assert "on Wed 10 Jun 2026" in finding.explanation


def test_the_end_day_is_inclusive() -> None:
    _, (one_day,) = compile_all(item(1, ["web/checkout"], 5, 5))
    assert one_day.days == 1
    finding = only(scan(item(1, ["web/checkout"], 5, 5), item(2, ["web/checkout"], 5, 5)))
    assert (finding.first_day, finding.last_day) == (day(5), day(5))


def test_a_window_inside_another_collides_over_the_inner_one() -> None:
    finding = only(scan(item(1, ["web/checkout"], 1, 30), item(2, ["web/checkout"], 12, 14)))
    assert (finding.first_day, finding.last_day) == (day(12), day(14))


# --- surfaces --------------------------------------------------------------------------


def test_same_node_collides_there() -> None:
    finding = only(scan(item(1, ["web/checkout"], 1, 10), item(2, ["web/checkout"], 1, 10)))
    assert finding.kind == CollisionKind.SURFACE
    assert finding.severity == Severity.BLOCKING
    assert finding.keys == ("T-1", "T-2")
    assert finding.surfaces == ("web/checkout",)
    assert finding.people_per_week == 1000  # everyone, on a page with 1000 visitors


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("web/checkout", "web/checkout/payment"),
        ("web/checkout/payment", "web/checkout"),
        ("web", "web/checkout/payment"),
        ("web/checkout/payment", "web"),
    ],
)
def test_nested_surfaces_collide_on_the_deeper_node(first: str, second: str) -> None:
    finding = only(scan(item(1, [first], 1, 10), item(2, [second], 1, 10)))
    assert finding.surfaces == ("web/checkout/payment",)
    assert finding.scope == PAIR_SCOPE
    assert finding.keys == ("T-1", "T-2")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("web/checkout/cart", "web/checkout/payment"),  # sibling slots
        ("web/home", "web/checkout"),
        ("web/home", "app/home"),  # different channels, same page name
        ("web", "email"),
        ("email/promo", "email/newsletter"),
    ],
)
def test_surfaces_that_are_not_nested_do_not_collide(first: str, second: str) -> None:
    findings = scan(item(1, [first], 1, 10), item(2, [second], 1, 10))
    assert of_kind(findings, CollisionKind.SURFACE) == []


def test_a_collision_lists_every_shared_place_once() -> None:
    finding = only(
        scan(
            item(1, ["web/checkout/cart", "email/promo"], 1, 10),
            item(2, ["email", "web/checkout"], 1, 10),
        )
    )
    assert finding.surfaces == ("web/checkout/cart", "email/promo")
    # 1000 people a week visit cart; everyone gets e-mail: capped at the 10000 in both.
    assert finding.people_per_week == 10000


# --- audiences (on e-mail, where a test reaches its whole audience) -------------------

Audience = tuple[tuple[str, ...], tuple[str, ...]]


@pytest.mark.parametrize(
    ("a", "b", "people"),
    [
        ((("logged_in",), ()), (("loyalty",), ()), 1000),  # nested: the loyalty size
        ((("loyalty",), ()), (("logged_in",), ()), 1000),
        ((("app_users",), ()), (("logged_in",), ()), 1000),  # declared: 0.5 x 2000
        ((("app_users",), ()), (("loyalty",), ()), 250),  # 0.5 x 2000 x 1000/4000
        ((("logged_in",), ()), ((), ("loyalty",)), 3000),  # partial exclusion
        ((("app_users",), ()), (("logged_in",), ("loyalty",)), 750),
    ],
)
def test_audiences_that_share_people_collide_with_that_many(
    a: Audience, b: Audience, people: int
) -> None:
    finding = only(
        scan(
            item(1, ["email/promo"], 1, 1, audiences=a[0], exclude=a[1]),
            item(2, ["email/promo"], 1, 1, audiences=b[0], exclude=b[1]),
        ),
        CollisionKind.SURFACE,
    )
    assert finding.people_per_week == people


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((("anonymous",), ()), (("logged_in",), ())),  # disjoint siblings
        ((("partners",), ()), (("app_users",), ())),
        ((("anonymous",), ()), (("loyalty",), ())),
        ((("logged_in",), ()), ((), ("logged_in",))),  # everyone but logged_in
        ((("loyalty",), ()), (("logged_in",), ("loyalty",))),
        ((("loyalty",), ()), ((), ("logged_in",))),
    ],
)
def test_audiences_that_cannot_share_anyone_do_not_collide(a: Audience, b: Audience) -> None:
    findings = scan(
        item(1, ["web/checkout"], 1, 10, audiences=a[0], exclude=a[1]),
        item(2, ["web/checkout"], 1, 10, audiences=b[0], exclude=b[1]),
    )
    assert findings == []


def test_people_on_a_page_are_its_visitors_times_the_shared_share_of_the_population() -> None:
    finding = only(
        scan(
            item(1, ["web/checkout"], 1, 10, audiences=["logged_in"]),
            item(2, ["web/checkout/cart"], 1, 10, audiences=["loyalty"]),
        )
    )
    assert finding.people_per_week == 100  # 1000 visitors x 1000 / 10000
    # T-1 reaches 400 a week (1000 x 4000/10000), T-2 100: all of T-2 and a quarter of T-1.
    assert finding.affected == (("T-1", 0.25), ("T-2", 1.0))


# --- exclusion groups ------------------------------------------------------------------


def test_an_exclusion_group_that_fits_in_100_percent_is_no_collision() -> None:
    assert (
        scan(
            item(1, ["web/checkout"], 1, 10, traffic=50, group="g"),
            item(2, ["web/checkout"], 1, 10, traffic=50, group="g"),
        )
        == []
    )


def test_an_exclusion_group_over_100_percent_is_a_blocking_capacity_collision() -> None:
    finding = only(
        scan(
            item(1, ["web/checkout"], 1, 10, traffic=60, group="g", team="crm"),
            item(2, ["web/checkout"], 5, 14, traffic=50, group="g"),
        )
    )
    assert finding.kind == CollisionKind.CAPACITY
    assert finding.severity == Severity.BLOCKING
    assert finding.keys == ("T-1", "T-2")
    assert finding.scope == Scope(ScopeKind.GROUP, "g")
    assert finding.surfaces == ()
    assert (finding.first_day, finding.last_day) == (day(5), day(10))
    assert finding.agile_vs_bau is True
    assert "'g'" in finding.explanation
    assert "110%" in finding.explanation
    assert "from Fri 5 Jun 2026 to Wed 10 Jun 2026 (6 days)" in finding.explanation


def test_different_exclusion_groups_do_not_exempt_a_collision() -> None:
    findings = scan(
        item(1, ["web/checkout"], 1, 10, traffic=50, group="g"),
        item(2, ["web/checkout"], 1, 10, traffic=50, group="h"),
    )
    assert only(findings).kind == CollisionKind.SURFACE


def test_separate_overloads_of_one_group_are_separate_findings() -> None:
    findings = scan(
        item(1, ["web/home"], 1, 5, traffic=60, group="g"),
        item(2, ["web/home"], 1, 5, traffic=50, group="g"),
        item(3, ["web/home"], 20, 25, traffic=60, group="g"),
        item(4, ["web/home"], 20, 25, traffic=50, group="g"),
    )
    assert sorted((f.keys, f.first_day, f.last_day) for f in findings) == [
        (("T-1", "T-2"), day(1), day(5)),
        (("T-3", "T-4"), day(20), day(25)),
    ]


# --- surface concurrency (limit 2) -----------------------------------------------------


def test_one_test_more_than_the_limit_on_one_node_for_one_day_is_a_capacity_collision() -> None:
    findings = scan(
        item(1, ["web/checkout"], 1, 10, audiences=["anonymous"]),
        item(2, ["web/checkout/cart"], 5, 15, audiences=["logged_in"], team="crm"),
        item(3, ["web/checkout/cart"], 10, 20, audiences=["partners"]),
    )
    finding = only(findings)  # disjoint audiences: no pairwise collision
    assert finding.kind == CollisionKind.CAPACITY
    assert finding.severity == Severity.BLOCKING
    assert finding.keys == ("T-1", "T-2", "T-3")
    assert finding.scope == Scope(ScopeKind.SURFACE, "web/checkout/cart")
    assert finding.surfaces == ("web/checkout/cart",)
    assert finding.first_day == finding.last_day == day(10)
    assert finding.agile_vs_bau is True
    assert finding.explanation == (
        "3 tests run on web/checkout/cart at once on Wed 10 Jun 2026 (T-1, T-2, T-3); "
        "the protocol allows 2 per surface."
    )


def test_exactly_the_limit_on_one_node_is_no_collision() -> None:
    findings = scan(
        item(1, ["web/checkout"], 1, 10, audiences=["anonymous"]),
        item(2, ["web/checkout/cart"], 5, 15, audiences=["logged_in"]),
        item(3, ["web/checkout/cart"], 11, 20, audiences=["partners"]),
    )
    assert findings == []


def test_tests_on_sibling_slots_do_not_crowd_each_other() -> None:
    findings = scan(
        item(1, ["web/checkout/cart"], 1, 10, audiences=["anonymous"]),
        item(2, ["web/checkout/payment"], 1, 10, audiences=["logged_in"]),
        item(3, ["web/checkout"], 1, 10, audiences=["partners"]),
    )
    assert findings == []


def test_an_exclusion_group_takes_one_slot() -> None:
    findings = scan(
        item(1, ["web/checkout/cart"], 1, 10, audiences=["anonymous"], traffic=50, group="g"),
        item(2, ["web/checkout/cart"], 1, 10, audiences=["anonymous"], traffic=50, group="g"),
        item(3, ["web/checkout/cart"], 1, 10, audiences=["partners"]),
    )
    assert findings == []


def test_separate_overloads_of_one_surface_are_separate_findings() -> None:
    findings = scan(
        item(1, ["web/checkout/payment"], 1, 5, audiences=["anonymous"]),
        item(2, ["web/checkout/payment"], 1, 5, audiences=["logged_in"]),
        item(3, ["web/checkout/payment"], 1, 5, audiences=["partners"]),
        item(4, ["web/checkout/payment"], 20, 25, audiences=["anonymous"]),
        item(5, ["web/checkout/payment"], 20, 25, audiences=["logged_in"]),
        item(6, ["web/checkout/payment"], 20, 25, audiences=["partners"]),
    )
    assert sorted((f.keys, f.first_day, f.last_day) for f in findings) == [
        (("T-1", "T-2", "T-3"), day(1), day(5)),
        (("T-4", "T-5", "T-6"), day(20), day(25)),
    ]


# --- contact caps (e-mail: at most 2 per 7 days) ---------------------------------------


def test_exactly_the_cap_is_no_collision() -> None:
    findings = scan(
        item(1, ["email/promo"], 1, 1, team="crm"),
        item(2, ["email/newsletter"], 3, 3, audiences=["logged_in"], team="crm"),
    )
    assert findings == []


def test_one_activity_over_the_cap_is_one_contact_cap_collision() -> None:
    findings = scan(
        item(1, ["email/promo"], 1, 1, team="crm"),
        item(2, ["email/newsletter"], 3, 3, audiences=["logged_in"], team="crm"),
        item(3, ["email/promo"], 5, 5, audiences=["loyalty"], team="crm"),
    )
    finding = only(findings)
    assert finding.kind == CollisionKind.CONTACT_CAP
    assert finding.severity == Severity.BLOCKING
    assert finding.keys == ("T-1", "T-2", "T-3")
    assert finding.scope == Scope(ScopeKind.CHANNEL, "email")
    assert finding.surfaces == ("email/newsletter", "email/promo")
    assert (finding.first_day, finding.last_day) == (day(1), day(5))
    assert finding.people_per_week == 1000  # the loyalty members get all three
    assert finding.agile_vs_bau is False


def test_the_cap_window_counts_both_its_first_and_last_day() -> None:
    findings = scan(
        item(1, ["email/promo"], 1, 1),
        item(2, ["email/promo"], 4, 4),
        item(3, ["email/promo"], 7, 7),  # 1 to 7 June: seven days
    )
    assert only(findings).keys == ("T-1", "T-2", "T-3")


@pytest.mark.parametrize("starts", [(1, 4, 8), (1, 5, 8), (1, 8, 15)])
def test_activities_spread_over_more_than_the_window_are_no_collision(
    starts: tuple[int, int, int],
) -> None:
    findings = scan(*(item(n, ["email/promo"], s, s) for n, s in enumerate(starts, start=1)))
    assert findings == []


def test_activities_to_disjoint_audiences_are_no_collision() -> None:
    findings = scan(
        item(1, ["email/promo"], 1, 3, audiences=["anonymous"]),
        item(2, ["email/promo"], 1, 3, audiences=["logged_in"]),
        item(3, ["email/newsletter"], 1, 3, audiences=["partners"]),
    )
    assert findings == []


def test_other_channels_do_not_count_towards_the_email_cap() -> None:
    findings = scan(
        item(1, ["email/promo"], 1, 1),
        item(2, ["email/newsletter"], 2, 2),
        item(3, ["app/home"], 3, 3),
    )
    assert findings == []


def test_a_breach_is_found_whatever_order_activities_come_in() -> None:
    findings = scan(
        item(1, ["email/promo"], 1, 1, audiences=["anonymous"]),
        item(2, ["email/promo"], 2, 2, audiences=["logged_in"]),
        item(3, ["email/promo"], 3, 3, audiences=["logged_in"]),
        item(4, ["email/promo"], 4, 4),
    )
    assert [f.keys for f in findings] == [("T-2", "T-3", "T-4")]


# --- funnels ---------------------------------------------------------------------------


def test_tests_on_different_funnel_steps_sharing_days_and_people_are_a_warning() -> None:
    findings = scan(
        item(1, ["web/home"], 1, 10),
        item(2, ["web/checkout/payment"], 5, 14, audiences=["logged_in"], team="crm"),
    )
    finding = only(findings)
    assert finding.kind == CollisionKind.FUNNEL
    assert finding.severity == Severity.WARNING
    assert finding.keys == ("T-1", "T-2")
    assert finding.scope == Scope(ScopeKind.FUNNEL, "purchase")
    assert finding.surfaces == ("web/home", "web/checkout/payment")
    assert (finding.first_day, finding.last_day) == (day(5), day(10))
    assert finding.people_per_week == 400  # 1000 payment visitors x 4000 / 10000
    assert finding.agile_vs_bau is True
    assert "step 1 of the purchase funnel" in finding.explanation
    assert "(step 4)" in finding.explanation


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (item(1, ["web/home"], 1, 10, audiences=["anonymous"]), ["logged_in"]),
        (item(1, ["web/product"], 1, 4), ["loyalty"]),
    ],
)
def test_funnel_neighbours_without_shared_people_or_days_are_no_collision(
    first: PortfolioItem, second: list[str]
) -> None:
    assert scan(first, item(2, ["web/checkout/cart"], 5, 14, audiences=second)) == []


def test_check_reports_a_funnel_warning_once_for_a_test_on_two_steps() -> None:
    compiler, footprints = compile_all(
        item(1, ["web/home"], 1, 5), item(2, ["web/product", "web/checkout/cart"], 1, 5)
    )
    engine = CollisionEngine(compiler, footprints)
    assert [f.keys for f in engine.scan()] == [("T-1", "T-2")]
    for footprint in footprints:
        assert engine.check(footprint) == engine.scan()


# --- severity, flags, explanations, fingerprints ---------------------------------------


def test_a_tiny_overlap_for_both_tests_is_a_warning() -> None:
    # T-2 reaches 100 a week (loyalty on checkout): both see 100 x 0.5% or 100 x 5% / 1000.
    finding = only(
        scan(
            item(1, ["web/checkout"], 1, 10, traffic=0.5),
            item(2, ["web/checkout/payment"], 1, 10, audiences=["loyalty"], traffic=5),
        )
    )
    assert finding.severity == Severity.WARNING
    assert [key for key, _ in finding.affected] == ["T-1", "T-2"]
    assert [share for _, share in finding.affected] == pytest.approx([0.005, 0.005])


def test_an_overlap_that_is_not_tiny_for_one_test_is_blocking() -> None:
    finding = only(
        scan(
            item(1, ["web/checkout"], 1, 10, traffic=0.5),
            item(2, ["web/checkout/payment"], 1, 10, audiences=["loyalty"], traffic=20),
        )
    )
    assert finding.severity == Severity.BLOCKING
    assert [share for _, share in finding.affected] == pytest.approx([0.02, 0.005])


@pytest.mark.parametrize(
    ("first", "second", "mixed"),
    [
        ("squad", "crm", True),
        ("crm", "squad", True),
        ("crm", "ecom", False),
        ("squad", "growth", False),
    ],
)
def test_agile_vs_bau_only_for_mixed_team_kinds(first: str, second: str, mixed: bool) -> None:
    finding = only(
        scan(
            item(1, ["web/checkout"], 1, 10, team=first),
            item(2, ["web/checkout"], 1, 10, team=second),
        )
    )
    assert finding.agile_vs_bau is mixed


def test_the_explanation_names_the_tests_surfaces_days_people_and_shares() -> None:
    finding = only(
        scan(
            item(1, ["web/checkout"], 1, 10),
            item(
                2, ["web/checkout/payment"], 5, 14, audiences=["logged_in"], traffic=50, team="crm"
            ),
        )
    )
    assert finding.people_per_week == 400
    assert finding.affected == (("T-1", 0.2), ("T-2", 1.0))
    assert finding.explanation == (
        "T-1 (Checkout Squad, agile) and T-2 (CRM, BAU) both run on web/checkout/payment "
        "from Fri 5 Jun 2026 to Wed 10 Jun 2026 (6 days). About 400 people a week are eligible "
        "for both: 20% of T-1's traffic and 100% of T-2's."
    )


def test_the_fingerprint_survives_new_numbers_but_not_a_new_pair() -> None:
    before = only(scan(item(1, ["web/checkout"], 1, 10), item(2, ["web/checkout"], 5, 14)))
    after = only(
        scan(
            item(1, ["web/checkout"], 3, 12, traffic=30),
            item(2, ["web/checkout/cart"], 5, 20, audiences=["logged_in"]),
        )
    )
    assert (before.people_per_week, before.first_day) != (after.people_per_week, after.first_day)
    assert before.fingerprint == after.fingerprint == "surface::T-1+T-2"
    other = only(scan(item(1, ["web/checkout"], 1, 10), item(3, ["web/checkout"], 5, 14)))
    assert other.fingerprint != before.fingerprint
    group = only(
        scan(
            item(1, ["web/checkout"], 1, 10, traffic=60, group="g"),
            item(2, ["web/checkout"], 5, 14, traffic=50, group="g"),
        )
    )
    assert group.fingerprint == "capacity:group:g:T-1+T-2"


# --- check(fp) against scan() ----------------------------------------------------------

PORTFOLIO = [
    item(1, ["web/checkout"], 1, 14, traffic=50),
    item(2, ["web/checkout/payment"], 8, 20, audiences=["logged_in"], team="crm"),
    item(3, ["web/home"], 1, 10, team="ecom"),
    item(4, ["web/checkout/cart"], 10, 12, audiences=["partners"], team="growth"),
    item(5, ["web/checkout/payment"], 15, 25, audiences=["loyalty"], traffic=60, group="g"),
    item(6, ["web/checkout/payment"], 18, 30, audiences=["anonymous"], traffic=50, group="g"),
    item(7, ["web"], 19, 19, traffic=1, team="ecom"),
    item(8, ["email/promo"], 2, 2, team="crm"),
    item(9, ["email/newsletter"], 4, 4, audiences=["logged_in"], team="crm"),
    item(10, ["email/promo"], 6, 6, audiences=["loyalty"]),
    item(11, ["web/checkout"], 1, 30, status=ExperimentStatus.COMPLETED),
    item(12, ["app/home"], 1, 30, audiences=["app_users"]),
]


def test_the_small_portfolio_has_every_kind_of_collision() -> None:
    findings = scan(*PORTFOLIO)
    assert {f.kind for f in findings} == set(CollisionKind)
    assert not any(f.involves("T-11") for f in findings)  # completed: off the pipeline
    assert not any(f.involves("T-12") for f in findings)
    assert only(findings, CollisionKind.CONTACT_CAP).keys == ("T-8", "T-9", "T-10")
    funnel = sorted(f.keys for f in of_kind(findings, CollisionKind.FUNNEL))
    assert funnel == [("T-2", "T-3"), ("T-3", "T-4")]  # in registration order
    capacity = sorted((str(f.scope), f.keys) for f in of_kind(findings, CollisionKind.CAPACITY))
    assert capacity == [
        ("group:g", ("T-5", "T-6")),
        ("surface:web/checkout/payment", ("T-2", "T-5", "T-6", "T-7")),
    ]


def test_check_returns_exactly_the_scan_findings_of_each_test() -> None:
    compiler, footprints = compile_all(*PORTFOLIO)
    engine = CollisionEngine(compiler, footprints)
    findings = engine.scan()
    for footprint in footprints:
        expected = [f for f in findings if f.involves(footprint.key)]
        assert engine.check(footprint) == expected, footprint.key


@pytest.mark.parametrize(
    "candidate",
    [
        item(99, ["web/checkout/payment"], 19, 19, audiences=["logged_in"]),
        item(99, ["email/newsletter"], 3, 3, audiences=["loyalty"]),
        item(99, ["web/product"], 9, 12, team="crm"),
        item(99, ["web/checkout"], 20, 22, traffic=10, group="g"),
        item(99, ["app"], 1, 30, audiences=["partners"]),
    ],
)
def test_check_of_a_new_test_matches_a_scan_that_includes_it(candidate: PortfolioItem) -> None:
    compiler, footprints = compile_all(*PORTFOLIO)
    new = compiler.compile(candidate)
    expected = [
        f for f in CollisionEngine(compiler, [*footprints, new]).scan() if f.involves(candidate.key)
    ]
    assert CollisionEngine(compiler, footprints).check(new) == expected


def test_check_of_an_edited_test_uses_its_new_reach() -> None:
    compiler, footprints = compile_all(
        item(1, ["web/checkout"], 1, 5, traffic=50),
        item(2, ["web/checkout"], 1, 5, audiences=["loyalty"]),
    )
    engine = CollisionEngine(compiler, footprints)
    assert only(engine.scan()).affected == (("T-1", 0.1), ("T-2", 0.5))
    edited = compiler.compile(item(2, ["web/checkout"], 1, 5, audiences=["logged_in"]))
    fresh = CollisionEngine(compiler, [footprints[0], edited]).check(edited)
    assert only(fresh).affected == (("T-1", 0.4), ("T-2", 0.5))
    assert engine.check(edited) == fresh


# --- properties on random small portfolios ---------------------------------------------


@PROPERTY
@given(portfolios())
def test_indexed_surface_pairs_equal_the_naive_pairs(items: list[PortfolioItem]) -> None:
    compiler, footprints = compile_all(*items)
    detector = PairDetector(compiler, footprints)
    engine_pairs = {
        (a.key, b.key)
        for a, b in detector.surface_pairs()
        if detector.rules.surface_overlap(a, b) is not None
    }
    assert engine_pairs == naive_surface_pairs(compiler, footprints)
    scanned = {f.keys for f in detector.scan() if f.kind == CollisionKind.SURFACE}
    assert scanned == engine_pairs


@PROPERTY
@given(portfolios())
def test_surface_collisions_are_symmetric(items: list[PortfolioItem]) -> None:
    compiler, footprints = compile_all(*items)
    rules = PairRules(compiler)
    for a in footprints:
        for b in footprints:
            if a is b:
                continue
            forward, backward = rules.surface_overlap(a, b), rules.surface_overlap(b, a)
            assert (forward is None) == (backward is None)
            if forward is None or backward is None:
                continue
            assert (forward.first, forward.last) == (backward.first, backward.last)
            assert forward.nodes == backward.nodes
            assert forward.people == pytest.approx(backward.people)
            assert forward.shares == pytest.approx(backward.shares[::-1])
            assert rules.blocks(a, b) == rules.blocks(b, a)


@PROPERTY
@given(portfolios())
def test_a_check_finds_what_a_scan_including_the_test_finds(items: list[PortfolioItem]) -> None:
    # Every kind, crowds reaching beyond the candidate's window included.
    compiler, footprints = compile_all(*items)
    candidate, others = footprints[-1], footprints[:-1]
    expected = [
        f for f in CollisionEngine(compiler, footprints).scan() if f.involves(candidate.key)
    ]
    assert CollisionEngine(compiler, others).check(candidate) == expected
    assert CollisionEngine(compiler, footprints).check(candidate) == expected  # re-check
    # After a scan, a check reads the crowds the scan worked out on each node; after
    # prepare_checks, the indexes it would otherwise build on first use.
    for engine in (CollisionEngine(compiler, others), CollisionEngine(compiler, footprints)):
        engine.scan()
        assert engine.check(candidate) == expected
        prepared = CollisionEngine(compiler, engine.footprints)
        prepared.prepare_checks()
        assert prepared.check(candidate) == expected


def test_a_crowd_of_many_tests_keeps_a_fingerprint_that_fits_its_column() -> None:
    from tower.engine.findings import Finding

    def crowd(keys: tuple[str, ...]) -> Finding:
        return Finding(
            kind=CollisionKind.CAPACITY,
            severity=Severity.BLOCKING,
            keys=keys,
            scope=Scope(ScopeKind.SURFACE, "web/checkout/payment"),
            surfaces=("web/checkout/payment",),
            first_day=date(2026, 6, 1),
            last_day=date(2026, 6, 2),
            people_per_week=0,
            shares=(0.0,) * len(keys),
            agile_vs_bau=False,
            describe=lambda: "",
        )

    many = tuple(f"T-{n}" for n in range(1000, 1060))
    assert len(crowd(many).fingerprint) <= 255
    assert crowd(many).fingerprint != crowd((*many[:-1], "T-9999")).fingerprint
    assert crowd(("T-1", "T-2")).fingerprint == "capacity:surface:web/checkout/payment:T-1+T-2"


def test_a_finding_takes_every_field_and_cannot_be_changed() -> None:
    import dataclasses
    import inspect

    from tower.engine.findings import Finding

    names = [f.name for f in dataclasses.fields(Finding)]
    assert list(inspect.signature(Finding).parameters) == names
    finding = only(scan(item(1, ["web/checkout"], 1, 10), item(2, ["web/checkout"], 5, 14)))
    assert sorted(vars(finding)) == sorted(names)  # every field set, nothing else
    assert finding.keys == ("T-1", "T-2") and finding.people_per_week == 1000
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.people_per_week = 0  # type: ignore[misc]
    again = dataclasses.replace(finding, describe=lambda: "other words")
    assert again == finding and hash(again) == hash(finding)
