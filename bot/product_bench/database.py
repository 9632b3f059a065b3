"""The benchmark's own database: a SQLite file in its scratch directory, or a PostgreSQL
database it creates on the server named by `--database-url` and drops afterwards.

It never touches a database it did not create: a PostgreSQL database of that name that
already exists is refused, not reused or dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.product_bench.errors import BenchSetupError
from tower.db import normalize_url

CONNECT_TIMEOUT = 5  # seconds to wait for a PostgreSQL server before calling it unreachable
MAINTENANCE_DATABASE = "postgres"
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@contextmanager
def bench_database(scratch: Path, database_url: str | None) -> Iterator[str]:
    """The URL of an empty database for one run, removed when the block ends."""
    if database_url is None:
        yield f"sqlite:///{scratch / 'tower.db'}"
        return
    url = _postgresql_url(database_url)
    shown = url.render_as_string(hide_password=True)
    admin = _admin_engine(url)
    try:
        _create(admin, url, shown)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            _drop(admin, url)
    finally:
        admin.dispose()


def _postgresql_url(database_url: str) -> URL:
    try:
        url = make_url(normalize_url(database_url))
    except ArgumentError as error:
        raise BenchSetupError(f"--database-url {database_url!r} is not a URL: {error}") from None
    if url.get_backend_name() != "postgresql":
        raise BenchSetupError(
            f"--database-url must name a PostgreSQL database "
            f"(postgresql+psycopg://USER@HOST:PORT/NAME), not {database_url!r}; "
            "without it the benchmark uses SQLite"
        )
    name = url.database or ""
    if name == MAINTENANCE_DATABASE or not _PLAIN_NAME.fullmatch(name):
        raise BenchSetupError(
            f"--database-url needs the name of a database to create (letters, digits and _), "
            f"not {name!r}, like postgresql+psycopg://postgres@127.0.0.1:5432/bench"
        )
    return url


def _admin_engine(url: URL) -> Engine:
    return create_engine(
        url.set(database=MAINTENANCE_DATABASE),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": CONNECT_TIMEOUT},
    )


def _create(admin: Engine, url: URL, shown: str) -> None:
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if exists is not None:
                raise BenchSetupError(
                    f"the database {url.database!r} already exists on {server}: the benchmark "
                    "creates and drops its own, so name one that does not exist"
                )
            connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    except SQLAlchemyError as error:
        reason = str(error.__cause__ or error).strip().splitlines()[0]
        raise BenchSetupError(
            f"cannot create the database {shown} on the PostgreSQL server {server}: {reason}"
        ) from None


def _drop(admin: Engine, url: URL) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
