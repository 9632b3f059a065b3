"""The spine: a change re-checks only what it touches, a read never writes, and every
collision a resync opens is announced.

- Incremental equals full: after any sequence of changes, each through the write path,
  the live collision records are exactly what a full re-check of the registry finds.
- Reads never write: every CLI read, with and without `--today`, leaves every table as it
  was, even when the records are out of step with the policy in force.
- The lost alert: tighten the policy, read, sweep: the new collisions are open, and each
  open blocking one is named by an outbox message and has an acknowledgement clock.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.cli import succeeded, tower
from tests.support.databases import table_contents
from tests.support.engine_policy import POLICY, day, item, portfolios
from tests.support.factories import HERO_TESTS, import_hero_tests
from tests.support.files import RETAIL_POLICY, RETAIL_PORTFOLIO
from tower.cli import main
from tower.collisions.models import Collision
from tower.collisions.service import LIVE_STATUSES
from tower.collisions.sync import finding_details
from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory, read_only
from tower.engine.analysis import analyse
from tower.engine.kinds import CollisionKind
from tower.engine.mde_cost import SampleNeedsByKey
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.pipeline import flows, registry, slots
from tower.pipeline.index import portfolio_items, warm_index
from tower.pipeline.resync import recheck_all
from tower.policy import load_policy

TODAY = date(2027, 1, 4)
CTX = ServiceContext.create(POLICY, datetime.combine(TODAY, time(12), tzinfo=UTC))

# -- incremental equals full ------------------------------------------------------------


def record_facts(session: Session) -> dict[str, tuple[Any, ...]]:
    """What the live records say, by fingerprint (fixes aside: they cite the last plan)."""
    query = select(Collision).where(Collision.status.in_(LIVE_STATUSES))
    return {
        record.fingerprint: (
            record.kind,
            record.severity,
            record.explanation,
            {name: value for name, value in record.details.items() if name != "fixes"},
        )
        for record in session.scalars(query)
    }


def full_facts(session: Session) -> dict[str, tuple[Any, ...]]:
    """What a full re-check of the registry finds, in the records' terms."""
    analysis = analyse(portfolio_items(session), POLICY, today=TODAY)
    teams = {key: footprint.item.spec.team for key, footprint in analysis.footprints.items()}
    needs = SampleNeedsByKey(analysis.footprints, analysis.compiler)
    facts = {}
    for finding in analysis.findings:
        details = finding_details(finding, teams, (), needs)
        del details["fixes"]
        facts[finding.fingerprint] = (
            finding.kind,
            finding.severity,
            finding.explanation,
            details,
        )
    return facts


CHANGES = st.sampled_from(
    ["move", "stretch", "surface", "audience", "group", "leave", "back", "copy"]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    portfolios(),
    st.lists(st.tuples(st.integers(0, 7), CHANGES, st.integers(0, 30)), min_size=1, max_size=6),
    st.booleans(),
)
def test_after_any_changes_the_records_equal_a_full_recheck(
    session: Session, items: list[Any], changes: list[tuple[int, str, int]], checked: bool
) -> None:
    nested = session.begin_nested()
    try:
        rows = [
            experiment_service.create(
                session,
                number=item.number,
                spec=item.spec,
                status=ExperimentStatus.SUBMITTED,
                actor=item.spec.owner,
            )
            for item in sorted(items, key=lambda i: i.number)
        ]
        if checked:  # records start from a full check, or from nothing (a new database)
            recheck_all(session, CTX)
        for position, change, amount in changes:
            experiment = _changed(session, rows, rows[position % len(rows)], change, amount)
            flows.record_change(session, CTX, [experiment])
        if not checked:
            recheck_all(session, CTX)  # the safety net, then more changes on top
            for position, change, amount in changes:
                experiment = rows[(position + 1) % len(rows)]
                experiment = _changed(session, rows, experiment, change, amount + 3)
                flows.record_change(session, CTX, [experiment])
        assert record_facts(session) == full_facts(session)
    finally:
        nested.rollback()


