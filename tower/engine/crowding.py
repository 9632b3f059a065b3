"""Exclusion groups over capacity: their traffic shares add up to more than 100% on some
day. Surface capacity is in `capacity`, contact caps in `contact_crowds`; the helpers at the
end serve all three."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from functools import partial
from itertools import pairwise

from tower.engine.findings import Finding, format_span
from tower.engine.kinds import CollisionKind, Severity
from tower.engine.portfolio import Footprint
from tower.engine.scope import Scope, ScopeKind

# An exclusion group's arms may share all of the traffic, not more: shares are fractions,
# so their sum is allowed float rounding.
FULL_TRAFFIC = 1.0 + 1e-9


def exclusion_group_overloads(footprints: Iterable[Footprint]) -> Iterator[Finding]:
    """A capacity finding for each exclusion group whose shares exceed 100% on some day."""
    groups: dict[str, list[Footprint]] = defaultdict(list)
    for footprint in footprints:
        if footprint.group is not None:
            groups[footprint.group].append(footprint)
    for group, members in sorted(groups.items()):
        over = [
            (first, after)
            for first, after, running in running_stretches(members)
            if sum(m.traffic for m in running) > FULL_TRAFFIC
        ]
        yield from _group_overload_runs(group, members, _merged(over))


def _group_overload_runs(
    group: str, members: Sequence[Footprint], runs: list[tuple[int, int]]
) -> Iterator[Finding]:
    scope = Scope(ScopeKind.GROUP, group)
    for first, last in runs:
        involved = by_number(m for m in members if m.start <= last and m.end >= first)
        peak = max(sum(m.traffic for m in running) for _, _, running in running_stretches(involved))
        span = (date.fromordinal(first), date.fromordinal(last))
        yield Finding(
            kind=CollisionKind.CAPACITY,
            severity=Severity.BLOCKING,
            keys=tuple(m.key for m in involved),
            scope=scope,
            surfaces=(),
            first_day=span[0],
            last_day=span[1],
            people_per_week=0,
            shares=(1.0,) * len(involved),
            agile_vs_bau=mixed_teams(involved),
            describe=partial(_group_text, group, tuple(m.key for m in involved), peak, span),
        )


def _group_text(group: str, keys: tuple[str, ...], peak: float, span: tuple[date, date]) -> str:
    return (
        f"Exclusion group {group!r} splits one audience between {', '.join(keys)}, but their "
        f"traffic adds up to {peak * 100:.0f}% {format_span(*span)}: shares in a group must "
        "fit in 100%."
    )


def running_stretches(members: Sequence[Footprint]) -> Iterator[tuple[int, int, list[Footprint]]]:
    """Stretches of days [first, after) over which the same members run."""
    boundaries = sorted({m.start for m in members} | {m.end + 1 for m in members})
    for first, after in pairwise(boundaries):
        running = [m for m in members if m.start <= first <= m.end]
        if running:
            yield first, after, running


def _merged(stretches: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Day stretches [first, after) joined where they touch, as (first, last) days."""
    runs: list[tuple[int, int]] = []
    for first, after in stretches:
        if runs and runs[-1][1] + 1 == first:
            runs[-1] = (runs[-1][0], after - 1)
        else:
            runs.append((first, after - 1))
    return runs


def item_number(footprint: Footprint) -> int:
    """A test's registration number: the order of tests within a finding."""
    return footprint.item.number


def by_number(footprints: Iterable[Footprint]) -> list[Footprint]:
    return sorted(footprints, key=item_number)


def mixed_teams(footprints: Sequence[Footprint]) -> bool:
    """Whether both agile and BAU teams run some of `footprints`."""
    agile = sum([f.agile for f in footprints])
    return 0 < agile < len(footprints)
