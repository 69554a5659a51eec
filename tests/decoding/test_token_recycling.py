"""Token Recycling's own logic against brute-force references: the template, the breadth-first
fill from the adjacency matrix, and the matrix updates from verification passes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.drafters.token_recycling import (
    DEFAULT_LEVEL_SIZES,
    DEFAULT_TEMPLATE,
    TokenRecyclingDrafter,
    check_template,
    default_template,
    recycling_template,
)
from diagrammar.decoding.scores import top_k_ids
from diagrammar.decoding.state import Acceptance, DecodeState, Verification
from diagrammar.decoding.tree import DraftTree


def _state(tokens, vocab=None, max_new_tokens=64):
    return DecodeState(None, list(tokens), prompt_length=len(tokens),
                       max_new_tokens=max_new_tokens, vocab_size=vocab)


def test_default_template_has_the_papers_level_sizes():
    depths = [len(p) for p in DEFAULT_TEMPLATE]
    assert len(DEFAULT_TEMPLATE) == 80
    assert [depths.count(d) for d in range(1, 7)] == list(DEFAULT_LEVEL_SIZES)
    assert check_template(DEFAULT_TEMPLATE, 8) == DEFAULT_TEMPLATE
    # Imbalanced: the best candidate's subtree is the deepest and the widest.
    assert (0,) * 6 in DEFAULT_TEMPLATE and (7, 0) not in DEFAULT_TEMPLATE[:10]
    below = {r: sum(1 for p in DEFAULT_TEMPLATE if p[0] == r) for r in range(8)}
    assert below[0] == max(below.values()) and below[0] > below[7]
    for k in (1, 2, 3, 8, 16):
        template = default_template(k)
        assert check_template(template, k) == template and max(map(len, template)) == 6


@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4), k=st.integers(2, 4),
       decay=st.floats(0.1, 0.9))
def test_recycling_template_picks_the_best_children_at_each_level(sizes, k, decay):
    sizes = _feasible(sizes, k)
    template = recycling_template(sizes, k, decay)
    check_template(template, k)
    prior = {p: decay ** sum(p) for p in template}
    for depth, size in enumerate(sizes, start=1):
        level = [p for p in template if len(p) == depth]
        assert len(level) == size
        # Brute force: no child of a chosen parent beats a chosen node of this level.
        parents = [p for p in template if len(p) == depth - 1] if depth > 1 else [()]
        others = [p + (r,) for p in parents for r in range(k) if p + (r,) not in level]
        if others:
            assert min(prior[p] for p in level) >= max(decay ** sum(p) for p in others) - 1e-12


def test_bad_templates_are_clear_errors():
    with pytest.raises(ValueError, match="no parent"):
        check_template([(0, 1)], 2)
    with pytest.raises(ValueError, match="outside"):
        check_template([(2,)], 2)
    with pytest.raises(ValueError, match="twice"):
        check_template([(0,), (0,)], 2)
    with pytest.raises(ValueError, match="empty"):
        check_template([()], 2)
    with pytest.raises(ValueError, match="at most 2"):
        recycling_template((1, 3), k=2)
    with pytest.raises(ValueError, match="decay"):
        recycling_template((1,), decay=1.0)


def _feasible(sizes, k):
    """Level sizes clipped so that each level fits below the one above it."""
    out, above = [], 1
    for size in sizes:
        above = min(size, k * above)
        out.append(above)
    return out


def _reference_fill(matrix, template, root, max_nodes, depth_limit):
    """Brute force: every template path whose ranks lead to known candidates, as token paths."""
    paths = []
    for path in template:
        if len(path) > depth_limit:
            continue
        token, tokens = root, []
        for rank in path:
            token = int(matrix[token, rank]) if token < len(matrix) else -1
            if token < 0:
                break
            tokens.append(token)
        else:
            paths.append(tokens)
    return paths


@settings(max_examples=60, deadline=None)
@given(data=st.data(), vocab=st.integers(2, 12), k=st.integers(1, 4),
       depth_limit=st.integers(0, 4))
def test_drafting_fills_the_template_from_the_matrix(data, vocab, k, depth_limit):
    template = recycling_template(_feasible([3, 4, 2], k), k)
    matrix = np.array(data.draw(st.lists(st.lists(st.integers(-1, vocab - 1), min_size=k,
                                                  max_size=k), min_size=vocab, max_size=vocab)),
                      dtype=np.int32)
    root = data.draw(st.integers(0, vocab - 1))
    drafter = TokenRecyclingDrafter(k=k, template=template)
    drafter.matrix = matrix
    state = _state([root], max_new_tokens=depth_limit + 1)
    tree = drafter(state)
    expected = DraftTree()
    for path in _reference_fill(matrix, template, root, None, depth_limit):
        expected.add_path(path)
    assert sorted(tree.paths()) == sorted(expected.paths())
    assert tree.depth() <= depth_limit


def test_max_nodes_verifies_a_breadth_first_prefix():
    drafter = TokenRecyclingDrafter(k=2, template=recycling_template((2, 2, 2), k=2),
                                    max_nodes=3)
    drafter.matrix = np.array([[1, 2], [2, 3], [3, 0], [0, 1]], dtype=np.int32)
    tree = drafter(_state([0]))
    assert len(tree) == 3 and tree.tokens == [1, 2, 2]  # both roots' children, then (0, 0)
    assert len(TokenRecyclingDrafter(max_nodes=0)(_state([0], vocab=4))) == 0


@settings(max_examples=60, deadline=None)
@given(data=st.data(), vocab=st.integers(3, 10), k=st.integers(1, 5))
def test_observe_writes_each_scored_tokens_top_k(data, vocab, k):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    tokens = data.draw(st.lists(st.integers(0, vocab - 1), min_size=0, max_size=8))
    tree = DraftTree()
    for token in tokens:
        tree.add(data.draw(st.integers(-1, len(tree) - 1)), token)
    root = data.draw(st.integers(0, vocab - 1))
    scores = rng.permutation(vocab * (len(tree) + 1)).reshape(len(tree) + 1, vocab) / 7.0
    path = tree.path_to(len(tree) - 1) if len(tree) else []
    verification = Verification(root, tree, scores, Acceptance(tuple(path), ()))
    drafter = TokenRecyclingDrafter(k=k, template=[[0]])
    drafter.observe(_state([root]), verification)
    # Brute force: replay the writes in the documented order, sorting each row fully.
    expected: dict[int, list[int]] = {}
    rows = [i + 1 for i in range(len(tree)) if i not in set(path)] + [0] + [i + 1 for i in path]
    scored = [root, *tree.tokens]
    for row in rows:
        expected[scored[row]] = list(np.argsort(-scores[row], kind="stable")[:k])
    for token, best in expected.items():
        assert drafter.candidates(token) == best
    assert drafter.memory_bytes == drafter.matrix.nbytes + drafter.probs.nbytes
    assert drafter.matrix.shape[1] == k


def test_hot_start_keeps_the_matrix_and_cold_start_resets_it(tmp_path):
    scores = np.eye(6)[[2]]  # after the root 1, the target says 2
    for hot, expected in ((True, [2]), (False, [])):
        drafter = TokenRecyclingDrafter(k=1, template=[[0]], hot_start=hot)
        drafter.start(_state([1], vocab=6))
        drafter.observe(_state([1]), Verification(1, DraftTree(), scores, None))
        drafter.start(_state([1], vocab=6))
        assert drafter.candidates(1) == expected


def test_frozen_drafters_do_not_learn_and_state_round_trips(tmp_path):
    drafter = TokenRecyclingDrafter(k=2, template=[[0]])
    drafter.observe(_state([1]), Verification(1, DraftTree(), np.eye(4)[[3]], None))
    drafter.save(tmp_path / "m.npz")
    frozen = TokenRecyclingDrafter(k=2, template=[[0]], frozen=True)
    frozen.load(tmp_path / "m.npz")
    assert frozen.candidates(1)[0] == 3 and not frozen.learns() and drafter.learns()
    frozen.observe(_state([1]), Verification(1, DraftTree(), np.eye(4)[[0]], None))
    assert frozen.candidates(1)[0] == 3
    with pytest.raises(ValueError, match="k=2, not k=3"):
        TokenRecyclingDrafter(k=3).load(tmp_path / "m.npz")


def test_top_k_ids_agree_across_array_types():
    import torch

    scores = np.random.default_rng(0).normal(size=(5, 50))
    ours = top_k_ids(scores, 8)
    assert ours.tolist() == np.argsort(-scores, axis=-1)[:, :8].tolist()
    assert top_k_ids(torch.from_numpy(scores), 8).tolist() == ours.tolist()
    assert top_k_ids(scores, 99).shape == (5, 50)
    with pytest.raises(ValueError, match="at least 1"):
        top_k_ids(scores, 0)
    with pytest.raises(ValueError, match="rows, vocab"):
        top_k_ids(scores[0], 2)


def _all_paths(matrix, probs, root, depth_limit):
    """Brute force: every path the matrix allows from ``root``, with its probability."""
    out, stack = [], [((), (), root, 1.0)]
    while stack:
        ranks, tokens, token, weight = stack.pop()
        if ranks:
            out.append((weight, tokens))
        if len(ranks) == depth_limit or token >= len(matrix):
            continue
        for rank in range(matrix.shape[1]):
            candidate = int(matrix[token, rank])
            if candidate < 0:
                break
            if probs[token, rank] > 0:
                stack.append((ranks + (rank,), tokens + (candidate,), candidate,
                              weight * float(probs[token, rank])))
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data(), vocab=st.integers(2, 8), k=st.integers(1, 3),
       depth_limit=st.integers(1, 3), max_nodes=st.integers(1, 10))
def test_dynamic_trees_hold_the_most_probable_paths(data, vocab, k, depth_limit, max_nodes):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    matrix = np.stack([rng.permutation(vocab)[:k] if vocab >= k else
                       np.resize(rng.permutation(vocab), k) for _ in range(vocab)])
    matrix = matrix.astype(np.int32)
    probs = np.sort(rng.dirichlet(np.ones(k + 1), size=vocab)[:, :k], axis=1)[:, ::-1]
    probs = np.ascontiguousarray(probs, dtype=np.float32)
    drafter = TokenRecyclingDrafter(k=k, max_nodes=max_nodes, dynamic=True,
                                    template=[[0]])
    drafter.matrix, drafter.probs = matrix, probs
    root = data.draw(st.integers(0, vocab - 1))
    tree = drafter(_state([root], max_new_tokens=depth_limit + 1))
    assert len(tree) <= max_nodes and tree.depth() <= depth_limit
    # Each node's recorded probability is its path's product, and no path left out of the
    # tree is more probable than the least probable node taken (ties aside).
    paths = {tokens: weight for weight, tokens in _all_paths(matrix, probs, root, depth_limit)}
    taken = {tuple(tree.tokens[i] for i in tree.path_to(n)): tree.probs[n]
             for n in range(len(tree))}
    for tokens, prob in taken.items():
        assert prob == pytest.approx(paths[tokens], rel=1e-5)
    if len(tree) == max_nodes and taken:
        floor = min(taken.values())
        left_out = [w for t, w in paths.items() if t not in taken and t[:-1] in taken | {(): 1}]
        assert all(w <= floor * (1 + 1e-5) for w in left_out)
    elif taken:  # under budget: every reachable path was taken
        assert set(taken) == set(paths)


def test_observe_records_candidate_probabilities_and_state_round_trips(tmp_path):
    logits = np.log(np.array([[0.1, 0.6, 0.3, 0.0 + 1e-9]]))
    drafter = TokenRecyclingDrafter(k=2, template=[[0]], dynamic=True)
    drafter.observe(_state([0]), Verification(0, DraftTree(), logits, None))
    assert drafter.candidates(0) == [1, 2]
    assert drafter.probs[0].tolist() == pytest.approx([0.6, 0.3], rel=1e-5)
    assert drafter.memory_bytes == drafter.matrix.nbytes + drafter.probs.nbytes
    drafter.save(tmp_path / "m.npz")
    again = TokenRecyclingDrafter(k=2, template=[[0]])
    again.load(tmp_path / "m.npz")
    assert again.probs[0].tolist() == pytest.approx([0.6, 0.3], rel=1e-5)
    again.reset()
    assert again.candidates(0) == [] and not again.probs.any()
