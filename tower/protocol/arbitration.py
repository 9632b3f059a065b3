"""Who yields in a blocking collision: the score decides, at the gates and at launch.

A test yields only to live tests and to tests sent for review that rank above it. Drafts
and tests that cannot be scored hold nothing; a live test never moves, so it keeps every
day it runs. Where a limit lets L tests share (a surface takes `max_concurrent_per_surface`
at once, a channel's contact cap `max` activities), the L best-ranked units keep their
place, an exclusion group counting as one unit ranked as its best arm (on every day one of
its arms runs); a surface collision lets one. An exclusion group over 100% keeps its
members in rank order up to 100% of traffic.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tower.collisions.details import CollisionDetails
from tower.collisions.refs import CollisionFacts, format_ref, keys_of, scope_of
from tower.db import batches
from tower.engine.crowding import FULL_TRAFFIC
from tower.engine.kinds import CollisionKind
from tower.engine.scope import ScopeKind
from tower.engine.score import rank_key
from tower.experiments.models import Experiment
from tower.experiments.spec import ExperimentStatus, format_key, parse_key
from tower.pipeline import reads
from tower.pipeline.models import PipelineScore, PlanEntry
from tower.policy import Policy

DASH = "\N{EN DASH}"


@dataclass(frozen=True)
class Contender:
    """A test in a collision as arbitration sees it."""

    key: str
    number: int
    status: ExperimentStatus
    score: float | None  # None: it cannot be scored
    confidence: float | None
    share: float  # of the eligible traffic, in (0, 1]
    group: str | None
    start: date
    end: date
    rank: int | None = None  # in the pipeline, when asked for (`contenders(ranked=True)`)

    def days_within(self, first: date, last: date) -> range:
        """The day ordinals it runs on between `first` and `last`."""
        low, high = max(self.start, first), min(self.end, last)
        return range(low.toordinal(), high.toordinal() + 1)

    @property
    def place(self) -> tuple[float, float, int] | None:
        """Where it stands in the pipeline's order (compared as ranks are), or None."""
        if self.score is None:
            return None
        return rank_key(self.score, self.confidence or 0.0, self.number)

    @property
    def holds(self) -> bool:
        """Whether it can keep a place another test must yield: live, or sent for review
        with a score (a draft or an unscored test holds nothing)."""
        if self.status == ExperimentStatus.LIVE:
            return True
        return self.status != ExperimentStatus.DRAFT and self.score is not None

    def ahead_of(self, other: Contender) -> bool:
        """Whether this test keeps its place before `other`."""
        if not self.holds or other.status == ExperimentStatus.LIVE:
            return False
        mine, theirs = self.place, other.place
        if self.status == ExperimentStatus.LIVE or theirs is None:
            return True
        assert mine is not None
        return mine < theirs


@dataclass(frozen=True)
class Verdict:
    """One collision seen from one of its tests: whether it must yield, and to whom."""

    collision: CollisionFacts
    me: Contender
    must_yield: bool
    ahead: tuple[Contender, ...]  # the tests that keep their place before it
    behind: tuple[Contender, ...]  # the others: they yield to it, or hold nothing
    room: str  # what the collision's limit lets share: "1 test", "3 tests", "100% of traffic"
    # On a surface at capacity, the test each (I, and each other holding a place) stands
    # as: its group's best arm holding a place (itself, outside a group).
    ranked_as: Mapping[str, Contender] = field(default_factory=dict)

    def reason(self) -> str:
        """`C-2 surface with T-1, which ranks higher (41 vs 0.9)`, or why it need not
        yield: `C-1 surface with T-3: a draft holds nothing`."""
        ref = f"{format_ref(self.collision)} {self.collision.kind.value}"
        mine = self.ranked_as.get(self.me.key, self.me)  # where I stand
        if mine.key != self.me.key:
            ref += f" (group {self.me.group!r} ranked as {mine.key})"
        parts = [_why_ahead(c, mine, self.ranked_as.get(c.key)) for c in self.ahead]
        if self.must_yield:
            return f"{ref} with {', '.join(parts)}"
        parts += [_why_behind(c, mine, self._shares_my_slot(c)) for c in self.behind]
        within = f" (room for {self.room})" if self.ahead else ""
        return f"{ref} with {'; '.join(parts)}{within}"

    def _shares_my_slot(self, other: Contender) -> bool:
        """Whether `other` is an arm of my group holding my slot on a surface at capacity."""
        return (
            other.key in self.ranked_as and other.group is not None and other.group == self.me.group
        )


