"""Who yields in a collision, rule by rule, on hand-made records (no database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tower.collisions.kinds import CollisionStatus
from tower.engine.kinds import CollisionKind, Severity
from tower.experiments.spec import ExperimentStatus as S
from tower.policy import parse_policy
from tower.protocol.arbitration import Contender, verdict

POLICY = parse_policy(
    """
surfaces: {web: {children: {home: {}}}, email: {}}
audiences: {all: {size: 1000}}
contact_caps: [{channel: email, max: 2, per_days: 7}]
protocol: {max_concurrent_per_surface: 2}
"""
)


@dataclass
class Record:
    """A collision record as the gates read it."""

    kind: CollisionKind
    keys: list[str]
    scope: str = ""
    first: int = 1
    last: int = 10
    id: int = 1
    severity: Severity = Severity.BLOCKING
    status: CollisionStatus = CollisionStatus.OPEN
    agile_vs_bau: bool = False
    explanation: str = ""
    acknowledged_by: str | None = None
    waived_by: str | None = None
    waiver_reason: str | None = None
    details: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.details = {
            "keys": self.keys,
            "scope": self.scope,
            "first_day": day(self.first).isoformat(),
            "last_day": day(self.last).isoformat(),
            "days": self.last - self.first + 1,
        }


def day(n: int) -> date:
    return date(2026, 6, n)


def contender(
    number: int,
    *,
    score: float | None = None,
    status: S = S.SUBMITTED,
    days: tuple[int, int] = (1, 10),
    share: float = 1.0,
    group: str | None = None,
) -> Contender:
    """T-`number`, scored `score` (default: higher numbers rank lower)."""
    value = 100.0 - number if score is None else score
    start, end = days
    return Contender(f"T-{number}", number, status, value, 0.5, share, group, day(start), day(end))


def yields(record: Record, *tests: Contender) -> dict[str, bool]:
    by_key = {t.key: t for t in tests}
    return {key: verdict(record, key, by_key, POLICY).must_yield for key in record.keys}


def test_a_lower_ranked_test_sent_for_review_yields_in_a_surface_clash() -> None:
    record = Record(CollisionKind.SURFACE, ["T-1", "T-2"])
    assert yields(record, contender(1), contender(2)) == {"T-1": False, "T-2": True}


def test_a_draft_or_an_unscored_test_holds_nothing_and_a_live_test_never_yields() -> None:
    record = Record(CollisionKind.SURFACE, ["T-1", "T-2"])
    assert yields(record, contender(1, status=S.DRAFT), contender(2)) == {
        "T-1": False,
        "T-2": False,
    }
    unscored = Contender("T-1", 1, S.SUBMITTED, None, None, 1.0, None, day(1), day(10))
    assert yields(record, unscored, contender(2)) == {"T-1": True, "T-2": False}
    assert yields(record, contender(1), contender(2, status=S.LIVE)) == {"T-1": True, "T-2": False}
    assert yields(record, contender(1, status=S.LIVE), contender(2, status=S.LIVE)) == {
        "T-1": False,
        "T-2": False,
    }


def test_capacity_is_counted_day_by_day_as_the_planner_counts_it() -> None:
    """Two a day on the page: T-1 runs days 1-5 and T-2 days 6-10, so T-3 (all ten days)
    still fits beside one of them each day; T-4 does not."""
    record = Record(CollisionKind.CAPACITY, ["T-1", "T-2", "T-3", "T-4"], "surface:web/home")
    crowd = (contender(1, days=(1, 5)), contender(2, days=(6, 10)), contender(3), contender(4))
    assert yields(record, *crowd) == {"T-1": False, "T-2": False, "T-3": False, "T-4": True}


def test_a_group_keeps_its_members_in_rank_order_up_to_all_its_traffic() -> None:
    """60% + 50% is too much: the second yields; the third's 40% fits beside the first."""
    record = Record(CollisionKind.CAPACITY, ["T-1", "T-2", "T-3"], "group:hero")
    members = (contender(1, share=0.6), contender(2, share=0.5), contender(3, share=0.4))
    assert yields(record, *members) == {"T-1": False, "T-2": True, "T-3": False}


def test_a_group_counts_once_on_a_surface_ranked_as_its_best_member_holding_a_place() -> None:
    """One test at a time on the page: the group's draft ranks first but holds nothing, so
    the group stands where its submitted member does, below T-2."""
    record = Record(CollisionKind.CAPACITY, ["T-1", "T-2", "T-3"], "surface:web/home")
    draft = contender(1, status=S.DRAFT, group="g")
    member = contender(3, group="g")
    by_key = {t.key: t for t in (draft, contender(2), member)}
    one = POLICY.model_copy(
        update={"protocol": POLICY.protocol.model_copy(update={"max_concurrent_per_surface": 1})}
    )
    said = {k: verdict(record, k, by_key, one).must_yield for k in by_key}
    assert said == {"T-1": True, "T-2": False, "T-3": True}


