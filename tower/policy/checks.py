"""Checks that relate one part of a policy to another, run after each section's own shape.

Every check names the sections it reads, so it only runs when those sections are valid:
one broken section never hides the mistakes of the others. A list section whose items
fail their own schema reaches its checks with those items as `Flawed` (their fields that
passed, and the names of those that failed) or None (nothing readable), in their places:
its good items, and the good fields of the others, are still checked by their paths.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from tower.policy.errors import PolicyIssue
from tower.policy.schema import (
    AudienceNode,
    Calendar,
    ContactCap,
    FreezeWindow,
    Overlap,
    Protocol,
    SlaPolicy,
    SurfaceNode,
    Team,
)
from tower.policy.trees import Loc, format_loc, walk_segments, walk_surfaces

Sections = Mapping[str, Any]
LAST_YEAR = 2100  # dates past it are typing slips: no calendar Tower keeps reaches them
BUSINESS_DAYS_A_YEAR = 261  # the most lead time or SLA target any calendar can honour
Check = Callable[[Sections], Iterator[PolicyIssue]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Flawed(Generic[M]):
    """A list item that failed its schema: `item` holds the fields that passed their own
    (any other is unset or its default, never read); `failed` names the others."""

    item: M
    failed: frozenset[str]


Items = Sequence[M | Flawed[M] | None]


def _entries(items: Items[M]) -> Iterator[tuple[int, M, frozenset[str]]]:
    """Each readable item of a list section: its index, the item, its failed fields."""
    for index, entry in enumerate(items):
        if isinstance(entry, Flawed):
            yield index, entry.item, entry.failed
        elif entry is not None:
            yield index, entry, frozenset()


def _issue(loc: Loc, message: str) -> PolicyIssue:
    return PolicyIssue(format_loc(loc), message)


def _more_than_a_year(
    loc: Loc, amount: float, hours_a_day: float | None = None
) -> list[PolicyIssue]:
    """A problem when `amount` business days (business hours, given a working day's
    `hours_a_day`) is more than a year of them, said in the unit it is given in."""
    if hours_a_day is None:
        unit, year, made_of = "days", float(BUSINESS_DAYS_A_YEAR), ""
    else:
        unit, year = "hours", BUSINESS_DAYS_A_YEAR * hours_a_day
        made_of = f": {BUSINESS_DAYS_A_YEAR} business days of {hours_a_day:g} hours"
    if amount <= year:
        return []
    return [
        _issue(loc, f"{amount:.15g} business {unit} is more than a year's ({year:.15g}{made_of})")
    ]


def _surface_paths(sections: Sections) -> set[str]:
    roots: dict[str, SurfaceNode] = sections["surfaces"]
    return {entry.path for entry in walk_surfaces(roots)}


def check_surface_traffic(sections: Sections) -> Iterator[PolicyIssue]:
    """A page cannot have more weekly visitors than the channel or page it sits in."""
    roots: dict[str, SurfaceNode] = sections["surfaces"]
    visitors = {}
    for entry in walk_surfaces(roots):
        visitors[entry.path] = entry.node.weekly_visitors
        own, parents = entry.node.weekly_visitors, visitors.get(entry.parent or "")
        if own is not None and parents is not None and own > parents:
            yield _issue(
                (*entry.loc, "weekly_visitors"),
                f"{own} weekly visitors is more than its parent {entry.parent!r} has ({parents})",
            )


def check_segments(sections: Sections) -> Iterator[PolicyIssue]:
    """Segment names are unique across the tree and a child is never bigger than its parent."""
    roots: dict[str, AudienceNode] = sections["audiences"]
    seen: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for entry in walk_segments(roots):
        if entry.name in seen:
            yield _issue(
                entry.loc, f"segment {entry.name!r} is already defined at {seen[entry.name]}"
            )
            continue
        seen[entry.name] = format_loc(entry.loc)
        sizes[entry.name] = entry.node.size
        if entry.parent is not None and entry.node.size > sizes[entry.parent]:
            yield _issue(
                (*entry.loc, "size"),
                f"segment {entry.name!r} ({entry.node.size}) is bigger than its parent "
                f"{entry.parent!r} ({sizes[entry.parent]})",
            )


def check_funnels(sections: Sections) -> Iterator[PolicyIssue]:
    """Every funnel step is a known surface, listed once."""
    known = _surface_paths(sections)
    funnels: dict[str, list[str]] = sections["funnels"]
    for name, steps in funnels.items():
        if len(steps) < 2:
            yield _issue(("funnels", name), "a funnel needs at least two steps")
        repeated = set()
        for index, step in enumerate(steps):
            if step not in known:
                yield _issue(("funnels", name, index), f"unknown surface {step!r}")
            elif step in repeated:
                yield _issue(("funnels", name, index), f"step {step!r} appears twice")
            repeated.add(step)


def check_overlaps(sections: Sections) -> Iterator[PolicyIssue]:
    """Overlaps name two known, different, non-nested segments, once per pair."""
    roots: dict[str, AudienceNode] = sections["audiences"]
    parents = {entry.name: entry.parent for entry in walk_segments(roots)}

    def ancestors(name: str) -> set[str]:
        found = set()
        parent = parents.get(name)
        while parent is not None:
            found.add(parent)
            parent = parents.get(parent)
        return found

    overlaps: Items[Overlap] = sections["overlaps"]
    pairs: set[frozenset[str]] = set()
    for index, overlap, failed in _entries(overlaps):
        sides = [side for side in ("a", "b") if side not in failed]
        unknown = [side for side in sides if getattr(overlap, side) not in parents]
        for side in unknown:
            yield _issue(("overlaps", index, side), f"unknown segment {getattr(overlap, side)!r}")
        if unknown or len(sides) < 2:
            continue
        pair = frozenset((overlap.a, overlap.b))
        if overlap.a == overlap.b:
            yield _issue(("overlaps", index), f"a segment cannot overlap itself ({overlap.a!r})")
        elif overlap.a in ancestors(overlap.b) or overlap.b in ancestors(overlap.a):
            yield _issue(
                ("overlaps", index),
                f"{overlap.a!r} and {overlap.b!r} are nested: one already contains the other",
            )
        elif pair in pairs:
            yield _issue(("overlaps", index), f"{overlap.a!r} and {overlap.b!r} are declared twice")
        pairs.add(pair)


def check_contact_caps(sections: Sections) -> Iterator[PolicyIssue]:
    """A contact cap applies to a channel: a top-level surface; one cap per channel and
    window."""
    channels = list(sections["surfaces"])
    caps: Items[ContactCap] = sections["contact_caps"]
    seen: set[tuple[str, int]] = set()
    for index, cap, failed in _entries(caps):
        if "channel" in failed:
            continue
        if cap.channel not in channels:
            yield _issue(
                ("contact_caps", index, "channel"),
                f"unknown channel {cap.channel!r} (channels: {', '.join(channels)})",
            )
        if "per_days" in failed:
            continue
        if (cap.channel, cap.per_days) in seen:
            yield _issue(
                ("contact_caps", index),
                f"twice: {cap.channel!r} already has a cap per {cap.per_days} days",
            )
        seen.add((cap.channel, cap.per_days))


def check_freeze_windows(sections: Sections) -> Iterator[PolicyIssue]:
    """Freeze windows name known surfaces."""
    known = _surface_paths(sections)
    windows: Items[FreezeWindow] = sections["freeze_windows"]
    for index, window, failed in _entries(windows):
        if "surfaces" in failed:
            continue
        for position, surface in enumerate(window.surfaces):
            if surface not in known:
                yield _issue(
                    ("freeze_windows", index, "surfaces", position), f"unknown surface {surface!r}"
                )


def _duplicates(keys: Iterable[str]) -> set[str]:
    return {key for key, count in Counter(keys).items() if count > 1}


def check_teams(sections: Sections) -> Iterator[PolicyIssue]:
    """Team keys are unique; a person is listed once and in one team; a channel is one
    team's."""
    teams: Items[Team] = sections["teams"]
    keys: set[str] = set()
    member_of: dict[str, str] = {}
    channel_of: dict[str, str] = {}
    for index, team, failed in _entries(teams):
        if "key" in failed:
            continue  # the checks below name a team by its key
        if team.key in keys:
            yield _issue(("teams", index, "key"), f"duplicate team key {team.key!r}")
        keys.add(team.key)
        listed: set[str] = set()
        for position, member in enumerate([] if "members" in failed else team.members):
            where = ("teams", index, "members", position)
            if member in listed:
                yield _issue(where, f"twice: {member} is already a member of {team.key!r}")
            elif member in member_of:
                yield _issue(
                    where, f"{member} is already a member of {member_of[member]!r}: one team each"
                )
            listed.add(member)
            member_of.setdefault(member, team.key)
        channel = None if "channel" in failed else team.channel
        if channel is None:
            continue
        if channel in channel_of:
            yield _issue(
                ("teams", index, "channel"),
                f"{channel} is already the channel of {channel_of[channel]!r}: one team each",
            )
        channel_of.setdefault(channel, team.key)


