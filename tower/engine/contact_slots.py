"""When a test can start without breaking a contact cap, among activities already placed.

A test of `L` days breaks a cap of `max` per `D` days at start `t` when some `max` placed
activities on the channel reach one person together with it (at most one arm of each
exclusion group, `one_person`) and fit with it in one window of `D` days. Such a set `S`
fits when its latest start `m` and earliest end `e` are less than `D` days apart, and then
it blocks exactly the starts

    m - D + 2 - L  <=  t  <=  e + D - 1.

Every such set has a latest starter, its anchor `a`; the others run in the `D` days that
end on the anchor's start. Among them, the sets that end latest block longest: per anchor,
one interval of blocked starts. The first start at or after the test's own that no interval
covers is the next start within the cap, found by merging intervals as they chain, so the
planner jumps over a whole crowded stretch at once.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from tower.engine.contact_crowds import sharing_near
from tower.engine.one_person import reach_one_person
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.schedule import DaySchedule
from tower.policy.schema import ContactCap

END = attrgetter("end")


@dataclass(frozen=True)
class CapBlock:
    """Starts from `first` to `last` break the cap with `crowd` (the test aside)."""

    first: int
    last: int
    crowd: tuple[Footprint, ...]


def next_start_within_cap(
    compiler: Compiler,
    schedule: DaySchedule,
    cap: ContactCap,
    footprint: Footprint,
    *,
    latest: int,
    looking: Callable[[int, int], None] | None = None,
) -> tuple[int, CapBlock | None]:
    """The first start from `footprint.start` on (or past `latest`) that breaks no crowd
    over `cap` among `schedule`'s activities, and the block covering its own start (None
    when that start is already within the cap). `looking` is told each stretch of days
    before the schedule is read there."""
    days, length, start = cap.per_days, footprint.days, footprint.start
    blocks: list[CapBlock] = []
    asked: set[str] = set()
    run_end = start - 1  # starts [start, run_end] are known to be blocked
    while run_end < latest:
        # Only sets whose members all end from `first` on can block the day after the run,
        # and their anchors start by `last`: those running in [first, last] hold them all.
        first, last = run_end + 2 - days, run_end + days + length - 1
        if looking is not None:
            looking(first, last)
        pool = sharing_near(compiler, footprint, schedule, first, last)
        anchors = [anchor for anchor in pool if anchor.key not in asked]
        asked.update(anchor.key for anchor in anchors)
        blocks += _blocks(compiler, cap, footprint, pool, anchors)
        extended = run_end
        for block in sorted(blocks, key=attrgetter("first")):
            if block.first <= extended + 1 and block.last > extended:
                extended = block.last
        if extended == run_end:
            break
        run_end = extended
    at_start = next((b for b in blocks if b.first <= start <= b.last), None)
    return run_end + 1, at_start


def _blocks(
    compiler: Compiler,
    cap: ContactCap,
    footprint: Footprint,
    pool: Sequence[Footprint],
    anchors: Sequence[Footprint],
) -> list[CapBlock]:
    """Per anchor, the starts at which the test breaks the cap with it as the latest
    starter of the others from `pool`, with those that end latest (none when too few).

    The pool is sorted once by end, latest first (ties in pool order): an anchor's window
    is then a leading run of it, cut by bisection, and comes out already in that order."""
    days, count = cap.per_days, cap.max - 1  # others besides the anchor
    share = compiler.audiences.share_someone
    by_end = sorted(pool, key=END, reverse=True)
    before_ends = [-member.end for member in by_end]  # ascending, for bisect
    blocks = []
    for anchor in anchors:
        start = anchor.start
        # Those that end from the window's first day (start - days + 1) on: the anchor too.
        reach = bisect_right(before_ends, days - 1 - start)
        if reach <= count:
            continue
        audience = anchor.audience
        window = [
            other
            for other in by_end[:reach]
            if other.start <= start and other is not anchor and share(audience, other.audience)
        ]
        if len(window) < count:
            continue
        best = _latest_ending(compiler, window, count, (anchor, footprint))
        if best is not None:
            crowd = (anchor, *best)
            earliest_end = min(m.end for m in crowd)
            first_start = start - days + 2 - footprint.days
            blocks.append(CapBlock(first_start, earliest_end + days - 1, crowd))
    return blocks


def _latest_ending(
    compiler: Compiler,
    by_end: Sequence[Footprint],
    count: int,
    base: tuple[Footprint, ...],
) -> tuple[Footprint, ...] | None:
    """`count` of `by_end` (latest end first) that reach one person together with `base`,
    their earliest end as late as can be; None when no `count` of them do. The set's last
    member decides, so each member in turn is tried as the last, with the others from
    before it: in the usual case, where they all reach one person, the first `count` are
    the answer."""
    model = compiler.audiences

    def together(chosen: tuple[Footprint, ...]) -> bool:
        return reach_one_person(model, (*base, *chosen))

    head = tuple(by_end[:count])
    if len(head) == count and together(head):
        return tuple(reversed(head))  # what the search below finds first, found directly
    if count == 0:
        return None  # the anchor alone does not reach the test's people

    def reaching_set(
        chosen: tuple[Footprint, ...], rest: int, until: int
    ) -> tuple[Footprint, ...] | None:
        """`rest` more of by_end[:until] reaching one person with `chosen` and `base`."""
        if rest == 0:
            return chosen
        for index in range(until - 1, rest - 2, -1):
            candidate = (*chosen, by_end[index])
            if together(candidate):
                found = reaching_set(candidate, rest - 1, index)
                if found is not None:
                    return found
        return None

    for last in range(count - 1, len(by_end)):
        if together((by_end[last],)):
            found = reaching_set((by_end[last],), count - 1, last)
            if found is not None:
                return found
    return None
