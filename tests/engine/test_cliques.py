"""Maximal cliques on bit masks agree with networkx on any small graph."""

from __future__ import annotations

import itertools

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from tower.engine.cliques import is_clique, maximal_cliques, vertices


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    size = draw(st.integers(min_value=1, max_value=14))
    pairs = list(itertools.combinations(range(size), 2))
    edges = draw(st.lists(st.sampled_from(pairs), unique=True) if pairs else st.just([]))
    return size, edges


def adjacency_of(size: int, edges: list[tuple[int, int]]) -> list[int]:
    adjacency = [0] * size
    for a, b in edges:
        adjacency[a] |= 1 << b
        adjacency[b] |= 1 << a
    return adjacency


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_maximal_cliques_are_those_networkx_finds(graph: tuple[int, list[tuple[int, int]]]) -> None:
    size, edges = graph
    expected = nx.Graph()
    expected.add_nodes_from(range(size))
    expected.add_edges_from(edges)
    found = [frozenset(vertices(mask)) for mask in maximal_cliques(adjacency_of(size, edges))]
    assert len(found) == len(set(found))  # each clique once
    assert set(found) == {frozenset(clique) for clique in nx.find_cliques(expected)}
    complete = len(edges) == size * (size - 1) // 2
    assert is_clique(adjacency_of(size, edges), (1 << size) - 1) == complete
    for clique in found:  # a maximal clique is a clique, and no vertex can join it
        mask = sum(1 << v for v in clique)
        assert is_clique(adjacency_of(size, edges), mask)
        for outside in set(range(size)) - clique:
            assert not is_clique(adjacency_of(size, edges), mask | 1 << outside)


def test_two_triangles_joined_at_a_corner() -> None:
    adjacency = adjacency_of(5, [(0, 1), (0, 2), (1, 2), (2, 3), (2, 4), (3, 4)])
    assert sorted(sorted(vertices(m)) for m in maximal_cliques(adjacency)) == [
        [0, 1, 2],
        [2, 3, 4],
    ]
    assert list(vertices(0b10110)) == [1, 2, 4]