def check_managers(sections: Sections) -> Iterator[PolicyIssue]:
    """Each manager is listed once."""
    managers: list[str] = sections["managers"]
    for index, manager in enumerate(managers):
        if manager in managers[:index]:
            yield _issue(("managers", index), f"twice: {manager} is already a manager")


def check_approvals(sections: Sections) -> Iterator[PolicyIssue]:
    """A release needs no more approvals than the listed managers can give (a policy
    listing none, a sketch, is left alone), and no more notice than a year of business
    days."""
    protocol: Protocol = sections["protocol"]
    managers = set(sections["managers"])
    if managers and protocol.approvals_required > len(managers):
        yield _issue(
            ("protocol", "approvals_required"),
            f"{protocol.approvals_required} approvals are required but the policy has "
            f"{len(managers)} manager{'s' if len(managers) != 1 else ''} to give them",
        )
    yield from _more_than_a_year(
        ("protocol", "min_lead_business_days"), protocol.min_lead_business_days
    )


def check_calendar(sections: Sections) -> Iterator[PolicyIssue]:
    """Working days and closed days are listed once; no date lies past 2100."""
    calendar: Calendar = sections["calendar"]
    for index, day in enumerate(calendar.working_days):
        if day in calendar.working_days[:index]:
            yield _issue(("calendar", "working_days", index), f"twice: {day} is already listed")
    for index, closed in enumerate(calendar.closed):
        if closed in calendar.closed[:index]:
            yield _issue(("calendar", "closed", index), f"twice: {closed} is already listed")
        elif closed.year > LAST_YEAR:
            yield _issue(("calendar", "closed", index), f"{closed} is after {LAST_YEAR}")


