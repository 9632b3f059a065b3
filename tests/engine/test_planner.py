"""The pipeline planner on a hand-built policy: who keeps a window, who moves, where and why.

Surfaces: web with home and checkout (cart, payment), and email. Audiences: all 10000 =
anonymous 4000 + logged_in 4000 (loyalty 1000) + partners 2000. At most 2 tests per
surface, at most 2 e-mails to the same people per 7 days. Freezes in July: web/checkout for
agile teams on 10-20 July, web/home for BAU teams on 10-20 July. The list order is the rank
order.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tower.engine.collisions import PairRules
from tower.engine.detector import CollisionEngine
from tower.engine.kinds import Severity
from tower.engine.planner import Placement, Planner, is_draft
from tower.engine.portfolio import Compiler, Footprint, PortfolioItem
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.policy import Policy, parse_policy

POLICY: Policy = parse_policy(
    textwrap.dedent(
        """
        teams:
          - {key: squad, name: Checkout Squad, kind: agile}
          - {key: crm, name: CRM, kind: bau}
        surfaces:
          web:
            weekly_visitors: 5000
            children:
              home: {}
              checkout: {weekly_visitors: 1000, children: {cart: {}, payment: {}}}
          email: {children: {promo: {}}}
        audiences:
          all:
            size: 10000
            children:
              anonymous: {size: 4000}
              logged_in: {size: 4000, children: {loyalty: {size: 1000}}}
              partners: {size: 2000}
        freeze_windows:
          - {name: Summer sale, start: 2026-07-10, end: 2026-07-20, surfaces: [web/checkout],
             team_kinds: [agile]}
          - {name: CRM freeze, start: 2026-07-10, end: 2026-07-20, surfaces: [web/home],
             team_kinds: [bau]}
        contact_caps: [{channel: email, max: 2, per_days: 7}]
        protocol: {max_concurrent_per_surface: 2}
        """
    )
)
SURFACES = sorted(POLICY.surface_paths)
SEGMENTS = sorted(POLICY.segment_names)
FIRST_DAY = date(2026, 6, 1)


def day(n: int, month: int = 6) -> date:
    return date(2026, month, n)


def item(
    number: int,
    surfaces: Sequence[str],
    start: date,
    end: date,
    *,
    audiences: Sequence[str] = (),
    team: str = "crm",
    traffic: float = 100.0,
    group: str | None = None,
    status: ExperimentStatus = ExperimentStatus.APPROVED,
) -> PortfolioItem:
    spec = ExperimentSpec(
        title=f"Test {number}",
        team=team,
        owner="U0OWNER",
        kind=ExperimentKind.AB_TEST,
        surfaces=tuple(surfaces),
        start=start,
        end=end,
        audiences=tuple(audiences),
        traffic=traffic,
        exclusion_group=group,
    )
    return PortfolioItem(f"T-{number}", number, status, spec)


def plan(*ranked: PortfolioItem) -> dict[str, Placement]:
    compiler = Compiler(POLICY)
    placements = Planner(compiler).plan([compiler.compile(i) for i in ranked])
    assert [p.rank for p in placements] == list(range(1, len(ranked) + 1))
    return {p.key: p for p in placements}


def kept(placement: Placement) -> bool:
    return (
        placement.planned_start == placement.requested_start
        and placement.planned_end == placement.requested_end
        and placement.reasons == ()
        and placement.moved_days == 0
        and placement.explanation == "keeps its requested window"
    )


# --- surface collisions ----------------------------------------------------------------


def test_a_blocked_lower_ranked_test_moves_to_the_day_after_the_blocker_ends() -> None:
    placements = plan(
        item(1, ["web/checkout"], day(1), day(10)),
        item(2, ["web/checkout/payment"], day(5), day(14), team="squad"),
    )
    assert kept(placements["T-1"])
    moved = placements["T-2"]
    assert (moved.requested_start, moved.requested_end) == (day(5), day(14))
    assert (moved.planned_start, moved.planned_end) == (day(11), day(20))
    assert moved.reasons == ("T-1 ranks higher on web/checkout/payment",)
    assert moved.moved_days == 6
    assert moved.explanation == "moved 6 days: T-1 ranks higher on web/checkout/payment"


def test_the_rank_decides_who_moves() -> None:
    placements = plan(
        item(2, ["web/checkout/payment"], day(5), day(14)),
        item(1, ["web/checkout"], day(1), day(10)),
    )
    assert kept(placements["T-2"])
    assert (placements["T-1"].planned_start, placements["T-1"].planned_end) == (day(15), day(24))
    assert placements["T-1"].rank == 2


@pytest.mark.parametrize(
    "other",
    [
        item(2, ["web/home"], day(5), day(14)),  # another page
        item(2, ["web/checkout/cart"], day(11), day(20)),  # after the first ends
        item(2, ["web/checkout/cart"], day(5), day(14), audiences=["partners"]),
        item(2, ["email/promo"], day(1), day(10)),
    ],
)
def test_an_unblocked_test_keeps_its_window(other: PortfolioItem) -> None:
    placements = plan(item(1, ["web/checkout"], day(1), day(10), audiences=["logged_in"]), other)
    assert kept(placements["T-1"])
    assert kept(placements["T-2"])


def test_a_tiny_overlap_does_not_move_a_test() -> None:
    placements = plan(
        item(1, ["web/checkout"], day(1), day(10), traffic=0.5),
        item(2, ["web/checkout/payment"], day(5), day(14), audiences=["loyalty"], traffic=5),
    )
    assert kept(placements["T-2"])


def test_a_test_clears_every_higher_ranked_blocker_at_once() -> None:
    placements = plan(
        item(1, ["web/checkout"], day(1), day(10)),
        item(2, ["web/checkout/payment"], day(5), day(14)),
        item(3, ["web/checkout/payment"], day(8), day(12)),
    )
    assert (placements["T-2"].planned_start, placements["T-2"].planned_end) == (day(11), day(20))
    third = placements["T-3"]
    assert (third.planned_start, third.planned_end) == (day(21), day(25))
    assert sorted(third.reasons) == [
        "T-1 ranks higher on web/checkout/payment",
        "T-2 ranks higher on web/checkout/payment",
    ]


# --- freeze windows --------------------------------------------------------------------


def test_a_test_in_a_freeze_for_its_team_kind_moves_to_the_day_after_the_freeze() -> None:
    placement = plan(item(1, ["web/checkout/cart"], day(15, 7), day(18, 7), team="squad"))["T-1"]
    assert (placement.planned_start, placement.planned_end) == (day(21, 7), day(24, 7))
    assert placement.reasons == ("freeze window 'Summer sale'",)
    assert placement.moved_days == 6


def test_a_test_running_into_a_freeze_moves_past_it() -> None:
    placement = plan(item(1, ["web"], day(25), day(12, 7), team="squad"))["T-1"]
    assert (placement.planned_start, placement.planned_end) == (day(21, 7), day(7, 8))


def test_a_freeze_ending_the_day_before_does_not_move_a_test() -> None:
    assert kept(plan(item(1, ["web/checkout"], day(21, 7), day(30, 7), team="squad"))["T-1"])


def test_a_freeze_for_bau_only_does_not_move_an_agile_test() -> None:
    placements = plan(
        item(1, ["web/home"], day(12, 7), day(14, 7), team="squad", audiences=["anonymous"]),
        item(2, ["web/home"], day(12, 7), day(14, 7), team="crm", audiences=["partners"]),
    )
    assert kept(placements["T-1"])
    assert (placements["T-2"].planned_start, placements["T-2"].planned_end) == (
        day(21, 7),
        day(23, 7),
    )
    assert placements["T-2"].reasons == ("freeze window 'CRM freeze'",)


def test_a_freeze_on_a_page_does_not_move_a_test_on_a_sibling_page() -> None:
    assert kept(plan(item(1, ["web/home"], day(12, 7), day(14, 7), team="squad"))["T-1"])


# --- live tests ------------------------------------------------------------------------


def test_live_tests_keep_their_windows_even_when_ranked_low() -> None:
    placements = plan(
        item(1, ["web/checkout"], day(1), day(10)),
        item(2, ["web/checkout"], day(5), day(14), status=ExperimentStatus.LIVE),
    )
    assert kept(placements["T-2"])
    moved = placements["T-1"]
    assert (moved.planned_start, moved.planned_end) == (day(15), day(24))
    assert len(moved.reasons) == 1
    assert "T-2" in moved.reasons[0]
    assert "web/checkout" in moved.reasons[0]


def test_a_lower_ranked_live_blocker_is_not_said_to_rank_higher() -> None:
    placements = plan(
        item(1, ["web/checkout"], day(1), day(10)),
        item(2, ["web/checkout"], day(5), day(14), status=ExperimentStatus.LIVE),
    )
    assert "ranks higher" not in placements["T-1"].reasons[0]


def test_a_draft_yields_to_a_lower_ranked_test_sent_for_review() -> None:
    """The plan places live tests, then the tests sent for review by rank, then drafts: a
    draft holds nothing, so the submitted test keeps its window and the draft moves."""
    placements = plan(
        item(1, ["web/checkout"], day(1), day(10), status=ExperimentStatus.DRAFT),
        item(2, ["web/checkout"], day(5), day(14), status=ExperimentStatus.SUBMITTED),
        item(3, ["web/checkout"], day(20), day(24), status=ExperimentStatus.DRAFT),
    )
    assert kept(placements["T-2"])
    moved = placements["T-1"]
    assert (moved.planned_start, moved.planned_end) == (day(15), day(24))
    assert moved.reasons == ("T-2 is submitted (drafts come after) on web/checkout",)
    # Between drafts, rank decides: T-1 ranks above T-3, which moves past it.
    later = placements["T-3"]
    assert (later.planned_start, later.planned_end) == (day(25), day(29))
    assert later.reasons == ("T-1 ranks higher on web/checkout",)


# --- deadlines -------------------------------------------------------------------------


def test_a_deadline_the_next_free_slot_would_pass_leaves_no_slot_and_says_why() -> None:
    placements = plan(
        item(1, ["web/checkout"], day(1), day(10)),
        replace(item(2, ["web/checkout"], day(5), day(9)), deadline=day(12)),
    )
    missed = placements["T-2"]
    assert (missed.planned_start, missed.planned_end) == (None, None)
    assert missed.misses_deadline
    assert missed.explanation == (
        "no slot ends by its deadline Fri 12 Jun 2026: "
        "T-1 ranks higher on web/checkout until 10 Jun"
    )


def test_a_slot_that_ends_on_the_deadline_is_taken() -> None:
    placements = plan(
        item(1, ["web/checkout"], day(1), day(10)),
        replace(item(2, ["web/checkout"], day(5), day(9)), deadline=day(15)),
    )
    moved = placements["T-2"]
    assert (moved.planned_start, moved.planned_end) == (day(11), day(15))
    assert not moved.misses_deadline
    assert moved.deadline == day(15)


def test_a_window_that_alone_runs_past_its_deadline_has_no_slot() -> None:
    late = plan(replace(item(1, ["web/checkout"], day(5), day(20)), deadline=day(12)))["T-1"]
    assert (late.planned_start, late.misses_deadline) == (None, True)
    assert (
        late.explanation
        == "no slot ends by its deadline Fri 12 Jun 2026: its window alone runs past it"
    )


def test_a_live_test_running_past_its_deadline_keeps_its_window_and_is_flagged() -> None:
    live = replace(
        item(1, ["web/checkout"], day(5), day(20), status=ExperimentStatus.LIVE), deadline=day(12)
    )
    placement = plan(live)["T-1"]
    assert (placement.planned_start, placement.planned_end) == (day(5), day(20))
    assert placement.misses_deadline
    assert "it is live and runs to Sat 20 Jun 2026" in placement.explanation


# --- send days -------------------------------------------------------------------------

SEND_DAYS = parse_policy(
    textwrap.dedent(
        """
        teams: [{key: crm, name: CRM, kind: bau}]
        surfaces:
          email:
            send_days: [tue, thu]
            children: {newsletter: {}, alerts: {send_days: [mon]}}
          web: {weekly_visitors: 5000, children: {home: {}}}
        audiences: {all: {size: 10000}}
        """
    )
)


def planned_under(policy: Policy, *items: PortfolioItem) -> dict[str, Placement]:
    compiler = Compiler(policy)
    return {p.key: p for p in Planner(compiler).plan([compiler.compile(i) for i in items])}


def test_a_send_on_a_day_its_channel_does_not_send_moves_to_the_next_send_day() -> None:
    # Mon 1 Jun 2026: the newsletter inherits email's Tuesdays and Thursdays.
    placements = planned_under(
        SEND_DAYS,
        item(1, ["email/newsletter"], day(1), day(1)),
        item(2, ["email/newsletter"], day(4), day(4)),  # a Thursday: kept
        item(3, ["email/alerts"], day(2), day(2)),  # alerts send on Mondays only
        item(4, ["web/home"], day(6), day(7)),  # no send days: any day
    )
    moved = placements["T-1"]
    assert (moved.planned_start, moved.planned_end) == (day(2), day(2))
    assert moved.reasons == ("email/newsletter sends only on Tue and Thu",)
    assert kept(placements["T-2"])
    assert (placements["T-3"].planned_start, placements["T-3"].reasons) == (
        day(8),
        ("email/alerts sends only on Mon",),
    )
    assert kept(placements["T-4"])


def test_a_test_on_surfaces_that_share_no_send_day_gets_no_slot() -> None:
    apart = planned_under(SEND_DAYS, item(1, ["email/newsletter", "email/alerts"], day(1), day(1)))
    placement = apart["T-1"]
    assert placement.planned_start is None
    assert placement.reasons == ("email/newsletter, email/alerts share no send day",)
    # A deadline is not what stops it: no deadline notice for a policy's doing.
    item_with_deadline = replace(
        item(1, ["email/newsletter", "email/alerts"], day(1), day(1)), deadline=day(20)
    )
    late = planned_under(SEND_DAYS, item_with_deadline)["T-1"]
    assert (late.planned_start, late.misses_deadline) == (None, False)


def test_a_live_test_inside_a_freeze_keeps_its_window() -> None:
    placement = plan(
        item(
            1, ["web/checkout"], day(12, 7), day(14, 7), team="squad", status=ExperimentStatus.LIVE
        )
    )["T-1"]
    assert kept(placement)


# --- exclusion groups and capacity -----------------------------------------------------


def test_an_exclusion_group_overflow_moves_the_lower_ranked_test() -> None:
    placements = plan(
        item(1, ["web/home"], day(1), day(10), traffic=60, group="g"),
        item(2, ["web/home"], day(5), day(14), traffic=50, group="g"),
    )
    assert kept(placements["T-1"])
    moved = placements["T-2"]
    assert (moved.planned_start, moved.planned_end) == (day(11), day(20))
    assert moved.reasons == ("exclusion group 'g' would pass 100% of traffic",)


def test_an_exclusion_group_overflow_is_one_reason() -> None:
    placements = plan(
        item(1, ["web/home"], day(1), day(10), traffic=60, group="g"),
        item(2, ["web/home"], day(5), day(14), traffic=50, group="g"),
    )
    assert len(placements["T-2"].reasons) == 1


def test_an_exclusion_group_that_fits_keeps_both_windows() -> None:
    placements = plan(
        item(1, ["web/home"], day(1), day(10), traffic=50, group="g"),
        item(2, ["web/home"], day(5), day(14), traffic=50, group="g"),
    )
    assert kept(placements["T-1"])
    assert kept(placements["T-2"])


def test_a_surface_at_capacity_moves_the_next_test() -> None:
    placements = plan(
        item(1, ["web/checkout/cart"], day(1), day(10), audiences=["anonymous"]),
        item(2, ["web/checkout/cart"], day(3), day(12), audiences=["logged_in"]),
        item(3, ["web/checkout"], day(5), day(8), audiences=["partners"]),
        item(4, ["web/checkout/payment"], day(5), day(8), audiences=["partners"]),
    )
    assert kept(placements["T-1"])
    assert kept(placements["T-2"])
    moved = placements["T-3"]
    assert (moved.planned_start, moved.planned_end) == (day(11), day(14))  # T-1 ended
    assert moved.reasons == ("web/checkout/cart already has 2 tests running",)
    assert kept(placements["T-4"])  # payment has room


def test_no_free_slot_within_the_horizon() -> None:
    compiler = Compiler(POLICY)
    planner = Planner(compiler, horizon_days=5)
    first = compiler.compile(item(1, ["web/checkout"], day(1), day(30)))
    second = compiler.compile(item(2, ["web/checkout"], day(1), day(3)))
    placements = planner.plan([first, second])
    assert placements[1].planned_start is None
    assert placements[1].planned_end is None
    assert placements[1].moved_days == 0
    assert placements[1].reasons == ("T-1 ranks higher on web/checkout",)
    assert planner.free_slot(second) is None


def test_no_free_slot_names_the_planners_horizon() -> None:
    compiler = Compiler(POLICY)
    placements = Planner(compiler, horizon_days=5).plan(
        [
            compiler.compile(item(1, ["web/checkout"], day(1), day(30))),
            compiler.compile(item(2, ["web/checkout"], day(1), day(3))),
        ]
    )
    assert placements[1].explanation.startswith("no free slot within 5 days")


def test_free_slot_does_not_reserve() -> None:
    compiler = Compiler(POLICY)
    planner = Planner(compiler)
    planner.plan([compiler.compile(item(1, ["web/checkout"], day(1), day(10)))])
    candidate = compiler.compile(item(2, ["web/checkout/cart"], day(5), day(6)))
    assert planner.free_slot(candidate) == (day(11), day(12))
    assert planner.free_slot(candidate) == (day(11), day(12))
    assert planner.place(candidate).planned_start == day(11)


# --- properties on random small portfolios ---------------------------------------------


@st.composite
def portfolios(draw: st.DrawFn, *, live: bool = True) -> list[PortfolioItem]:
    size = draw(st.integers(min_value=1, max_value=8))
    statuses = [ExperimentStatus.APPROVED, ExperimentStatus.DRAFT]
    if live:
        statuses.append(ExperimentStatus.LIVE)
    items = []
    for number in range(1, size + 1):
        start = FIRST_DAY.toordinal() + draw(st.integers(min_value=0, max_value=50))
        length = draw(st.integers(min_value=1, max_value=14))
        items.append(
            item(
                number,
                draw(st.lists(st.sampled_from(SURFACES), min_size=1, max_size=2, unique=True)),
                date.fromordinal(start),
                date.fromordinal(start + length - 1),
                audiences=draw(st.lists(st.sampled_from(SEGMENTS), max_size=2, unique=True)),
                team=draw(st.sampled_from(["squad", "crm"])),
                traffic=draw(st.sampled_from([0.5, 10.0, 50.0, 60.0, 100.0])),
                group=draw(st.sampled_from([None, None, "g"])),
                status=draw(st.sampled_from(statuses)),
            )
        )
    return draw(st.permutations(items))


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def planned(
    items: list[PortfolioItem],
) -> tuple[Compiler, list[tuple[Footprint, Placement]]]:
    """The ranked footprints moved to their planned slots (unplaced ones left out)."""
    compiler = Compiler(POLICY)
    ranked = [compiler.compile(i) for i in items]
    placements = Planner(compiler).plan(ranked)
    moved = []
    for footprint, placement in zip(ranked, placements, strict=True):
        assert placement.key == footprint.key
        assert placement.requested_start == date.fromordinal(footprint.start)
        assert placement.requested_end == date.fromordinal(footprint.end)
        if placement.planned_start is not None:
            moved.append((footprint.shifted(placement.planned_start.toordinal()), placement))
    return compiler, moved


@PROPERTY
@given(portfolios())
def test_planned_slots_never_start_early_and_keep_their_duration(
    items: list[PortfolioItem],
) -> None:
    _, moved = planned(items)
    for footprint, placement in moved:
        assert placement.planned_start is not None and placement.planned_end is not None
        assert placement.planned_start >= placement.requested_start
        assert placement.planned_end - placement.planned_start == (
            placement.requested_end - placement.requested_start
        )
        assert date.fromordinal(footprint.end) == placement.planned_end
        assert bool(placement.reasons) == (placement.moved_days > 0)
        if footprint.item.status == ExperimentStatus.LIVE:
            assert placement.moved_days == 0


@PROPERTY
@given(portfolios())
def test_planned_slots_leave_no_blocking_collision_with_a_higher_ranked_test(
    items: list[PortfolioItem],
) -> None:
    compiler, moved = planned(items)
    rules = PairRules(compiler)
    for index, (footprint, _) in enumerate(moved):
        for higher, _ in moved[:index]:
            if footprint.item.status == higher.item.status == ExperimentStatus.LIVE:
                continue  # two running tests: neither can move
            assert not rules.blocks(footprint, higher), (higher.key, footprint.key)


@PROPERTY
@given(portfolios(live=False))
def test_the_planned_portfolio_scans_without_blocking_collisions(
    items: list[PortfolioItem],
) -> None:
    compiler, moved = planned(items)
    findings = CollisionEngine(compiler, [footprint for footprint, _ in moved]).scan()
    assert [f for f in findings if f.severity == Severity.BLOCKING] == []


@PROPERTY
@given(portfolios())
def test_no_free_start_is_skipped(items: list[PortfolioItem]) -> None:
    # From every start between the requested and the planned one, the next free slot is
    # the planned one: the planner's jumps never step over a start that was free.
    compiler = Compiler(POLICY)
    ranked = [compiler.compile(i) for i in items]
    placements = {p.key: p for p in Planner(compiler).plan(ranked)}
    replay = Planner(compiler)
    replay.plan([f for f in ranked if f.item.status == ExperimentStatus.LIVE])  # kept as is
    for footprint in sorted(ranked, key=is_draft):  # drafts after those sent for review
        if footprint.item.status == ExperimentStatus.LIVE:
            continue
        placement = placements[footprint.key]
        slot = None
        if placement.planned_start is not None and placement.planned_end is not None:
            slot = (placement.planned_start, placement.planned_end)
        last = (placement.planned_start or placement.requested_start).toordinal()
        for start in range(footprint.start, last + 1):
            assert replay.free_slot(footprint.shifted(start)) == slot, start
        replayed = replay.place(footprint)
        assert (replayed.planned_start, replayed.planned_end) == (slot or (None, None))
