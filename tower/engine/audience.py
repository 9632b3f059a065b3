"""Who a test reaches: a union of segments minus excluded ones, and the people two share.

Every count comes from the policy's population model (`tower.engine.population`): people
in regions, an audience the regions inside its targets and outside its exclusions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from operator import attrgetter
from typing import TypeVar

from tower.engine.graph import SegmentIndex
from tower.engine.population import NOBODY, Members, union

# An audience holds all of another when it holds this share of its people (sums of
# region sizes round).
ALL_BUT_ROUNDING = 1 - 1e-9

T = TypeVar("T")
_SIZE = attrgetter("size")


@dataclass(frozen=True, slots=True)
class Audience:
    """A compiled audience: `id` is shared by every test that targets the same people.

    The masks answer "can two audiences share anyone?" before any arithmetic: its
    targets and their ancestors-or-self (bit i: segment i), and the declared overlaps that
    can put people in it (bit i: the i-th overlap). Two audiences whose targets are not
    nested and that no overlap reaches both share nobody. `regions` goes further: the
    population regions it holds, whose AND with others' says who they share and how many
    (`Population.regions`).
    """

    id: int
    members: Members
    size: float
    target_mask: int
    line_mask: int
    overlap_mask: int
    regions: int  # the population regions it holds (`Population.regions`)

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
        self._reaching: dict[tuple[int, ...], Mapping[int, float]] = {}
        # People in all of a set of audiences and whether that is an estimate, by their
        # sorted ids (the sets asked about, and the essential sets they come down to).
        self._in_all: dict[tuple[int, ...], tuple[float, bool]] = {}

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
            regions = population.regions(members)
            if population.regions_complete:  # counted as every other figure is: by region
                size = population.people_in(regions)
            else:
                size = population.size(members, relevant)
            audience = Audience(
                len(self._interned),
                members,
                size,
                target_mask=sum(1 << t for t in chosen),
                line_mask=union(self.segments.line_masks[t] for t in chosen),
                overlap_mask=relevant,
                regions=regions,
            )
            self._interned[members] = audience
            self._by_id.append(audience)
        return audience

    def shared(self, a: Audience, b: Audience) -> float:
        """People per week in both audiences (0 when they cannot share anyone)."""
        if not a.may_share(b):
            return 0.0  # most pairs of audiences end here, before any arithmetic
        key = a.id << 32 | b.id if a.id <= b.id else b.id << 32 | a.id
        cached = self._shared.get(key)
        if cached is None:
            population = self.population
            if population.regions_complete:  # the people of the regions both hold
                cached = population.people_in(a.regions & b.regions)
            else:
                cached = population.shared(a.members, b.members, a.overlap_mask & b.overlap_mask)
            self._shared[key] = cached = min(cached, a.size, b.size)
        return cached

    def share_someone(self, first: Audience, second: Audience) -> bool:
        """Whether the two share people (`shared` > 0): their region masks say so when
        they can (`reach_someone`), else `first`'s `people_with` row."""
        common = first.regions & second.regions
        population = self.population
        if common & population.solid_regions:
            return True
        if not common and population.regions_complete:
            return False
        return self.people_with(first)[second.id] > 0

    def sharing_with(
        self, audience: Audience, items: Iterable[T], audience_of: Callable[[T], Audience]
    ) -> list[T]:
        """The `items` whose audience shares people with `audience`, in order."""
        share = self.share_someone
        return [item for item in items if share(audience, audience_of(item))]

    def people_with(self, audience: Audience) -> Mapping[int, float]:
        """`shared` between `audience` and each other audience, by the other's id, for a hot
        loop: remembered per audience."""
        row = self._people_with.get(audience.id)
        if row is None:
            row = self._people_with[audience.id] = _PeopleWith(self, audience)
        return row

    def essential(self, audiences: Sequence[Audience]) -> list[Audience] | None:
        """The distinct `audiences` whose people in all decide who is in all of them:
        any that holds another of them adds nothing and is left out (the usual case
        leaves one). None when two of them share nobody, so nobody is in all."""
        kept: list[Audience] = []
        for audience in sorted({a.id: a for a in audiences}.values(), key=_SIZE):
            row = self.people_with(audience)
            holds_one = False
            for inner in kept:
                people = row[inner.id]
                if people <= 0:
                    return None
                holds_one = holds_one or people >= inner.size * ALL_BUT_ROUNDING
            if not holds_one:
                kept.append(audience)
        return kept

    def reaching(self, audiences: Sequence[Audience]) -> Mapping[int, float]:
        """People by which of `audiences` (distinct) reach them: bit i of a key is
        audiences[i] (`Population.reaching`). Remembered per set of audiences."""
        ids = tuple(audience.id for audience in audiences)
        cached = self._reaching.get(ids)
        if cached is None:
            members = [audience.members for audience in audiences]
            relevant = union(audience.overlap_mask for audience in audiences)
            cached = self._reaching[ids] = self.population.reaching(members, relevant)
        return cached

    def reach_someone(self, audiences: Sequence[Audience]) -> bool:
        """Whether someone is in all of `audiences` (`people_in_all` > 0). A region they
        all hold with someone in it says yes at once; two of them without a region in
        common say no (when the masks are complete). Else the counts decide: an estimate
        may find people in all where no region holds them (`_estimate`)."""
        common = common_regions(audiences)
        population = self.population
        if common & population.solid_regions:
            return True
        if population.regions_complete and _two_apart(audiences):
            return False
        return self.people_in_all(audiences) > 0

    def people_in_all(self, audiences: Sequence[Audience]) -> float:
        """People every one of `audiences` reaches (remembered per set of audiences)."""
        return self.in_all(audiences)[0]

    def in_all(self, audiences: Sequence[Audience]) -> tuple[float, bool]:
        """People in all of `audiences`, and whether that is an estimate: one look-up
        for both. Usually the people of the regions they all hold (remembered per set of
        regions); else worked out (remembered per set of audiences)."""
        population = self.population
        if population.regions_complete:
            people = population.people_in(common_regions(audiences))
            if people:
                return people, False
        ids = tuple(sorted({audience.id for audience in audiences}))
        known = self._in_all.get(ids)
        if known is None:
            known = self._in_all[ids] = self._work_out_in_all(audiences, len(ids))
        return known

    def _work_out_in_all(self, audiences: Sequence[Audience], count: int) -> tuple[float, bool]:
        narrowest = min(audiences, key=_SIZE)
        row = self.people_with(narrowest)
        whole = narrowest.size * ALL_BUT_ROUNDING
        if all(row[other.id] >= whole for other in audiences):
            return narrowest.size, False  # the usual case: it lies inside every other
        distinct = self.essential(audiences)
        if distinct is None:
            return 0.0, False
        if len(distinct) < count:  # some held another: the rest decide (remembered too)
            return self.in_all(distinct)
        if len(distinct) == 2:
            return self.shared(*distinct), False
        relevant = -1
        for audience in distinct:
            relevant &= audience.overlap_mask
        exact = self.population.in_all([audience.members for audience in distinct], relevant)
        if exact:
            return exact, False
        estimate = self._estimate(distinct)
        return estimate, estimate > 0

    def _estimate(self, distinct: Sequence[Audience]) -> float:
        """People in all of three or more audiences that regions cannot place: each two
        share people only through overlaps declared two by two, so nobody sits in all of
        them. Taken as independent within the narrowest: |N| x the share of N each other
        holds. Zero unless every two share people through an overlap."""
        population = self.population
        for first, second in combinations(distinct, 2):
            relevant = first.overlap_mask & second.overlap_mask
            if not relevant:
                return 0.0
            if population.through_overlaps(first.members, second.members, relevant) <= NOBODY:
                return 0.0
        narrowest = min(distinct, key=_SIZE)
        people = narrowest.size
        for other in distinct:
            if other is not narrowest:
                people *= self.shared(narrowest, other) / narrowest.size
        return people


def _two_apart(audiences: Sequence[Audience]) -> bool:
    """Whether two of `audiences` hold no region in common."""
    for index, first in enumerate(audiences):
        for second in audiences[index + 1 :]:
            if not first.regions & second.regions:
                return True
    return False


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


def common_regions(audiences: Sequence[Audience]) -> int:
    """The regions every one of `audiences` holds (at least one audience)."""
    if not audiences:
        raise ValueError("people in all of no audiences: name at least one")
    common = audiences[0].regions
    for audience in audiences[1:]:
        common &= audience.regions
    return common
