"""Shared fixtures: one database engine for the run, one rolled-back transaction per test.
What tests import (paths, databases, people, factories) lives in tests/support/.

Tests use SQLite unless TOWER_TEST_DATABASE_URL names a PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.support.databases import scratch_database, server_url
from tests.support.files import RETAIL_POLICY, SMALL_POLICY
from tower import migrate
from tower.db import create_database_engine
from tower.policy import Policy, load_policy


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return server_url() or f"sqlite:///{tmp_path_factory.mktemp('db') / 'tower.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    migrate.upgrade(database_url)
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose commits become savepoints inside a transaction rolled back afterwards."""
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@pytest.fixture
def scratch_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own, dropped afterwards."""
    with scratch_database(tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def small_policy() -> Policy:
    """A small organisation (tests/data/policy.yaml) whose every detail a test can see."""
    return load_policy(SMALL_POLICY)


@pytest.fixture(scope="session")
def retail_policy() -> Policy:
    """The shipped example: a retailer with many teams, surfaces and segments."""
    return load_policy(RETAIL_POLICY)
