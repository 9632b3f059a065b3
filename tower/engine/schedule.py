"""Who runs where and when: tests indexed by surface node and start day.

Answers "which tests on this node run on any of these days?" with two bisections, and
"which tests share a surface subtree with this one?" by walking its ancestor chains (short)
and asking one index of the tests on or inside each of its nodes. The occupied nodes inside
a node are a preorder id range.
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
    """A `DaySchedule` per surface node that has tests on it; and, once `nested_with` is
    asked, one per node of the tests on it or anywhere inside it (a whole channel's tests
    in one query)."""

    def __init__(self, surfaces: SurfaceIndex, footprints: Iterable[Footprint] = ()) -> None:
        self.surfaces = surfaces
        self.by_node: dict[int, DaySchedule] = {}
        self._within: dict[int, DaySchedule] | None = None  # built on first use
        self.occupied: list[int] = []  # sorted ids of nodes with at least one test
        for footprint in footprints:
            self.add(footprint)

    def add(self, footprint: Footprint) -> None:
        for node in set(footprint.surfaces):
            schedule = self.by_node.get(node)
            if schedule is None:
                schedule = self.by_node[node] = DaySchedule()
                insort(self.occupied, node)
            schedule.add(footprint)
        if self._within is not None:
            self._add_within(self._within, footprint)

    def _add_within(self, within: dict[int, DaySchedule], footprint: Footprint) -> None:
        ancestors = self.surfaces.ancestors
        for covering in {a for node in footprint.surfaces for a in ancestors[node]}:
            schedule = within.get(covering)
            if schedule is None:
                schedule = within[covering] = DaySchedule()
            schedule.add(footprint)

    def on_node(self, node: int, first: int, last: int) -> list[Footprint]:
        schedule = self.by_node.get(node)
        return [] if schedule is None else schedule.running(first, last)

    def occupied_inside(self, node: int) -> list[int]:
        """Nodes strictly inside `node` that have tests on them."""
        low = bisect_right(self.occupied, node)
        high = bisect_left(self.occupied, self.surfaces.end[node])
        return self.occupied[low:high]

    def index_nested(self) -> dict[int, DaySchedule]:
        """The tests on or inside each node, indexed now if not yet (`nested_with` does it
        on first use)."""
        if self._within is None:
            self._within = {}
            placed = {id(f): f for schedule in self.by_node.values() for f in schedule.footprints}
            for footprint in placed.values():
                self._add_within(self._within, footprint)
        return self._within

    def nested_with(self, footprint: Footprint, first: int, last: int) -> Iterator[Footprint]:
        """Every test sharing a surface subtree with `footprint` in [first, last] (may repeat):
        those on or inside its nodes, and those on nodes containing them."""
        within = self.index_nested()
        for node in footprint.surfaces:
            schedule = within.get(node)
            if schedule is not None:
                yield from schedule.running(first, last)
            for ancestor in self.surfaces.ancestors[node][1:]:
                yield from self.on_node(ancestor, first, last)
