"""Shared fixtures: one database engine for the run, one rolled-back transaction per test.

Tests use SQLite unless TOWER_TEST_DATABASE_URL names a PostgreSQL database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tower import migrate
from tower.db import create_database_engine, normalize_url
from tower.policy import Policy, load_policy

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent
SMALL_POLICY = DATA / "policy.yaml"
RETAIL_POLICY = REPO / "examples" / "retail" / "tower.yaml"
RETAIL_PORTFOLIO = REPO / "examples" / "retail" / "portfolio.csv"


def server_url() -> str | None:
    """The PostgreSQL database the suite runs against, if one is configured."""
    url = os.environ.get("TOWER_TEST_DATABASE_URL")
    return normalize_url(url) if url else None


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


@contextmanager
def scratch_database(directory: Path) -> Iterator[str]:
    """An empty database of the suite's kind (a SQLite file in `directory`, or a fresh
    PostgreSQL database), dropped afterwards."""
    url = server_url()
    if url is None:
        yield f"sqlite:///{directory / 'scratch.db'}"
        return
    name = f"tower_scratch_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


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
