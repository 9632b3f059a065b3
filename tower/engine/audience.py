"""Who a test reaches: a union of segments minus excluded ones, and the people two share.

Exact where the tree decides (nesting, disjoint siblings, an exclusion that covers a target),
estimated where it cannot (declared overlaps, partial exclusions): an excluded part of a
segment is taken as spread evenly over it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import TypeVar

from tower.engine.graph import SegmentIndex

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Audience:
    """A compiled audience: `id` is shared by every test that targets the same people.

    The masks (bit i: segment i) answer "can two audiences share anyone?" before any
    arithmetic: its targets, their ancestors-or-self, and the segments declared to overlap
    those. Two audiences whose targets are neither nested nor linked by an overlap share
    nobody.
    """

    id: int
    targets: tuple[int, ...]
    excluded: tuple[int, ...]
    size: float
    target_mask: int
    line_mask: int
    partner_mask: int

    def may_share(self, other: Audience) -> bool:
        """False when no target of either can hold a person of the other's."""
        return bool(
            self.target_mask & other.line_mask
            or other.target_mask & self.line_mask
            or self.partner_mask & other.line_mask
        )


class AudienceModel:
    """Compiles audiences once and answers "how many people do these two share?" from a cache."""

    def __init__(self, segments: SegmentIndex) -> None:
        self.segments = segments
        self._interned: dict[tuple[tuple[int, ...], tuple[int, ...]], Audience] = {}
        self._by_id: list[Audience] = []
        self._shared: dict[int, float] = {}  # by (lower id << 32 | higher id)
        self._people_with: dict[int, _PeopleWith] = {}
        self._removed_shares: dict[tuple[int, tuple[int, ...]], float] = {}

    def compile(self, targets: Iterable[str], excluded: Iterable[str] = ()) -> Audience:
        """The audience of `targets` (everyone when empty) without `excluded`."""
        ids = self.segments.ids
        target_ids = {ids[name] for name in targets} or {self.segments.root}
        key = (self._outermost(target_ids), self._outermost({ids[name] for name in excluded}))
        audience = self._interned.get(key)
        if audience is None:
            chosen = key[0]
            segments = self.segments
            audience = Audience(
                len(self._interned),
                *key,
                self._size(*key),
                target_mask=sum(1 << t for t in chosen),
                line_mask=_union(segments.line_masks[t] for t in chosen),
                partner_mask=_union(segments.partner_masks[t] for t in chosen),
            )
            self._interned[key] = audience
            self._by_id.append(audience)
        return audience

    def _outermost(self, segments: set[int]) -> tuple[int, ...]:
        """A segment inside another of the set adds nobody: keep the outermost ones."""
        contains = self.segments.contains
        return tuple(
            sorted(s for s in segments if not any(o != s and contains(o, s) for o in segments))
        )

    def shared(self, a: Audience, b: Audience) -> float:
        """Estimated people per week in both audiences (0 when they cannot share anyone)."""
        if not a.may_share(b):
            return 0.0  # most pairs of audiences end here, before any arithmetic
        key = a.id << 32 | b.id if a.id <= b.id else b.id << 32 | a.id
        cached = self._shared.get(key)
        if cached is None:
            cached = self._shared[key] = self._estimate_shared(a, b)
        return cached

    def sharing_with(
        self, audience: Audience, items: Iterable[T], audience_of: Callable[[T], Audience]
    ) -> list[T]:
        """The `items` whose audience shares people with `audience`, in order (read from
        its `people_with` row)."""
        row = self.people_with(audience)
        return [item for item in items if row[audience_of(item).id] > 0]

    def people_with(self, audience: Audience) -> Mapping[int, float]:
        """`shared` between `audience` and each other audience, by the other's id, for a hot
        loop: remembered per audience."""
        row = self._people_with.get(audience.id)
        if row is None:
            row = self._people_with[audience.id] = _PeopleWith(self, audience)
        return row

    def _estimate_shared(self, a: Audience, b: Audience) -> float:
        segments = self.segments
        excluded = (*a.excluded, *b.excluded)
        total = 0.0
        for target_a in a.targets:
            for target_b in b.targets:
                people = segments.shared_people(target_a, target_b)
                if people <= 0:
                    continue
                if segments.contains(target_a, target_b):
                    inside: tuple[int, ...] = (target_b,)
                elif segments.contains(target_b, target_a):
                    inside = (target_a,)
                else:
                    inside = (target_a, target_b)
                total += people * (1.0 - max(self._removed(s, excluded) for s in inside))
        return min(total, a.size, b.size)

    def _removed(self, segment: int, excluded: tuple[int, ...]) -> float:
        """The share of `segment` that `excluded` segments take out (1.0: all of it)."""
        segments = self.segments
        if not segments.sizes[segment]:
            return 1.0
        if not excluded:
            return 0.0
        key = (segment, excluded)
        cached = self._removed_shares.get(key)
        if cached is None:
            cached = self._removed_shares[key] = self._estimate_removed(segment, excluded)
        return cached

    def _estimate_removed(self, segment: int, excluded: tuple[int, ...]) -> float:
        segments = self.segments
        if any(segments.contains(x, segment) for x in excluded):
            return 1.0
        removed = sum(segments.shared_people(x, segment) for x in self._outermost(set(excluded)))
        return min(1.0, removed / segments.sizes[segment])

    def _size(self, targets: tuple[int, ...], excluded: tuple[int, ...]) -> float:
        sizes = self.segments.sizes
        removed = {t: self._removed(t, excluded) for t in targets}
        total = sum(sizes[t] * (1.0 - removed[t]) for t in targets)
        for first, second in combinations(targets, 2):
            both = self.segments.shared_people(first, second)
            total -= both * (1.0 - max(removed[first], removed[second]))
        return max(0.0, total)


class _PeopleWith(dict[int, float]):
    """People one audience shares with others, by their id: each worked out on first use."""

    def __init__(self, model: AudienceModel, audience: Audience) -> None:
        super().__init__()
        self.model = model
        self.audience = audience

    def __missing__(self, other: int) -> float:
        model = self.model
        people = self[other] = model.shared(self.audience, model._by_id[other])
        return people


def _union(masks: Iterable[int]) -> int:
    union = 0
    for mask in masks:
        union |= mask
    return union
