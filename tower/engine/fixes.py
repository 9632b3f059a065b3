"""Ranked fixes for a collision: what the lower-ranked side can do, least disruptive first.

1. move to the next free slot (from the plan), 2. make the tests mutually exclusive,
3. narrow the audience.
"""

from __future__ import annotations

from collections.abc import Mapping

from tower.engine.findings import Finding, format_day
from tower.engine.graph import SegmentIndex
from tower.engine.kinds import CollisionKind
from tower.engine.planner import Placement
from tower.engine.portfolio import Footprint
from tower.engine.scope import ScopeKind


def suggest_fixes(
    finding: Finding,
    *,
    ranks: Mapping[str, int],
    placements: Mapping[str, Placement],
    footprints: Mapping[str, Footprint],
    segments: SegmentIndex,
) -> tuple[str, ...]:
    """The fixes for `finding`, in the order a control-tower manager would try them."""
    keys = [key for key in finding.keys if key in footprints]
    if not keys:
        return ()
    lowest = max(keys, key=lambda key: ranks.get(key, len(ranks) + 1))
    others = [key for key in keys if key != lowest]
    fixes = [_move(lowest, placements.get(lowest), finding)]
    if finding.kind in (CollisionKind.SURFACE, CollisionKind.FUNNEL):
        fixes.append(_make_exclusive(keys, footprints))
    if finding.kind == CollisionKind.CAPACITY and finding.scope.kind == ScopeKind.GROUP:
        total = sum(footprints[key].traffic for key in keys) * 100
        fixes.insert(
            0, f"Cut the traffic shares of {', '.join(keys)} to 100% in total (now {total:g}%)"
        )
    if finding.kind != CollisionKind.CAPACITY and others:
        fixes.append(_narrow(lowest, others, footprints, segments))
    return tuple(fix for fix in fixes if fix)


def _move(key: str, placement: Placement | None, finding: Finding) -> str:
    if placement is not None and placement.planned_start and placement.moved_days:
        end = placement.planned_end
        assert end is not None
        return (
            f"Move {key} to its next free slot: {format_day(placement.planned_start)} "
            f"to {format_day(end)}"
        )
    return f"Move {key} to start after {format_day(finding.last_day)}"


def _make_exclusive(keys: list[str], footprints: Mapping[str, Footprint]) -> str:
    total = sum(footprints[key].traffic for key in keys) * 100
    fix = f"Make {' and '.join(keys)} mutually exclusive: put them in one exclusion group"
    if total > 100:
        fix += f" and split the traffic (now {total:g}% in total, at most 100%)"
    return fix


def _narrow(
    key: str, others: list[str], footprints: Mapping[str, Footprint], segments: SegmentIndex
) -> str:
    """Exclude the others' segments from `key`, where that leaves `key` with anyone at all."""
    own = footprints[key].audience.targets
    names = sorted(
        {
            segments.names[segment]
            for other in others
            for segment in footprints[other].audience.targets
            if not any(segments.contains(segment, target) for target in own)
        }
    )
    if not names:
        return ""  # excluding the others' segments would leave nobody: not a fix
    return f"Narrow {key}'s audience: exclude {', '.join(names)}"
