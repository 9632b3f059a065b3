"""Commands import only what they use: a listing loads neither Slack nor the scheduler,
the web server or the policy-graph library (each costs start-up time on every call)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.support.factories import import_tests
from tests.support.files import SMALL_POLICY

START = date(2027, 3, 1)
NOT_FOR_READS = ("slack_bolt", "slack_sdk", "apscheduler", "gunicorn", "networkx")
PROBE = """
import sys
from bot.cli import build
try:
    build()(sys.argv[1:])
except SystemExit as done:
    assert not done.code, done.code
print("loaded:", *sorted(name for name in {names!r} if name in sys.modules))
"""


@pytest.mark.parametrize(
    "command",
    [
        ["list", "--format", "json"],
        ["pipeline", "--format", "json"],
        ["conflicts", "--format", "json"],
        ["plan", "--format", "json"],
        ["check", "T-1", "--format", "json"],
    ],
)
def test_a_read_loads_no_slack_scheduler_web_server_or_graph_library(
    scratch_database_url: str, tmp_path: Path, command: list[str]
) -> None:
    page = {"team": "checkout-squad", "surfaces": "web/home", "title": "Hero"}
    import_tests(scratch_database_url, tmp_path / "roadmap.csv", START, [page], policy=SMALL_POLICY)
    environment = {
        **os.environ,
        "DATABASE_URL": scratch_database_url,
        "TOWER_POLICY": str(SMALL_POLICY),
    }
    probe = PROBE.format(names=NOT_FOR_READS)
    done = subprocess.run(
        [sys.executable, "-c", probe, *command],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "loaded:", loaded


COMPOSED = """
import tower.cli
from tower.cli.context import AppContext
from tower.settings import Settings
before = sorted(tower.cli.main.list_commands(None))
import bot.cli
after = sorted(tower.cli.main.list_commands(None))
composed = bot.cli.build()
app = AppContext(Settings(database_url="sqlite://", policy_path="none.yaml"))
print(before == after, "serve" in after, "serve" in composed.list_commands(None),
      type(app.notifier()).__name__)
"""


def test_importing_the_slack_adapter_changes_no_global_of_the_command_line() -> None:
    """The console script composes Slack in at run time (`bot.cli.build`): importing it
    adds no command to `tower.cli.main` and leaves notifications to the console."""
    done = subprocess.run(
        [sys.executable, "-c", COMPOSED], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "False", "True", "ConsoleNotifier"]