def contact_crowds(session: Session) -> list[tuple[str, ...]]:
    """The keys of each live contact-cap record."""
    query = select(Collision).where(
        Collision.status.in_(LIVE_STATUSES), Collision.kind == CollisionKind.CONTACT_CAP
    )
    return sorted(tuple(record.details["keys"]) for record in session.scalars(query))


def test_a_test_joining_a_crowd_replaces_it_and_leaving_brings_it_back(session: Session) -> None:
    """Three e-mails to the same people in a week break the cap of two. A fourth that
    reaches them too makes one crowd of four: the crowd of three is resolved, not left
    open beside it. When the fourth is withdrawn, the crowd of three is open again."""
    nested = session.begin_nested()
    try:
        for number, (surface, first) in enumerate(
            [("email/promo", 1), ("email/newsletter", 3), ("email/promo", 5)], start=1
        ):
            spec = item(number, [surface], first, first, team="crm").spec
            experiment_service.create(
                session, number=number, spec=spec, status=ExperimentStatus.SUBMITTED, actor="U0"
            )
        recheck_all(session, CTX)
        assert contact_crowds(session) == [("T-1", "T-2", "T-3")]

        fourth = experiment_service.create(
            session,
            number=4,
            spec=item(4, ["email/newsletter"], 4, 4, team="crm").spec,
            status=ExperimentStatus.SUBMITTED,
            actor="U0",
        )
        flows.record_change(session, CTX, [fourth])
        assert contact_crowds(session) == [("T-1", "T-2", "T-3", "T-4")]
        assert record_facts(session) == full_facts(session)

        fourth.status = ExperimentStatus.WITHDRAWN
        flows.record_change(session, CTX, [fourth])
        assert contact_crowds(session) == [("T-1", "T-2", "T-3")]
        assert record_facts(session) == full_facts(session)
    finally:
        nested.rollback()


MOMENTS = itertools.count(1)
STATUSES = st.sampled_from(
    [
        ExperimentStatus.DRAFT,
        ExperimentStatus.SUBMITTED,
        ExperimentStatus.APPROVED,
        ExperimentStatus.LIVE,
    ]
)


def _registered(
    session: Session,
    items: list[Any],
    data: st.DataObject,
    *,
    leaving_out: frozenset[int] = frozenset(),
) -> list[Experiment]:
    """`items` (but the numbers `leaving_out`) registered in number order, each in a state
    drawn from `STATUSES`, some with a deadline (from their end to a few weeks after)."""
    registered = []
    for wanted in sorted(items, key=lambda i: i.number):
        if wanted.number in leaving_out:
            continue
        experiment = experiment_service.create(
            session,
            number=wanted.number,
            spec=wanted.spec,
            status=data.draw(STATUSES),
            actor=wanted.spec.owner,
        )
        slack = data.draw(st.none() | st.integers(0, 30))
        if slack is not None:
            experiment.deadline = wanted.spec.end + timedelta(days=slack)
        registered.append(experiment)
    return registered


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(portfolios(), st.data())
def test_the_slot_a_registrant_is_told_is_the_one_a_full_plan_gives(
    session: Session, items: list[Any], data: st.DataObject
) -> None:
    """The registration DM's "next free slot" builds on the stored plan instead of planning
    everything: with tests registered or changed after the plan, it is still the slot a
    full plan gives."""
    # Each example plans at its own moment: a warm index keeps the stored plan it read
    # until a plan made at another moment replaces it.
    ctx = replace(CTX, now=CTX.now + timedelta(microseconds=next(MOMENTS)))
    nested = session.begin_nested()
    try:
        # Tests registered after the plan may rank anywhere (an unscored test ranks by
        # its number, so the late ones take any numbers).
        late_count = data.draw(st.integers(1, min(3, len(items) - 1)))
        late_numbers = set(data.draw(st.permutations([i.number for i in items]))[:late_count])
        rows = _registered(session, items, data, leaving_out=frozenset(late_numbers))
        recheck_all(session, ctx)  # the stored plan
        change_one: bool = data.draw(st.booleans())
        if rows and change_one:  # a planned test changes after the plan
            changed = data.draw(st.sampled_from(rows))
            if data.draw(st.booleans()):
                changed.status = data.draw(STATUSES)
            else:
                _change(changed, data.draw(CHANGES), data.draw(st.integers(0, 30)))
            flows.record_change(session, ctx, [changed])
        for item in items:
            if item.number in late_numbers:
                late = experiment_service.create(
                    session,
                    number=item.number,
                    spec=item.spec,
                    status=data.draw(STATUSES),
                    actor=item.spec.owner,
                )
                flows.record_change(session, ctx, [late])
        full = analyse(portfolio_items(session), POLICY, today=TODAY).placements
        for key, placement in full.items():
            assert slots.placement_now(session, ctx, key) == placement, key
    finally:
        nested.rollback()


