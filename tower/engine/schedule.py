"""Who runs where and when: tests indexed by surface node and start day.

Answers "which tests on this node run on any of these days?" with two bisections, and
"which tests share a surface subtree with this one?" by walking its ancestor chains (short)
and asking one index of the tests on or inside each of its nodes. The occupied nodes inside
a node are a preorder id range.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator

from tower.engine.crowding import item_number
from tower.engine.graph import SurfaceIndex
from tower.engine.portfolio import Footprint


class DaySchedule:
    """Footprints sorted by start day; finds those running on any day of a window.

    `add` keeps the order of adding among footprints starting the same day; `insert` puts
    one where adding in number order would have (the order of a schedule built from a
    portfolio). `longest` is at least the longest footprint's length, all `running` needs:
    `remove` leaves it be.
    """

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

    def insert(self, footprint: Footprint) -> None:
        """Add `footprint` after those starting earlier and, among those starting the same
        day, by number."""
        start = footprint.start
        low, high = bisect_left(self.starts, start), bisect_right(self.starts, start)
        position = bisect_left(self.footprints, item_number(footprint), low, high, key=item_number)
        self.starts.insert(position, start)
        self.footprints.insert(position, footprint)
        self.longest = max(self.longest, footprint.days)

    def remove(self, footprint: Footprint) -> None:
        """Take out `footprint` (this very object)."""
        start = footprint.start
        for position in range(bisect_left(self.starts, start), bisect_right(self.starts, start)):
            if self.footprints[position] is footprint:
                del self.starts[position], self.footprints[position]
                if not self.footprints:
                    self.longest = 0
                return
        raise ValueError(f"{footprint.key} is not in this schedule")

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
    in one query). The nested index keeps tests starting the same day in number order."""

    def __init__(self, surfaces: SurfaceIndex, footprints: Iterable[Footprint] = ()) -> None:
        self.surfaces = surfaces
        self.by_node: dict[int, DaySchedule] = {}
        self._within: dict[int, DaySchedule] | None = None  # built on first use
        self.occupied: list[int] = []  # sorted ids of nodes with at least one test
        for footprint in footprints:
            self.add(footprint)

    def add(self, footprint: Footprint) -> None:
        self._put(footprint, DaySchedule.add)

    def insert(self, footprint: Footprint) -> None:
        """`add`, but in number order among the tests starting the same day (where a
        schedule built from a portfolio in number order has it)."""
        self._put(footprint, DaySchedule.insert)

    def remove(self, footprint: Footprint) -> None:
        """Take out `footprint`; a node left without tests is no longer occupied."""
        for node in set(footprint.surfaces):
            if _take(self.by_node, node, footprint):
                del self.occupied[bisect_left(self.occupied, node)]
        if self._within is not None:
            for covering in self._covering(footprint):
                _take(self._within, covering, footprint)

    def _put(self, footprint: Footprint, put: Callable[[DaySchedule, Footprint], None]) -> None:
        for node in set(footprint.surfaces):
            schedule = self.by_node.get(node)
            if schedule is None:
                schedule = self.by_node[node] = DaySchedule()
                insort(self.occupied, node)
            put(schedule, footprint)
        if self._within is not None:
            self._put_within(self._within, footprint, put)

    def _put_within(
        self,
        within: dict[int, DaySchedule],
        footprint: Footprint,
        put: Callable[[DaySchedule, Footprint], None] = DaySchedule.add,
    ) -> None:
        for covering in self._covering(footprint):
            schedule = within.get(covering)
            if schedule is None:
                schedule = within[covering] = DaySchedule()
            put(schedule, footprint)

    def _covering(self, footprint: Footprint) -> set[int]:
        """The nodes `footprint` is on or inside."""
        ancestors = self.surfaces.ancestors
        return {a for node in footprint.surfaces for a in ancestors[node]}

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
                self._put_within(self._within, footprint, DaySchedule.insert)
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


def _take(schedules: dict[int, DaySchedule], node: int, footprint: Footprint) -> bool:
    """Take `footprint` out of the schedule of `node`, dropped if left empty (then True)."""
    schedule = schedules[node]
    schedule.remove(footprint)
    if schedule:
        return False
    del schedules[node]
    return True


def insert_by_number(footprints: list[Footprint], footprint: Footprint) -> None:
    """Put `footprint` in its place in `footprints`, sorted by number (a new test's is last)."""
    number = footprint.item.number
    if not footprints or footprints[-1].item.number < number:
        footprints.append(footprint)
    else:
        footprints.insert(bisect_left(footprints, number, key=item_number), footprint)


def remove_by_number(footprints: list[Footprint], footprint: Footprint) -> None:
    """Take `footprint` (this very object) out of `footprints`, sorted by number."""
    position = bisect_left(footprints, footprint.item.number, key=item_number)
    if position == len(footprints) or footprints[position] is not footprint:
        raise ValueError(f"{footprint.key} is not among these tests")
    del footprints[position]
