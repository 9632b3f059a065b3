"""Maximal cliques of small graphs held as bit masks.

The contact-cap check asks, thousands of times per scan, for the largest sets of a few dozen
audiences that all share people. At that size, building a networkx graph costs more than the
search itself, so the graph is a list of neighbour masks (bit j of `adjacency[i]`: i and j
are joined) and Bron-Kerbosch with pivoting runs on integers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def vertices(mask: int) -> list[int]:
    """The vertices in `mask`, lowest first."""
    found = []
    while mask:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return found


def is_clique(adjacency: Sequence[int], within: int) -> bool:
    """Whether the vertices in the mask `within` are all joined to each other."""
    return all(within & ~(adjacency[v] | 1 << v) == 0 for v in vertices(within))


def maximal_cliques(adjacency: Sequence[int], within: int | None = None) -> Iterator[int]:
    """Every maximal clique, each once, as a mask of its vertices (no self-loops expected);
    of the subgraph on the vertices in the mask `within`, when given."""
    everyone = (1 << len(adjacency)) - 1
    stack = [(0, everyone if within is None else within & everyone, 0)]
    while stack:
        clique, candidates, excluded = stack.pop()
        if not candidates:
            if not excluded:
                yield clique
            continue
        # Branch only on vertices the best-connected pivot does not reach; stop looking
        # at one that reaches all the other candidates (one branch, or none).
        most = candidates.bit_count()
        best, reached = -1, 0
        rest = candidates | excluded
        while rest and best < most - 1:
            low = rest & -rest
            rest ^= low
            reach = adjacency[low.bit_length() - 1] & candidates
            count = reach.bit_count()
            if count > best:
                best, reached = count, reach
        branches = candidates & ~reached
        while branches:
            bit = branches & -branches
            branches ^= bit
            neighbours = adjacency[bit.bit_length() - 1]
            stack.append((clique | bit, candidates & neighbours, excluded & neighbours))
            candidates &= ~bit
            excluded |= bit
