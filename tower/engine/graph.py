"""The page/channel/audience graph of a policy, built once and compiled for the hot path.

networkx builds and checks the trees; the engine then reads plain lists and dicts:
preorder ids with subtree intervals (is one surface inside another?), ancestor chains,
effective weekly visitors, segment sizes and declared overlaps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tower.engine.population import Population
from tower.policy import Policy
from tower.policy.schema import shared_send_days
from tower.policy.trees import walk_segments, walk_surfaces

_VIRTUAL_ROOT = ""


@dataclass(frozen=True)
class SurfaceIndex:
    """Surface nodes numbered in preorder: node i's subtree is the id range [i, end[i])."""

    ids: dict[str, int]
    paths: list[str]
    end: list[int]
    ancestors: list[tuple[int, ...]]  # ancestor-or-self ids, self first, channel last
    visitors: list[int | None]  # own or nearest ancestor's weekly visitors; None: no web traffic
    # Own or nearest ancestor's send days (weekday numbers, Monday 0); None: every day.
    send_days: list[frozenset[int] | None]

    def allowed_starts(self, nodes: Iterable[int]) -> frozenset[int] | None:
        """The weekdays a test on all of `nodes` may start on (`shared_send_days`)."""
        return shared_send_days(self.send_days[node] for node in nodes)

    def nested(self, a: int, b: int) -> bool:
        """Whether `a` and `b` are the same node or one contains the other."""
        return a <= b < self.end[a] or b <= a < self.end[b]

    def contains(self, outer: int, inner: int) -> bool:
        """Whether `inner` is `outer` or lies inside it."""
        return outer <= inner < self.end[outer]

    def deeper(self, a: int, b: int) -> int:
        """Of two nested nodes, the one inside the other (where both tests run)."""
        return b if a <= b < self.end[a] else a

    def channel(self, node: int) -> str:
        return self.paths[self.ancestors[node][-1]]


@dataclass(frozen=True)
class SegmentIndex:
    """Audience segments (numbered in preorder) with sizes, ancestor chains, declared
    overlaps, and the population model that counts their people."""

    ids: dict[str, int]
    names: list[str]
    sizes: list[int]
    ancestors: list[tuple[int, ...]]  # ancestor-or-self ids, self first, root last
    overlaps: dict[tuple[int, int], float]  # both orders
    population_model: Population
    # Bit masks (bit i: segment i) of each segment's ancestors-or-self: a quick "are two
    # segments nested?".
    line_masks: list[int] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        self.line_masks.extend(_mask(chain) for chain in self.ancestors)

    @property
    def root(self) -> int:
        return self.ancestors[0][-1]

    @property
    def population(self) -> float:
        """Everyone reachable in a week: the people of every region."""
        return self.population_model.everyone

    def contains(self, outer: int, inner: int) -> bool:
        """Whether segment `inner` is `outer` or lies inside it."""
        return outer in self.ancestors[inner]


def _mask(segments: Iterable[int]) -> int:
    mask = 0
    for segment in segments:
        mask |= 1 << segment
    return mask


@dataclass(frozen=True)
class PolicyGraph:
    """Everything the engine needs to know about a policy's surfaces and audiences."""

    surfaces: SurfaceIndex
    segments: SegmentIndex
    funnels: dict[str, tuple[int, ...]]


def build_graph(policy: Policy) -> PolicyGraph:
    """Compile the policy's trees; do it once per policy and share the result."""
    surfaces = build_surfaces(policy)
    return PolicyGraph(
        surfaces=surfaces,
        segments=_build_segments(policy),
        funnels={
            name: tuple(surfaces.ids[step] for step in steps)
            for name, steps in policy.funnels.items()
        },
    )


def _preorder_surfaces(policy: Policy) -> list[str]:
    import networkx as nx  # here, not at the top: most commands never build the graph

    tree = nx.DiGraph()
    for entry in walk_surfaces(policy.surfaces):
        tree.add_edge(entry.parent or _VIRTUAL_ROOT, entry.path)
    order = nx.dfs_preorder_nodes(tree, _VIRTUAL_ROOT)
    return [path for path in order if path != _VIRTUAL_ROOT]


def build_surfaces(policy: Policy) -> SurfaceIndex:
    """The policy's surface tree, numbered in preorder, with what each node inherits."""
    entries = {entry.path: entry for entry in walk_surfaces(policy.surfaces)}
    paths = _preorder_surfaces(policy)
    ids = {path: index for index, path in enumerate(paths)}
    ancestors: list[tuple[int, ...]] = []
    visitors: list[int | None] = []
    send_days: list[frozenset[int] | None] = []
    for path in paths:
        entry = entries[path]
        parent = None if entry.parent is None else ids[entry.parent]
        chain = (ids[path],) if parent is None else (ids[path], *ancestors[parent])
        ancestors.append(chain)
        own = entry.node.weekly_visitors
        visitors.append(own if own is not None or parent is None else visitors[parent])
        send_days.append(policy.send_days(path))
    end = [0] * len(paths)
    for index in reversed(range(len(paths))):
        end[index] = max(index + 1, end[index])
        for parent in ancestors[index][1:]:
            end[parent] = max(end[parent], end[index])
    return SurfaceIndex(ids, paths, end, ancestors, visitors, send_days)


def _build_segments(policy: Policy) -> SegmentIndex:
    entries = list(walk_segments(policy.audiences))
    ids = {entry.name: index for index, entry in enumerate(entries)}
    ancestors: list[tuple[int, ...]] = []
    for entry in entries:
        own = ids[entry.name]
        ancestors.append((own,) if entry.parent is None else (own, *ancestors[ids[entry.parent]]))
    overlaps: dict[tuple[int, int], float] = {}
    declared: list[tuple[int, int, float]] = []
    for overlap in policy.overlaps:
        a, b = ids[overlap.a], ids[overlap.b]
        overlaps[(a, b)] = overlaps[(b, a)] = overlap.share
        declared.append((a, b, overlap.share))
    sizes = [entry.node.size for entry in entries]
    parents = [chain[1] if len(chain) > 1 else None for chain in ancestors]
    return SegmentIndex(
        ids=ids,
        names=[entry.name for entry in entries],
        sizes=sizes,
        ancestors=ancestors,
        overlaps=overlaps,
        population_model=Population(sizes, parents, declared),
    )