def verdict(
    collision: CollisionFacts,
    key: str,
    contenders: Mapping[str, Contender],
    policy: Policy,
) -> Verdict:
    """Whether test `key` must yield in `collision` (its tests' `contenders` by key).

    The tests ahead of it keep their place in order, each only where it still fits (a
    capacity is counted day by day over the collision's days, as the planner counts it),
    and a live test wherever it runs; it yields when, on a day it runs, what they keep
    leaves it no room.
    """
    me = contenders[key]
    others = [contenders[k] for k in keys_of(collision) if k != key and k in contenders]
    details = CollisionDetails.of(collision)
    first = details.first_day or me.start
    last = details.last_day or me.end
    if collision.kind == CollisionKind.CAPACITY and scope_of(collision).kind == ScopeKind.GROUP:
        ahead = sorted((c for c in others if c.ahead_of(me)), key=standing)
        kept, taken = _kept_shares(ahead, first, last)
        crowded = any(taken[day] + me.share > FULL_TRAFFIC for day in me.days_within(first, last))
        return _verdict(collision, me, others, kept, _yields(me, crowded), "100% of traffic")
    limit = _limit(collision, policy)
    # Surface capacity counts an exclusion group once; a contact cap (as it is detected
    # and planned) counts each activity.
    by_group = collision.kind == CollisionKind.CAPACITY
    unit = _unit_of(by_group)
    mine = unit(me)
    # A unit stands where its best member holding a place does (mine: I, if none does).
    leaders: dict[str, Contender] = {}
    for c in sorted((c for c in [me, *others] if c.holds), key=standing):
        leaders.setdefault(unit(c), c)
    best = leaders.get(mine, me)
    # Ahead: the units ranked above mine; and, unless I am live too, a live test wherever
    # its unit stands (it never moves).
    moves = me.status != ExperimentStatus.LIVE
    ahead = [
        c
        for c in others
        if c.holds
        and unit(c) != mine
        and ((moves and c.status == ExperimentStatus.LIVE) or leaders[unit(c)].ahead_of(best))
    ]
    room = f"{limit} test{'s' if limit != 1 else ''}"
    if collision.kind != CollisionKind.CAPACITY:  # a pair, or a cap's crowd in one window
        units = sorted({unit(c) for c in ahead}, key=lambda u: _best_of(ahead, u, unit))
        kept = [c for c in ahead if unit(c) in units[:limit]]
        return _verdict(collision, me, others, kept, _yields(me, len(units) >= limit), room)
    ranked_as = {c.key: leaders[unit(c)] for c in others if c.holds} | {me.key: best}
    kept, running = _kept_units(ahead, unit, leaders, limit, first, last)
    crowded = any(running[day] >= limit for day in me.days_within(first, last))
    return _verdict(collision, me, others, kept, _yields(me, crowded), room, ranked_as)


def _yields(me: Contender, crowded: bool) -> bool:
    return crowded and me.status != ExperimentStatus.LIVE  # a live test never moves


def _unit_of(by_group: bool) -> Callable[[Contender], str]:
    if by_group:
        return lambda c: c.group or c.key
    return lambda c: c.key


def _best_of(
    contenders: Sequence[Contender], unit: str, unit_of: Callable[[Contender], str]
) -> tuple[object, ...]:
    return min(standing(c) for c in contenders if unit_of(c) == unit)


def _kept_units(
    ahead: Sequence[Contender],
    unit_of: Callable[[Contender], str],
    leaders: Mapping[str, Contender],
    limit: int,
    first: date,
    last: date,
) -> tuple[list[Contender], Counter[int]]:
    """The tests of `ahead` that keep their place, and how many units run each day. A live
    test keeps all its days (it never moves); then the others, their units best first
    (each ranked as its `leaders` member), each test only where on every day it runs its
    unit already does or fewer than `limit` units do."""
    present: defaultdict[int, set[str]] = defaultdict(set)
    live = [c for c in ahead if c.status == ExperimentStatus.LIVE]
    kept: list[Contender] = []
    order = sorted(
        (c for c in ahead if c.status != ExperimentStatus.LIVE),
        key=lambda c: (standing(leaders[unit_of(c)]), standing(c)),
    )
    for contender in [*live, *order]:
        unit, days = unit_of(contender), contender.days_within(first, last)
        moves = contender.status != ExperimentStatus.LIVE
        if not moves or all(unit in present[d] or len(present[d]) < limit for d in days):
            for day in days:
                present[day].add(unit)
            kept.append(contender)
    return kept, Counter({day: len(units) for day, units in present.items()})


def _kept_shares(
    ahead: Sequence[Contender], first: date, last: date
) -> tuple[list[Contender], defaultdict[int, float]]:
    """The members of a group in `ahead` (best first) that keep their traffic: a live one
    always (it never moves), the others only where every day it runs stays within 100%;
    and the share taken each day."""
    taken: defaultdict[int, float] = defaultdict(float)
    kept: list[Contender] = []
    for contender in ahead:
        days = contender.days_within(first, last)
        live = contender.status == ExperimentStatus.LIVE
        if live or all(taken[day] + contender.share <= FULL_TRAFFIC for day in days):
            for day in days:
                taken[day] += contender.share
            kept.append(contender)
    return kept, taken


def _verdict(
    collision: CollisionFacts,
    me: Contender,
    others: Sequence[Contender],
    ahead: Sequence[Contender],
    must_yield: bool,
    room: str,
    ranked_as: Mapping[str, Contender] | None = None,
) -> Verdict:
    behind = tuple(c for c in others if c not in ahead)
    return Verdict(collision, me, must_yield, tuple(ahead), behind, room, ranked_as or {})


