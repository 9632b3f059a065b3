"""What every chaos part runs in: a fresh database, the retail policy, a faulty Slack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.product_bench.fake_slack import FakeSlack
from tests.support.people import MANAGER
from tower import migrate
from tower.db import normalize_url

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "examples" / "retail" / "tower.yaml"
PORTFOLIO = REPO / "examples" / "retail" / "portfolio.csv"
PYTHON = sys.executable
TOWER = [str(Path(PYTHON).with_name("tower"))]  # the console script beside Python
SLACK_TIMEOUT = 2  # seconds the Web API client waits: a late answer is one past it
FAULT_RATE = 0.3


@dataclass(frozen=True)
class Setting:
    """A database URL, the fake Slack (faults off until a part turns them on), and the
    environment a `tower` process needs to use both."""

    kind: str  # "sqlite" or "postgresql"
    database_url: str
    slack: FakeSlack
    scratch: Path  # where logs and SQLite files go

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "TOWER_POLICY": str(POLICY),
            "SLACK_BOT_TOKEN": "xoxb-chaos",
            "SLACK_API_URL": self.slack.url,
            "SLACK_TIMEOUT": str(SLACK_TIMEOUT),
        }

    def tower(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `tower ARGS` as its own process; what it printed, and its exit code."""
        return subprocess.run(
            [*TOWER, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            check=False,
        )


@contextmanager
def fresh_setting(kind: str, scratch: Path, server_url: str | None) -> Iterator[Setting]:
    """A migrated database of `kind` holding the retail portfolio, and a fake Slack."""
    slack = FakeSlack().start()
    with _database(kind, scratch, server_url) as url:
        migrate.upgrade(url)
        setting = Setting(kind, url, slack, scratch)
        imported = setting.tower("import", str(PORTFOLIO), "--by", MANAGER)
        if imported.returncode != 0:
            raise RuntimeError(f"tower import failed: {imported.stderr or imported.stdout}")
        try:
            yield setting
        finally:
            slack.stop()


@contextmanager
def _database(kind: str, scratch: Path, server_url: str | None) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{scratch / f'chaos-{uuid.uuid4().hex[:8]}.db'}"
        return
    assert server_url is not None
    admin = create_engine(normalize_url(server_url), isolation_level="AUTOCOMMIT")
    name = f"tower_chaos_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalize_url(server_url)).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
