"""What a protocol change leaves for the next one: registrations at the same moment each get
their own number; the registry's version, a process's warm index and the shared rank table
keep up with changes, written elsewhere, lagging or rolled back.

Every test uses the small policy (tests/data/policy.yaml) and the services' fixed clock,
described in tests/support/protocol.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.factories import END, START, at, spec
from tests.support.people import BAU_OWNER, OWNER
from tests.support.protocol import (
    BAU,
)
from tower import migrate
from tower.collisions.models import Collision
from tower.collisions.refs import keys_of
from tower.db import create_database_engine, create_session_factory
from tower.engine.analysis import analyse
from tower.engine.portfolio import PortfolioItem
from tower.experiments import service as experiment_service
from tower.pipeline import index as index_module
from tower.pipeline import reads, registry, slots
from tower.pipeline.index import PortfolioIndex, portfolio_items, warm_index
from tower.policy import Policy
from tower.protocol import edits, runs
from tower.sla.models import SlaClock


def test_registrations_at_the_same_moment_each_get_their_own_number(
    scratch_database_url: str, small_policy: Policy
) -> None:
    """Six people register at once, from six connections (two server processes, several
    threads each): every registration lands, each with its own key."""
    migrate.upgrade(scratch_database_url)
    ctx = at(small_policy)
    engine = create_database_engine(scratch_database_url)
    factory = create_session_factory(engine)
    barrier = threading.Barrier(6, timeout=20)
    keys: list[str] = []
    errors: list[BaseException] = []

    def register_one(title: str) -> None:
        try:
            barrier.wait()
            with factory.begin() as session:
                outcome = edits.register(session, ctx, spec(title=title), actor=OWNER)
                keys.append(outcome.experiment.key)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=register_one, args=(f"Test {n}",)) for n in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        engine.dispose()
    assert errors == []
    assert sorted(keys) == sorted(f"T-{n}" for n in range(1, 7))


@pytest.fixture
def factory(scratch_database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions that commit for real, on a database of this test's own."""
    migrate.upgrade(scratch_database_url)
    engine = create_database_engine(scratch_database_url)
    try:
        yield create_session_factory(engine)
    finally:
        engine.dispose()


def test_a_registration_moves_the_registry_on_once_and_leaves_its_process_caught_up(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    """A registration starts a clock and queues messages, each in a savepoint of its own.
    Committing a savepoint is not committing the change: the registry's version moves on
    once, and the process that wrote the change knows its index already holds it (the next
    change reads no row marks)."""
    ctx = at(small_policy)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="First"), actor=OWNER)
    with factory.begin() as session:
        before = registry.peek(session)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="Second"), actor=OWNER)
        assert session.scalars(select(SlaClock)).all()  # savepoints were committed
    with factory.begin() as session:
        after = registry.peek(session)
        index = warm_index(session, small_policy, ctx.today)
    assert after.version == before.version + 1
    assert index.mark == after


def test_a_test_written_after_its_change_was_checked_is_seen_by_the_next_change(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    """A transaction registers T-1 on the cart, then moves it to the home page without
    the write path (a script, a migration). The next registration on the home page, in
    the same process, must meet T-1 where it now is."""
    ctx = at(small_policy)
    with factory.begin() as session:
        first = edits.register(session, ctx, spec(title="First"), actor=OWNER).experiment
        first.apply(replace(first.spec(), surfaces=("web/home",)))
    with factory.begin() as session:
        edits.register(session, ctx, spec(surfaces=("web/home",), **BAU), actor=BAU_OWNER)
        found = [keys_of(r) for r in session.scalars(select(Collision))]
    assert ["T-1", "T-2"] in found


def held_items(index: PortfolioIndex) -> dict[int, Any]:
    return {number: (item.status, item.spec) for number, item in index.items.items()}


def test_a_lagging_process_reloads_just_the_tests_changed_since_it_last_looked(
    factory: sessionmaker[Session], small_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's index (loaded here apart from this process's warm one) lags three
    changes: it catches up from the registry's recent changes, without comparing every
    test's row, and then holds what a fresh load holds."""
    ctx = at(small_policy)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="First"), actor=OWNER)
    with factory.begin() as session:
        lagging = PortfolioIndex.load(session, small_policy, ctx.today)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="Second"), actor=OWNER)
    with factory.begin() as session:
        runs.withdraw(session, ctx, "T-1", actor=OWNER)
    with factory.begin() as session:
        edits.edit(session, ctx, "T-2", actor=OWNER, changes={"surfaces": ("web/home",)})

    every_row = registry.row_marks

    def compare_only_some(session: Session, numbers: set[int] | None = None) -> Any:
        if numbers is None:
            raise AssertionError("caught up by comparing every test's row")
        return every_row(session, numbers)

    with factory.begin() as session, monkeypatch.context() as patched:
        patched.setattr(registry, "row_marks", compare_only_some)
        lagging.catch_up(session, registry.peek(session))
    with factory.begin() as session:
        fresh = PortfolioIndex.load(session, small_policy, ctx.today)
    assert held_items(lagging) == held_items(fresh)
    assert lagging.footprints.keys() == fresh.footprints.keys() == {"T-2"}
    assert lagging.mark == fresh.mark


