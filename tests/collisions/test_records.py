"""Collision records: opened by a re-check, kept across re-checks, acted on, resolved.

Every example runs on the small policy (tests/data/policy.yaml): the Checkout Squad (agile:
U0ANNA, U0BEN) and E-commerce (BAU: U0CARLA), one manager (U0TOWERMGR). The registry below
holds three clashes a user would see in `tower conflicts --all`:

- T-1 (squad, web/checkout/payment) and T-2 (e-commerce, web/checkout), same days, same
  signed-in people: a blocking, agile-vs-BAU `surface` collision;
- T-3 (e-commerce, web/home) and T-1: a `funnel` warning on the purchase funnel;
- T-10 to T-13: four e-commerce newsletters in four days, over the e-mail cap of 3 per 7 days:
  a blocking `contact_cap` collision that involves e-commerce only.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.views.buttons import CollisionButton, NotOurs
from tests.support.cli import failed, succeeded, tower
from tests.support.factories import HERO_TESTS, import_hero_tests
from tests.support.people import BAU_OWNER as ECOMMERCE_MEMBER
from tests.support.people import MANAGER
from tests.support.people import TEAMMATE as SQUAD_MEMBER
from tests.support.records import LISTED_DETAIL_FIELDS
from tower.collisions import actions as collision_actions
from tower.collisions import service as collision_service
from tower.collisions.actions import CollisionActionError
from tower.collisions.kinds import CollisionStatus
from tower.collisions.models import Collision
from tower.collisions.refs import format_ref, keys_of
from tower.collisions.sync import RecordScope, SyncReport, match_records
from tower.context import ServiceContext
from tower.engine.analysis import PipelineAnalysis
from tower.engine.kinds import CollisionKind, Severity
from tower.errors import NotFoundError
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.pipeline.records import collision_record
from tower.pipeline.resync import recheck_all
from tower.policy import Policy

TODAY = date(2027, 1, 4)  # a Monday, a week before the tests start


def recheck(
    session: Session, policy: Policy, *, today: date
) -> tuple[PipelineAnalysis, SyncReport]:
    """Re-check the whole registry in the test's transaction, as an import does."""
    ctx = ServiceContext.create(policy, datetime.combine(today, time(12), tzinfo=UTC))
    report = recheck_all(session, ctx)
    return report.analysis, report.sync


START = date(2027, 1, 11)
END = date(2027, 1, 31)
REASON = "Agreed with both teams: the payment redesign ships with the threshold bar"


DETAIL_KEYS = {*LISTED_DETAIL_FIELDS, "fixes"}
SHARING_DETAIL_KEYS = {"days_to_mde", "mde_cost"}  # surface and funnel records only

# --------------------------------------------------------------------------- helpers


def spec(**changes: Any) -> ExperimentSpec:
    """A complete Checkout Squad test on the payment step for signed-in customers."""
    base = ExperimentSpec(
        title="One-page payment",
        team="checkout-squad",
        owner="U0ANNA",
        kind=ExperimentKind.AB_TEST,
        surfaces=("web/checkout/payment",),
        start=START,
        end=END,
        audiences=("logged_in",),
        traffic=50.0,
        primary_kpi="conversion_rate",
        baseline=0.3,
        mde=0.05,
        hypothesis="If payment fits one page, more signed-in customers pay.",
        impact=2.0,
        confidence=0.8,
        effort_weeks=1.0,
    )
    return replace(base, **changes)


def ecommerce(**changes: Any) -> ExperimentSpec:
    return spec(team="ecommerce", owner=ECOMMERCE_MEMBER, **changes)


def register(
    session: Session,
    number: int,
    value: ExperimentSpec,
    status: ExperimentStatus = ExperimentStatus.APPROVED,
) -> Experiment:
    return experiment_service.create(
        session, number=number, spec=value, status=status, actor=value.owner
    )


@pytest.fixture
def registry(session: Session) -> dict[str, Experiment]:
    """The three clashes described at the top of this file."""
    tests = [
        register(session, 1, spec(), ExperimentStatus.SUBMITTED),
        register(session, 2, ecommerce(title="Threshold bar", surfaces=("web/checkout",))),
        register(session, 3, ecommerce(title="Home hero", surfaces=("web/home",))),
    ]
    for offset in range(4):
        day = date(2027, 1, 11 + offset)
        newsletter = ecommerce(
            title=f"Newsletter {offset + 1}",
            kind=ExperimentKind.CAMPAIGN,
            surfaces=("email/promotional/weekly_newsletter",),
            start=day,
            end=day,
            traffic=100.0,
        )
        tests.append(register(session, 10 + offset, newsletter))
    return {test.key: test for test in tests}


