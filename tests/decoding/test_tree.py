from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagrammar.decoding import DraftTree

paths = st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=5), max_size=6)


@given(paths)
def test_a_tree_holds_exactly_the_paths_added(added):
    tree = DraftTree()
    for path in added:
        tree.add_path(path)
    # every added path is a root-to-node path, and every leaf path is one of them
    for path in added:
        node, nodes = -1, []
        for token in path:
            node = tree.child(node, token)
            assert node is not None
            nodes.append(node)
        assert tree.path_to(nodes[-1]) == nodes
    assert all(leaf in [p[: len(leaf)] for p in added] for leaf in tree.paths())
    assert all(parent < index for index, parent in enumerate(tree.parents))
    assert tree.depth() == max((len(p) for p in added), default=0)


@given(paths, paths)
def test_union_equals_adding_both(a, b):
    left, right, both = DraftTree(), DraftTree(), DraftTree()
    for path in a:
        left.add_path(path)
        both.add_path(path)
    for path in b:
        right.add_path(path)
        both.add_path(path)
    merged = left.union(right)
    assert sorted(merged.paths()) == sorted(both.paths())
    assert len(merged) == len(both)


def test_chain_and_from_parents():
    assert DraftTree.chain([4, 5, 6]).parents == [-1, 0, 1]
    tree = DraftTree.from_parents([1, 2, 1, 3], [-1, 0, -1, 2])
    assert tree.tokens == [1, 2, 3] and tree.parents == [-1, 0, 0]
    with pytest.raises(ValueError, match="parents come first"):
        DraftTree.from_parents([1, 2], [1, -1])
    assert repr(DraftTree.chain([1])) == "DraftTree(tokens=[1], parents=[-1])"
