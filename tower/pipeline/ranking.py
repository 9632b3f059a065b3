"""The rank order of the active tests, kept sorted as scores change.

A change moves one test in the order (a bisection and a list insert) instead of sorting
the whole portfolio again; a rank is then a bisection too. Highest score first, ties to
higher confidence, then earlier registration (as `tower.engine.score.rank`); tests that
cannot be scored come after every ranked one, by registration.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping

from tower.engine.score import Score, ScoringError, rank_key

_Scored = tuple[float, float, int, str]  # -value, -confidence, number, key
_Unscored = tuple[int, str]  # number, key
Position = tuple[object, ...]  # compares as ranks do: lower comes first


class RankOrder(Mapping[str, int]):
    """Each active test's rank by key (1 = first)."""

    def __init__(self) -> None:
        self._scored: list[_Scored] = []
        self._unscored: list[_Unscored] = []
        self._entries: dict[str, _Scored | _Unscored] = {}

    def put(self, key: str, number: int, score: Score | ScoringError) -> None:
        """The test's place under its (new) score."""
        self.remove(key)
        if isinstance(score, Score):
            scored: _Scored = (*rank_key(score.value, score.confidence, number), key)
            insort(self._scored, scored)
            self._entries[key] = scored
        else:
            unscored: _Unscored = (number, key)
            insort(self._unscored, unscored)
            self._entries[key] = unscored

    def remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        if len(entry) == 4:
            del self._scored[bisect_left(self._scored, entry)]
        else:
            del self._unscored[bisect_left(self._unscored, entry)]

    @property
    def scored(self) -> int:
        """How many tests have a score (and so a rank among the scored)."""
        return len(self._scored)

    def in_order(self) -> list[str]:
        """Every key, first rank first."""
        return [entry[-1] for entry in self._scored] + [entry[-1] for entry in self._unscored]

    def copy(self) -> RankOrder:
        """The order as it is now, kept apart from later changes."""
        order = RankOrder()
        order._scored, order._unscored = list(self._scored), list(self._unscored)
        order._entries = dict(self._entries)
        return order

    def position(self, key: str) -> Position:
        """Where the test stands, comparable with any other's without counting ranks."""
        entry = self._entries[key]
        return (0, *entry) if len(entry) == 4 else (1, *entry)

    def __getitem__(self, key: str) -> int:
        entry = self._entries[key]
        if len(entry) == 4:
            return bisect_left(self._scored, entry) + 1
        return len(self._scored) + bisect_left(self._unscored, entry) + 1

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
