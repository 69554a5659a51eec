from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from diagrammar.decoding import DecodeState, MergeDrafter, NoDraftDrafter, PromptLookupDrafter


def reference_lookup(tokens, num_tokens, max_ngram, min_ngram, budget, scan_limit=64):
    """Brute force: among earlier matches of the longest suffix n-gram, the latest with a
    full-length continuation, else the one with the longest continuation."""
    wanted = min(num_tokens, budget)
    for n in range(max_ngram, min_ngram - 1, -1):
        if len(tokens) < n:
            continue
        suffix = tokens[-n:]
        starts = [i + n for i in range(len(tokens) - n) if tokens[i:i + n] == suffix]
        if not starts:
            continue
        starts = starts[-scan_limit:]
        full = [p for p in starts if len(tokens) - p >= wanted]
        best = full[-1] if full else min(starts)
        return tokens[best:best + wanted]
    return []


def _state(tokens, max_new_tokens=100):
    return DecodeState(None, list(tokens), prompt_length=len(tokens),
                       max_new_tokens=max_new_tokens)


@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.integers(1, 12),
       st.integers(1, 4), st.integers(1, 4), st.integers(1, 20))
def test_chain_matches_brute_force(tokens, num_tokens, a, b, max_new):
    max_ngram, min_ngram = max(a, b), min(a, b)
    drafter = PromptLookupDrafter(num_tokens, max_ngram, min_ngram)
    state = _state(tokens, max_new)
    drafter.start(state)
    tree = drafter(state)
    assert tree.tokens == reference_lookup(tokens, num_tokens, max_ngram, min_ngram, max_new - 1)
    assert tree.parents == list(range(-1, len(tree) - 1))


@given(st.lists(st.integers(0, 3), min_size=1, max_size=40),
       st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=4), max_size=5))
def test_incremental_index_equals_fresh_index(prompt, additions):
    """Extending the sequence step by step drafts the same as indexing it from scratch."""
    live = PromptLookupDrafter(5, 3, 1, branches=3)
    state = _state(prompt)
    live.start(state)
    live(state)
    for new in additions:
        state.tokens.extend(new)
        fresh = PromptLookupDrafter(5, 3, 1, branches=3)
        fresh.start(state)
        assert live(state).paths() == fresh(state).paths()


def test_branches_make_a_small_tree():
    tokens = [1, 2, 7, 7, 1, 2, 8, 8, 1, 2, 9, 9, 1, 2]
    drafter = PromptLookupDrafter(num_tokens=4, max_ngram=2, branches=3, branch_tokens=2)
    state = _state(tokens)
    drafter.start(state)
    tree = drafter(state)
    assert sorted(tree.paths()) == sorted([[9, 9, 1, 2], [8, 8], [7, 7]])


def test_a_match_cut_off_by_the_end_gives_way_to_a_full_one():
    tokens = [1, 2, 3, 4, 5, 6, 1, 2, 3, 1, 2]   # latest "1 2" is followed by only 1 token
    drafter = PromptLookupDrafter(num_tokens=4, max_ngram=2)
    state = _state(tokens)
    drafter.start(state)
    assert drafter(state).tokens == [3, 4, 5, 6]


def test_budget_limits_the_draft():
    tokens = [1, 2, 3, 4, 1, 2]
    drafter = PromptLookupDrafter(num_tokens=10, max_ngram=2)
    state = _state(tokens, max_new_tokens=3)
    drafter.start(state)
    assert drafter(state).tokens == [3, 4]
    state = _state(tokens, max_new_tokens=1)
    assert drafter(state).tokens == []


def test_empty_and_merged_drafters():
    state = _state([1, 2, 1])
    assert len(NoDraftDrafter()(state)) == 0
    merged = MergeDrafter([PromptLookupDrafter(num_tokens=2, max_ngram=1), NoDraftDrafter()])
    merged.start(state)
    assert merged(state).tokens == [2, 1]
