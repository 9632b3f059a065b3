"""Who yields in a collision, rule by rule, on hand-made records (no database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tower.collisions.kinds import CollisionKind, CollisionStatus, Severity
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
