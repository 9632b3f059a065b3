"""Database plumbing: the declarative base, reusable column types, engines and sessions.

Services take a `Session` and never commit; the edge (a CLI command, a Slack listener, a
scheduler job) owns the transaction with `with session_factory.begin() as session:`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    MetaData,
    TypeDecorator,
    create_engine,
    event,
    text,
)
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from tower import json_text
from tower.sqlite_writers import WriterLine

SQLITE_BUSY_TIMEOUT_MS = 30_000
BATCH = 500  # rows in one bulk statement, values in one IN (...) list
_Item = TypeVar("_Item")
READ_ONLY_OPTION = "tower_read_only"  # execution option: begin a read-only transaction

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back time-zone aware, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Tower stores aware timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# None is SQL NULL (not the JSON value null), so NOT NULL columns refuse a missing list.
JsonDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every Tower table, with a constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        enum.Enum: SqlEnum(
            enum.Enum,
            native_enum=False,
            length=32,
            values_callable=lambda members: [member.value for member in members],
        ),
        list[str]: JsonDocument,
        dict[str, Any]: JsonDocument,
    }


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs (as hosting platforms hand them out)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_database_engine(url: str) -> Engine:
    """An engine for `url`; on SQLite, with foreign keys and real transactions."""
    engine = create_engine(
        normalize_url(url),
        json_serializer=json_text.dumps_stored,
        json_deserializer=json_text.loads,
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite_connection)
        path = engine.url.database
        line = None
        if path and path != ":memory:" and not path.startswith("file:"):
            line = WriterLine(path, SQLITE_BUSY_TIMEOUT_MS / 1000)
            event.listen(engine, "commit", line.leave)
            event.listen(engine, "rollback", line.leave)
        event.listen(engine, "begin", partial(_begin_sqlite_transaction, line))
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin, so that
    # SAVEPOINTs and transactional DDL behave as on PostgreSQL (SQLAlchemy's documented recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # Readers never wait for the writer (WAL), and a writer waits its turn instead of
    # failing with "database is locked".
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] not in ("memory", "wal"):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _begin_sqlite_transaction(line: WriterLine | None, connection: Connection) -> None:
    # A writing transaction takes the write lock when it begins (IMMEDIATE): one that read
    # first and then found another writer's commit in the way could only fail. Writers to
    # a database file wait in line for it (`tower.sqlite_writers`).
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
        connection.exec_driver_sql("PRAGMA query_only=ON")
        return
    if line is not None:
        line.enter(connection)
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except Exception:
        if line is not None:
            line.leave(connection)
        raise


def batches(items: Sequence[_Item], size: int = BATCH) -> Iterator[Sequence[_Item]]:
    """`items` a batch of `size` at a time: bulk writes and IN lists of bounded size."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_unless_present(session: Session, model: type[Base], **values: Any) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` of one `model` row (both databases speak it):
    a row that would break a unique constraint is not written, and nothing is raised."""
    return _insert(session)(model).values(**values).on_conflict_do_nothing()


def insert_rows_unless_present(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    """`insert_unless_present` of many rows, sent together (one statement, compiled once
    whatever the number of rows, executed for each)."""
    if rows:
        session.execute(_insert(session)(model).on_conflict_do_nothing(), list(rows))


def upsert(session: Session, model: type[Base], key: Sequence[str], columns: Iterable[str]) -> Any:
    """`INSERT ... ON CONFLICT (key) DO UPDATE` of `model` rows, executed with their values
    (many rows: sent together): each row written whether or not one with its key exists."""
    statement = _insert(session)(model)
    changed = {name: statement.excluded[name] for name in columns if name not in key}
    return statement.on_conflict_do_update(index_elements=list(key), set_=changed)


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def refresh_planner_statistics(session: Session) -> None:
    """`ANALYZE`, after a bulk write. SQLite keeps no statistics until asked, and without
    them it picks the wrong index: it reads every clock of an SLA to find one collision's."""
    session.execute(text("ANALYZE"))


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine` that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a read-only transaction (SQLite `PRAGMA query_only`, PostgreSQL `SET
    TRANSACTION READ ONLY`): any write in it is an error. It is rolled back at the end."""
    with factory() as session:
        connection = session.connection(execution_options={READ_ONLY_OPTION: True})
        try:
            if connection.dialect.name != "sqlite":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield session
        finally:
            if connection.dialect.name == "sqlite":  # a connection setting: undo it
                connection.exec_driver_sql("PRAGMA query_only=OFF")
            session.expunge_all()  # what was read stays readable after the transaction
            session.rollback()