def test_a_process_lagging_past_the_recent_changes_compares_every_row(
    factory: sessionmaker[Session], small_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "KEPT_CHANGES", 2)
    ctx = at(small_policy)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="First"), actor=OWNER)
    with factory.begin() as session:
        lagging = PortfolioIndex.load(session, small_policy, ctx.today)
    for title in ("Second", "Third", "Fourth"):
        with factory.begin() as session:
            edits.register(session, ctx, spec(title=title), actor=OWNER)
    with factory.begin() as session:
        lagging.catch_up(session, registry.peek(session))
        fresh = PortfolioIndex.load(session, small_policy, ctx.today)
    assert held_items(lagging) == held_items(fresh)
    assert len(lagging.items) == 4


def test_after_a_registration_rolls_back_the_next_change_works_on_the_tests_that_exist(
    factory: sessionmaker[Session], small_policy: Policy
) -> None:
    """The messages are queued in savepoints that commit; the registration then fails. The
    next change in the same process works on the tests that exist, not on that one."""
    ctx = at(small_policy)
    with factory.begin() as session:
        edits.register(session, ctx, spec(title="First"), actor=OWNER)
    with pytest.raises(RuntimeError), factory.begin() as session:
        edits.register(session, ctx, spec(title="Never"), actor=OWNER)
        raise RuntimeError("the request failed after the change")
    with factory.begin() as session:
        third = edits.register(session, ctx, spec(title="Third"), actor=OWNER)
        index = warm_index(session, small_policy, ctx.today)
        held = {item.key: item.spec.title for item in index.items.values()}
    assert third.experiment.key == "T-2"
    assert held == {"T-1": "First", "T-2": "Third"}


def test_after_an_edit_rolls_back_the_next_change_reads_again_only_that_test(
    factory: sessionmaker[Session], small_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed change costs the next one the tests it touched, not the portfolio: the
    warm index reads again only the rolled-back test, keeps its working plan, and the
    slots it gives are still those of a full plan."""
    ctx = at(small_policy)
    for title in ("First", "Second", "Third"):
        with factory.begin() as session:
            edits.register(session, ctx, spec(title=title), actor=OWNER)
    with factory.begin() as session:
        assert slots.placement_now(session, ctx, "T-3") is not None
        index = warm_index(session, small_policy, ctx.today)
        plan = index.working_plan
    later = {"start": START + timedelta(days=3), "end": END + timedelta(days=3)}
    with pytest.raises(RuntimeError), factory.begin() as session:
        edits.edit(session, ctx, "T-1", actor=OWNER, changes=later)
        assert slots.placement_now(session, ctx, "T-1") is not None  # planned as moved
        raise RuntimeError("the request failed after the change")

    read_again: list[list[int]] = []

    def recording(session: Session, numbers: Any = None) -> list[PortfolioItem]:
        read_again.append(sorted(numbers) if numbers is not None else [])
        return every_test(session, numbers)

    every_test = index_module.portfolio_items
    with monkeypatch.context() as patched, factory.begin() as session:
        patched.setattr(index_module, "portfolio_items", recording)
        edits.register(session, ctx, spec(title="Fourth"), actor=OWNER)
    # T-1 as committed, and T-4, whose row this change wrote before it compared them
    assert read_again == [[1, 4]]
    with factory.begin() as session:
        assert warm_index(session, small_policy, ctx.today) is index
        assert index.items[1].spec.start == START  # as committed, not as rolled back
        full = analyse(portfolio_items(session), small_policy, today=ctx.today).placements
        assert len(full) == 4
        for key, placement in full.items():
            assert slots.placement_now(session, ctx, key) == placement, key
    assert index.working_plan is plan  # replayed, not filed again from the stored plan


def test_the_rank_table_brought_up_to_date_is_the_one_read_afresh(
    factory: sessionmaker[Session], small_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads share one rank table between changes; after a change only the tests it wrote
    are read again and put in their place: the order is the one a full read gives, through
    registrations, score changes and tests leaving."""
    ctx = at(small_policy)
    keys = []
    for number in range(1, 7):
        with factory.begin() as session:
            wanted = spec(title=f"Test {number}", impact=[0.5, 1, 2][number % 3], confidence=0.5)
            keys.append(edits.register(session, ctx, wanted, actor=OWNER).experiment.key)
    with factory.begin() as session:
        first = reads.rank_table(session)
    read_afresh = reads._read_table

    def no_full_read(session: Session) -> reads.RankTable:
        raise AssertionError("the whole table was read again")

    monkeypatch.setattr(reads, "_read_table", no_full_read)
    steps = [("register", 2), ("rescore", 3), ("withdraw", 0), ("register", 1), ("rescore", 0.25)]
    for step, impact in steps:
        with factory.begin() as session:
            if step == "register":
                wanted = spec(title=f"Late {impact}", impact=impact, confidence=0.8)
                keys.append(edits.register(session, ctx, wanted, actor=OWNER).experiment.key)
            else:
                test = experiment_service.get_by_key(session, keys[1 + len(keys) % 3])
                if step == "withdraw":
                    runs.withdraw(session, ctx, test.key, actor=OWNER)
                else:
                    edits.edit(session, ctx, test.key, actor=OWNER, changes={"impact": impact})
        with factory.begin() as session:
            shared = reads.rank_table(session)
            assert shared is not first  # brought up to date, not read as it was
            assert shared == read_afresh(session), step
            first = shared
