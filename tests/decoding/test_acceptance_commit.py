from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diagrammar.decoding import Acceptance, DecodeState, DraftTree, commit, decode, greedy_accept
from diagrammar.decoding.stats import DecodeStats


@given(st.lists(st.tuples(st.integers(-1, 10), st.integers(0, 3)), max_size=12),
       st.lists(st.integers(0, 3), min_size=13, max_size=13))
def test_greedy_accept_follows_the_argmax_as_far_as_the_tree_goes(edges, argmax):
    tree = DraftTree()
    for parent, token in edges:
        tree.add(min(parent, len(tree) - 1), token)
    scores = torch.zeros(len(tree) + 1, 4)
    for row in range(len(tree) + 1):
        scores[row, argmax[row]] = 1.0
    accepted = greedy_accept(tree, scores)
    # brute force: walk by scanning all nodes for a matching child
    node, path = -1, []
    while True:
        want = argmax[node + 1]
        match = [i for i, (t, p) in enumerate(zip(tree.tokens, tree.parents))
                 if p == node and t == want]
        if not match:
            break
        node = match[0]
        path.append(node)
    assert accepted.path == tuple(path)
    assert accepted.tokens == tuple(tree.tokens[i] for i in path) + (argmax[node + 1],)


class RecordingSession:
    def __init__(self):
        self.kept = []

    def keep(self, path):
        self.kept.append(list(path))


def test_commit_cuts_at_eos_and_budget():
    state = DecodeState(RecordingSession(), [9], 1, max_new_tokens=10,
                        eos_token_ids=frozenset({0}))
    commit(state, Acceptance((0, 1), (5, 0, 6)))
    assert state.tokens == [9, 5, 0] and state.done and state.accepted_per_step == [2]
    assert state.session.kept == [[0, 1]]
    state = DecodeState(RecordingSession(), [9], 1, max_new_tokens=2)
    commit(state, Acceptance((0, 1), (5, 6, 7)))
    assert state.tokens == [9, 5, 6] and state.done


def test_decode_validates_and_reports():
    class Model:
        eos_token_ids = frozenset()

        def check_length(self, prompt_length, max_new_tokens):
            if prompt_length > 5:
                raise ValueError("too long")

        def session(self, ids):
            return RecordingSession()

    def step(state):
        commit(state, Acceptance((0,), (1, 2)))
        return state

    result = decode(step, Model(), [7], max_new_tokens=5, box_seconds={"x": 1.0})
    assert result.tokens == [1, 2, 1, 2, 1]
    assert result.stats.accepted_per_step == [2, 2, 1] and result.stats.steps == 3
    assert result.stats.box_seconds == {"x": 1.0}
    assert decode(step, Model(), [7], max_new_tokens=0).tokens == []
    with pytest.raises(ValueError, match="too long"):
        decode(step, Model(), [7] * 9, max_new_tokens=1)
    with pytest.raises(ValueError, match="max_new_tokens must be"):
        decode(step, Model(), [7], max_new_tokens=-1)


def test_stats_dict_and_summary():
    stats = DecodeStats(steps=4, new_tokens=10, prefill_seconds=0.1, decode_seconds=0.9,
                        box_seconds={"Verify": 0.8, "Commit": 0.1}, accepted_per_step=[1, 3, 3, 3])
    data = stats.as_dict()
    assert data["mean_accepted"] == 2.5 and data["tokens_per_second"] == pytest.approx(10.0)
    assert data["accepted_histogram"] == {1: 1, 3: 3}
    assert "MAT 2.50" in stats.summary() and "Verify" in stats.summary()
    assert DecodeStats(0, 0, 0.0, 0.0).mean_accepted == 0.0
