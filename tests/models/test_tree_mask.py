from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagrammar.decoding import DraftTree
from diagrammar.models.tree_mask import is_chain, tree_layout


@given(st.lists(st.tuples(st.integers(-1, 20), st.integers(0, 3)), max_size=20))
def test_layout_matches_the_tree_paths(edges):
    tree = DraftTree()
    for parent, token in edges:
        tree.add(min(parent, len(tree) - 1), token)
    depths, ancestors = tree_layout(tree.parents)
    assert depths[0] == 0 and ancestors[0].tolist() == [True] + [False] * len(tree)
    for node in range(len(tree)):
        path = tree.path_to(node)
        assert depths[node + 1] == len(path)
        expected = {0, *(i + 1 for i in path)}
        assert {j for j, seen in enumerate(ancestors[node + 1].tolist()) if seen} == expected
    assert is_chain(tree.parents) == (tree.parents == list(range(-1, len(tree) - 1)))


def test_parents_must_come_first():
    with pytest.raises(ValueError, match="parents must come before"):
        tree_layout([0])


def _loop_layout(parents):
    """The simple reference: one row per node, each its parent's row plus itself."""
    import torch

    n = len(parents) + 1
    depths = [0] * n
    ancestors = torch.eye(n, dtype=torch.bool)
    for node, parent in enumerate(parents, start=1):
        depths[node] = depths[parent + 1] + 1
        ancestors[node] |= ancestors[parent + 1]
    return depths, ancestors


@given(st.lists(st.floats(0, 1), max_size=80), st.integers(0, 3))
def test_vectorised_layout_matches_the_loop(draws, shape):
    """Random trees of every shape (bushy, deep, chain-like): the vectorised tree_layout equals
    the row-by-row loop, depths and ancestor mask alike."""
    parents = []
    for index, draw in enumerate(draws):
        if shape == 0:        # any earlier node (or the root)
            parent = int(draw * (index + 1)) - 1
        elif shape == 1:      # deep: mostly the node just before
            parent = index - 1 if draw < 0.8 else int(draw * index) - 1
        elif shape == 2:      # bushy: mostly the root
            parent = -1 if draw < 0.7 else int(draw * index) - 1
        else:                 # a chain
            parent = index - 1
        parents.append(min(parent, index - 1))
    depths, ancestors = tree_layout(parents)
    expected_depths, expected = _loop_layout(parents)
    assert depths == expected_depths
    assert ancestors.dtype == expected.dtype and ancestors.equal(expected)


@pytest.mark.parametrize("parents", [[-2], [0, 5], [-1, 1]])
def test_every_bad_parent_is_named(parents):
    node = next(i for i, p in enumerate(parents) if not -1 <= p < i)
    with pytest.raises(ValueError, match=f"node {node} has parent {parents[node]}"):
        tree_layout(parents)
