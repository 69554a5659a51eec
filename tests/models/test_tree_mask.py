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