SLOT_CHANGES = st.sampled_from(
    [
        "move",
        "stretch",
        "surface",
        "audience",
        "group",
        "leave",
        "back",
        "copy",
        "live",
        "approve",
        "draft",
    ]
)
SET_STATUS = {
    "live": ExperimentStatus.LIVE,
    "approve": ExperimentStatus.APPROVED,
    "draft": ExperimentStatus.DRAFT,
}


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    portfolios(),
    st.lists(st.tuples(st.integers(0, 7), SLOT_CHANGES, st.integers(0, 30)), max_size=8),
    st.data(),
)
def test_slots_stay_those_of_a_full_plan_through_any_changes(
    session: Session, items: list[Any], changes: list[tuple[int, str, int]], data: st.DataObject
) -> None:
    """The warm index keeps its working plan from one slot to the next, bringing it up to
    date with each change since (registrations, edits, status moves, tests going live or
    leaving). Asked after some of the changes, or only at the end, every slot it gives is
    the one a full plan of the portfolio as it then is gives. So too in a server, whose
    slots stop replaying once the test asked about is placed and leave the rest to its
    keep-up, which may or may not have run in between."""
    ctx = replace(CTX, now=CTX.now + timedelta(microseconds=next(MOMENTS)))
    index = warm_index(session, POLICY, TODAY)
    index.kept_up = data.draw(st.booleans(), label="kept up by a server's thread")
    nested = session.begin_nested()
    try:
        rows = _registered(session, items, data)
        flows.record_change(session, ctx, rows)  # as an import does
        recheck_all(session, ctx)  # the stored plan the working plan starts from
        for position, change, amount in changes:
            experiment = rows[position % len(rows)]
            if change in SET_STATUS:
                experiment.status = SET_STATUS[change]
            else:
                experiment = _changed(session, rows, experiment, change, amount)
            flows.record_change(session, ctx, [experiment])
            if data.draw(st.booleans()):
                full = analyse(portfolio_items(session), POLICY, today=TODAY).placements
                if full:
                    asked = data.draw(st.sampled_from(sorted(full)))
                    assert slots.placement_now(session, ctx, asked) == full[asked], asked
            if index.kept_up and data.draw(st.booleans(), label="the keep-up runs"):
                slots.keep_up(session, ctx)
                plan = index.working_plan
                assert plan is None or plan.journal == index.view().journal  # settled
        full = analyse(portfolio_items(session), POLICY, today=TODAY).placements
        for key, placement in full.items():
            assert slots.placement_now(session, ctx, key) == placement, key
    finally:
        index.kept_up = False
        nested.rollback()


