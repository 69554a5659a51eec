"""The cost-sized drafter against brute force: node keys, the cut (the best prefix, parents
kept), the evidence it learns from, and the machine's cost curve deciding the size."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.cost import CostModel
from diagrammar.decoding.drafters.sized import CostSizedDrafter, node_keys
from diagrammar.decoding.state import Acceptance, DecodeState, Verification
from diagrammar.decoding.tree import DraftTree

FLAT = CostModel([1, 64], [1.0, 1.0001])         # verifying is free: keep everything
STEEP = CostModel([1, 2], [1.0, 10.0])           # one more token costs ten: keep nothing


def _state():
    return DecodeState(None, [0], prompt_length=1, max_new_tokens=64)


trees = st.lists(st.tuples(st.integers(0, 6), st.integers(1, 9),
                           st.one_of(st.none(), st.floats(0, 1))), max_size=14).map(
    lambda specs: _build(specs))


def _build(specs):
    tree = DraftTree()
    for parent, token, prob in specs:
        tree.add(parent if parent < len(tree) else -1, token, prob)
    return tree


@given(trees)
def test_node_keys_match_a_direct_reading(tree):
    keys = node_keys(tree)
    depths = tree.depths()
    for node, (depth, first, bin_) in enumerate(keys):
        siblings = [n for n in range(len(tree)) if tree.parents[n] == tree.parents[node]]
        assert depth == min(depths[node], 8)
        assert first == (siblings[0] == node)
        prob = tree.probs[node]
        assert bin_ == (-1 if prob is None else min(4, int(prob * 5)))


@settings(max_examples=60, deadline=None)
@given(tree=trees, times=st.lists(st.floats(1.0, 3.0), min_size=3, max_size=3).map(sorted))
def test_the_cut_is_the_best_parent_closed_prefix(tree, times):
    cost = CostModel([1, 4, 16], times)
    sized = CostSizedDrafter(lambda state: tree, cost)
    sized.accepted = {key: 1.0 for key in node_keys(tree)[::2]}   # some learned rates
    sized.drafted = {key: 3.0 for key in node_keys(tree)}
    cut = sized(_state())
    # Every kept node's parent is kept (a prefix of the tree), no node is new.
    kept_paths = {tuple(cut.tokens[i] for i in cut.path_to(n)) for n in range(len(cut))}
    all_paths = {tuple(tree.tokens[i] for i in tree.path_to(n)) for n in range(len(tree))}
    assert kept_paths <= all_paths
    assert all(path[:-1] in kept_paths or len(path) == 1 for path in kept_paths)
    # Brute force over parent-closed subsets: none has a better predicted rate.
    probability = {}
    for node, (parent, key) in enumerate(zip(tree.parents, node_keys(tree))):
        probability[node] = (probability[parent] if parent >= 0 else 1.0) * sized.rate(key)

    def rate(nodes):
        return cost.rate(len(nodes), sum(probability[n] for n in nodes))

    best = max(rate(subset) for size in range(len(tree) + 1) if size <= 8 or size == len(tree)
               for subset in _closed_subsets(tree, size))
    if len(tree) <= 8:
        mine = [n for n in range(len(tree))
                if tuple(tree.tokens[i] for i in tree.path_to(n)) in kept_paths]
        assert rate(mine) >= best - 1e-9


def _closed_subsets(tree, size):
    if size == 0:
        yield ()
        return
    if len(tree) > 8:
        return
    for subset in itertools.combinations(range(len(tree)), size):
        chosen = set(subset)
        if all(tree.parents[n] < 0 or tree.parents[n] in chosen for n in subset):
            yield subset


def test_the_cost_curve_decides_the_size():
    chain = DraftTree.chain(range(1, 11))
    assert len(CostSizedDrafter(lambda s: chain, FLAT)(_state())) == 10
    assert len(CostSizedDrafter(lambda s: chain, STEEP)(_state())) == 0


def test_evidence_is_nodes_whose_parent_was_accepted():
    tree = DraftTree.chain([5, 6, 7])
    tree.add(-1, 9)
    sized = CostSizedDrafter(lambda s: tree, FLAT)
    sized(_state())
    state = _state()
    sized.observe(state, Verification(0, tree, None, Acceptance((0,), (5, 8))))
    keys = node_keys(tree)
    # Node 0 (accepted) and its sibling 3 (rejected) had the root as parent; node 1 had an
    # accepted parent and was rejected; node 2's parent was rejected: no evidence.
    assert sized.accepted == {keys[0]: 1.0, keys[1]: 0.0, keys[3]: 0.0}
    assert sized.drafted == {keys[0]: 1.0, keys[1]: 1.0, keys[3]: 1.0}
    frozen = CostSizedDrafter(lambda s: tree, FLAT, frozen=True)
    frozen.observe(state, Verification(0, tree, None, Acceptance((0,), (5, 8))))
    assert frozen.drafted == {} and not frozen.learns()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(TypeError, match="cost must be a CostModel"):
        CostSizedDrafter(lambda s: DraftTree(), {"sizes": [1]})
    with pytest.raises(ValueError, match="prior must lie in"):
        CostSizedDrafter(lambda s: DraftTree(), FLAT, prior=1.0)