def standing(contender: Contender) -> tuple[object, ...]:
    """Best first: live, then in the pipeline's order; unscored last."""
    if contender.status == ExperimentStatus.LIVE:
        return (0,)
    place = contender.place
    return (1, *place) if place is not None else (2, contender.number)


def _limit(collision: CollisionFacts, policy: Policy) -> int:
    """How many units may share: one on a surface collision, the protocol's limit on a
    surface at capacity, a channel's cap (the tightest that spans the crowd's days)."""
    if collision.kind == CollisionKind.CAPACITY:
        return policy.protocol.max_concurrent_per_surface
    if collision.kind == CollisionKind.CONTACT_CAP:
        channel = scope_of(collision).name
        caps = [cap for cap in policy.contact_caps if cap.channel == channel]
        days = CollisionDetails.of(collision).days or 1
        fitting = [cap.max for cap in caps if cap.per_days >= days] or [c.max for c in caps]
        return min(fitting, default=1)
    return 1


def _why_ahead(contender: Contender, me: Contender, leader: Contender | None = None) -> str:
    """Why `contender` keeps its place before me: its own standing, or its group's, where
    `leader`, another arm, stands for the group."""
    if leader is not None and leader.key != contender.key:
        return f"{contender.key} (in group {contender.group!r} with {_why_ahead(leader, me)})"
    if contender.status == ExperimentStatus.LIVE:
        return f"{contender.key}, which is live"
    return f"{contender.key}, which ranks higher ({_scores(contender, me)})"


def _why_behind(contender: Contender, me: Contender, shares_my_slot: bool = False) -> str:
    if shares_my_slot:
        return f"{contender.key}: the same slot (group {contender.group!r})"
    if contender.status == ExperimentStatus.DRAFT:
        return f"{contender.key}: a draft holds nothing"
    if contender.score is None:
        return f"{contender.key}: a test that cannot be scored holds nothing"
    if me.status == ExperimentStatus.LIVE:
        return f"{contender.key}: {me.key} is live"
    return f"{contender.key}, which ranks lower ({_scores(contender, me)}): it yields"


def _scores(contender: Contender, me: Contender) -> str:
    theirs, mine = _score(contender), _score(me)
    if theirs == mine:
        return f"both {mine}: a tie goes by confidence, then by registration"
    return f"{theirs} vs {mine}"


def _score(contender: Contender) -> str:
    return "no score" if contender.score is None else f"{contender.score:.3g}"


def contenders(
    session: Session, keys: Collection[str], *, ranked: bool = False
) -> dict[str, Contender]:
    """The tests `keys` with their state, share, group and stored score (and, `ranked`,
    their rank in the pipeline: a listing shows it; deciding who yields needs only the
    scores, compared as the pipeline ranks them)."""
    numbers = sorted({parse_key(key) for key in keys})
    ranks = reads.ranks(session, numbers) if ranked else {}
    found: dict[str, Contender] = {}
    for batch in batches(numbers):
        query = (
            select(
                Experiment.number,
                Experiment.status,
                Experiment.traffic,
                Experiment.exclusion_group,
                Experiment.start,
                Experiment.end,
                PipelineScore.value,
                PipelineScore.confidence,
            )
            .outerjoin(PipelineScore, PipelineScore.experiment_id == Experiment.id)
            .where(Experiment.number.in_(batch))
        )
        for number, status, traffic, group, start, end, value, confidence in session.execute(query):
            key = format_key(number)
            share = traffic / 100.0
            found[key] = Contender(
                key, number, status, value, confidence, share, group, start, end, ranks.get(key)
            )
    return found


@dataclass(frozen=True)
class Standings:
    """What the gates need to arbitrate a test's collisions: every test in them, and the
    way out the stored plan offers the test."""

    contenders: Mapping[str, Contender]
    way_out: str  # "move to 15-28 Jun" (an en dash), or what else there is to do

    def verdicts(
        self, key: str, collisions: Sequence[CollisionFacts], policy: Policy
    ) -> list[Verdict]:
        return [verdict(c, key, self.contenders, policy) for c in collisions]


def standings(
    session: Session, experiment: Experiment, collisions: Sequence[CollisionFacts]
) -> Standings:
    """`Standings` of `experiment` in `collisions`, from the read model."""
    keys = {experiment.key, *(key for c in collisions for key in keys_of(c))}
    entry = session.get(PlanEntry, experiment.id)
    if entry is not None and entry.planned_start != experiment.start:
        way_out = slot_words(entry.planned_start, entry.planned_end)  # or: no slot at all
    else:  # not planned yet, or planned before this clash
        way_out = "move it to a free slot (`tower check` names the next one)"
    return Standings(contenders(session, keys), way_out)


def slot_words(start: date | None, end: date | None) -> str:
    """The plan's slot in words ("move to" its days, an en dash between), or what else
    there is to do."""
    if start is None or end is None:
        return "no free slot in the plan: change it"
    if (start.year, start.month) == (end.year, end.month):
        return f"move to {start.day}{DASH}{end.day} {end:%b}"
    return f"move to {start.day} {start:%b}{DASH}{end.day} {end:%b}"


__all__ = ["Contender", "Standings", "Verdict", "contenders", "slot_words", "standings", "verdict"]
