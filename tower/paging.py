"""The first lines of a long list and how long it is: what a screen of Slack can show.

A reader asking for fifteen lines out of twenty thousand should read fifteen rows and one
count, not twenty thousand rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
U = TypeVar("U")
AnyQuery = Select[*tuple[Any, ...]]  # a SELECT of any columns


@dataclass(frozen=True)
class Page(Generic[T]):
    """`items`: the first lines, in order; `total`: how many there are in all."""

    items: list[T] = field(default_factory=list)
    total: int = 0

    @property
    def more(self) -> int:
        """How many lines are left out."""
        return self.total - len(self.items)

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page with each line converted."""
        return Page([convert(item) for item in self.items], self.total)


def first_rows(session: Session, query: AnyQuery, limit: int | None) -> Page[Any]:
    """The first `limit` rows of `query` (all when None) and its row count."""
    if limit is None:
        rows = list(session.execute(query))
        return Page(rows, len(rows))
    rows = list(session.execute(query.limit(limit)))
    if len(rows) < limit:
        return Page(rows, len(rows))
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    return Page(rows, int(session.scalar(counted) or 0))


def first_objects(session: Session, query: AnyQuery, limit: int | None) -> Page[Any]:
    """`first_rows` for a query of one entity: the objects themselves."""
    return first_rows(session, query, limit).map(lambda row: row[0])