def records(session: Session) -> list[Collision]:
    return collision_service.list_collisions(session)


def record_of(session: Session, kind: CollisionKind, *keys: str) -> Collision:
    """The one record of `kind` between exactly `keys`."""
    found = [c for c in records(session) if c.kind == kind and set(keys_of(c)) == set(keys)]
    assert len(found) == 1, [(c.kind, c.details.get("keys")) for c in records(session)]
    return found[0]


def surface_record(session: Session) -> Collision:
    return record_of(session, CollisionKind.SURFACE, "T-1", "T-2")


def cap_record(session: Session) -> Collision:
    return record_of(session, CollisionKind.CONTACT_CAP, "T-10", "T-11", "T-12", "T-13")


def row_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Collision)) or 0


def move(session: Session, experiment: Experiment, start: date, end: date) -> None:
    """Edit a test's window the way every adapter does."""
    changed = experiment_service.overwrite(
        session,
        experiment,
        spec=replace(experiment.spec(), start=start, end=end),
        status=experiment.status,
        actor=experiment.owner,
        action="edited",
    )
    assert changed


def move_t2_out(session: Session, registry: dict[str, Experiment]) -> None:
    """T-2 moves to February: it no longer shares a day with T-1 (which ends 31 Jan)."""
    move(session, registry["T-2"], date(2027, 2, 1), date(2027, 2, 21))


def move_t2_back(session: Session, registry: dict[str, Experiment]) -> None:
    move(session, registry["T-2"], START, END)


# --------------------------------------------------------------------------- opening