@pytest.mark.parametrize("after_the_plan", ["first moves away", "third goes live"])
def test_a_slot_never_builds_on_a_stored_window_its_test_has_since_left(
    session: Session, after_the_plan: str
) -> None:
    """T-1, T-2 and T-3 all want 1 June on `app`: the plan gives them 1, 2 and 3 June.
    When T-1 then moves to 10 June, or T-3 goes live on 1 June, T-2's slot changes even
    though no rank does: the stored windows of T-1 (and T-2) no longer hold."""
    ctx = replace(CTX, now=CTX.now + timedelta(microseconds=next(MOMENTS)))
    nested = session.begin_nested()
    try:
        rows = [
            experiment_service.create(
                session,
                number=n,
                spec=item(n, ["app"], 1, 1).spec,
                status=ExperimentStatus.APPROVED,
                actor="U0OWNER",
            )
            for n in (1, 2, 3)
        ]
        recheck_all(session, ctx)
        assert slots.placement_now(session, ctx, "T-2").planned_start == day(2)  # type: ignore[union-attr]
        if after_the_plan == "first moves away":
            rows[0].apply(item(1, ["app"], 10, 10).spec)
        else:
            rows[2].status = ExperimentStatus.LIVE
        flows.record_change(
            session, ctx, [rows[0] if after_the_plan == "first moves away" else rows[2]]
        )
        full = analyse(portfolio_items(session), POLICY, today=TODAY).placements
        assert full["T-2"].planned_start != day(2)
        assert slots.placement_now(session, ctx, "T-2") == full["T-2"]
    finally:
        nested.rollback()


def test_a_slot_moves_for_a_newcomer_met_only_through_the_channels_contact_cap(
    session: Session,
) -> None:
    """Email allows 2 sends a week. T-1 (promo, 1 June), T-3 and T-4 (newsletter, 5 June)
    are planned. T-2 (promo, 3 June) registers after the plan and ranks above T-3: T-3,
    which shares no surface with T-2, must move for the cap, so T-4's slot changes too."""
    ctx = replace(CTX, now=CTX.now + timedelta(microseconds=next(MOMENTS)))
    nested = session.begin_nested()
    try:
        for number, surface, on in (
            (1, "email/promo", 1),
            (3, "email/newsletter", 5),
            (4, "email/newsletter", 5),
        ):
            experiment_service.create(
                session,
                number=number,
                spec=item(number, [surface], on, on).spec,
                status=ExperimentStatus.APPROVED,
                actor="U0OWNER",
            )
        recheck_all(session, ctx)
        before = slots.placement_now(session, ctx, "T-4")
        late = experiment_service.create(
            session,
            number=2,
            spec=item(2, ["email/promo"], 3, 3).spec,
            status=ExperimentStatus.SUBMITTED,
            actor="U0OWNER",
        )
        flows.record_change(session, ctx, [late])
        full = analyse(portfolio_items(session), POLICY, today=TODAY).placements
        assert full["T-3"].planned_start != day(5)  # moved for the cap
        assert full["T-4"] != before
        assert slots.placement_now(session, ctx, "T-4") == full["T-4"]
    finally:
        nested.rollback()


def test_a_slot_follows_a_chain_of_moves_from_a_newcomer(session: Session) -> None:
    """Planned: T-2 (app/home and web/home, 1 June), T-3 and T-4 (web/home, 2 June; T-4
    moved to the 3rd). T-1 (app/home and web/product, 1 June) registers after the plan
    and ranks first:
    T-2 moves to the 2nd, so T-3, which T-1 never meets, moves to the 3rd, and T-4 to the
    4th."""
    ctx = replace(CTX, now=CTX.now + timedelta(microseconds=next(MOMENTS)))
    nested = session.begin_nested()
    try:
        for number, surfaces, on in (
            (2, ["app/home", "web/home"], 1),
            (3, ["web/home"], 2),
            (4, ["web/home"], 2),
        ):
            experiment_service.create(
                session,
                number=number,
                spec=item(number, surfaces, on, on).spec,
                status=ExperimentStatus.APPROVED,
                actor="U0OWNER",
            )
        recheck_all(session, ctx)
        late = experiment_service.create(
            session,
            number=1,
            spec=item(1, ["app/home", "web/product"], 1, 1).spec,
            status=ExperimentStatus.APPROVED,
            actor="U0OWNER",
        )
        flows.record_change(session, ctx, [late])
        full = analyse(portfolio_items(session), POLICY, today=TODAY).placements
        assert [full[f"T-{n}"].planned_start for n in (1, 2, 3, 4)] == [
            day(1),
            day(2),
            day(3),
            day(4),
        ]
        assert slots.placement_now(session, ctx, "T-4") == full["T-4"]
    finally:
        nested.rollback()


