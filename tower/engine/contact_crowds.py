"""Contact caps: more than `max` activities on one channel reach one person within
`per_days` consecutive days, at most one arm of each exclusion group.

A crowd is a set of activities that all reach one person (`one_person`) and fit in one
window of `per_days` days; a finding is a largest such crowd over the cap. The scan works
out once which activities of the channel share people with which (those close enough in
time to meet in a window), as bit masks; then tries every window that ends on an
activity's start, the sharing sets in it read off the masks. A single test's check
searches once, among the activities near it, for the largest sets that hold it and whose
every two members share people and run close enough in time to fit one window; each such
set is then split by who its members reach together.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from functools import partial

from tower.engine.audience import Audience, AudienceModel
from tower.engine.cliques import is_clique, maximal_cliques, vertices
from tower.engine.crowding import by_number, mixed_teams
from tower.engine.findings import Finding, format_people, format_span
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.one_person import Crowd, crowds_reaching_one_person
from tower.engine.portfolio import AUDIENCE_OF, Compiler, Footprint
from tower.engine.schedule import DaySchedule
from tower.engine.scope import Scope, ScopeKind
from tower.policy.schema import ContactCap


def channel_schedules(
    compiler: Compiler, footprints: Iterable[Footprint]
) -> dict[str, DaySchedule]:
    """The activities on each channel, by start day."""
    surfaces = compiler.graph.surfaces
    by_channel: dict[str, DaySchedule] = defaultdict(DaySchedule)
    for footprint in footprints:
        for channel in {surfaces.channel(node) for node in footprint.surfaces}:
            by_channel[channel].add(footprint)
    return by_channel


def contact_cap_breaches(
    compiler: Compiler,
    by_channel: Mapping[str, DaySchedule],
    caps: Sequence[ContactCap],
    *,
    including: Footprint | None = None,
) -> Iterator[Finding]:
    """A finding for each largest crowd of activities that reach the same people too often
    (only the crowds `including` would be part of, when given: a single test's check; it
    need not be in the schedules, and replaces an activity of its key)."""
    for cap in caps:
        schedule = by_channel.get(cap.channel)
        if schedule is None or (including is None and len(schedule) <= cap.max):
            continue
        yield from _cap_breaches(compiler, schedule, cap, including)


def crowds_over_cap(
    compiler: Compiler,
    schedule: DaySchedule,
    cap: ContactCap,
    including: Footprint | None = None,
) -> list[Crowd]:
    """Crowds of activities on one channel that break `cap` (only the largest that hold
    `including`, when given).

    A crowd fits in some window of `per_days` days exactly when it fits in one that ends on
    the latest start among its members: the scan tries every such window, and in it every
    largest set of activities that all share people with each other, split by who they
    reach together.
    """
    if including is not None:
        return _crowds_including(compiler, schedule, cap, including)
    model = compiler.audiences
    activities = schedule.footprints  # by start day; bit i of a mask: activities[i]
    reach = cap.per_days - 1
    sharing = _sharing_nearby(model, activities, reach)
    starts = schedule.starts
    ends = sorted(range(len(activities)), key=lambda i: activities[i].end)
    last_days = [activities[i].end for i in ends]
    starting_by, ending_before = _prefixes(range(len(activities))), _prefixes(ends)
    crowds: list[Crowd] = []
    # Anchors starting the same day often see the same set: each set is split once into
    # all its crowds, and each anchor of that day takes those that hold it.
    split: dict[int, list[Crowd]] = {}
    day = None
    for i, anchor in enumerate(activities):
        if anchor.start != day:
            day = anchor.start
            split.clear()
        # Who starts no later than the anchor, runs in the window ending on its start and
        # shares people with it.
        window = (
            starting_by[bisect_right(starts, anchor.start)]
            & ~ending_before[bisect_left(last_days, anchor.start - reach)]
            & sharing[i]
            & ~(1 << i)
        )
        if window.bit_count() < cap.max:
            continue
        cliques = [window] if is_clique(sharing, window) else maximal_cliques(sharing, window)
        for clique in cliques:
            if clique.bit_count() >= cap.max:
                found = split.get(clique | 1 << i)
                if found is None:
                    members = [anchor, *(activities[j] for j in vertices(clique))]
                    found = crowds_reaching_one_person(model, members, None, cap.max)
                    split[clique | 1 << i] = found
                crowds += [c for c in found if any(m is anchor for m in c.members)]
    return crowds


def _sharing_nearby(model: AudienceModel, activities: Sequence[Footprint], reach: int) -> list[int]:
    """Per activity (`activities` by start day), the others that share people with it, as
    a mask (bit j: activities[j]); exact for two that start at most `reach` days after
    the other ends, all a window of reach + 1 days can hold."""
    sharing = [0] * len(activities)
    starts = [activity.start for activity in activities]
    share = model.share_someone
    for i, activity in enumerate(activities):
        audience = activity.audience
        for j in range(i + 1, bisect_right(starts, activity.end + reach)):
            if share(audience, activities[j].audience):
                sharing[i] |= 1 << j
                sharing[j] |= 1 << i
    return sharing


def _crowds_including(
    compiler: Compiler, schedule: DaySchedule, cap: ContactCap, including: Footprint
) -> list[Crowd]:
    """The largest crowds over `cap` that hold `including`.

    A set fits in one window of `per_days` days when each of its activities starts at most
    per_days - 1 days after every other ends: a condition on pairs, like sharing people. So
    the crowds are the largest sets that hold `including` and whose every two activities
    both share people and run close enough in time: each found once, by one clique search
    over the activities that share people with `including` and run within per_days of it.
    """
    reach = cap.per_days - 1
    pool = sharing_near(
        compiler, including, schedule, including.start - reach, including.end + reach
    )
    if len(pool) < cap.max:
        return []  # too few activities reach these people to break the cap
    members = by_number([including, *pool])  # bit i: members[i]; `test`: the bit of `including`
    test = next(1 << i for i, member in enumerate(members) if member is including)
    # Two activities fit in one window when each starts at most `reach` days after the
    # other ends: when their days, each run stretched by `reach` days, overlap.
    spans = [(m.start, m.end + reach) for m in members]
    sharing = _sharing_people(compiler, members, spans)
    adjacency = [
        shares & near & ~(1 << i)
        for i, (shares, near) in enumerate(zip(sharing, _overlapping(spans), strict=True))
    ]
    crowds: list[Crowd] = []
    for clique in maximal_cliques(adjacency, (1 << len(members)) - 1 - test):
        if clique.bit_count() >= cap.max:
            together = [members[i] for i in vertices(test | clique)]
            crowds += crowds_reaching_one_person(compiler.audiences, together, including, cap.max)
    return crowds


def _overlapping(spans: Sequence[tuple[int, int]]) -> list[int]:
    """Per span of days (first, last), the spans that share a day with it, itself among
    them, as a mask (bit i: spans[i]): those that start by its last day, less those that
    end before its first."""
    by_first = sorted(range(len(spans)), key=lambda i: spans[i][0])
    by_last = sorted(range(len(spans)), key=lambda i: spans[i][1])
    firsts = [spans[i][0] for i in by_first]
    lasts = [spans[i][1] for i in by_last]
    starting_by, ending_before = _prefixes(by_first), _prefixes(by_last)
    return [
        starting_by[bisect_right(firsts, last)] & ~ending_before[bisect_left(lasts, first)]
        for first, last in spans
    ]


def _prefixes(order: Sequence[int]) -> list[int]:
    """The mask of the first k bits of `order`, for each k from 0 to all of them."""
    masks = [0]
    for bit in order:
        masks.append(masks[-1] | 1 << bit)
    return masks


def sharing_near(
    compiler: Compiler, footprint: Footprint, schedule: DaySchedule, first: int, last: int
) -> list[Footprint]:
    """The activities running in [first, last] that share people with `footprint` (an
    activity of its key aside): the only ones that can crowd it."""
    nearby = (f for f in schedule.running(first, last) if f.key != footprint.key)
    return compiler.audiences.sharing_with(footprint.audience, nearby, AUDIENCE_OF)


def _cap_breaches(
    compiler: Compiler, schedule: DaySchedule, cap: ContactCap, including: Footprint | None
) -> Iterator[Finding]:
    # A window's crowd may be part of another's, and a check's crowds of two cliques may be
    # one: keep the largest, members by number.
    scope = Scope(ScopeKind.CHANNEL, cap.channel)
    for crowd in _largest(crowds_over_cap(compiler, schedule, cap, including)):
        members, people = by_number(crowd.members), crowd.people
        starts = [m.start for m in members]
        last = max(starts)
        first = max(last - cap.per_days + 1, min(starts))
        span = (date.fromordinal(first), date.fromordinal(last))
        keys = tuple([m.key for m in members])
        yield Finding(
            kind=CollisionKind.CONTACT_CAP,
            severity=Severity.BLOCKING,
            keys=keys,
            scope=scope,
            surfaces=tuple(sorted({p for m in members for p in m.item.spec.surfaces})),
            first_day=span[0],
            last_day=span[1],
            people_per_week=round(people),
            shares=(1.0,) * len(members),
            agile_vs_bau=mixed_teams(members),
            describe=partial(_cap_text, cap, keys, people, span, crowd.estimated),
        )


def _cap_text(
    cap: ContactCap,
    keys: tuple[str, ...],
    people: float,
    span: tuple[date, date],
    estimated: bool,
) -> str:
    how_many = f"{format_people(people)} people a week"
    if estimated:
        how_many += (
            " (estimated: their audiences meet only through overlaps declared two by two, "
            "taken as independent)"
        )
    return (
        f"{len(keys)} {cap.channel} activities ({', '.join(keys)}) reach the same people "
        f"within {cap.per_days} days {format_span(*span)}: {how_many} could get all of "
        f"them, and the cap is {cap.max} per {cap.per_days} days."
    )


def _sharing_people(
    compiler: Compiler, footprints: Sequence[Footprint], spans: Sequence[tuple[int, int]]
) -> list[int]:
    """Per activity of `footprints`, those of them that share people with it, itself among
    them, as a mask (bit i: footprints[i]); exact only for two whose `spans` of days
    overlap. Two audiences whose activities span days far apart are not asked about: a
    scan never needs that pair, so it would be worked out anew."""
    vertex, audiences, holding = _by_audience(footprints)
    places = [vertex[f.audience.id] for f in footprints]
    hulls: dict[int, tuple[int, int]] = {}  # place -> the days its activities span
    for place, (first, last) in zip(places, spans, strict=True):
        hull = hulls.get(place)
        hulls[place] = (first, last) if hull is None else (min(hull[0], first), max(hull[1], last))
    # By first day: the audiences near one, and after it, are those that start by its end.
    order = sorted(hulls, key=lambda place: hulls[place][0])
    firsts = [hulls[place][0] for place in order]
    joined = _joined(
        compiler.audiences,
        [audiences[place] for place in order],
        [holding[place] for place in order],
        [bisect_right(firsts, hulls[place][1]) for place in order],
    )
    of_place = dict(zip(order, joined, strict=True))
    return [of_place[place] | holding[place] for place in places]


def _by_audience(
    footprints: Iterable[Footprint],
) -> tuple[dict[int, int], list[Audience], list[int]]:
    """The distinct audiences of `footprints` in order of first use, each audience id's
    place among them, and per audience the mask of the footprints with it (bit i: the i-th)."""
    vertex: dict[int, int] = {}  # audience id -> its place
    audiences: list[Audience] = []
    holding: list[int] = []
    for i, footprint in enumerate(footprints):
        place = vertex.get(footprint.audience.id)
        if place is None:
            vertex[footprint.audience.id] = len(audiences)
            audiences.append(footprint.audience)
            holding.append(1 << i)
        else:
            holding[place] |= 1 << i
    return vertex, audiences, holding


def _joined(
    model: AudienceModel,
    audiences: Sequence[Audience],
    masks: Sequence[int],
    until: Sequence[int] | None = None,
) -> list[int]:
    """Per audience (all distinct), the union of `masks` of the other audiences it shares
    people with (masks[i]: the i-th audience's). Each pair is asked about once, the earlier
    audience about the later: the i-th about those after it and, if given, before until[i]."""
    joined = [0] * len(audiences)
    for i, audience in enumerate(audiences):
        later = range(i + 1, len(audiences) if until is None else until[i])
        for j in model.sharing_with(audience, later, audiences.__getitem__):
            joined[i] |= masks[j]
            joined[j] |= masks[i]
    return joined


def _largest(crowds: list[Crowd]) -> Iterator[Crowd]:
    """The crowds that are not part of a bigger one, each once."""
    # Per key, the kept crowds that hold it, as a mask (bit k: the k-th crowd kept). A
    # crowd lies in a kept one (as big or bigger: they come biggest first) exactly when
    # some bit is set in the masks of all its members.
    holding: defaultdict[str, int] = defaultdict(int)
    kept = 0
    for crowd in sorted(crowds, key=lambda c: len(c.members), reverse=True):
        within = -1  # every kept crowd, to begin with
        for member in crowd.members:
            within &= holding[member.key]
            if not within:
                break
        if within:
            continue
        bit = 1 << kept
        kept += 1
        for member in crowd.members:
            holding[member.key] |= bit
        yield crowd
