"""A running worker takes an edited policy file at its next look, and resyncs against it;
an edit that fails the policy check changes nothing. A process started on a bad policy
lists its problems and stops; a policy dropping what tests name has them all named."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.cli import succeeded, tower
from tests.support.factories import import_tests
from tests.support.files import SMALL_POLICY
from tower import migrate
from tower.collisions.models import Collision
from tower.db import create_database_engine, create_session_factory
from tower.engine.kinds import CollisionKind
from tower.outbox.notifier import ConsoleNotifier
from tower.pipeline import registry
from tower.policy import load_policy
from tower.worker.policy_file import PolicyFile
from tower.worker.scheduler import Intervals, build_scheduler

START = date(2027, 3, 1)
TIGHTER = "protocol: {max_concurrent_per_surface: 1}\n"


def edit(path: Path, text: str) -> None:
    """Write `text` as the file's content, its change time moved on (as an editor would)."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "tower.yaml"
    path.write_text(SMALL_POLICY.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_an_edited_policy_is_taken_and_a_broken_edit_keeps_the_last_valid_one(
    policy_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = load_policy(policy_path)
    watched = PolicyFile(policy_path, original)
    assert watched.current() is original  # unchanged: not read again

    edit(policy_path, policy_path.read_text(encoding="utf-8") + TIGHTER)
    tighter = watched.current()
    assert tighter.protocol.max_concurrent_per_surface == 1

    edit(policy_path, "teams: [not a policy\n")
    with caplog.at_level(logging.ERROR, logger="tower.worker"):
        assert watched.current() is tighter
    assert "the edited policy is not taken" in caplog.text


def test_the_worker_resyncs_against_the_edited_policy(
    scratch_database_url: str, policy_path: Path, tmp_path: Path
) -> None:
    page = {"team": "checkout-squad", "surfaces": "web/home"}
    rows = [{**page, "title": "Hero A"}, {**page, "title": "Hero B"}]  # two on one page
    import_tests(scratch_database_url, tmp_path / "roadmap.csv", START, rows, policy=policy_path)
    engine = create_database_engine(scratch_database_url)
    factory = create_session_factory(engine)
    watched = PolicyFile(policy_path, load_policy(policy_path))
    now = datetime(2027, 2, 1, 10, tzinfo=UTC)
    scheduler = build_scheduler(factory, watched, ConsoleNotifier(), Intervals(), lambda: now)

    def capacity_records() -> int:
        with factory() as session:
            kinds = session.scalars(select(Collision.kind)).all()
        return sum(1 for kind in kinds if kind == CollisionKind.CAPACITY)

    scheduler.get_job("replan").func()
    assert capacity_records() == 0  # two on a page is within the default limit

    edit(policy_path, policy_path.read_text(encoding="utf-8") + TIGHTER)
    scheduler.get_job("replan").func()  # its next look: the new policy, so a resync

    assert capacity_records() == 1
    with factory() as session:
        checked = registry.state(session).checked_policy
    assert checked == registry.policy_fingerprint(load_policy(policy_path))
    engine.dispose()


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("worker",)])
def test_a_long_running_process_on_a_bad_policy_lists_its_problems_and_stops(
    scratch_database_url: str, policy_path: Path, command: tuple[str, ...]
) -> None:
    """`tower serve` checks the policy before its HTTP workers start: no worker fails to
    boot, no traceback, the problems listed once."""
    migrate.upgrade(scratch_database_url)
    edit(policy_path, policy_path.read_text(encoding="utf-8") + "managers: [carl]\n")
    env = {
        **os.environ,
        "DATABASE_URL": scratch_database_url,
        "TOWER_POLICY": str(policy_path),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
    }
    executable = Path(sys.executable).parent / "tower"
    ran = subprocess.run(
        [executable, *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "Serving Slack requests" not in ran.stdout
    assert ran.stderr.count(f"{policy_path}: 2 problems") == 1
    assert "  managers: twice: given at lines 3 and " in ran.stderr
    assert "  managers[0]: 'carl' is not a Slack user ID" in ran.stderr


def test_sweep_and_resync_name_every_test_on_what_the_policy_dropped(
    scratch_database_url: str, policy_path: Path, tmp_path: Path
) -> None:
    newsletter = {"team": "checkout-squad", "surfaces": "email/promotional/weekly_newsletter"}
    rows = [{**newsletter, "title": f"Subject line {number}"} for number in range(1, 8)]
    import_tests(scratch_database_url, tmp_path / "roadmap.csv", START, rows, policy=policy_path)
    text = policy_path.read_text(encoding="utf-8")
    dropped = "email: {children: {promotional: {children: {weekly_newsletter: {}}}}}"
    assert dropped in text
    edit(policy_path, text.replace(dropped, "email: {children: {promotional: {}}}"))
    every = ", ".join(f"T-{n} (email/promotional/weekly_newsletter)" for n in range(1, 8))
    named = f"7 tests name what the policy no longer has, left out until edited: {every}"

    for command in (("sweep", "--now", "2027-02-01T10:00:00"), ("resync",)):
        output = succeeded(tower(scratch_database_url, *command, policy=policy_path)).output
        assert named in " ".join(output.split()), command
