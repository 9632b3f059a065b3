"""The suite's databases: SQLite unless TOWER_TEST_DATABASE_URL names a PostgreSQL one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.engine import make_url

from tower.db import normalize_url


def server_url() -> str | None:
    """The PostgreSQL database the suite runs against, if one is configured."""
    url = os.environ.get("TOWER_TEST_DATABASE_URL")
    return normalize_url(url) if url else None


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


def table_contents(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to compare before and after."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted(
                (tuple(str(value) for value in row) for row in connection.execute(table.select())),
            )
            for name, table in metadata.tables.items()
        }
