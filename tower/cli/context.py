"""What every command needs, loaded once and only when a command asks for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tower.context import ServiceContext
from tower.db import create_database_engine, create_session_factory, read_only
from tower.errors import DatabaseNotReadyError
from tower.outbox.notifier import ConsoleNotifier, Notifier
from tower.policy import Policy, load_policy
from tower.settings import Settings

NotifierFactory = Callable[["AppContext"], Notifier]


def console_notifier(app: AppContext) -> Notifier:
    """Notifications to the log: what `tower` uses unless an adapter says otherwise."""
    return ConsoleNotifier()


class AppContext:
    """Settings, policy and database of one CLI run; its notifications go where
    `notifier_factory` says (the Slack adapter passes Slack's: tower never imports Slack)."""

    def __init__(
        self, settings: Settings, notifier_factory: NotifierFactory = console_notifier
    ) -> None:
        self.settings = settings
        self._notifier_factory = notifier_factory

    def notifier(self) -> Notifier:
        return self._notifier_factory(self)

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.settings.policy_path)

    @cached_property
    def engine(self) -> Engine:
        return create_database_engine(self.settings.database_url)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        self._require_current_schema()
        return create_session_factory(self.engine)

    def today(self, override: date | None = None) -> date:
        """The date in the policy's time zone, unless the user named one."""
        if override is not None:
            return override
        return datetime.now(ZoneInfo(self.policy.timezone)).date()

    def service_context(self, now: datetime | None = None) -> ServiceContext:
        """The policy, its calendar and the time (now, unless the user named a moment)."""
        return ServiceContext.create(self.policy, now)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back if it raises."""
        with self.session_factory.begin() as session:
            yield session

    @contextmanager
    def read_transaction(self) -> Iterator[Session]:
        """A read-only unit of work: any write in it is an error; nothing is committed."""
        with read_only(self.session_factory) as session:
            yield session

    def _require_current_schema(self) -> None:
        from tower import migrate  # Alembic, loaded only by the commands that open the database

        current, head = migrate.current_revision(self.engine), migrate.head_revision()
        if current == head:
            return
        where = self.engine.url.render_as_string(hide_password=True)
        if current is None:
            raise DatabaseNotReadyError(f"the database {where} is empty: run `tower init` first")
        raise DatabaseNotReadyError(
            f"the database {where} is at migration {current}, this Tower needs {head}: "
            "run `tower init` to upgrade it"
        )