def _changed(
    session: Session, rows: list[Experiment], experiment: Experiment, change: str, amount: int
) -> Experiment:
    """`experiment` changed as `change` says; for "copy", a new test registered like it
    (moved by `amount` days), added to `rows`."""
    if change != "copy":
        _change(experiment, change, amount)
        return experiment
    spec = experiment.spec()
    start = spec.start + _days(amount % 9)
    copy = experiment_service.create(
        session,
        number=max(row.number for row in rows) + 1,
        spec=replace(spec, start=start, end=start + (spec.end - spec.start)),
        status=ExperimentStatus.SUBMITTED,
        actor=spec.owner,
    )
    rows.append(copy)
    return copy


def _change(experiment: Experiment, change: str, amount: int) -> None:
    spec = experiment.spec()
    surfaces = sorted(POLICY.surface_paths)
    segments = sorted(POLICY.segment_names)
    if change == "move":
        days = spec.end - spec.start
        start = date.fromordinal(date(2027, 1, 1).toordinal() + amount % 20)
        spec = replace(spec, start=start, end=start + days)
    elif change == "stretch":
        spec = replace(spec, end=spec.end + (spec.end - spec.start) * 0 + _days(amount % 9))
    elif change == "surface":
        spec = replace(spec, surfaces=(surfaces[amount % len(surfaces)],))
    elif change == "audience":
        spec = replace(spec, audiences=(segments[amount % len(segments)],), exclude_audiences=())
    elif change == "group":
        spec = replace(spec, exclusion_group=[None, "g", "h"][amount % 3])
    elif change == "leave":
        experiment.status = ExperimentStatus.WITHDRAWN
        return
    elif change == "back":
        experiment.status = ExperimentStatus.SUBMITTED
        return
    experiment.apply(spec)


def _days(count: int) -> Any:
    from datetime import timedelta

    return timedelta(days=count)


# -- reads never write --------------------------------------------------------------------


def with_policy(url: str, policy: Path, *args: str) -> Result:
    env = {"DATABASE_URL": url, "TOWER_POLICY": str(policy)}
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def tightened(tmp_path: Path) -> Path:
    """The retail policy with at most one test on a surface at a time."""
    data = yaml.safe_load(RETAIL_POLICY.read_text(encoding="utf-8"))
    data["protocol"]["max_concurrent_per_surface"] = 1
    path = tmp_path / "tight.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def imported(scratch_database_url: str) -> Iterator[str]:
    succeeded(tower(scratch_database_url, "init"))
    succeeded(tower(scratch_database_url, "import", str(RETAIL_PORTFOLIO), "--by", "U0TOWERMGR"))
    yield scratch_database_url


READS = [
    ("list",),
    ("show", "T-3"),
    ("pipeline",),
    ("conflicts",),
    ("conflicts", "--all"),
    ("plan",),
    ("check", "T-38"),
    ("gates", "T-38"),
]


