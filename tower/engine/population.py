"""Where the policy's people are: one model behind every count of people.

People sit in regions. Each segment has its own region: its size less its children's,
plus what the children's branches share through declared overlaps (never below zero, so
a policy whose children outnumber their parent still loads). A declared overlap
(a, b, share) puts share * min(|a|, |b|) people at one position under `a` (a or a
descendant) and one under `b`, spread over those positions in proportion to their own
regions. A person at a position belongs to that segment and all its ancestors; the people
of an overlap are taken out of their positions' own regions, so each segment still holds
its declared size where the sizes allow.

An audience (target segments less excluded ones) holds the regions with a position inside
one of its targets and none inside an excluded segment. Two audiences share the regions in
both; a crowd, the regions in all.

Segments are numbered in preorder, so a segment's subtree is the id range
[s, end[s]) and the people of any union of subtrees are read from prefix sums.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

# Below this many people a count is rounding noise of the products below, not a person.
NOBODY = 1e-6
# At most this many regions of overlap pairs get a bit of their own in region masks.
PAIR_REGIONS = 20_000


@dataclass(frozen=True, slots=True)
class Members:
    """Who an audience holds: the outermost target and excluded segments."""

    targets: tuple[int, ...]
    excluded: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _OverlapPeople:
    """The people of one declared overlap: `people` in all, spread over the positions
    under `a` and under `b` by weight (each side's weights sum to 1), held as prefix sums
    of the weights by segment id (len n + 1)."""

    a: int
    b: int
    people: float
    prefix_a: tuple[float, ...]
    prefix_b: tuple[float, ...]


class Population:
    """The regions of one policy's audience tree, and the people in any of them."""

    def __init__(
        self,
        sizes: Sequence[int],
        parents: Sequence[int | None],
        overlaps: Iterable[tuple[int, int, float]],
    ) -> None:
        count = len(sizes)
        self.end = _subtree_ends(parents)
        self.parents = tuple(parents)
        children: list[list[int]] = [[] for _ in range(count)]
        for segment, parent in enumerate(parents):
            if parent is not None:
                children[parent].append(segment)
        declared = [(a, b, share * min(sizes[a], sizes[b])) for a, b, share in overlaps]
        own = [float(size) for size in sizes]
        for segment in range(count):
            own[segment] -= sum(sizes[child] for child in children[segment])
        for a, b, people in declared:
            meet = self._lowest_common_ancestor(a, b)
            if meet is not None:  # both branches counted it: give it back once
                own[meet] += people
        own = [max(0.0, people) for people in own]
        self.own = tuple(own)
        singles = list(own)
        spread: list[_OverlapPeople] = []
        for a, b, people in declared:
            weight_a, weight_b = self._spread(a), self._spread(b)
            for segment in range(count):
                singles[segment] -= people * (weight_a[segment] + weight_b[segment])
            spread.append(_OverlapPeople(a, b, people, _prefix(weight_a), _prefix(weight_b)))
        self.singles = tuple(max(0.0, people) for people in singles)
        self._singles_prefix = _prefix(self.singles)
        self.overlaps = tuple(spread)
        self.everyone = sum(self.singles) + sum(o.people for o in spread)
        self._sides: dict[tuple[Members, int], tuple[float, float]] = {}
        self.solid_regions = 0  # the regions holding more than `NOBODY`: someone for sure
        self.regions_complete = True  # every region holding anyone has a bit
        self._region_people: list[float] = []  # by bit
        self._subtree_regions = self._number_regions()
        self._people_in: dict[int, float] = {}

    def _number_regions(self) -> tuple[int, ...]:
        """Per segment, a mask of the regions with a position in its subtree: bit s for
        segment s's own region, and one bit after those for each pair of an overlap's
        positions. Only regions holding people get a bit, and an overlap's pairs only
        while there are at most `PAIR_REGIONS` of them in all (else `regions_complete` is
        False: a region without a bit only leaves a question to the counts)."""
        count = len(self.own)
        bits_at: list[list[int]] = [[s] if self.singles[s] > 0 else [] for s in range(count)]
        solid = [s for s in range(count) if self.singles[s] > NOBODY]
        people = list(self.singles)  # by bit
        for overlap in self.overlaps:
            side_a = _weights(overlap.a, self.end[overlap.a], overlap.prefix_a)
            side_b = _weights(overlap.b, self.end[overlap.b], overlap.prefix_b)
            if len(people) + len(side_a) * len(side_b) > count + PAIR_REGIONS:
                self.regions_complete = False
                continue
            for a, weight_a in side_a:
                for b, weight_b in side_b:
                    pair = overlap.people * weight_a * weight_b
                    if pair > 0:
                        bits_at[a].append(len(people))
                        bits_at[b].append(len(people))
                        if pair > NOBODY:
                            solid.append(len(people))
                        people.append(pair)
        self._region_people = people
        self.solid_regions = _mask(solid, len(people))
        subtree = [_mask(bits, len(people)) for bits in bits_at]
        for segment in reversed(range(count)):  # preorder: children come after parents
            parent = self.parents[segment]
            if parent is not None:
                subtree[parent] |= subtree[segment]
        return tuple(subtree)

    def regions(self, members: Members) -> int:
        """A mask of the regions an audience holds (see `_number_regions`). Audiences whose
        masks meet in `solid_regions` share someone; when the masks are complete, two
        whose masks do not meet share nobody. Either way, without any arithmetic."""
        held = excluded = 0
        for target in members.targets:
            held |= self._subtree_regions[target]
        for segment in members.excluded:
            excluded |= self._subtree_regions[segment]
        return held & ~excluded

    def people_in(self, regions: int) -> float:
        """The people in the regions of the mask `regions`, 0 when no more than `NOBODY`
        as every count here (remembered per mask): a pass over its bytes, so a mask of
        many regions costs as many steps as it has bytes."""
        people = self._people_in.get(regions)
        if people is None:
            if regions < 0:
                raise ValueError("a mask of regions is never negative")
            people = 0.0
            by_bit = self._region_people
            raw = regions.to_bytes((regions.bit_length() + 7) // 8, "little")
            for index, byte in enumerate(raw):
                if byte:
                    first = index * 8
                    for bit in _BITS_OF_BYTE[byte]:
                        people += by_bit[first + bit]
            people = self._people_in[regions] = people if people > NOBODY else 0.0
        return people

    def _lowest_common_ancestor(self, a: int, b: int) -> int | None:
        line = set(self._line(a))
        return next((s for s in self._line(b) if s in line), None)

    def _line(self, segment: int) -> Iterable[int]:
        at: int | None = segment
        while at is not None:
            yield at
            at = self.parents[at]

    def _spread(self, segment: int) -> tuple[float, ...]:
        """Weights of the positions under `segment`, in proportion to their own regions
        (all on `segment` when its subtree has no own region left)."""
        weights = [0.0] * len(self.own)
        first, last = segment, self.end[segment]
        total = sum(self.own[first:last])
        if total <= 0:
            weights[segment] = 1.0
            return tuple(weights)
        for position in range(first, last):
            weights[position] = self.own[position] / total
        return tuple(weights)

    def contains(self, outer: int, inner: int) -> bool:
        return outer <= inner < self.end[outer]

    def nested(self, a: int, b: int) -> bool:
        return self.contains(a, b) or self.contains(b, a)

    def outermost(self, segments: Iterable[int]) -> tuple[int, ...]:
        """The segments of the set not inside another of it, in id order."""
        end = self.end
        kept: list[int] = []
        last_end = -1  # one past the last kept segment's subtree
        for segment in sorted(set(segments)):
            if segment >= last_end:  # preorder: inside the last kept one or after it
                kept.append(segment)
                last_end = end[segment]
        return tuple(kept)

    def _covered(self, prefix: Sequence[float], cover: Sequence[int]) -> float:
        """The weight of the union of the subtrees of `cover` (outermost segments), from
        `prefix` sums."""
        end = self.end
        total = 0.0
        for segment in cover:
            total += prefix[end[segment]] - prefix[segment]
        return total

    def _meet(self, first: Sequence[int], second: Sequence[int]) -> tuple[int, ...]:
        """Segments whose subtrees make the intersection of the two unions of subtrees."""
        if len(first) == len(second) == 1:  # the usual case: one target each
            x, y = first[0], second[0]
            return (y,) if self.contains(x, y) else (x,) if self.contains(y, x) else ()
        return self.outermost(
            (y if self.contains(x, y) else x) for x in first for y in second if self.nested(x, y)
        )

    def relevant(self, members: Members) -> int:
        """A mask of the overlaps (bit i: the i-th) that can put people in `members`."""
        mask = 0
        for index, overlap in enumerate(self.overlaps):
            if any(self.nested(t, overlap.a) or self.nested(t, overlap.b) for t in members.targets):
                mask |= 1 << index
        return mask

    def size(self, members: Members, relevant: int) -> float:
        """People in the audience (`relevant`: its mask of overlaps)."""
        excluded = members.excluded
        inside = self.outermost((*members.targets, *excluded))
        total = self._covered(self._singles_prefix, inside)
        total -= self._covered(self._singles_prefix, excluded)
        for overlap in self._overlaps_in(relevant):
            total += overlap.people * (
                self._outside(overlap, excluded) - self._outside(overlap, inside)
            )
        return total if total > NOBODY else 0.0

    def shared(self, first: Members, second: Members, relevant: int) -> float:
        """People in both audiences (`relevant`: the overlaps that can put people in both)."""
        if first.excluded or second.excluded or not relevant:
            return self.in_all((first, second), relevant)
        # The usual case with overlaps: no exclusion. A pair of positions is in both unless
        # it misses one audience's targets: each side's weight inside the targets of one,
        # of the other and of both (their meet) gives the rest.
        both = self._meet(first.targets, second.targets)
        total = self._covered(self._singles_prefix, both)
        for index, overlap in self._indexed_overlaps_in(relevant):
            in_first_a, in_first_b = self._inside_sides(first, index)
            in_second_a, in_second_b = self._inside_sides(second, index)
            in_both_a = self._covered(overlap.prefix_a, both)
            in_both_b = self._covered(overlap.prefix_b, both)
            in_either_a = in_first_a + in_second_a - in_both_a
            in_either_b = in_first_b + in_second_b - in_both_b
            total += overlap.people * (
                1.0
                - (1.0 - in_first_a) * (1.0 - in_first_b)
                - (1.0 - in_second_a) * (1.0 - in_second_b)
                + (1.0 - in_either_a) * (1.0 - in_either_b)
            )
        return total if total > NOBODY else 0.0

    def _inside_sides(self, members: Members, index: int) -> tuple[float, float]:
        """The weight of overlap `index`'s positions under a, and under b, inside the
        targets of `members` (remembered)."""
        key = (members, index)
        sides = self._sides.get(key)
        if sides is None:
            overlap = self.overlaps[index]
            sides = self._sides[key] = (
                self._covered(overlap.prefix_a, members.targets),
                self._covered(overlap.prefix_b, members.targets),
            )
        return sides

    def through_overlaps(self, first: Members, second: Members, relevant: int) -> float:
        """People in both audiences placed by a declared overlap (not in a segment's own
        region alone)."""
        excluded = self.outermost((*first.excluded, *second.excluded))
        alone = self._alone_in(self._meet(first.targets, second.targets), excluded)
        return self.shared(first, second, relevant) - alone

    def _alone_in(self, both: Sequence[int], excluded: Sequence[int]) -> float:
        """People of the segments' own regions inside the subtrees of `both` and outside
        those of `excluded` (both outermost)."""
        if not both:
            return 0.0
        inside = self._covered(self._singles_prefix, self.outermost((*both, *excluded)))
        return inside - self._covered(self._singles_prefix, excluded)

    def in_all(self, crowd: Sequence[Members], relevant: int) -> float:
        """People in every audience of `crowd` (`relevant`: the overlaps that can put
        people in all). A pair of an overlap's positions is in all when no member excludes
        either and each member has a target over one of them: each side's positions are
        grouped by the members over them (`_runs`), and the groups paired."""
        both: tuple[int, ...] = crowd[0].targets
        for members in crowd[1:]:
            both = self._meet(both, members.targets)
        if not relevant and not any(members.excluded for members in crowd):
            # The usual case: the regions of the segments inside every target.
            total = self._covered(self._singles_prefix, both)
            return total if total > NOBODY else 0.0
        excluded = self.outermost(s for members in crowd for s in members.excluded)
        total = self._alone_in(both, excluded)
        everyone = (1 << len(crowd)) - 1
        for overlap in self._overlaps_in(relevant):
            side_a, side_b = self._side_runs(overlap, crowd)
            pairs = 0.0
            for (over_a, barred_a), weight_a in side_a.items():
                if barred_a:
                    continue
                for (over_b, barred_b), weight_b in side_b.items():
                    if not barred_b and over_a | over_b == everyone:
                        pairs += weight_a * weight_b
            total += overlap.people * pairs
        return total if total > NOBODY else 0.0

    def _overlaps_in(self, mask: int) -> Iterable[_OverlapPeople]:
        for _, overlap in self._indexed_overlaps_in(mask):
            yield overlap

    def _indexed_overlaps_in(self, mask: int) -> Iterable[tuple[int, _OverlapPeople]]:
        overlaps = self.overlaps
        while mask:
            low = mask & -mask
            index = low.bit_length() - 1
            yield index, overlaps[index]
            mask ^= low

    def _outside(self, overlap: _OverlapPeople, cover: Sequence[int]) -> float:
        """The share of the overlap's pairs of positions with neither inside the subtrees
        of `cover` (outermost segments)."""
        return (1.0 - self._covered(overlap.prefix_a, cover)) * (
            1.0 - self._covered(overlap.prefix_b, cover)
        )

    def reaching(self, crowd: Sequence[Members], relevant: int) -> dict[int, float]:
        """People by which members of `crowd` reach them: bit i of a key is crowd[i]
        (keys with no bit left out). Regions are grouped by who they are in (`_runs`), so
        a crowd costs a sort of its members' subtrees, not a pass over the segments."""
        everyone = (1 << len(crowd)) - 1
        people: dict[int, float] = defaultdict(float)
        runs = self._runs(0, len(self.own), self._singles_prefix, crowd)
        for (over, barred), weight in runs.items():
            who = over & ~barred
            if who:
                people[who] += weight
        for overlap in self._overlaps_in(relevant):
            side_a, side_b = self._side_runs(overlap, crowd)
            for (over_a, barred_a), weight_a in side_a.items():
                for (over_b, barred_b), weight_b in side_b.items():
                    who = everyone & ~(barred_a | barred_b) & (over_a | over_b)
                    if who:
                        people[who] += overlap.people * weight_a * weight_b
        return {who: amount for who, amount in people.items() if amount > NOBODY}

    def _side_runs(
        self, overlap: _OverlapPeople, crowd: Sequence[Members]
    ) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], float]]:
        """`_runs` of the overlap's positions under a, and under b."""
        end = self.end
        return (
            self._runs(overlap.a, end[overlap.a], overlap.prefix_a, crowd),
            self._runs(overlap.b, end[overlap.b], overlap.prefix_b, crowd),
        )

    def _runs(
        self, first: int, last: int, prefix: Sequence[float], crowd: Sequence[Members]
    ) -> dict[tuple[int, int], float]:
        """The positions first..last-1 (a subtree, or every segment) grouped by (members
        with a target over them, members excluding them), with their summed weight from
        `prefix`. A member's targets are disjoint subtrees, and so are its exclusions: each
        is a run of ids that sets the member's bit where it starts and clears it where it
        ends, so a sweep over those ends finds every group."""
        end = self.end
        over = barred = 0  # at `first`: the members whose subtrees hold it
        edges: list[tuple[int, int, int]] = []  # (id, member bit over, member bit barred)
        for bit, members in enumerate(crowd):
            flag = 1 << bit
            for target in members.targets:
                if target <= first < end[target]:
                    over |= flag
                elif first <= target < last:
                    edges += ((target, flag, 0), (end[target], flag, 0))
            for excluded in members.excluded:
                if excluded <= first < end[excluded]:
                    barred |= flag
                elif first <= excluded < last:
                    edges += ((excluded, 0, flag), (end[excluded], 0, flag))
        edges.sort()
        groups: dict[tuple[int, int], float] = {}
        at = first
        for position, over_flag, barred_flag in edges:
            if position > at:
                weight = prefix[position] - prefix[at]
                if weight > 0:
                    groups[over, barred] = groups.get((over, barred), 0.0) + weight
                at = position
            over ^= over_flag
            barred ^= barred_flag
        if last > at:
            weight = prefix[last] - prefix[at]
            if weight > 0:
                groups[over, barred] = groups.get((over, barred), 0.0) + weight
        return groups


