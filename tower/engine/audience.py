"""Who a test reaches: a union of segments minus excluded ones, and the people two share.

Every count comes from the policy's population model (`tower.engine.population`): people
in regions, an audience the regions inside its targets and outside its exclusions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tower.engine.graph import SegmentIndex
from tower.engine.population import Members

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Audience:
    """A compiled audience: `id` is shared by every test that targets the same people.

    The masks answer "can two audiences share anyone?" before any arithmetic: its
    targets and their ancestors-or-self (bit i: segment i), and the declared overlaps that
    can put people in it (bit i: the i-th overlap). Two audiences whose targets are not
    nested and that no overlap reaches both share nobody.
    """

    id: int
    members: Members
    size: float
    target_mask: int
    line_mask: int
    overlap_mask: int

    @property
    def targets(self) -> tuple[int, ...]:
        return self.members.targets

    @property
    def excluded(self) -> tuple[int, ...]:
        return self.members.excluded

    def may_share(self, other: Audience) -> bool:
        """False when no region can be in both."""
        return bool(
            self.target_mask & other.line_mask
            or other.target_mask & self.line_mask
            or self.overlap_mask & other.overlap_mask
        )


class AudienceModel:
    """Compiles audiences once and answers "how many people do these two share?" from a cache."""

    def __init__(self, segments: SegmentIndex) -> None:
        self.segments = segments
        self.population = segments.population_model
        self._interned: dict[Members, Audience] = {}
        self._by_id: list[Audience] = []
        self._shared: dict[int, float] = {}  # by (lower id << 32 | higher id)
        self._people_with: dict[int, _PeopleWith] = {}

    def compile(self, targets: Iterable[str], excluded: Iterable[str] = ()) -> Audience:
        """The audience of `targets` (everyone when empty) without `excluded`."""
        ids, population = self.segments.ids, self.population
        target_ids = {ids[name] for name in targets} or {self.segments.root}
        members = Members(
            population.outermost(target_ids), population.outermost(ids[n] for n in excluded)
        )
        audience = self._interned.get(members)
        if audience is None:
            chosen = members.targets
            relevant = population.relevant(members)
            audience = Audience(
                len(self._interned),
                members,
                population.size(members, relevant),
                target_mask=sum(1 << t for t in chosen),
                line_mask=_union(self.segments.line_masks[t] for t in chosen),
                overlap_mask=relevant,
            )
            self._interned[members] = audience
            self._by_id.append(audience)
        return audience

    def shared(self, a: Audience, b: Audience) -> float:
        """Estimated people per week in both audiences (0 when they cannot share anyone)."""
        if not a.may_share(b):
            return 0.0  # most pairs of audiences end here, before any arithmetic
        key = a.id << 32 | b.id if a.id <= b.id else b.id << 32 | a.id
        cached = self._shared.get(key)
        if cached is None:
            cached = self.population.shared(a.members, b.members, a.overlap_mask & b.overlap_mask)
            self._shared[key] = cached = min(cached, a.size, b.size)
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

    def reaching(self, audiences: Sequence[Audience]) -> dict[int, float]:
        """People by which of `audiences` reach them (bit i: audiences[i]); see
        `Population.reaching`."""
        return self.population.reaching([audience.members for audience in audiences])


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