def test_a_contact_cap_counts_each_activity_as_its_detection_does() -> None:
    """Two per week on e-mail: two arms of one group already make two sends."""
    record = Record(CollisionKind.CONTACT_CAP, ["T-1", "T-2", "T-3"], "channel:email", 1, 7)
    sends = (
        contender(1, group="g", days=(1, 1)),
        contender(2, group="g", days=(2, 2)),
        contender(3, days=(3, 3)),
    )
    assert yields(record, *sends) == {"T-1": False, "T-2": False, "T-3": True}


def _limit(most: int) -> Any:
    protocol = POLICY.protocol.model_copy(update={"max_concurrent_per_surface": most})
    return POLICY.model_copy(update={"protocol": protocol})


def test_a_live_test_keeps_every_day_it_runs_even_past_the_limit() -> None:
    """One at a time on the page: live T-1 (days 1-5) and live T-2 (days 3-10) already
    share days 3-5. Neither moves, so T-3 on day 8 yields to T-2."""
    record = Record(CollisionKind.CAPACITY, ["T-1", "T-2", "T-3"], "surface:web/home", 3, 8)
    crowd = (
        contender(1, status=S.LIVE, days=(1, 5)),
        contender(2, status=S.LIVE, days=(3, 10)),
        contender(3, days=(8, 8)),
    )
    by_key = {t.key: t for t in crowd}
    said = {k: verdict(record, k, by_key, _limit(1)) for k in by_key}
    assert {k: v.must_yield for k, v in said.items()} == {"T-1": False, "T-2": False, "T-3": True}
    assert said["T-3"].reason() == "C-1 capacity with T-1, which is live, T-2, which is live"


def test_live_arms_keep_all_their_traffic_even_past_100_percent() -> None:
    """Live arms of 60% each share day 2; T-3's 50% on day 3 no longer fits beside T-2."""
    record = Record(CollisionKind.CAPACITY, ["T-1", "T-2", "T-3"], "group:hero", 1, 3)
    members = (
        contender(1, status=S.LIVE, days=(1, 2), share=0.6),
        contender(2, status=S.LIVE, days=(2, 3), share=0.6),
        contender(3, days=(3, 3), share=0.5),
    )
    assert yields(record, *members) == {"T-1": False, "T-2": False, "T-3": True}


def test_on_a_full_surface_a_group_stands_as_its_best_arm_on_every_day_its_arms_run() -> None:
    """Two at a time on the page. Group g stands as T-1 (first, days 1-5); its T-2 (ranked
    last, days 6-10) keeps g's slot there beside T-3: T-4 finds no room on days 6-10,
    though it outranks T-2."""
    record = Record(CollisionKind.CAPACITY, ["T-1", "T-2", "T-3", "T-4"], "surface:web/home")
    crowd = (
        contender(1, group="g", days=(1, 5)),
        contender(2, group="g", days=(6, 10), score=10.0),
        contender(3),
        contender(4, days=(6, 10)),
    )
    by_key = {t.key: t for t in crowd}
    said = {k: verdict(record, k, by_key, POLICY) for k in by_key}
    assert {k: v.must_yield for k, v in said.items()} == {
        "T-1": False,
        "T-2": False,
        "T-3": False,
        "T-4": True,
    }
    assert "T-2 (in group 'g' with T-1, which ranks higher (99 vs 96))" in said["T-4"].reason()
    kept = said["T-2"].reason()
    assert kept.startswith(
        "C-1 capacity (group 'g' ranked as T-1) with T-1: the same slot (group 'g'); "
        "T-3, which ranks lower (97 vs 99): it yields"
    )


def test_an_arm_that_fits_keeps_its_place_when_its_mate_does_not() -> None:
    """One at a time on the page. T-1 keeps days 6-10; g's T-3 cannot fit there, but its
    T-2 keeps days 1-5, so T-4 (days 1-5, ranked below g) yields."""
    record = Record(CollisionKind.CAPACITY, ["T-1", "T-2", "T-3", "T-4"], "surface:web/home")
    crowd = (
        contender(1, days=(6, 10)),
        contender(2, group="g", days=(1, 5)),
        contender(3, group="g", days=(6, 10)),
        contender(4, days=(1, 5)),
    )
    by_key = {t.key: t for t in crowd}
    said = {k: verdict(record, k, by_key, _limit(1)).must_yield for k in by_key}
    assert said == {"T-1": False, "T-2": False, "T-3": True, "T-4": True}