def check_freeze_dates(sections: Sections) -> Iterator[PolicyIssue]:
    """No freeze window starts or ends past 2100."""
    windows: Items[FreezeWindow] = sections["freeze_windows"]
    for index, window, failed in _entries(windows):
        for name in ("start", "end"):
            day: date | None = None if name in failed else getattr(window, name)
            if day is not None and day.year > LAST_YEAR:
                yield _issue(("freeze_windows", index, name), f"{day} is after {LAST_YEAR}")


def check_kpis(sections: Sections) -> Iterator[PolicyIssue]:
    """A KPI's weight is a finite number."""
    kpis: dict[str, float] = sections["kpis"]
    for name, weight in kpis.items():
        if not math.isfinite(weight):
            yield _issue(("kpis", name), f"{weight} is not a weight: give a finite number")


def check_sla(sections: Sections) -> Iterator[PolicyIssue]:
    """SLA keys are unique, a clock cannot stop or pause on the event that starts it, nor
    resume when nothing pauses it, and no warning share is listed twice."""
    policies: Items[SlaPolicy] = sections["sla"]
    seen: set[str] = set()
    for index, policy, failed in _entries(policies):
        if "key" not in failed:
            if policy.key in seen:
                yield _issue(("sla", index, "key"), f"duplicate SLA key {policy.key!r}")
            seen.add(policy.key)
        for name, verb in (("stop", "stops"), ("pause", "pauses")):
            if failed.isdisjoint(("start", name)) and policy.start in getattr(policy, name):
                yield _issue(
                    ("sla", index, name), f"{policy.start!r} both starts and {verb} the clock"
                )
        if failed.isdisjoint(("pause", "resume")) and policy.resume and not policy.pause:
            yield _issue(
                ("sla", index, "resume"), "the clock resumes but nothing pauses it: add pause"
            )
        for position, share in enumerate([] if "warn_at" in failed else policy.warn_at):
            if share in policy.warn_at[:position]:
                yield _issue(("sla", index, "warn_at", position), f"twice: {share} is listed")


def check_sla_targets(sections: Sections) -> Iterator[PolicyIssue]:
    """No SLA target is longer than a year of business days (a business day being the
    calendar's working day), said in the unit the target is given in."""
    calendar: Calendar = sections["calendar"]
    policies: Items[SlaPolicy] = sections["sla"]
    for index, policy, failed in _entries(policies):
        for name, hours_a_day in (
            ("target_business_days", None),
            ("target_business_hours", calendar.hours_per_day),
        ):
            target: float | None = None if name in failed else getattr(policy, name)
            if target is not None:
                yield from _more_than_a_year(("sla", index, name), target, hours_a_day)


CHECKS: list[tuple[tuple[str, ...], Check]] = [
    (("surfaces",), check_surface_traffic),
    (("audiences",), check_segments),
    (("surfaces", "funnels"), check_funnels),
    (("audiences", "overlaps"), check_overlaps),
    (("surfaces", "contact_caps"), check_contact_caps),
    (("surfaces", "freeze_windows"), check_freeze_windows),
    (("teams",), check_teams),
    (("managers",), check_managers),
    (("protocol", "managers"), check_approvals),
    (("calendar",), check_calendar),
    (("freeze_windows",), check_freeze_dates),
    (("kpis",), check_kpis),
    (("sla",), check_sla),
    (("calendar", "sla"), check_sla_targets),
]


def run_checks(sections: Sections) -> list[PolicyIssue]:
    """Run every check whose sections are all present (that is, valid) in `sections`."""
    issues: list[PolicyIssue] = []
    for needs, check in CHECKS:
        if all(name in sections for name in needs):
            issues.extend(check(sections))
    return issues
