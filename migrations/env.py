"""Alembic environment: Tower's metadata, batch mode for SQLite, foreign tables left alone."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, event

from tower.db import create_database_engine
from tower.migrate import FOREIGN_TABLES
from tower.models import Base
from tower.settings import Settings

config = context.config


def _database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave tables that other libraries own (APScheduler's job store) out of autogenerate."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
        **options,
    )


def run_offline() -> None:
    _configure(url=_database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = create_database_engine(_database_url())
    if engine.dialect.name == "sqlite":
        # Batch mode rebuilds a table by copying it and dropping the original: with foreign
        # keys on, that drop would cascade to every child row. Alembic's documented advice.
        event.listen(engine, "connect", _sqlite_foreign_keys_off)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
