"""Activities that reach one person: what a contact cap counts.

A cap counts the activities on a channel that all reach the same person within one
window, at most one per exclusion group (a person sees one arm of a group). Activities
that share people two by two need not reach one person together: sends to kids+sports,
sports+films and films+kids share people pairwise, yet nobody gets all three. So a set
of activities that share people pairwise is split by the regions of the population model:
each region is reached by some of them, and the largest such sets, one arm per group,
are the crowds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import product
from operator import attrgetter

from tower.engine.audience import Audience, AudienceModel
from tower.engine.portfolio import Footprint


@dataclass(frozen=True)
class Crowd:
    """Activities that all reach `people` people a week (a person sees one arm of a group)."""

    members: list[Footprint]
    people: float
    estimated: bool = False  # three or more branches meeting only through overlaps


def crowds_reaching_one_person(
    model: AudienceModel, members: Sequence[Footprint], holding: Footprint | None, over: int
) -> list[Crowd]:
    """The largest sets of `members` that reach one person together and take at most one
    arm of each exclusion group, with more than `over` members (only those that hold
    `holding`, when given)."""
    if len(members) <= over:
        return []
    together = model.in_all(_audiences(members))
    if together[0] > 0:
        # The usual case: some people get them all (one arm of each group at a time).
        return [
            Crowd(arms, *together) if len(arms) == len(members) else _crowd(model, arms)
            for arms in one_arm_per_group(members, holding)
            if len(arms) > over
        ]
    audiences, bits = _distinct_audiences(members)
    reach = model.reaching(audiences)
    crowds = []
    for who in _largest(reach.keys()):
        if holding is not None and not who & bits[holding.audience.id]:
            continue
        reached = [m for m in members if bits[m.audience.id] & who]
        for crowd in one_arm_per_group(reached, holding):
            if len(crowd) > over:
                need = 0
                for member in crowd:
                    need |= bits[member.audience.id]
                people = sum(p for other, p in reach.items() if other & need == need)
                crowds.append(Crowd(crowd, people))
    return crowds


def _crowd(model: AudienceModel, members: list[Footprint]) -> Crowd:
    return Crowd(members, *model.in_all(_audiences(members)))


def reach_one_person(model: AudienceModel, members: Sequence[Footprint]) -> bool:
    """Whether `members` (no two arms of one group) all reach some person."""
    return _one_arm_each(members) and model.reach_someone(_audiences(members))


def _one_arm_each(members: Sequence[Footprint]) -> bool:
    """Whether no two of `members` are arms of one exclusion group."""
    groups = [m.group for m in members if m.group is not None]
    return len(groups) == len(set(groups))


def one_arm_per_group(
    members: Sequence[Footprint], holding: Footprint | None
) -> Iterator[list[Footprint]]:
    """Every way to keep one arm of each exclusion group among `members` (`holding`'s own
    arm for its group, when given), in `members`' order."""
    if _one_arm_each(members):
        yield list(members)  # the usual case: no group has two arms here
        return
    arms: dict[str, list[Footprint]] = defaultdict(list)
    for member in members:
        if member.group is not None:
            arms[member.group].append(member)
    if holding is not None and holding.group is not None:
        arms[holding.group] = [holding]
    for choice in product(*arms.values()):
        kept = {id(arm) for arm in choice}
        yield [m for m in members if m.group is None or id(m) in kept]


def _audiences(members: Sequence[Footprint]) -> list[Audience]:
    return [member.audience for member in members]


def _distinct_audiences(members: Sequence[Footprint]) -> tuple[list[Audience], dict[int, int]]:
    """The distinct audiences of `members`, by id, and each one's bit (by audience id)."""
    audiences = sorted({m.audience.id: m.audience for m in members}.values(), key=attrgetter("id"))
    return audiences, {audience.id: 1 << bit for bit, audience in enumerate(audiences)}


def _largest(sets: Iterable[int]) -> list[int]:
    """The masks not inside another of `sets`."""
    ordered = sorted(set(sets), key=int.bit_count, reverse=True)
    kept: list[int] = []
    for mask in ordered:
        if not any(mask & bigger == mask for bigger in kept):
            kept.append(mask)
    return kept