def _weights(first: int, last: int, prefix: Sequence[float]) -> list[tuple[int, float]]:
    """The positions first..last-1 with some weight in `prefix`, and their weights."""
    weights = [(at, prefix[at + 1] - prefix[at]) for at in range(first, last)]
    return [(at, weight) for at, weight in weights if weight > 0]


def union(masks: Iterable[int]) -> int:
    """The union of bit masks."""
    found = 0
    for mask in masks:
        found |= mask
    return found


def _mask(bits: Iterable[int], size: int) -> int:
    """The mask with `bits` set (each below `size`), built in one pass."""
    raw = bytearray((size + 7) // 8)
    for bit in bits:
        raw[bit >> 3] |= 1 << (bit & 7)
    return int.from_bytes(raw, "little")


# The set bits of each byte value, lowest first.
_BITS_OF_BYTE = tuple(tuple(bit for bit in range(8) if value >> bit & 1) for value in range(256))


def _prefix(values: Sequence[float]) -> tuple[float, ...]:
    return (0.0, *accumulate(values))


def _subtree_ends(parents: Sequence[int | None]) -> tuple[int, ...]:
    """Per segment (numbered in preorder), one past the last id of its subtree."""
    end = list(range(1, len(parents) + 1))
    for segment in reversed(range(len(parents))):
        parent = parents[segment]
        if parent is not None:
            end[parent] = max(end[parent], end[segment])
    return tuple(end)
