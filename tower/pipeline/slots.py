"""A test's rank and next free slot right after a change, without planning the portfolio.

What a registrant is told at once (the DM) and where *Move to next free slot* proposes to
go. The slot is the one a full plan would give, worked out from the stored plan: only the
tests ahead that changed since it was made, or that could meet one that did, are placed
again (`_placement` says exactly when a stored window still stands).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tower.context import ServiceContext
from tower.engine.planner import Placement, Planner
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.score import Score, ScoringError
from tower.experiments.spec import ExperimentStatus
from tower.pipeline import registry
from tower.pipeline.index import PortfolioIndex, StoredPlan, warm_index


@dataclass(frozen=True)
class StandingNow:
    """Where a test stands right after a change: what its registrant is told at once."""

    rank: int | None  # None: it cannot be scored
    scored: int  # how many tests have a rank
    score: Score | ScoringError
    placement: Placement


def standing_now(session: Session, ctx: ServiceContext, key: str) -> StandingNow | None:
    """Rank, score and slot of test `key` from the warm index (None if it is not in the
    pipeline). Reads only."""
    index = warm_index(session, ctx.policy, ctx.today)
    with index.lock:
        index.catch_up(session, registry.peek(session))
        if key not in index.ranks():
            return None
        score = index.scores[key]
        rank = index.ranks()[key] if isinstance(score, Score) else None
        return StandingNow(rank, index.ranks().scored, score, _placement(session, index, key))


def placement_now(session: Session, ctx: ServiceContext, key: str) -> Placement | None:
    """Where the plan would put test `key` now (None if it is not in the pipeline). Reads
    only."""
    standing = standing_now(session, ctx, key)
    return None if standing is None else standing.placement


def _placement(session: Session, index: PortfolioIndex, key: str) -> Placement:
    """The slot of `key` (in the index) as a full plan would give it.

    The planner places live tests, then the others greedily in rank order, each at the
    earliest start that clears what was placed before it and that it shares a surface (or
    one inside the other), an exclusion group or a capped channel with. Blockers only grow
    with what is placed, so a test ranked above `key` keeps its stored window when:
    - nothing it could meet moved since the plan, and
    - whatever it could meet that was added since (tests registered after the plan) leaves
      that window clear.
    Otherwise it is placed again, and if it lands elsewhere, it has moved. From a test
    edited, moved through its states or gone since the plan, or where the stored order no
    longer holds, every test is placed again (with a live test changed: all of them).
    Then `key` is placed.
    """
    ranks = index.ranks()
    limit = ranks[key]
    plan = index.stored_plan(session)
    cutoff = _trusted_ranks(index, plan)
    planner = Planner(index.compiler)
    held = _Held(planner, index.compiler)
    added, moved = _Reach(index.compiler), _Reach(index.compiler)
    in_order = [index.footprints[k] for k in ranks.in_order()]
    for footprint in filter(_is_live, in_order):  # as the planner keeps them
        if footprint.key != key:
            held.hold(footprint)
            if footprint.key not in plan.placements:
                added.add(footprint)  # live since the plan
    last = 0  # the stored rank of the last test ahead: it must only go up
    for rank, footprint in enumerate(in_order[: limit - 1], start=1):
        if _is_live(footprint):
            continue
        stored = plan.placements.get(footprint.key)
        if stored is None:  # registered since the plan
            held.place(footprint)
            added.add(footprint)
            continue
        if stored.rank < last:
            cutoff = min(cutoff, rank)  # the order changed from here
        last = stored.rank
        window = (
            None
            if stored.planned_start is None
            else footprint.shifted(stored.planned_start.toordinal())
        )
        if rank >= cutoff or moved.meets(footprint):
            placed = held.place(footprint)
            if placed.planned_start != stored.planned_start:
                moved.add(footprint)
        elif window is None:
            continue  # no slot in the plan, and no fewer blockers now: still none
        elif not added.meets(footprint) or held.is_free(window):
            held.hold(window)
        else:
            held.place(footprint)
            moved.add(footprint)
    own = index.footprints[key]
    if _is_live(own):
        return planner.keep(own, rank=limit)
    return held.place(own, rank=limit)


class _Held:
    """Windows that stand as they are (live tests, stored slots), handed to the planner
    only when a test that could meet one is placed or checked.

    The planner's blockers for a test come only from tests that share a surface with it
    (or one inside the other), its exclusion group or a capped channel, so a window nobody
    placed could meet never changes a slot: at 10,000 tests most of them are never
    needed, and reserving them all cost more than the rest of the slot.
    """

    def __init__(self, planner: Planner, compiler: Compiler) -> None:
        self.planner = planner
        self.surfaces = compiler.graph.surfaces
        self.capped = {cap.channel for cap in compiler.policy.contact_caps}
        self.at: dict[int, list[Footprint]] = defaultdict(list)  # by each of its surfaces
        self.within: dict[int, list[Footprint]] = defaultdict(list)  # by each around them
        self.in_group: dict[str, list[Footprint]] = defaultdict(list)
        self.on_channel: dict[str, list[Footprint]] = defaultdict(list)  # capped ones
        self.reserved: set[str] = set()

    def hold(self, window: Footprint) -> None:
        for node in window.surfaces:
            self.at[node].append(window)
            for around in self.surfaces.ancestors[node]:
                self.within[around].append(window)
            channel = self.surfaces.channel(node)
            if channel in self.capped:
                self.on_channel[channel].append(window)
        if window.group is not None:
            self.in_group[window.group].append(window)

    def place(self, footprint: Footprint, *, rank: int | None = None) -> Placement:
        self._release_for(footprint)
        return self.planner.place(footprint, rank=rank)

    def is_free(self, window: Footprint) -> bool:
        self._release_for(window)
        return self.planner.is_free(window)

    def _release_for(self, footprint: Footprint) -> None:
        """Reserve every held window `footprint` could meet (each once)."""
        found: list[list[Footprint]] = []
        for node in footprint.surfaces:
            found.append(self.within.pop(node, []))  # at it or inside it
            found += (self.at.pop(around, []) for around in self.surfaces.ancestors[node])
            channel = self.surfaces.channel(node)
            if channel in self.capped:
                found.append(self.on_channel.pop(channel, []))
        if footprint.group is not None:
            found.append(self.in_group.pop(footprint.group, []))
        for windows in found:
            for window in windows:
                if window.key not in self.reserved:
                    self.reserved.add(window.key)
                    self.planner.reserve(window)


class _Reach:
    """What some tests could meet in the planner: their surfaces (and the surfaces around
    them), exclusion groups and capped channels."""

    def __init__(self, compiler: Compiler) -> None:
        self.surfaces = compiler.graph.surfaces
        self.capped = {cap.channel for cap in compiler.policy.contact_caps}
        self.nodes: set[int] = set()  # the surfaces of the tests
        self.around: set[int] = set()  # those and every surface containing one
        self.groups: set[str] = set()
        self.channels: set[str] = set()

    def add(self, footprint: Footprint) -> None:
        for node in footprint.surfaces:
            self.nodes.add(node)
            self.around.update(self.surfaces.ancestors[node])
            if self.surfaces.channel(node) in self.capped:
                self.channels.add(self.surfaces.channel(node))
        if footprint.group is not None:
            self.groups.add(footprint.group)

    def meets(self, footprint: Footprint) -> bool:
        """Whether `footprint` shares a surface (or one inside the other), a group or a
        capped channel with one of the tests."""
        if footprint.group is not None and footprint.group in self.groups:
            return True
        for node in footprint.surfaces:
            if node in self.around or not self.nodes.isdisjoint(self.surfaces.ancestors[node]):
                return True
            if self.surfaces.channel(node) in self.channels:
                return True
        return False


def _trusted_ranks(index: PortfolioIndex, plan: StoredPlan) -> int:
    """The rank from which the stored plan no longer holds: that of the highest test
    edited, moved through its states or gone since it was made (0: a live one, or another
    policy: nothing holds). Tests registered since are placed anew on their own."""
    ranks = index.ranks()
    trusted = len(ranks) + 1
    if plan.policy != registry.policy_fingerprint(index.policy):
        return 0
    for key, placement in plan.placements.items():
        footprint = index.footprints.get(key)
        if footprint is not None and _version(index, footprint) == plan.row_versions[key]:
            continue
        if key in plan.live or (footprint is not None and _is_live(footprint)):
            return 0
        trusted = min(trusted, placement.rank, ranks.get(key, trusted))
    return trusted


def _version(index: PortfolioIndex, footprint: Footprint) -> int | None:
    row = index.rows.get(footprint.item.number)
    return None if row is None else row[0]


def _is_live(footprint: Footprint) -> bool:
    return footprint.item.status == ExperimentStatus.LIVE