def test_no_read_changes_a_row_even_when_records_are_older_than_the_policy(
    imported: str, tightened: Path
) -> None:
    from tower.db import create_database_engine

    engine = create_database_engine(imported)
    try:
        before = table_contents(engine)
        for read in READS:
            for extra in ((), ("--today", "2026-11-23")):
                if extra and read[0] in ("list", "show", "gates"):
                    continue
                for policy in (RETAIL_POLICY, tightened):
                    result = with_policy(imported, policy, *read, *extra)
                    assert result.exit_code == 0, (read, result.output)
        assert table_contents(engine) == before
    finally:
        engine.dispose()


def test_a_read_with_records_older_than_the_policy_says_so_and_names_resync(
    imported: str, tightened: Path
) -> None:
    result = with_policy(imported, tightened, "conflicts", "--format", "json")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # only JSON on standard output
    assert "older policy" in result.stderr and "tower resync" in result.stderr


# -- the lost alert -----------------------------------------------------------------------


def test_tighten_read_sweep_every_new_blocking_collision_is_announced_and_timed(
    imported: str, tightened: Path
) -> None:
    def conflicts() -> list[dict[str, Any]]:
        result = with_policy(imported, tightened, "conflicts", "--format", "json")
        assert result.exit_code == 0, result.output
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows

    before = {row["id"] for row in conflicts()}
    succeeded(with_policy(imported, tightened, "pipeline"))
    assert {row["id"] for row in conflicts()} == before  # a read opened nothing
    succeeded(with_policy(imported, tightened, "sweep", "--now", "2026-11-23T10:00:00Z"))

    opened = [row for row in conflicts() if row["id"] not in before]
    assert any(row["kind"] == "capacity" for row in opened), opened
    outbox = json.loads(
        succeeded(
            with_policy(imported, tightened, "outbox", "list", "--all", "--format", "json")
        ).stdout
    )
    named = {ref for message in outbox for ref in message.get("collisions", [])}
    clocks = json.loads(
        succeeded(with_policy(imported, tightened, "sla", "--format", "json")).stdout
    )
    timed = {clock.get("collision") for clock in clocks}
    for row in conflicts():
        assert row["status"] == "open" or row["id"] in before
        if row["id"] not in before:
            assert row["id"] in named, row
            assert row["id"] in timed, row


# -- a sweep in the past still delivers what is queued ------------------------------------


def test_a_sweep_at_a_past_moment_delivers_every_queued_message_not_waiting_for_a_retry(
    imported: str,
) -> None:
    from tower.db import create_database_engine, create_session_factory
    from tower.outbox.service import enqueue

    engine = create_database_engine(imported)
    try:
        with create_session_factory(engine).begin() as session:
            for n in range(150):  # more than one dispatch round, queued "now"
                enqueue(
                    session,
                    kind="note",
                    recipient="C0TOWER",
                    text=f"note {n}",
                    dedupe_key=f"note:{n}",
                )
    finally:
        engine.dispose()
    succeeded(tower(imported, "sweep", "--now", "2026-11-23T10:00:00Z"))
    pending = json.loads(succeeded(tower(imported, "outbox", "list", "--format", "json")).stdout)
    assert pending == []


# -- tower resync --------------------------------------------------------------------------


def test_a_resync_of_an_unchanged_portfolio_writes_nothing(imported: str) -> None:
    from tower.db import create_database_engine

    succeeded(tower(imported, "resync"))  # today's scores and plan
    engine = create_database_engine(imported)
    try:
        before = table_contents(engine)
        again = succeeded(tower(imported, "resync")).stdout
        assert "0 opened, 0 resolved, 0 scores and plan rows written" in again, again
        assert table_contents(engine) == before
    finally:
        engine.dispose()