def test_a_recheck_opens_one_open_record_per_finding(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    analysis, report = recheck(session, small_policy, today=TODAY)

    assert len(analysis.findings) == 3
    assert len(report.opened) == 3
    assert (report.reopened, report.resolved, report.kept) == ([], [], [])
    stored = records(session)
    assert sorted(c.id for c in stored) == sorted(c.id for c in report.opened)
    assert {c.fingerprint for c in stored} == {f.fingerprint for f in analysis.findings}
    by_fingerprint = {c.fingerprint: c for c in stored}
    for finding in analysis.findings:
        record = by_fingerprint[finding.fingerprint]
        assert record.status == CollisionStatus.OPEN
        assert record.kind == finding.kind
        assert record.severity == finding.severity
        assert record.explanation == finding.explanation
        assert sorted(e.key for e in record.experiments) == sorted(finding.keys)
        sharing = finding.kind in (CollisionKind.SURFACE, CollisionKind.FUNNEL)
        assert set(record.details) == DETAIL_KEYS | (SHARING_DETAIL_KEYS if sharing else set())
        assert record.details["keys"] == list(finding.keys)
        assert record.resolved_at is None
        assert (record.acknowledged_by, record.waived_by, record.waiver_reason) == (None,) * 3


def test_a_surface_record_tells_who_where_when_how_many_and_what_to_do(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)

    record = surface_record(session)

    assert record.severity == Severity.BLOCKING
    assert record.agile_vs_bau is True
    details = record.details
    assert details["keys"] == ["T-1", "T-2"]
    assert details["teams"] == ["checkout-squad", "ecommerce"]
    assert details["surfaces"] == ["web/checkout/payment"]
    assert (details["first_day"], details["last_day"]) == ("2027-01-11", "2027-01-31")
    assert details["days"] == 21
    assert isinstance(details["people_per_week"], int)
    assert details["people_per_week"] > 0
    assert set(details["affected"]) == {"T-1", "T-2"}
    assert all(0 < share <= 1 for share in details["affected"].values())
    assert details["fixes"]
    assert all(isinstance(fix, str) and ("T-1" in fix or "T-2" in fix) for fix in details["fixes"])
    assert "T-1" in record.explanation
    assert "T-2" in record.explanation
    assert "web/checkout/payment" in record.explanation


def test_a_contact_cap_record_names_its_channel_and_its_days(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)

    record = cap_record(session)

    assert record.severity == Severity.BLOCKING
    assert record.agile_vs_bau is False
    assert record.details["scope"] == "channel:email"
    assert record.details["teams"] == ["ecommerce"] * 4
    assert record.details["first_day"] == "2027-01-11"
    assert record.details["last_day"] == "2027-01-14"
    assert record.details["days"] == 4
    assert record.details["fixes"]
    assert sorted(e.key for e in record.experiments) == ["T-10", "T-11", "T-12", "T-13"]


def test_a_funnel_clash_is_recorded_as_a_warning(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)

    record = record_of(session, CollisionKind.FUNNEL, "T-1", "T-3")

    assert record.severity == Severity.WARNING
    assert record.details["scope"] == "purchase"
    assert record.status == CollisionStatus.OPEN


def test_a_second_recheck_with_nothing_changed_opens_nothing_and_keeps_the_ids(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    _, first = recheck(session, small_policy, today=TODAY)
    ids = {c.fingerprint: c.id for c in first.opened}

    _, second = recheck(session, small_policy, today=TODAY)

    assert (second.opened, second.reopened, second.resolved) == ([], [], [])
    assert sorted(second.kept) == sorted(ids.values())
    assert {c.fingerprint: c.id for c in records(session)} == ids
    assert row_count(session) == 3
    assert all(c.status == CollisionStatus.OPEN for c in records(session))


def test_a_recheck_of_an_empty_registry_opens_nothing(
    session: Session, small_policy: Policy
) -> None:
    analysis, report = recheck(session, small_policy, today=TODAY)

    assert analysis.findings == []
    assert (report.opened, report.reopened, report.resolved, report.kept) == ([], [], [], [])
    assert row_count(session) == 0


# --------------------------------------------------------------------------- finding records


@pytest.mark.parametrize("ref", ["C-{id}", "{id}", " C-{id} "])
def test_a_collision_is_found_by_its_reference(
    session: Session, small_policy: Policy, registry: dict[str, Experiment], ref: str
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)

    assert collision_service.get_collision(session, ref.format(id=record.id)) is record
    assert format_ref(record) == f"C-{record.id}"


@pytest.mark.parametrize("ref", ["C-999999", "C-x", "T-1", "", "C-07"])
def test_an_unknown_collision_reference_is_named_in_the_error(
    session: Session, small_policy: Policy, registry: dict[str, Experiment], ref: str
) -> None:
    recheck(session, small_policy, today=TODAY)

    with pytest.raises(NotFoundError, match="there is no collision") as caught:
        collision_service.get_collision(session, ref)

    assert ref.strip() in str(caught.value)


def test_a_reference_is_case_sensitive(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)

    with pytest.raises(NotFoundError) as caught:
        collision_actions.acknowledge(session, small_policy, f"c-{record.id}", actor=MANAGER)

    assert (
        str(caught.value) == f"there is no collision 'c-{record.id}': collision ids look like C-12"
    )
    assert record.status == CollisionStatus.OPEN


@pytest.mark.parametrize("number", ["2147483648", "9223372036854775808", "9" * 20])
def test_a_reference_past_the_largest_id_is_refused_not_looked_up(
    session: Session, small_policy: Policy, registry: dict[str, Experiment], number: str
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)

    with pytest.raises(NotFoundError) as caught:
        collision_actions.waive(session, small_policy, f"C-{number}", actor=MANAGER, reason=REASON)

    assert (
        str(caught.value) == f"'C-{number}' is too big a collision id (the largest is C-2147483647)"
    )
    refs = [format_ref(record), f"C-{number}", f"c-{record.id}"]
    assert collision_service.by_refs(session, refs) == [record]


@pytest.mark.parametrize("value", ["c-7", "c-7:T-12", "C-x", "C-07", "7", "", f"C-{'9' * 20}"])
def test_a_button_value_tower_never_writes_is_refused(value: str) -> None:
    with pytest.raises(NotOurs, match="not a collision button value"):
        CollisionButton.parse(value)


def test_collisions_can_be_listed_by_status_and_severity(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    collision_actions.waive(
        session, small_policy, format_ref(cap_record(session)), actor=MANAGER, reason=REASON
    )

    open_blocking = collision_service.list_collisions(
        session, statuses=[CollisionStatus.OPEN], severities=[Severity.BLOCKING]
    )
    warnings = collision_service.list_collisions(session, severities=[Severity.WARNING])

    assert [keys_of(c) for c in open_blocking] == [["T-1", "T-2"]]
    assert [c.kind for c in warnings] == [CollisionKind.FUNNEL]


# --------------------------------------------------------------------------- acknowledging


def test_an_acknowledgement_survives_a_recheck(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)

    acknowledged = collision_actions.acknowledge(
        session, small_policy, format_ref(record), actor=ECOMMERCE_MEMBER
    )
    _, report = recheck(session, small_policy, today=TODAY)
    _, report = recheck(session, small_policy, today=TODAY)

    assert acknowledged is record
    assert record.id in report.kept
    assert surface_record(session).id == record.id
    assert record.status == CollisionStatus.ACKNOWLEDGED
    assert record.acknowledged_by == ECOMMERCE_MEMBER
    assert collision_record(record)["acknowledged_by"] == ECOMMERCE_MEMBER
    assert collision_record(record)["status"] == "acknowledged"


def test_a_change_that_finds_a_live_record_outside_what_it_read_keeps_it_acknowledged(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    analysis, _ = recheck(session, small_policy, today=TODAY)
    record = surface_record(session)
    collision_actions.acknowledge(session, small_policy, format_ref(record), actor=MANAGER)
    finding = next(f for f in analysis.findings if f.fingerprint == record.fingerprint)

    # A change's scope that reads none of the records, yet finds this clash again.
    report = match_records(
        session,
        [finding],
        scope=RecordScope(frozenset()),
        details=lambda _: dict(record.details),
    )

    assert (report.opened, report.reopened, report.resolved) == ([], [], [])
    assert report.kept == [record.id]
    assert (record.status, record.acknowledged_by) == (CollisionStatus.ACKNOWLEDGED, MANAGER)


@pytest.mark.parametrize("actor", [SQUAD_MEMBER, ECOMMERCE_MEMBER, MANAGER])
def test_members_of_either_involved_team_or_a_manager_may_acknowledge(
    session: Session, small_policy: Policy, registry: dict[str, Experiment], actor: str
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)

    collision_actions.acknowledge(session, small_policy, format_ref(record), actor=actor)

    assert (record.status, record.acknowledged_by) == (CollisionStatus.ACKNOWLEDGED, actor)


@pytest.mark.parametrize("actor", [SQUAD_MEMBER, "U0NOBODY"])
def test_someone_outside_the_involved_teams_cannot_acknowledge(
    session: Session, small_policy: Policy, registry: dict[str, Experiment], actor: str
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = cap_record(session)  # e-commerce's newsletters only
    ref = format_ref(record)

    with pytest.raises(CollisionActionError) as caught:
        collision_actions.acknowledge(session, small_policy, ref, actor=actor)

    assert ref in str(caught.value)
    assert actor in str(caught.value)
    assert (record.status, record.acknowledged_by) == (CollisionStatus.OPEN, None)


def test_an_acknowledged_collision_cannot_be_acknowledged_again(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    ref = format_ref(surface_record(session))
    collision_actions.acknowledge(session, small_policy, ref, actor=ECOMMERCE_MEMBER)

    with pytest.raises(
        CollisionActionError, match=f"{ref} was already acknowledged by {ECOMMERCE_MEMBER} on "
    ):
        collision_actions.acknowledge(session, small_policy, ref, actor=SQUAD_MEMBER)

    assert surface_record(session).acknowledged_by == ECOMMERCE_MEMBER


# --------------------------------------------------------------------------- waiving


def test_a_managers_waiver_with_a_reason_survives_rechecks(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)

    collision_actions.waive(
        session, small_policy, format_ref(record), actor=MANAGER, reason=f"  {REASON}  "
    )
    recheck(session, small_policy, today=TODAY)
    _, report = recheck(session, small_policy, today=TODAY)

    assert record.id in report.kept
    assert report.opened == []
    assert surface_record(session).id == record.id
    assert record.status == CollisionStatus.WAIVED
    assert (record.waived_by, record.waiver_reason) == (MANAGER, REASON)
    shown = collision_record(record)
    assert (shown["status"], shown["waived_by"], shown["waiver_reason"]) == (
        "waived",
        MANAGER,
        REASON,
    )


def test_an_acknowledged_collision_can_be_waived(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    ref = format_ref(surface_record(session))
    collision_actions.acknowledge(session, small_policy, ref, actor=SQUAD_MEMBER)

    record = collision_actions.waive(session, small_policy, ref, actor=MANAGER, reason=REASON)

    assert record.status == CollisionStatus.WAIVED
    assert record.waived_by == MANAGER


@pytest.mark.parametrize("actor", [SQUAD_MEMBER, ECOMMERCE_MEMBER, "U0NOBODY"])
def test_only_a_manager_can_waive(
    session: Session, small_policy: Policy, registry: dict[str, Experiment], actor: str
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)
    ref = format_ref(record)

    with pytest.raises(CollisionActionError, match="manager") as caught:
        collision_actions.waive(session, small_policy, ref, actor=actor, reason=REASON)

    assert ref in str(caught.value)
    assert record.status == CollisionStatus.OPEN
    assert (record.waived_by, record.waiver_reason) == (None, None)


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_a_waiver_without_a_reason_is_refused(
    session: Session, small_policy: Policy, registry: dict[str, Experiment], reason: str
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)
    ref = format_ref(record)

    with pytest.raises(CollisionActionError, match="--reason") as caught:
        collision_actions.waive(session, small_policy, ref, actor=MANAGER, reason=reason)

    assert ref in str(caught.value)
    assert record.status == CollisionStatus.OPEN
    assert record.waived_by is None


def test_a_resolved_collision_cannot_be_waived(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)
    move_t2_out(session, registry)
    recheck(session, small_policy, today=TODAY)
    assert record.status == CollisionStatus.RESOLVED

    with pytest.raises(CollisionActionError, match="resolved") as caught:
        collision_actions.waive(
            session, small_policy, format_ref(record), actor=MANAGER, reason=REASON
        )

    assert format_ref(record) in str(caught.value)
    assert (record.status, record.waived_by) == (CollisionStatus.RESOLVED, None)


def test_a_waived_collision_cannot_be_waived_again(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    ref = format_ref(surface_record(session))
    collision_actions.waive(session, small_policy, ref, actor=MANAGER, reason=REASON)

    with pytest.raises(CollisionActionError, match="only open or acknowledged") as caught:
        collision_actions.waive(session, small_policy, ref, actor=MANAGER, reason="again")

    assert ref in str(caught.value)
    assert surface_record(session).waiver_reason == REASON


def test_a_waived_collision_cannot_be_acknowledged(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    ref = format_ref(surface_record(session))
    collision_actions.waive(session, small_policy, ref, actor=MANAGER, reason=REASON)

    with pytest.raises(CollisionActionError, match="only open collisions"):
        collision_actions.acknowledge(session, small_policy, ref, actor=SQUAD_MEMBER)

    assert surface_record(session).status == CollisionStatus.WAIVED


# --------------------------------------------------------------------------- edits


def test_editing_a_test_out_of_the_overlap_resolves_its_collision(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)
    others = {c.id for c in records(session)} - {record.id}

    move_t2_out(session, registry)
    _, report = recheck(session, small_policy, today=TODAY)

    assert report.resolved == [record]
    assert report.opened == []
    assert record.status == CollisionStatus.RESOLVED
    assert record.resolved_at is not None
    assert set(report.kept) == others
    assert all(c.status == CollisionStatus.OPEN for c in records(session) if c.id in others)
    assert collision_service.list_collisions(
        session, statuses=[CollisionStatus.OPEN], severities=[Severity.BLOCKING]
    ) == [cap_record(session)]


def test_a_resolved_collision_stays_resolved_while_the_clash_is_gone(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)
    move_t2_out(session, registry)
    recheck(session, small_policy, today=TODAY)
    resolved_at = record.resolved_at

    _, report = recheck(session, small_policy, today=TODAY)

    assert record not in report.resolved
    assert (record.status, record.resolved_at) == (CollisionStatus.RESOLVED, resolved_at)


def test_editing_it_back_reopens_the_same_record(
    session: Session, small_policy: Policy, registry: dict[str, Experiment]
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)
    move_t2_out(session, registry)
    recheck(session, small_policy, today=TODAY)

    move_t2_back(session, registry)
    _, report = recheck(session, small_policy, today=TODAY)

    assert report.reopened == [record]
    assert report.opened == []
    assert surface_record(session).id == record.id
    assert record.status == CollisionStatus.OPEN
    assert record.resolved_at is None
    assert row_count(session) == 3


@pytest.mark.parametrize(
    "status",
    [
        "acknowledged",
        "waived",
    ],
)
def test_a_reopened_record_does_not_claim_an_acknowledgement_or_waiver_it_no_longer_has(
    session: Session, small_policy: Policy, registry: dict[str, Experiment], status: str
) -> None:
    recheck(session, small_policy, today=TODAY)
    record = surface_record(session)
    ref = format_ref(record)
    if status == "waived":
        collision_actions.waive(session, small_policy, ref, actor=MANAGER, reason=REASON)
    else:
        collision_actions.acknowledge(session, small_policy, ref, actor=SQUAD_MEMBER)
    move_t2_out(session, registry)
    recheck(session, small_policy, today=TODAY)

    move_t2_back(session, registry)
    recheck(session, small_policy, today=TODAY)

    shown = collision_record(record)
    if shown["status"] == "open":
        assert (shown["acknowledged_by"], shown["waived_by"], shown["waiver_reason"]) == (
            None,
            None,
            None,
        )
    else:  # the record came back in the state it was in: also consistent
        assert shown["status"] == status


def test_listings_put_blocking_then_warnings_then_info_whatever_they_are_stored_as(
    session: Session,
) -> None:
    for number, severity in enumerate([Severity.INFO, Severity.WARNING, Severity.BLOCKING]):
        session.add(
            Collision(
                fingerprint=f"ordering-{number}",
                kind=CollisionKind.SURFACE,
                severity=severity,
                details={"keys": []},
            )
        )
    session.flush()

    listed = [c.severity for c in collision_service.list_collisions(session)]
    paged = collision_service.collision_page(session, limit=2)
    assert listed == [Severity.BLOCKING, Severity.WARNING, Severity.INFO]
    assert [row.severity for row in paged.items] == [Severity.BLOCKING, Severity.WARNING]
    assert paged.total == 3


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def hero_database(scratch_database_url: str, tmp_path: Path) -> str:
    """The retail policy's three hero tests, imported: they clash on the home page's hero."""
    import_hero_tests(scratch_database_url, tmp_path, date(2027, 3, 1), HERO_TESTS)
    return scratch_database_url


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["ack", "C-99999999999999999999", "--by", "U0ANNA"],
            "'C-99999999999999999999' is too big a collision id (the largest is C-2147483647)",
        ),
        (
            ["waive", "C-9223372036854775808", "--by", MANAGER, "--reason", REASON],
            "'C-9223372036854775808' is too big a collision id (the largest is C-2147483647)",
        ),
        (["ack", "c-1", "--by", "U0ANNA"], "there is no collision 'c-1': collision ids look like"),
        (
            ["waive", "c-1", "--by", MANAGER, "--reason", REASON],
            "there is no collision 'c-1': collision ids look like C-12",
        ),
        (["ack", "C-999", "--by", "U0ANNA"], "there is no collision C-999"),
        (
            ["sla", "T-99999999999999999999"],
            "'T-99999999999999999999' is too big a key (the largest is T-2147483647)",
        ),
        (["sla", "T-999"], "there is no test T-999"),
        (["sla", "C-999"], "there is no collision C-999"),
        (["sla", "c-1"], "there is no collision 'c-1': collision ids look like C-12"),
        (["sla", "C-99999999999999999999"], "is too big a collision id"),
    ],
)
def test_a_reference_that_names_nothing_is_refused_on_the_command_line(
    hero_database: str, args: list[str], message: str
) -> None:
    listed = succeeded(tower(hero_database, "conflicts", "--all", "--format", "json")).stdout
    assert json.loads(listed), "the hero tests clash"

    result = failed(tower(hero_database, *args))

    assert message in " ".join(result.output.split())
    assert (
        succeeded(tower(hero_database, "conflicts", "--all", "--format", "json")).stdout == listed
    )


def test_a_bare_collision_number_is_still_a_reference_on_the_command_line(
    hero_database: str,
) -> None:
    [first, *_] = json.loads(
        succeeded(tower(hero_database, "conflicts", "--all", "--format", "json")).stdout
    )
    number = first["id"].removeprefix("C-")

    result = succeeded(tower(hero_database, "ack", number, "--by", "U0ANNA"))

    assert f"{first['id']} acknowledged by U0ANNA" in result.output
    assert succeeded(tower(hero_database, "sla", first["id"])).output
