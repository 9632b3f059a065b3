"""Commands import only what they use: a listing loads neither Slack nor the scheduler,
the web server or the policy-graph library (each costs start-up time on every call)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.builders import import_tests

from .conftest import SMALL_POLICY

START = date(2027, 3, 1)
NOT_FOR_READS = ("slack_bolt", "slack_sdk", "apscheduler", "gunicorn", "networkx")
PROBE = """
import sys
from bot.cli import main
try:
    main(sys.argv[1:])
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
