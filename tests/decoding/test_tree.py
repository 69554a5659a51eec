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


def test_nodes_carry_drafter_probabilities_through_union_and_prune():
    tree = DraftTree()
    tree.add_path([1, 2, 3], probs=[0.9, 0.5, 0.25])
    tree.add_path([4])
    assert tree.probs == [0.9, 0.5, 0.25, None] and not tree.has_probs
    other = DraftTree.from_parents([4, 7], [-1, 0], probs=[0.3, 0.2])
    tree.union(other)
    assert tree.probs == [0.9, 0.5, 0.25, 0.3, 0.2]       # the missing probability is filled
    assert tree.has_probs
    pruned = tree.prune(1)
    assert pruned.tokens == [1, 4] and pruned.probs == [0.9, 0.3] and pruned.parents == [-1, -1]
    assert tree.prune(5) is tree
    deep = DraftTree.from_parents([1, 2, 3, 4, 5], [-1, 0, -1, 2, 3])
    assert deep.prune(2).paths() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="2 tokens but 1 probabilities"):
        DraftTree().add_path([1, 2], probs=[0.5])
