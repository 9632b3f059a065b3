"""The write path: a change re-checks what it touches; a resync re-checks everything.

Every change to a test (registered, edited, prioritised, moved through the protocol, from
the CLI, Slack or the worker) goes through `record_change` in the transaction that made
it. The change bumps the registry's version, updates the warm index, checks the changed
tests and the other members of the crowds they were or now are in, and matches only the
records of those tests. Its scores are stored for the read model; the plan is made off the
request path (`resync`, `replan`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from tower.collisions import flows as collision_flows
from tower.collisions import service as collision_service
from tower.collisions.kinds import CollisionKind
from tower.collisions.service import DetailWriter, RecordScope, SyncReport, finding_details
from tower.context import ServiceContext
from tower.db import read_only
from tower.engine.findings import Finding
from tower.engine.fixes import suggest_fixes
from tower.engine.planner import Placement, Planner
from tower.engine.portfolio import Compiler, Footprint
from tower.engine.score import Score, ScoringError
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus
from tower.pipeline import read_model, registry
from tower.pipeline.index import PortfolioIndex, StoredPlan, portfolio_item, warm_index

logger = logging.getLogger("tower.pipeline")

# A crowd losing or gaining a member may be found again through its other members.
CROWD_KINDS = frozenset({CollisionKind.CAPACITY, CollisionKind.CONTACT_CAP})


def record_change(
    session: Session, ctx: ServiceContext, experiments: Sequence[Experiment]
) -> SyncReport:
    """Re-check what `experiments` (changed in this transaction) touch, and announce it."""
    session.flush()
    index = warm_index(session, ctx.policy, ctx.today)
    with index.lock:
        row = registry.state(session, for_update=True)
        index.catch_up(session, registry.mark_of(row))
        mark = registry.bump(session, row)
        index.rescore(row.scored_on or ctx.today)
        for experiment in experiments:
            index.put(portfolio_item(experiment))
        index.remember(experiments, mark)
        read_model.forget_on_rollback(session, index)
        keys = [experiment.key for experiment in experiments]
        scope, findings = touched(session, index, keys)
        report = collision_flows.reconcile(
            session, ctx, findings, scope=scope, details=detail_writer(session, index)
        )
        read_model.store_scores(session, index, experiments)
        read_model.fill_missing_scores(session, index)
    return report


def touched(
    session: Session, index: PortfolioIndex, keys: Collection[str]
) -> tuple[RecordScope, list[Finding]]:
    """The records a change of `keys` can alter, and every finding they should say.

    Every record of the changed tests; and, for each crowd kind (capacity, contact caps),
    the records of that kind of the other members of the crowds they were or are now in: a
    crowd that loses a member may still be over its limit without it, and a crowd that gains
    one replaces the smaller crowd it was. A member's other kinds of clash cannot change.
    """
    found: dict[str, Finding] = {}

    def check(key: str, kinds: Collection[CollisionKind] | None = None) -> None:
        footprint = index.footprints.get(key)
        if footprint is not None:
            for finding in index.engine.check(footprint, kinds):
                found.setdefault(finding.fingerprint, finding)

    changed = frozenset(keys)
    for key in changed:
        check(key)
    members: dict[CollisionKind, set[str]] = {kind: set() for kind in CROWD_KINDS}
    for record in collision_service.live_records(session, changed, CROWD_KINDS):
        members[record.kind].update(collision_service.keys_of(record))
    for finding in list(found.values()):
        if finding.kind in CROWD_KINDS:
            members[finding.kind].update(finding.keys)
    for kind, keys_of_kind in members.items():
        for key in sorted(keys_of_kind - changed):
            check(key, [kind])
    by_kind = {kind: frozenset(keys_of_kind - changed) for kind, keys_of_kind in members.items()}
    return RecordScope(changed, by_kind), list(found.values())


def detail_writer(session: Session, index: PortfolioIndex) -> DetailWriter:
    """Details of a finding from the warm index: teams, and fixes from the stored plan."""
    teams = {key: footprint.item.spec.team for key, footprint in index.footprints.items()}
    ranks = index.ranks()
    placements = index.placements(session)
    segments = index.compiler.graph.segments

    def details(finding: Finding) -> dict[str, object]:
        fixes = suggest_fixes(
            finding,
            ranks=ranks,
            placements=placements,
            footprints=index.footprints,
            segments=segments,
        )
        return finding_details(finding, teams, fixes)

    return details


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
    index = warm_index(session, ctx.policy, ctx.today)
    with index.lock:
        index.catch_up(session, registry.peek(session))
        if key not in index.ranks():
            return None
        return _placement(session, index, key)


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
    added, moved = _Reach(index.compiler), _Reach(index.compiler)
    live = (f for f in index.footprints.values() if _is_live(f))
    for footprint in sorted(live, key=lambda f: ranks[f.key]):  # as the planner keeps them
        if footprint.key != key:
            planner.keep(footprint)
            if footprint.key not in plan.placements:
                added.add(footprint)  # live since the plan
    ahead = (f for k, f in index.footprints.items() if ranks[k] < limit and not _is_live(f))
    last = 0  # the stored rank of the last test ahead: it must only go up
    for footprint in sorted(ahead, key=lambda f: ranks[f.key]):
        rank = ranks[footprint.key]
        stored = plan.placements.get(footprint.key)
        if stored is None:  # registered since the plan
            planner.place(footprint)
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
            placed = planner.place(footprint)
            if placed.planned_start != stored.planned_start:
                moved.add(footprint)
        elif window is None:
            continue  # no slot in the plan, and no fewer blockers now: still none
        elif not added.meets(footprint) or planner.is_free(window):
            planner.reserve(window)
        else:
            planner.place(footprint)
            moved.add(footprint)
    own = index.footprints[key]
    if _is_live(own):
        return planner.keep(own, rank=limit)
    return planner.place(own, rank=limit)


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


def warm_up(factory: sessionmaker[Session], ctx: ServiceContext) -> float:
    """Index the portfolio now (a server or worker starting), so the first change does not
    pay for it; returns the seconds it took. Reads only."""
    started = time.perf_counter()
    with read_only(factory) as session:
        warm_index(session, ctx.policy, ctx.today)
    return time.perf_counter() - started


def warm_up_in_background(factory: sessionmaker[Session], ctx: ServiceContext) -> None:
    """`warm_up` on a thread of its own (a failure is logged: the first change indexes)."""

    def run() -> None:
        try:
            seconds = warm_up(factory, ctx)
        except Exception:
            logger.exception("could not index the portfolio ahead of time")
            return
        logger.info("portfolio indexed in %.1f s", seconds)

    threading.Thread(target=run, name="tower-warm-up", daemon=True).start()
