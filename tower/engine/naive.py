"""The surface-collision predicate read literally, over all pairs: the engine's yardstick.

Slow on purpose (every pair, surfaces compared as path strings, windows as dates): the
benchmark and the tests check that the indexed engine finds exactly the same pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from tower.engine.portfolio import Compiler, Footprint
from tower.policy.trees import paths_nested


def naive_surface_pairs(
    compiler: Compiler, footprints: Sequence[Footprint]
) -> set[tuple[str, str]]:
    """Keys of every colliding pair (lower number first), comparing every pair."""
    pairs = set()
    for a, b in combinations(footprints, 2):
        spec_a, spec_b = a.item.spec, b.item.spec
        if spec_a.exclusion_group is not None and spec_a.exclusion_group == spec_b.exclusion_group:
            continue
        if spec_a.start > spec_b.end or spec_b.start > spec_a.end:
            continue
        if not any(paths_nested(x, y) for x in spec_a.surfaces for y in spec_b.surfaces):
            continue
        if compiler.audiences.shared(a.audience, b.audience) <= 0:
            continue
        first, second = (a, b) if a.item.number <= b.item.number else (b, a)
        pairs.add((first.key, second.key))
    return pairs
