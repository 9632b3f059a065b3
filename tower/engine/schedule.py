"""Who runs where and when: tests indexed by surface node and start day.

Answers "which tests on this node run on any of these days?" with two bisections, and
"which tests share a surface subtree with this one?" by walking ancestor chains (short)
and the occupied nodes inside a subtree (a preorder id range).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator

from tower.engine.graph import SurfaceIndex
from tower.engine.portfolio import Footprint


class DaySchedule:
    """Footprints sorted by start day; finds those running on any day of a window."""

    __slots__ = ("footprints", "longest", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.footprints: list[Footprint] = []
        self.longest = 0

    def add(self, footprint: Footprint) -> None:
        position = bisect_right(self.starts, footprint.start)
        self.starts.insert(position, footprint.start)
        self.footprints.insert(position, footprint)
        self.longest = max(self.longest, footprint.days)

    def running(self, first: int, last: int) -> list[Footprint]:
        """Footprints with at least one day in [first, last]."""
        low = bisect_left(self.starts, first - self.longest + 1)
        high = bisect_right(self.starts, last)
        return [footprint for footprint in self.footprints[low:high] if footprint.end >= first]

    def __len__(self) -> int:
        return len(self.footprints)


class SurfaceSchedule:
    """A `DaySchedule` per surface node that has tests on it."""

    def __init__(self, surfaces: SurfaceIndex, footprints: Iterable[Footprint] = ()) -> None:
        self.surfaces = surfaces
        self.by_node: dict[int, DaySchedule] = {}
        self.occupied: list[int] = []  # sorted ids of nodes with at least one test
        self.first_day = self.last_day = 0  # the earliest start and latest end (0: empty)
        for footprint in footprints:
            self.add(footprint)

    def add(self, footprint: Footprint) -> None:
        if not self.by_node:
            self.first_day, self.last_day = footprint.start, footprint.end
        self.first_day = min(self.first_day, footprint.start)
        self.last_day = max(self.last_day, footprint.end)
        for node in set(footprint.surfaces):
            schedule = self.by_node.get(node)
            if schedule is None:
                schedule = self.by_node[node] = DaySchedule()
                insort(self.occupied, node)
            schedule.add(footprint)

    def on_node(self, node: int, first: int, last: int) -> list[Footprint]:
        schedule = self.by_node.get(node)
        return [] if schedule is None else schedule.running(first, last)

    def above(self, footprint: Footprint, first: int, last: int) -> Iterator[Footprint]:
        """Tests on the same nodes as `footprint` or on nodes containing them (may repeat)."""
        for node in footprint.surfaces:
            for ancestor in self.surfaces.ancestors[node]:
                yield from self.on_node(ancestor, first, last)

    def occupied_inside(self, node: int) -> list[int]:
        """Nodes strictly inside `node` that have tests on them."""
        low = bisect_right(self.occupied, node)
        high = bisect_left(self.occupied, self.surfaces.end[node])
        return self.occupied[low:high]

    def below(self, footprint: Footprint, first: int, last: int) -> Iterator[Footprint]:
        """Tests on nodes strictly inside the surfaces of `footprint` (may repeat)."""
        for node in footprint.surfaces:
            for inner in self.occupied_inside(node):
                yield from self.on_node(inner, first, last)

    def nested_with(self, footprint: Footprint, first: int, last: int) -> Iterator[Footprint]:
        """Every test sharing a surface subtree with `footprint` in [first, last] (may repeat)."""
        yield from self.above(footprint, first, last)
        yield from self.below(footprint, first, last)