def test_a_resync_overtaken_again_and_again_holds_writers_off_once_and_gets_through(
    imported: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers that never pause (a registration every instant) cannot starve the safety
    net: after three re-checks each overtaken by a change, it re-checks once inside a
    transaction that makes writers wait, and writes its result."""
    from tower.db import create_database_engine, create_session_factory
    from tower.pipeline import resync
    from tower.policy import load_policy

    overtaken: list[object] = []

    def overtaken_every_time(session: Session) -> object:
        overtaken.append(None)
        return ("a mark no state row has", len(overtaken))

    monkeypatch.setattr(registry, "peek", overtaken_every_time)
    engine = create_database_engine(imported)
    try:
        factory = create_session_factory(engine)
        ctx = ServiceContext.create(
            load_policy(RETAIL_POLICY), datetime(2026, 11, 23, 10, tzinfo=UTC)
        )
        report = resync.resync(factory, ctx)
        assert len(overtaken) == resync.ATTEMPTS
        assert report.tests == 63 and report.findings > 0
        with factory() as session:
            assert registry.state(session).scored_on == ctx.today
    finally:
        engine.dispose()


def test_a_bulk_import_leaves_the_query_planner_statistics(
    scratch_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an import writes thousands of rows the database knows how its tables look,
    so a change finds one collision's clocks through their index, not by reading every
    clock (SQLite has no statistics until ANALYZE runs; the retail portfolio stands in for a
    big one here)."""
    from tower.db import create_database_engine
    from tower.pipeline import resync

    monkeypatch.setattr(resync, "BULK_ROWS", 10)
    succeeded(tower(scratch_database_url, "init"))
    succeeded(tower(scratch_database_url, "import", str(RETAIL_PORTFOLIO), "--by", "U0TOWERMGR"))
    engine = create_database_engine(scratch_database_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                query = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'sla_clocks'"
            else:
                query = (
                    "SELECT count(*) FROM pg_class WHERE relname = 'sla_clocks' AND reltuples > 0"
                )
            assert (connection.exec_driver_sql(query).scalar() or 0) >= 1
    finally:
        engine.dispose()


def test_a_resync_under_an_invalid_policy_stops_with_the_policy_checks_messages(
    imported: str, tmp_path: Path
) -> None:
    from tower.db import create_database_engine

    data = yaml.safe_load(RETAIL_POLICY.read_text(encoding="utf-8"))
    data["funnels"]["purchase"][0] = "web/nowhere"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    engine = create_database_engine(imported)
    try:
        before = table_contents(engine)
        result = with_policy(imported, broken, "resync")
        assert result.exit_code == 1
        assert "funnels.purchase[0]" in result.output and "web/nowhere" in result.output
        assert "Traceback" not in result.output
        assert table_contents(engine) == before
    finally:
        engine.dispose()


def test_a_server_catches_up_with_another_process_off_the_request_path(
    scratch_database_url: str, tmp_path: Path
) -> None:
    """`tower serve` runs a worker process per core, each with its own warm index. A
    look at the registry each second while requests come (`slots.keep_up`) brings one process's
    index and working plan up with the changes the others made, so the next request there
    replays nothing."""
    url = scratch_database_url
    start = date.today() + timedelta(days=28)
    import_hero_tests(url, tmp_path, start, HERO_TESTS)
    factory = create_session_factory(create_database_engine(url))
    ctx = ServiceContext.create(load_policy(RETAIL_POLICY))
    with read_only(factory) as session:
        slots.keep_up(session, ctx)
        index = warm_index(session, ctx.policy, ctx.today)
        slots.placement_now(session, ctx, "T-1")  # the working plan, filed

    # Another process moves T-2 a week later.
    later = (start + timedelta(days=7)).isoformat()
    env = {**os.environ, "DATABASE_URL": url, "TOWER_POLICY": str(RETAIL_POLICY)}
    moved = subprocess.run(
        [str(Path(sys.executable).parent / "tower"), "edit", "T-2", "--by", "U0ANNA",
         "--set", f"start={later}", "--set", f"end={(start + timedelta(days=20)).isoformat()}"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr

    with read_only(factory) as session:
        assert index.mark != registry.peek(session)
        assert slots.keep_up(session, ctx)
        assert index.mark == registry.peek(session)
        plan = index.working_plan
        with index.lock:
            journal = index.view().journal
        assert plan is not None and journal.since(plan.journal) == []  # nothing to replay
        assert not slots.keep_up(session, ctx)
        full = analyse(portfolio_items(session), ctx.policy, today=ctx.today).placements
        for key, placement in full.items():
            assert slots.placement_now(session, ctx, key) == placement, key


# -- refusals on collisions ------------------------------------------------------------------


def test_acting_on_a_collision_beyond_ones_role_is_refused_unchanged_and_audited(
    imported: str,
) -> None:
    """A member cannot waive; a member of a team the collision does not involve can
    neither acknowledge it nor ask for a waiver. Each refusal exits 1, leaves the records
    as they were, and is in the audit log as `denied:ACTION` with the actor."""
    from tower.audit.models import AuditEvent
    from tower.collisions.refs import format_ref
    from tower.experiments.permissions import PermissionDenied
    from tower.pipeline import collision_flows

    policy = load_policy(RETAIL_POLICY)
    engine = create_database_engine(imported)
    try:
        factory = create_session_factory(engine)
        with factory() as session:
            record = session.scalars(select(Collision).order_by(Collision.id)).first()
            assert record is not None
            ref, teams = format_ref(record), set(record.details["teams"])
        outsider_team = next(t for t in policy.teams if t.key not in teams)
        outsider = next(m for m in outsider_team.members if not policy.is_manager(m))
        member = next(
            m for t in policy.teams if t.key in teams for m in t.members if not policy.is_manager(m)
        )
        before = succeeded(tower(imported, "conflicts", "--all", "--format", "json")).stdout

        waived = tower(imported, "waive", ref, "--by", member, "--reason", "fine by us")
        acked = tower(imported, "ack", ref, "--by", outsider)
        assert (waived.exit_code, acked.exit_code) == (1, 1)
        assert f"only a control-tower manager can waive {ref}" in waived.output
        assert f"{outsider} is not in a team involved in {ref}" in " ".join(acked.output.split())
        assert succeeded(tower(imported, "conflicts", "--all", "--format", "json")).stdout == before
        with factory.begin() as session:
            ctx = ServiceContext.create(policy)
            with pytest.raises(PermissionDenied, match="only they can ask a waiver on"):
                collision_flows.request_waiver(session, ctx, ref, actor=outsider)
            denied = [
                (event.actor, event.action)
                for event in session.scalars(
                    select(AuditEvent).where(AuditEvent.action.startswith("denied:"))
                )
            ]
        assert denied == [(member, "denied:waive"), (outsider, "denied:ack")]
    finally:
        engine.dispose()


def test_a_policy_dropping_a_surface_in_use_still_runs_gates_and_sweeps_naming_the_test(
    imported: str, tmp_path: Path
) -> None:
    data = yaml.safe_load(RETAIL_POLICY.read_text(encoding="utf-8"))
    del data["surfaces"]["web"]["children"]["store_finder"]
    dropped = tmp_path / "tower.yaml"
    dropped.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    gates = tower(imported, "gates", "T-3", "--format", "json", policy=dropped)
    assert gates.exit_code in (0, 1) and "Traceback" not in gates.output
    [policy_gate] = [g for g in json.loads(gates.stdout) if g["name"] == "policy"]
    assert policy_gate["passed"] is False
    assert policy_gate["message"].startswith("names web/store_finder, which the policy no longer")

    swept = tower(imported, "sweep", "--now", "2026-11-23T10:00:00Z", policy=dropped)
    assert swept.exit_code == 0, swept.output
    flat = " ".join(swept.output.split())
    assert "1 tests name what the policy no longer has, left out until edited: T-3" in flat
    for read in (("pipeline",), ("plan",), ("conflicts", "--all"), ("check", "T-3")):
        result = tower(imported, *read, policy=dropped)
        assert result.exit_code == 0 and "Traceback" not in result.output, read
