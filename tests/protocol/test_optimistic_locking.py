"""Optimistic locking: acting on a version that is no longer current changes nothing, a
change committed meanwhile is seen before acting, and managers approving at once decide once
(concurrent transactions need PostgreSQL).

Every test uses the small policy (tests/data/policy.yaml) and the services' fixed clock,
described in tests/support/protocol.py.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.support.databases import server_url
from tests.support.factories import at, register
from tests.support.people import MANAGER, OWNER
from tests.support.protocol import (
    DEPUTY,
    Take,
    decisions,
    events,
    outbox,
    row_counts,
    with_deputy,
)
from tower import migrate
from tower.audit.models import AuditEvent
from tower.db import create_database_engine, create_session_factory
from tower.errors import TowerError
from tower.experiments import service as experiment_service
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus as S
from tower.outbox.models import OutboxMessage
from tower.policy import Policy
from tower.protocol import edits, review, runs
from tower.protocol.models import Decision, DecisionKind
from tower.protocol.outcome import StaleVersion

# --------------------------------------------------------------------------- optimistic locking

STALE: list[tuple[S, Take]] = [
    (S.DRAFT, lambda s, c: review.submit(s, c, "T-1", actor=OWNER, expected_version=1)),
    (S.SUBMITTED, lambda s, c: review.approve(s, c, "T-1", actor=MANAGER, expected_version=1)),
    (
        S.SUBMITTED,
        lambda s, c: review.request_changes(
            s, c, "T-1", actor=MANAGER, reason="More data", expected_version=1
        ),
    ),
    (
        S.SUBMITTED,
        lambda s, c: review.reject(s, c, "T-1", actor=MANAGER, reason="No", expected_version=1),
    ),
    (S.APPROVED, lambda s, c: runs.withdraw(s, c, "T-1", actor=OWNER, expected_version=1)),
    (
        S.LIVE,
        lambda s, c: runs.cancel(s, c, "T-1", actor=OWNER, reason="Bug", expected_version=1),
    ),
    (S.LIVE, lambda s, c: runs.complete(s, c, "T-1", actor=OWNER, expected_version=1)),
    (
        S.COMPLETED,
        lambda s, c: runs.record_result(
            s, c, "T-1", actor=OWNER, result="loser", lift=-0.01, expected_version=1
        ),
    ),
    (
        S.SUBMITTED,
        lambda s, c: edits.edit(
            s, c, "T-1", actor=OWNER, changes={"traffic": 50.0}, expected_version=1
        ),
    ),
]


@pytest.mark.parametrize(
    ("status", "act"),
    STALE,
    ids=[
        "submit",
        "approve",
        "request-changes",
        "reject",
        "withdraw",
        "cancel",
        "complete",
        "record-result",
        "edit",
    ],
)
def test_acting_on_a_version_that_is_no_longer_current_changes_nothing(
    session: Session, small_policy: Policy, status: S, act: Take
) -> None:
    experiment = register(session, status)
    ctx = at(small_policy)
    edits.set_priority(session, ctx, "T-1", actor=MANAGER, lever=1.5)  # version 1 -> 2
    assert experiment.version == 2
    counts = row_counts(session)

    with pytest.raises(StaleVersion) as raised:
        act(session, ctx)

    assert str(raised.value) == (
        "T-1 changed since you opened it (you saw version 1, it is now 2): look again and retry"
    )
    assert not session.dirty and not session.new
    assert (experiment.status, experiment.version) == (status, 2)
    assert row_counts(session) == counts


def test_a_change_committed_meanwhile_by_someone_else_is_seen_before_acting(
    session: Session, small_policy: Policy
) -> None:
    """A change reads the test afresh, locked, whatever an earlier read left in the
    session: a test another manager rejected meanwhile cannot be approved on a stale copy."""
    experiment = register(session, S.SUBMITTED)
    session.commit()  # the test as the manager opened it, in an earlier transaction
    ctx = at(small_policy)
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment.id)
        .values(version=Experiment.version + 1, status=S.REJECTED)
        .execution_options(synchronize_session=False)
    )
    assert (experiment.version, experiment.status) == (1, S.SUBMITTED)  # the stale copy

    with pytest.raises(TowerError, match="rejected"):
        review.approve(session, ctx, "T-1", actor=MANAGER)
    assert (experiment.version, experiment.status) == (2, S.REJECTED)
    with pytest.raises(StaleVersion, match="you saw version 1, it is now 2"):
        runs.withdraw(session, ctx, "T-1", actor=OWNER, expected_version=1)


@pytest.mark.skipif(
    server_url() is None,
    reason="concurrent transactions on one row need PostgreSQL (SQLite serialises writers)",
)
def test_two_managers_approving_at_once_exactly_one_wins(
    scratch_database_url: str, small_policy: Policy
) -> None:
    """Both open version 1 of a submitted test and approve at once: one commit wins, the
    other's flush finds the row changed and its transaction rolls back whole."""
    migrate.upgrade(scratch_database_url)
    policy = with_deputy(small_policy)
    ctx = at(policy)
    engines: list[Engine] = [create_database_engine(scratch_database_url) for _ in range(2)]
    try:
        with create_session_factory(engines[0]).begin() as setup:
            register(setup, S.SUBMITTED)
        sessions = [create_session_factory(engine)() for engine in engines]
        for opened in sessions:  # both managers open the same submitted test, version 1
            assert experiment_service.get_by_key(opened, "T-1").version == 1
        barrier = threading.Barrier(2, timeout=10)
        results: dict[str, str] = {}

        def approve(session: Session, actor: str) -> None:
            barrier.wait()
            try:
                review.approve(session, ctx, "T-1", actor=actor, expected_version=1)
                session.commit()
                results[actor] = "approved"
            except Exception as lost:  # StaleVersion
                session.rollback()
                results[actor] = f"{type(lost).__name__}: {lost}"

        threads = [
            threading.Thread(target=approve, args=(sessions[0], MANAGER)),
            threading.Thread(target=approve, args=(sessions[1], DEPUTY)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert not any(thread.is_alive() for thread in threads)
        for opened in sessions:
            opened.close()

        assert sorted(results) == sorted([MANAGER, DEPUTY])
        won = [actor for actor, outcome in results.items() if outcome == "approved"]
        assert len(won) == 1, results
        [lost] = [outcome for outcome in results.values() if outcome != "approved"]
        assert "expected to update 1 row(s); 0 were matched" in lost or (
            "changed since you opened it" in lost
        ), lost
        with create_session_factory(engines[0])() as check:
            experiment = experiment_service.get_by_key(check, "T-1")
            assert (experiment.status, experiment.version) == (S.APPROVED, 2)
            effective = [(d.actor, d.kind) for d in decisions(check, experiment) if not d.voided]
            assert effective == [(won[0], DecisionKind.APPROVE)]
            approvals = [e for e in events(check, experiment) if e.action == "approve"]
            assert [e.actor for e in approvals] == won
            assert [m.recipient for m in outbox(check, "decision")] == [OWNER]
    finally:
        for engine in engines:
            engine.dispose()


def approve_at_once(
    url: str, policy: Policy, actors: list[str]
) -> tuple[list[str], Experiment, list[Decision], list[AuditEvent], list[OutboxMessage]]:
    """Each of `actors` runs `tower approve T-1 --by ACTOR` on its own connection, all
    released at one instant; what each was told, then the test as it ends."""
    migrate.upgrade(url)
    ctx = at(policy)
    engines = [create_database_engine(url) for _ in actors]
    try:
        with create_session_factory(engines[0]).begin() as setup:
            register(setup, S.SUBMITTED)
        barrier = threading.Barrier(len(actors), timeout=10)
        told: list[str] = []

        def approve(engine: Engine, actor: str) -> None:
            barrier.wait()
            try:
                with create_session_factory(engine).begin() as session:
                    told.append(review.approve(session, ctx, "T-1", actor=actor).message)
            except TowerError as refused:
                told.append(f"refused: {refused}")

        threads = [
            threading.Thread(target=approve, args=(engine, actor))
            for engine, actor in zip(engines, actors, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        with create_session_factory(engines[0])() as check:
            experiment = experiment_service.get_by_key(check, "T-1")
            return (
                sorted(told),
                experiment,
                decisions(check, experiment),
                events(check, experiment),
                outbox(check),
            )
    finally:
        for engine in engines:
            engine.dispose()


def test_two_managers_approving_at_once_when_two_approvals_are_required_both_count(
    scratch_database_url: str, small_policy: Policy
) -> None:
    policy = with_deputy(small_policy, approvals_required=2)
    told, experiment, made, audited, queued = approve_at_once(
        scratch_database_url, policy, [MANAGER, DEPUTY]
    )
    assert told == ["T-1 approved", "approval 1 of 2 recorded for T-1"]
    assert experiment.status == S.APPROVED
    assert sorted(d.actor for d in made if d.kind == DecisionKind.APPROVE) == [DEPUTY, MANAGER]
    assert [e.action for e in audited].count("approval") == 1
    assert [e.action for e in audited].count("approve") == 1
    assert [m.kind for m in queued].count("decision") == 1


def test_one_managers_double_click_counts_once(
    scratch_database_url: str, small_policy: Policy
) -> None:
    policy = with_deputy(small_policy, approvals_required=2)
    told, experiment, made, audited, _ = approve_at_once(
        scratch_database_url, policy, [MANAGER, MANAGER]
    )
    assert told == ["approval 1 of 2 recorded for T-1", "you already approved T-1"]
    assert experiment.status == S.SUBMITTED
    assert [(d.actor, d.kind, d.voided) for d in made] == [(MANAGER, DecisionKind.APPROVE, False)]
    assert [e.action for e in audited].count("approval") == 1


def test_two_managers_approving_at_once_decide_once(
    scratch_database_url: str, small_policy: Policy
) -> None:
    told, experiment, made, audited, queued = approve_at_once(
        scratch_database_url, with_deputy(small_policy), [MANAGER, DEPUTY]
    )
    assert told[0] == "T-1 approved" and told[1].startswith("refused: ")
    assert "approved" in told[1]
    assert experiment.status == S.APPROVED
    assert len([d for d in made if d.kind == DecisionKind.APPROVE]) == 1
    assert [e.action for e in audited].count("approve") == 1
    assert [m.kind for m in queued].count("decision") == 1


def test_a_second_standing_approval_of_one_manager_cannot_be_written(
    session: Session, small_policy: Policy
) -> None:
    experiment = register(session, S.SUBMITTED)
    for _ in range(2):
        session.add(
            Decision(
                experiment_id=experiment.id,
                kind=DecisionKind.APPROVE,
                actor=MANAGER,
                experiment_version=experiment.version,
            )
        )
    with pytest.raises(IntegrityError):
        session.flush()
