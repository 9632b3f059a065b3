"""The ORM models against a real, migrated database: round trips, time zones, the optimistic
lock, the database's own constraints and what deleting a test takes with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from tower import migrate
from tower.audit.models import AuditEvent
from tower.collisions.models import Collision, CollisionStatus, collision_experiments
from tower.db import UtcDateTime, create_database_engine, create_session_factory, utcnow
from tower.engine.kinds import CollisionKind, Severity
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentKind, ExperimentSpec, ExperimentStatus
from tower.protocol.models import Decision, DecisionKind

BERLIN_SUMMER = timezone(timedelta(hours=2))


def make_experiment(number: int = 1, **overrides: Any) -> Experiment:
    """A valid test with every field set; `overrides` replace any of them."""
    fields: dict[str, Any] = {
        "number": number,
        "title": f"Shorter cart {number}",
        "team": "checkout-squad",
        "owner": "U0ANNA",
        "kind": ExperimentKind.MULTIVARIATE,
        "surfaces": ["web/checkout/cart", "web/checkout/payment"],
        "audiences": ["logged_in", "app_users"],
        "exclude_audiences": ["loyalty"],
        "start": date(2026, 3, 2),
        "end": date(2026, 3, 30),
        "traffic": 37.5,
        "exclusion_group": "checkout-layout",
        "primary_kpi": "conversion_rate",
        "baseline": 0.0312,
        "mde": 0.05,
        "hypothesis": "A shorter cart converts better.",
        "impact": 2.0,
        "confidence": 0.8,
        "effort_weeks": 1.5,
        "status": ExperimentStatus.CHANGES_REQUESTED,
        "created_by": "U0BEN",
    }
    fields.update(overrides)
    return Experiment(**fields)


def count(session: Session, model: Any) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def scratch_engine(scratch_database_url: str) -> Iterator[Engine]:
    """A migrated database of this test's own, for tests that need several connections."""
    migrate.upgrade(scratch_database_url)
    engine = create_database_engine(scratch_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(scratch_engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(scratch_engine)


# --- Round trips ----------------------------------------------------------------------------


def test_every_field_of_a_test_round_trips(session: Session) -> None:
    written = make_experiment(number=42)
    session.add(written)
    session.commit()
    identity = written.id
    session.expunge_all()

    read = session.get(Experiment, identity)
    assert read is not None and read is not written
    assert read.number == 42
    assert read.key == "T-42"
    assert read.title == "Shorter cart 42"
    assert read.team == "checkout-squad"
    assert read.owner == "U0ANNA"
    assert read.kind is ExperimentKind.MULTIVARIATE
    assert read.surfaces == ["web/checkout/cart", "web/checkout/payment"]
    assert read.audiences == ["logged_in", "app_users"]
    assert read.exclude_audiences == ["loyalty"]
    assert read.start == date(2026, 3, 2)
    assert read.end == date(2026, 3, 30)
    assert type(read.start) is date and type(read.end) is date
    assert read.traffic == 37.5
    assert read.exclusion_group == "checkout-layout"
    assert read.primary_kpi == "conversion_rate"
    assert read.baseline == 0.0312
    assert read.mde == 0.05
    assert read.hypothesis == "A shorter cart converts better."
    assert read.impact == 2.0
    assert read.confidence == 0.8
    assert read.effort_weeks == 1.5
    assert read.status is ExperimentStatus.CHANGES_REQUESTED
    assert read.version == 1
    assert read.created_by == "U0BEN"
    assert read.created_at.tzinfo is not None and read.updated_at.tzinfo is not None
    assert read.spec() == written.spec()


def test_optional_fields_and_empty_lists_round_trip(session: Session) -> None:
    written = make_experiment(
        number=7,
        kind=ExperimentKind.RELEASE,
        audiences=[],
        exclude_audiences=[],
        traffic=100.0,
        exclusion_group=None,
        primary_kpi=None,
        baseline=None,
        mde=None,
        hypothesis="",
        impact=None,
        confidence=None,
        effort_weeks=None,
        status=ExperimentStatus.DRAFT,
    )
    session.add(written)
    session.commit()
    identity = written.id
    session.expunge_all()

    read = session.get(Experiment, identity)
    assert read is not None
    assert read.audiences == [] and read.exclude_audiences == []
    assert read.traffic == 100.0
    for name in ("exclusion_group", "primary_kpi", "baseline", "mde", "impact"):
        assert getattr(read, name) is None
    assert read.confidence is None and read.effort_weeks is None
    assert read.spec() == written.spec()


def test_spec_and_apply_round_trip_through_the_database(session: Session) -> None:
    source = make_experiment(number=3)
    spec = source.spec()
    assert isinstance(spec, ExperimentSpec)
    assert spec.surfaces == ("web/checkout/cart", "web/checkout/payment")

    target = make_experiment(number=4, title="Other", surfaces=["email"], traffic=10.0)
    target.apply(spec)
    assert target.surfaces == ["web/checkout/cart", "web/checkout/payment"]
    session.add(target)
    session.commit()
    identity = target.id
    session.expunge_all()

    read = session.get(Experiment, identity)
    assert read is not None
    assert read.spec() == spec
    assert read.number == 4  # apply sets the editable fields, never the identity


@pytest.mark.parametrize("number", [1, 9, 10, 1234])
def test_key_is_t_dash_number(number: int) -> None:
    experiment = make_experiment(number=number)
    assert experiment.key == f"T-{number}"
    assert re.fullmatch(r"T-[1-9][0-9]*", experiment.key)
    assert repr(experiment).startswith(f"<Experiment T-{number} ")


def test_enums_are_stored_by_value(session: Session) -> None:
    session.add(make_experiment(number=5, kind=ExperimentKind.AB_TEST))
    session.commit()
    row = session.execute(text("SELECT kind, status FROM experiments WHERE number = 5")).one()
    assert tuple(row) == ("ab_test", "changes_requested")


@pytest.mark.parametrize("kind", list(ExperimentKind))
def test_every_kind_round_trips(session: Session, kind: ExperimentKind) -> None:
    session.add(make_experiment(number=11, kind=kind))
    session.commit()
    session.expunge_all()
    assert session.scalars(select(Experiment.kind).where(Experiment.number == 11)).one() is kind


@pytest.mark.parametrize("status", list(ExperimentStatus))
def test_every_status_round_trips(session: Session, status: ExperimentStatus) -> None:
    session.add(make_experiment(number=12, status=status))
    session.commit()
    session.expunge_all()
    stored = session.scalars(select(Experiment.status).where(Experiment.number == 12)).one()
    assert stored is status


def test_an_unknown_enum_value_in_the_database_is_not_silently_accepted(
    session: Session,
) -> None:
    session.add(make_experiment(number=13))
    session.commit()
    session.execute(text("UPDATE experiments SET status = 'bogus' WHERE number = 13"))
    session.expunge_all()
    with pytest.raises(LookupError):
        session.scalars(select(Experiment).where(Experiment.number == 13)).one()


def test_json_lists_can_be_filtered_in_python_after_loading(session: Session) -> None:
    session.add_all([make_experiment(number=20), make_experiment(number=21, surfaces=["email"])])
    session.commit()
    session.expunge_all()
    loaded = session.scalars(select(Experiment).order_by(Experiment.number)).all()
    assert [e.key for e in loaded if "email" in e.surfaces] == ["T-21"]


# --- Timestamps -----------------------------------------------------------------------------


def test_timestamps_default_to_now_and_come_back_aware_in_utc(session: Session) -> None:
    before = utcnow()
    written = make_experiment(number=30)
    session.add(written)
    session.commit()
    after = utcnow()
    identity = written.id
    session.expunge_all()

    read = session.get(Experiment, identity)
    assert read is not None
    for moment in (read.created_at, read.updated_at):
        assert moment.tzinfo is not None
        assert moment.utcoffset() == timedelta(0)
        assert before <= moment <= after


def test_an_aware_timestamp_in_another_zone_is_stored_as_the_same_instant_in_utc(
    session: Session,
) -> None:
    local = datetime(2026, 6, 1, 14, 30, 15, 123456, tzinfo=BERLIN_SUMMER)
    written = make_experiment(number=31, created_at=local)
    session.add(written)
    session.commit()
    identity = written.id
    session.expunge_all()

    read = session.get(Experiment, identity)
    assert read is not None
    assert read.created_at == local
    assert read.created_at.utcoffset() == timedelta(0)
    assert read.created_at.replace(tzinfo=None) == datetime(2026, 6, 1, 12, 30, 15, 123456)


def test_a_naive_timestamp_is_refused(session: Session) -> None:
    session.add(make_experiment(number=32, created_at=datetime(2026, 6, 1, 12, 0)))
    with pytest.raises(StatementError, match="naive datetime") as caught:
        session.flush()
    assert isinstance(caught.value.orig, ValueError)
    session.rollback()
    assert count(session, Experiment) == 0


def test_a_naive_timestamp_is_refused_in_a_query_too(session: Session) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        session.execute(select(Experiment).where(Experiment.created_at < datetime(2026, 1, 1)))


def test_utc_datetime_type_converts_on_its_own() -> None:
    column_type = UtcDateTime()
    dialect = create_database_engine("sqlite://").dialect
    local = datetime(2026, 1, 1, 9, 0, tzinfo=BERLIN_SUMMER)
    bound = column_type.process_bind_param(local, dialect)
    assert bound == local and bound is not None and bound.tzinfo == UTC
    assert column_type.process_bind_param(None, dialect) is None
    naive = datetime(2026, 1, 1, 7, 0)
    assert column_type.process_result_value(naive, dialect) == naive.replace(tzinfo=UTC)
    assert column_type.process_result_value(local, dialect) == local
    assert column_type.process_result_value(None, dialect) is None
    with pytest.raises(ValueError, match="naive datetime"):
        column_type.process_bind_param(naive, dialect)


def test_timestamps_can_be_compared_in_queries(session: Session) -> None:
    session.add_all(
        [
            make_experiment(number=33, created_at=datetime(2026, 1, 1, 23, 30, tzinfo=UTC)),
            make_experiment(
                number=34, created_at=datetime(2026, 1, 2, 0, 30, tzinfo=BERLIN_SUMMER)
            ),
        ]
    )
    session.commit()
    # 00:30 at +02:00 is 22:30 UTC the day before: earlier than the first test.
    numbers = session.scalars(select(Experiment.number).order_by(Experiment.created_at)).all()
    assert list(numbers) == [34, 33]
    cutoff = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)
    later = session.scalars(select(Experiment.number).where(Experiment.created_at > cutoff))
    assert list(later) == [33]


# --- The optimistic lock --------------------------------------------------------------------


def test_version_starts_at_one_and_each_change_bumps_it_and_updated_at(
    session: Session,
) -> None:
    experiment = make_experiment(number=40, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    experiment.updated_at = datetime(2026, 1, 1, tzinfo=UTC)
    session.add(experiment)
    session.commit()
    assert experiment.version == 1

    experiment.title = "Renamed"
    session.commit()
    assert experiment.version == 2
    assert experiment.updated_at > datetime(2026, 1, 1, tzinfo=UTC)
    assert experiment.created_at == datetime(2026, 1, 1, tzinfo=UTC)

    experiment.surfaces = [*experiment.surfaces, "web/home"]
    session.commit()
    assert experiment.version == 3
    session.expunge_all()
    read = session.get(Experiment, experiment.id)
    assert read is not None
    assert read.version == 3
    assert read.surfaces == ["web/checkout/cart", "web/checkout/payment", "web/home"]


def test_a_second_session_with_a_stale_copy_cannot_overwrite_the_first(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as setup:
        setup.add(make_experiment(number=50, title="Original"))

    with sessions() as first, sessions() as second:
        # Each reads and ends its transaction, as Tower's edges do between loading and
        # saving (on SQLite a transaction holds the write lock from its start).
        mine = first.scalars(select(Experiment).where(Experiment.number == 50)).one()
        first.commit()
        theirs = second.scalars(select(Experiment).where(Experiment.number == 50)).one()
        second.commit()
        assert mine.version == theirs.version == 1

        mine.title = "First edit"
        theirs.title = "Second edit"
        theirs.traffic = 10.0
        first.commit()
        assert mine.version == 2

        with pytest.raises(StaleDataError):
            second.commit()
        second.rollback()

    with sessions() as check:
        stored = check.scalars(select(Experiment).where(Experiment.number == 50)).one()
        assert stored.title == "First edit"
        assert stored.traffic == 37.5
        assert stored.version == 2


def test_a_stale_delete_is_refused_too(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as setup:
        setup.add(make_experiment(number=51))

    with sessions() as first, sessions() as second:
        mine = first.scalars(select(Experiment).where(Experiment.number == 51)).one()
        first.commit()
        theirs = second.scalars(select(Experiment).where(Experiment.number == 51)).one()
        second.commit()

        mine.title = "Edited"
        first.commit()
        second.delete(theirs)
        with pytest.raises(StaleDataError):
            second.commit()
        second.rollback()

    with sessions() as check:
        assert check.scalars(select(Experiment.title).where(Experiment.number == 51)).one() == (
            "Edited"
        )


def test_a_session_that_reloads_after_a_conflict_can_save(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as setup:
        setup.add(make_experiment(number=52))

    with sessions() as first, sessions() as second:
        mine = first.scalars(select(Experiment).where(Experiment.number == 52)).one()
        first.commit()
        theirs = second.scalars(select(Experiment).where(Experiment.number == 52)).one()
        second.commit()
        mine.title = "First"
        first.commit()
        theirs.title = "Second"
        with pytest.raises(StaleDataError):
            second.commit()
        second.rollback()

        second.refresh(theirs)
        assert theirs.title == "First" and theirs.version == 2
        theirs.title = "Second, after reading the first"
        second.commit()
        assert theirs.version == 3


# --- The database's own constraints ---------------------------------------------------------


def test_the_database_refuses_a_window_that_ends_before_it_starts(session: Session) -> None:
    session.add(make_experiment(number=60, start=date(2026, 3, 30), end=date(2026, 3, 2)))
    with pytest.raises(IntegrityError, match="ck_experiments_window_in_order"):
        session.flush()


def test_a_one_day_window_is_allowed(session: Session) -> None:
    session.add(make_experiment(number=61, start=date(2026, 3, 2), end=date(2026, 3, 2)))
    session.flush()


@pytest.mark.parametrize("traffic", [0.0, -5.0, 100.01, 150.0])
def test_the_database_refuses_traffic_outside_a_percentage(
    session: Session, traffic: float
) -> None:
    session.add(make_experiment(number=62, traffic=traffic))
    with pytest.raises(IntegrityError, match="ck_experiments_traffic_is_percent"):
        session.flush()


@pytest.mark.parametrize("traffic", [0.01, 1.0, 100.0])
def test_the_database_accepts_traffic_within_a_percentage(session: Session, traffic: float) -> None:
    session.add(make_experiment(number=63, traffic=traffic))
    session.flush()


@pytest.mark.parametrize("number", [0, -1])
def test_the_database_refuses_a_number_below_one(session: Session, number: int) -> None:
    session.add(make_experiment(number=number))
    with pytest.raises(IntegrityError, match="ck_experiments_number_positive"):
        session.flush()


def test_the_database_refuses_an_update_that_breaks_a_constraint(session: Session) -> None:
    experiment = make_experiment(number=64)
    session.add(experiment)
    session.commit()
    experiment.traffic = 150.0
    with pytest.raises(IntegrityError, match="ck_experiments_traffic_is_percent"):
        session.flush()


def test_numbers_are_unique(session: Session) -> None:
    session.add(make_experiment(number=70))
    session.flush()
    session.add(make_experiment(number=70, title="Another test"))
    with pytest.raises(IntegrityError, match="number"):
        session.flush()


def test_collision_fingerprints_are_unique(session: Session) -> None:
    for _ in range(2):
        session.add(
            Collision(fingerprint="surface:1:2", kind=CollisionKind.SURFACE, severity=Severity.INFO)
        )
    with pytest.raises(IntegrityError, match="fingerprint"):
        session.flush()


@pytest.mark.parametrize(
    "missing", ["title", "team", "owner", "kind", "start", "end", "traffic", "status"]
)
def test_required_fields_are_required_by_the_database(session: Session, missing: str) -> None:
    experiment = make_experiment(number=71)
    setattr(experiment, missing, None)
    session.add(experiment)
    with pytest.raises(IntegrityError):
        session.flush()


@pytest.mark.parametrize("missing", ["surfaces", "audiences", "exclude_audiences"])
def test_list_fields_are_required_by_the_database(session: Session, missing: str) -> None:
    experiment = make_experiment(number=72)
    setattr(experiment, missing, None)
    session.add(experiment)
    with pytest.raises(IntegrityError):
        session.flush()


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(
        Decision(
            experiment_id=999_999,
            kind=DecisionKind.APPROVE,
            actor="U0TOWERMGR",
            experiment_version=1,
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()


def test_sqlite_connections_have_foreign_keys_on(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite pragma")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1


# --- Deleting a test ------------------------------------------------------------------------


def test_deleting_a_test_cascades_its_decisions_and_collision_links_but_keeps_its_audit(
    session: Session,
) -> None:
    doomed, survivor = make_experiment(number=80), make_experiment(number=81)
    session.add_all([doomed, survivor])
    session.flush()
    session.add_all(
        [
            Decision(
                experiment_id=doomed.id,
                kind=DecisionKind.REQUEST_CHANGES,
                actor="U0TOWERMGR",
                reason="Too much traffic.",
                experiment_version=1,
            ),
            Decision(
                experiment_id=doomed.id,
                kind=DecisionKind.APPROVE,
                actor="U0TOWERMGR",
                experiment_version=2,
            ),
            Decision(
                experiment_id=survivor.id,
                kind=DecisionKind.APPROVE,
                actor="U0TOWERMGR",
                experiment_version=1,
            ),
            AuditEvent(
                experiment_id=doomed.id,
                actor="U0ANNA",
                action="create",
                after={"title": doomed.title},
            ),
            AuditEvent(experiment_id=survivor.id, actor="U0ANNA", action="create"),
            Collision(
                fingerprint="surface:80:81",
                kind=CollisionKind.SURFACE,
                severity=Severity.BLOCKING,
                experiments=[doomed, survivor],
            ),
        ]
    )
    session.commit()
    doomed_id, survivor_id = doomed.id, survivor.id
    session.expunge_all()

    loaded = session.get(Experiment, doomed_id)
    assert loaded is not None
    session.delete(loaded)
    session.commit()
    session.expunge_all()

    assert session.get(Experiment, doomed_id) is None
    decisions = session.scalars(select(Decision.experiment_id)).all()
    assert list(decisions) == [survivor_id]
    links = session.execute(select(collision_experiments.c.experiment_id)).scalars().all()
    assert list(links) == [survivor_id]
    collision = session.scalars(select(Collision)).one()  # the collision itself remains
    assert [e.number for e in collision.experiments] == [81]

    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert len(events) == 2
    assert events[0].experiment_id is None
    assert events[0].action == "create" and events[0].after == {"title": "Shorter cart 80"}
    assert events[1].experiment_id == survivor_id


def test_deleting_a_test_with_a_bulk_statement_cascades_the_same_way(session: Session) -> None:
    experiment = make_experiment(number=82)
    session.add(experiment)
    session.flush()
    session.add_all(
        [
            Decision(
                experiment_id=experiment.id,
                kind=DecisionKind.REJECT,
                actor="U0TOWERMGR",
                experiment_version=1,
            ),
            AuditEvent(experiment_id=experiment.id, actor="U0ANNA", action="create"),
            Collision(
                fingerprint="capacity:82",
                kind=CollisionKind.CAPACITY,
                severity=Severity.WARNING,
                experiments=[experiment],
            ),
        ]
    )
    session.commit()
    session.execute(text("DELETE FROM experiments WHERE number = 82"))
    session.expunge_all()
    assert count(session, Decision) == 0
    assert count(session, collision_experiments) == 0
    assert session.scalars(select(AuditEvent.experiment_id)).all() == [None]


def test_deleting_a_collision_unlinks_its_tests_but_keeps_them(session: Session) -> None:
    tests = [make_experiment(number=n) for n in (83, 84)]
    collision = Collision(
        fingerprint="surface:83:84",
        kind=CollisionKind.SURFACE,
        severity=Severity.BLOCKING,
        experiments=tests,
    )
    session.add(collision)
    session.commit()
    session.delete(collision)
    session.commit()
    session.expunge_all()
    assert count(session, collision_experiments) == 0
    assert count(session, Experiment) == 2


# --- Collisions -----------------------------------------------------------------------------


def test_a_collision_links_several_tests(session: Session) -> None:
    tests = [make_experiment(number=n) for n in (90, 91, 92)]
    bystander = make_experiment(number=93)
    collision = Collision(
        fingerprint="capacity:web/checkout:2026-03",
        kind=CollisionKind.CAPACITY,
        severity=Severity.WARNING,
        agile_vs_bau=True,
        explanation="Three tests share the checkout's traffic.",
        details={"surface": "web/checkout", "total_traffic": 112.5, "weeks": ["2026-W10"]},
        experiments=tests,
    )
    session.add_all([collision, bystander])
    session.commit()
    identity = collision.id
    session.expunge_all()

    read = session.get(Collision, identity)
    assert read is not None
    assert sorted(e.key for e in read.experiments) == ["T-90", "T-91", "T-92"]
    assert read.kind is CollisionKind.CAPACITY
    assert read.severity is Severity.WARNING
    assert read.status is CollisionStatus.OPEN
    assert read.agile_vs_bau is True
    assert read.explanation == "Three tests share the checkout's traffic."
    assert read.details == {
        "surface": "web/checkout",
        "total_traffic": 112.5,
        "weeks": ["2026-W10"],
    }
    assert read.opened_at.tzinfo is not None and read.opened_at.utcoffset() == timedelta(0)
    assert read.resolved_at is None
    assert read.acknowledged_by is None and read.waived_by is None
    assert read.waiver_reason is None
    assert count(session, collision_experiments) == 3


def test_a_collision_defaults_to_open_with_empty_details(session: Session) -> None:
    collision = Collision(fingerprint="funnel:1", kind=CollisionKind.FUNNEL, severity=Severity.INFO)
    session.add(collision)
    session.commit()
    session.expunge_all()
    read = session.scalars(select(Collision)).one()
    assert read.status is CollisionStatus.OPEN
    assert read.details == {}
    assert read.explanation == ""
    assert read.agile_vs_bau is False
    assert read.experiments == []


def test_a_test_can_be_in_several_collisions(session: Session) -> None:
    shared, a, b = (make_experiment(number=n) for n in (100, 101, 102))
    session.add_all(
        [
            Collision(
                fingerprint="surface:100:101",
                kind=CollisionKind.SURFACE,
                severity=Severity.BLOCKING,
                experiments=[shared, a],
            ),
            Collision(
                fingerprint="contact_cap:100:102",
                kind=CollisionKind.CONTACT_CAP,
                severity=Severity.WARNING,
                experiments=[shared, b],
            ),
        ]
    )
    session.commit()
    session.expunge_all()
    involving = session.scalars(
        select(Collision.fingerprint)
        .join(collision_experiments)
        .join(Experiment)
        .where(Experiment.number == 100)
        .order_by(Collision.fingerprint)
    ).all()
    assert list(involving) == ["contact_cap:100:102", "surface:100:101"]


def test_a_test_cannot_be_linked_twice_to_the_same_collision(session: Session) -> None:
    experiment = make_experiment(number=110)
    collision = Collision(
        fingerprint="surface:110", kind=CollisionKind.SURFACE, severity=Severity.INFO
    )
    session.add_all([experiment, collision])
    session.flush()
    statement = collision_experiments.insert().values(
        collision_id=collision.id, experiment_id=experiment.id
    )
    session.execute(statement)
    with pytest.raises(IntegrityError):
        session.execute(statement)


def test_a_resolved_collision_keeps_who_and_when(session: Session) -> None:
    resolved_at = datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN_SUMMER)
    collision = Collision(
        fingerprint="surface:waived",
        kind=CollisionKind.SURFACE,
        severity=Severity.BLOCKING,
        status=CollisionStatus.WAIVED,
        resolved_at=resolved_at,
        acknowledged_by="U0TOWERMGR",
        waived_by="U0TOWERMGR",
        waiver_reason="Different audiences in practice.",
    )
    session.add(collision)
    session.commit()
    session.expunge_all()
    read = session.scalars(select(Collision)).one()
    assert read.status is CollisionStatus.WAIVED
    assert read.resolved_at == resolved_at
    assert read.resolved_at is not None and read.resolved_at.utcoffset() == timedelta(0)
    assert read.waived_by == "U0TOWERMGR"
    assert read.waiver_reason == "Different audiences in practice."


# --- Decisions and audit events -------------------------------------------------------------


def test_a_decision_round_trips(session: Session) -> None:
    experiment = make_experiment(number=120)
    session.add(experiment)
    session.flush()
    session.add(
        Decision(
            experiment_id=experiment.id,
            kind=DecisionKind.REQUEST_CHANGES,
            actor="U0TOWERMGR",
            reason="Lower the traffic.",
            experiment_version=experiment.version,
        )
    )
    session.commit()
    session.expunge_all()
    read = session.scalars(select(Decision)).one()
    assert read.kind is DecisionKind.REQUEST_CHANGES
    assert read.reason == "Lower the traffic."
    assert read.experiment_version == 1
    assert read.voided is False
    assert read.decided_at.utcoffset() == timedelta(0)


def test_an_audit_event_round_trips_its_snapshots(session: Session) -> None:
    before: dict[str, Any] = {"traffic": 50.0, "surfaces": ["web/home"], "kpi": None}
    after: dict[str, Any] = {"traffic": 25.0, "surfaces": ["web/home", "email"], "kpi": "x"}
    session.add(
        AuditEvent(actor="U0ANNA", action="edit", reason="Smaller", before=before, after=after)
    )
    session.add(AuditEvent(actor="system", action="note"))
    session.commit()
    session.expunge_all()
    edit, note = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert edit.experiment_id is None
    assert edit.before == before and edit.after == after
    assert edit.reason == "Smaller"
    assert edit.at.utcoffset() == timedelta(0)
    assert note.before is None and note.after is None and note.reason == ""


def test_every_model_table_is_in_the_migrated_database(engine: Engine) -> None:
    from tower.models import Base

    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
