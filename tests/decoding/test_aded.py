"""ADED's own logic against brute-force references: the decaying tri-gram table, its updates
from verification passes, the draft search, budgets, persistence, and an end-to-end run that
must match plain greedy decoding."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.drafters.aded import AdedDrafter, TrigramTable, search_draft
from diagrammar.decoding.loop import decode
from diagrammar.decoding.state import Acceptance, DecodeState, Verification
from diagrammar.decoding.tree import DraftTree

DYADIC = st.sampled_from([0.25, 0.5, 1.0, 2.0])  # exact in binary: sums compare exactly


def _state(tokens, max_new_tokens=64, vocab=None):
    return DecodeState(None, list(tokens), prompt_length=len(tokens),
                       max_new_tokens=max_new_tokens, vocab_size=vocab)


def _random_table(data, vocab, top_k, updates=12, decay=0.9):
    table = TrigramTable(top_k=top_k, decay=decay)
    for _ in range(data.draw(st.integers(0, updates))):
        a, b = data.draw(st.integers(-1, vocab - 1)), data.draw(st.integers(0, vocab - 1))
        nxt = data.draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=3))
        weights = [data.draw(st.floats(0.05, 1.0)) for _ in nxt]
        table.update(a, b, nxt, weights, mass=sum(weights) + data.draw(st.floats(0, 1)))
    return table


# ---------------------------------------------------------------------- the table


@settings(max_examples=60, deadline=None)
@given(tokens=st.lists(st.integers(0, 5), max_size=40))
def test_recorded_text_gives_the_naive_trigram_and_bigram_counts(tokens):
    table = TrigramTable(top_k=6, decay=1.0)
    table.record(tokens)
    trigrams = Counter(zip(tokens, tokens[1:], tokens[2:]))
    bigrams = Counter(zip(tokens, tokens[1:]))
    for (a, b), _ in Counter(zip(tokens, tokens[1:])).items():
        expected = {c: float(n) for (x, y, c), n in trigrams.items() if (x, y) == (a, b)}
        if expected:
            assert table.weights(a, b) == expected
            total = sum(expected.values())
            assert table.total(a, b) == total
            ranked = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))
            assert table.ranked(a, b) == tuple((c, n / total) for c, n in ranked)
        assert table.weights(-1, a) == {c: float(n) for (x, c), n in bigrams.items() if x == a}
    assert len(table.trigrams) == len({(a, b) for a, b, _ in trigrams})
    assert len(table.bigrams) == len({a for a, _ in bigrams})


@settings(max_examples=60, deadline=None)
@given(decay=st.sampled_from([1.0, 0.5, 0.25]), events=st.lists(
    st.tuples(st.lists(st.integers(0, 4), min_size=1, max_size=3), DYADIC), min_size=1,
    max_size=8))
def test_decay_matches_the_closed_form(decay, events):
    """Weight of a token after n updates: sum over updates j of decay ** (n - 1 - j) * x_j."""
    table = TrigramTable(top_k=5, decay=decay)
    for tokens, weight in events:
        table.update(7, 8, tokens, [weight] * len(tokens), mass=weight * len(tokens) + 1.0)
    n = len(events)
    expected: dict[int, float] = {}
    for j, (tokens, weight) in enumerate(events):
        for token in tokens:
            expected[token] = expected.get(token, 0.0) + weight * decay ** (n - 1 - j)
    assert table.weights(7, 8) == pytest.approx(expected)
    masses = [weight * len(tokens) + 1.0 for tokens, weight in events]
    assert table.total(7, 8) == pytest.approx(sum(m * decay ** (n - 1 - j)
                                                  for j, m in enumerate(masses)))
    assert table.weights(-1, 8) == pytest.approx(expected)   # the bigram saw the same evidence
    assert sum(q for _, q in table.ranked(7, 8)) <= 1.0 + 1e-12


def test_recent_evidence_overtakes_old_evidence_only_with_decay():
    for decay, winner in ((1.0, 1), (0.5, 2)):
        table = TrigramTable(decay=decay)
        for token in (1, 1, 1, 2, 2):
            table.update(0, 0, [token], [1.0])
        assert table.ranked(0, 0)[0][0] == winner


@settings(max_examples=80, deadline=None)
@given(top_k=st.integers(1, 3), decay=st.sampled_from([1.0, 0.5]), events=st.lists(
    st.lists(st.tuples(st.integers(0, 6), DYADIC), min_size=1, max_size=4), max_size=10))
def test_pruning_matches_a_naive_online_reference(top_k, decay, events):
    table = TrigramTable(top_k=top_k, decay=decay)
    kept: list[tuple[int, float]] = []  # the reference: a plain list of (token, weight)
    for event in events:
        kept = [(t, w * decay) for t, w in kept]
        for token, weight in event:
            found = [i for i, (t, _) in enumerate(kept) if t == token]
            if found:
                kept[found[0]] = (token, kept[found[0]][1] + weight)
            else:
                kept.append((token, weight))
        kept = sorted(kept, key=lambda tw: (-tw[1], tw[0]))[:top_k]
        tokens, weights = zip(*event)
        table.update(3, 4, tokens, weights)
    assert table.weights(3, 4) == dict(kept)


def test_contexts_beyond_the_cap_drop_the_least_recently_updated():
    table = TrigramTable(max_contexts=2)
    table.update(1, 1, [5], [1.0])
    table.update(2, 2, [5], [1.0])
    table.update(1, 1, [6], [1.0])          # (1, 1) is now the most recent
    table.update(3, 3, [5], [1.0])          # evicts (2, 2)
    assert set(table.trigrams) == {(1, 1), (3, 3)} and len(table.bigrams) == 2
    assert table.ranked(2, 2) == ()         # the bigram 2 went too


# ---------------------------------------------------------------------- learning from passes


@settings(max_examples=60, deadline=None)
@given(data=st.data(), vocab=st.integers(3, 8), commit_weight=st.sampled_from([0.0, 1.0, 0.5]))
def test_observe_adds_the_targets_top_k_and_the_committed_tokens(data, vocab, commit_weight):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    tree = DraftTree()
    for token in data.draw(st.lists(st.integers(0, vocab - 1), max_size=7)):
        tree.add(data.draw(st.integers(-1, len(tree) - 1)), token)
    before, root = data.draw(st.integers(0, vocab - 1)), data.draw(st.integers(0, vocab - 1))
    path = tuple(tree.path_to(len(tree) - 1)) if len(tree) else ()
    committed = tuple(tree.tokens[i] for i in path) + (data.draw(st.integers(0, vocab - 1)),)
    state = DecodeState(None, [9 % vocab, before, root, *committed], prompt_length=3,
                        max_new_tokens=50, accepted_per_step=[len(committed)])
    scores = rng.normal(size=(len(tree) + 1, vocab)) * 3
    drafter = AdedDrafter(top_k=vocab, decay=1.0, commit_weight=commit_weight)
    drafter.observe(state, Verification(root, tree, scores, Acceptance(path, committed)))
    # Brute force: every scored row's softmax, plus the committed token, summed per context.
    probs = np.exp(scores - scores.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    scored = [root, *tree.tokens]
    context = [before, *(scored[p + 1] for p in tree.parents)]
    next_of_row = dict(zip([0, *(i + 1 for i in path)], committed))
    expected: dict[tuple[int, int], Counter] = {}
    totals: Counter = Counter()
    for row in range(len(scored)):
        key = (context[row], scored[row])
        weights = expected.setdefault(key, Counter())
        for token in range(vocab):
            weights[token] += float(probs[row, token])
        totals[key] += 1.0
        if row in next_of_row and commit_weight:
            weights[next_of_row[row]] += commit_weight
            totals[key] += commit_weight
    for key, weights in expected.items():
        assert drafter.table.weights(*key) == pytest.approx(dict(weights), rel=1e-5)
        assert drafter.table.total(*key) == pytest.approx(totals[key])
    assert len(drafter.table.trigrams) == len(expected)


def test_observe_before_the_commit_reads_the_context_from_the_state_end():
    drafter = AdedDrafter(top_k=1, commit_weight=0.0)
    scores = np.eye(5)[[3]] * 9
    drafter.observe(_state([1, 2]), Verification(2, DraftTree(), scores))
    assert drafter.candidates(1, 2)[0][0] == 3
    lone = AdedDrafter(top_k=1)              # a root with no token before it: bigram only
    lone.observe(_state([2]), Verification(2, DraftTree(), scores))
    assert not lone.table.trigrams and lone.candidates(-1, 2)[0][0] == 3


# ---------------------------------------------------------------------- the search


def _chains(table, previous, root, depth_limit, branching):
    """Brute force: every chain the table allows below ``root``, with its gain."""
    out = []

    def walk(before, token, depth, prefix, gain, tokens):
        if tokens:
            out.append((gain, tokens))
        if depth == depth_limit:
            return
        for nxt, q in table.ranked(before, token)[:branching]:
            walk(token, nxt, depth + 1, prefix * q, gain + prefix * q, tokens + [nxt])

    walk(previous, root, 0, 1.0, 0.0, [])
    return out


def _gain(table, previous, root, tokens):
    prefix, gain = 1.0, 0.0
    before, token = previous, root
    for nxt in tokens:
        prefix *= dict(table.ranked(before, token))[nxt]
        gain += prefix
        before, token = token, nxt
    return gain


@settings(max_examples=80, deadline=None)
@given(data=st.data(), vocab=st.integers(2, 4), top_k=st.integers(1, 3),
       depth_limit=st.integers(1, 4))
def test_without_exploration_the_search_finds_the_best_chain(data, vocab, top_k, depth_limit):
    table = _random_table(data, vocab, top_k, updates=16)
    previous, root = data.draw(st.integers(-1, vocab - 1)), data.draw(st.integers(0, vocab - 1))
    found = search_draft(table, previous, root, depth_limit, simulations=5000,
                         exploration=0.0, branching=top_k)
    chains = _chains(table, previous, root, depth_limit, top_k)
    best = max((gain for gain, _ in chains), default=0.0)
    assert found.simulations < 5000                  # it proved its answer and stopped
    path = found.best_path()
    assert _gain(table, previous, root, path) == pytest.approx(best, rel=1e-9)
    assert found.values[0] == pytest.approx(best, rel=1e-9)
    if chains:
        assert path in [tokens for _, tokens in chains]
    # The draft, big enough to hold every visited node, holds that chain.
    visited = sum(1 for v in found.visits[1:] if v)
    drafted = found.draft(visited)
    assert not path or path in [[drafted.tokens[i] for i in drafted.path_to(n)]
                                for n in range(len(drafted))]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), vocab=st.integers(2, 4), top_k=st.integers(1, 3),
       depth_limit=st.integers(1, 4), sims=st.integers(1, 40),
       exploration=st.sampled_from([0.0, 0.3, 2.0]))
def test_search_statistics_are_consistent_and_values_are_upper_bounds(
        data, vocab, top_k, depth_limit, sims, exploration):
    table = _random_table(data, vocab, top_k)
    previous, root = data.draw(st.integers(-1, vocab - 1)), data.draw(st.integers(0, vocab - 1))
    found = search_draft(table, previous, root, depth_limit, sims, exploration, top_k)
    assert found.visits[0] == found.simulations <= sims
    for node, kids in enumerate(found.children):
        if kids:
            assert found.visits[node] >= sum(found.visits[k] for k in kids)
            assert found.values[node] == max(found.values[k] for k in kids)
    for node in range(1, len(found.tokens)):
        tokens = [found.tokens[i] for i in _path_to(found, node)]
        below = [g for g, t in _chains(table, previous, root, depth_limit, top_k)
                 if t[: len(tokens)] == tokens]
        assert found.values[node] >= max(below) - 1e-12     # admissible: never underestimates
        assert found.depths[node] == len(tokens) <= depth_limit


def _path_to(found, node):
    path = []
    while node > 0:
        path.append(node)
        node = found.parents[node]
    return path[::-1]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), max_nodes=st.integers(0, 12), max_depth=st.integers(1, 5),
       max_new_tokens=st.integers(1, 6), exploration=st.sampled_from([0.0, 0.5]))
def test_drafts_respect_the_node_and_depth_budgets(data, max_nodes, max_depth, max_new_tokens,
                                                   exploration):
    text = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=30))
    drafter = AdedDrafter(max_nodes=max_nodes, max_depth=max_depth, exploration=exploration,
                          simulations=24)
    state = _state(text, max_new_tokens=max_new_tokens)
    drafter.start(state)
    tree = drafter(state)
    assert len(tree) <= max_nodes
    assert tree.depth() <= min(max_depth, state.draft_budget)
    # Each node's prob is the table's probability of its token after its two predecessors.
    for node in range(len(tree)):
        tokens = text + [tree.tokens[i] for i in tree.path_to(node)]
        before = tokens[-3] if len(tokens) >= 3 else -1
        assert tree.probs[node] == dict(drafter.table.ranked(before, tokens[-2]))[tokens[-1]]


def test_an_empty_table_or_budget_drafts_nothing():
    assert len(AdedDrafter()(_state([1, 2]))) == 0
    drafter = AdedDrafter()
    drafter.start(_state([1, 2, 1, 2]))
    assert len(drafter(_state([1, 2, 1, 2], max_new_tokens=1))) == 0   # only the bonus is left
    assert len(AdedDrafter(max_nodes=0)(_state([1, 2, 1, 2]))) == 0


# ---------------------------------------------------------------------- state and persistence


def _pass(drafter, tokens, vocab=12, seed=0):
    """One pass on the drafter's own draft with random scores; returns the committed state."""
    state = _state(tokens)
    tree = drafter(state)
    scores = np.random.default_rng(seed).normal(size=(len(tree) + 1, vocab))
    committed = (int(scores[0].argmax()),)
    state.tokens.extend(committed)
    state.accepted_per_step.append(1)
    drafter.observe(state, Verification(tokens[-1], tree, scores, Acceptance((), committed)))
    return state


def _snapshot(drafter):
    return {k: v.tolist() for k, v in drafter.table.to_arrays().items()}


def test_frozen_drafters_change_nothing():
    drafter = AdedDrafter()
    drafter.start(_state([1, 2, 3, 1, 2]))
    frozen = AdedDrafter(frozen=True)
    frozen.table.load_arrays(drafter.table.to_arrays())
    before = _snapshot(frozen)
    frozen.start(_state([4, 5, 6, 4, 5]))
    _pass(frozen, [1, 2, 3, 1, 2])
    assert _snapshot(frozen) == before and not frozen.learns() and drafter.learns()


def test_reset_and_hot_and_cold_starts():
    for hot in (True, False):
        drafter = AdedDrafter(hot_start=hot)
        drafter.start(_state([1, 2, 3]))
        _pass(drafter, [1, 2, 3])
        drafter.start(_state([7, 8, 9]))           # the second generation
        assert drafter.candidates(7, 8) == [(9, 1.0)]
        assert bool(drafter.table.weights(1, 2)) == hot
        assert bool(drafter.table.weights(2, 3)) == hot   # learnt from the first pass
    drafter.reset()
    assert len(drafter.table) == 0 and drafter.memory_bytes() == 0


def test_save_and_load_give_identical_drafts(tmp_path):
    drafter = AdedDrafter(top_k=4, max_nodes=10, max_depth=4)
    text = [1, 2, 3, 4, 1, 2, 3, 5, 1, 2, 6, 4]
    drafter.start(_state(text))
    for seed in range(5):
        text = _pass(drafter, text, seed=seed).tokens
    drafter.save(tmp_path / "aded.npz")
    again = AdedDrafter(top_k=4, max_nodes=10, max_depth=4)
    again.load(tmp_path / "aded.npz")
    assert _snapshot(again) == _snapshot(drafter)
    assert again.memory_bytes() == drafter.memory_bytes() > 0
    for tokens in ([1, 2], [3, 1, 2], [2, 3], [9, 4], text):
        ours, theirs = drafter(_state(tokens)), again(_state(tokens))
        assert (ours.tokens, ours.parents, ours.probs) == (theirs.tokens, theirs.parents,
                                                           theirs.probs)
        assert len(ours) or tokens == [9, 4]


def test_mismatched_files_are_clear_errors(tmp_path):
    AdedDrafter(top_k=4).save(tmp_path / "k4.npz")
    with pytest.raises(ValueError, match="top_k=4, not top_k=12"):
        AdedDrafter().load(tmp_path / "k4.npz")
    np.savez(tmp_path / "other.npz", matrix=np.zeros(3))
    with pytest.raises(ValueError, match="not an ADED table file"):
        AdedDrafter().load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="no array"):
        TrigramTable().load_arrays({})


@pytest.mark.parametrize("kwargs, message", [
    ({"top_k": 0}, "top_k"), ({"decay": 0.0}, "decay"), ({"decay": 1.5}, "decay"),
    ({"simulations": 0}, "simulations"), ({"exploration": -1.0}, "exploration"),
    ({"exploration": float("nan")}, "exploration"), ({"max_nodes": -1}, "max_nodes"),
    ({"max_depth": 0}, "max_depth"), ({"branching": 0}, "branching"),
    ({"commit_weight": -0.5}, "commit_weight"), ({"max_contexts": 0}, "max_contexts"),
    ({"simulations": 2.5}, "simulations"), ({"top_k": True}, "top_k"),
])
def test_bad_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdedDrafter(**kwargs)


# ---------------------------------------------------------------------- end to end


def test_decoding_matches_greedy_and_accepts_more_than_one_token_per_step(model_factory):
    from conftest import greedy_step

    from diagrammar.diagrams import autoregressive
    from diagrammar.functors import Execute
    from diagrammar.models import HFCausalLM

    lm = HFCausalLM(model_factory("gpt2", 0))
    drafter = AdedDrafter(max_nodes=12, max_depth=5)
    step, start = greedy_step(drafter)

    greedy = Execute(lm)(autoregressive())
    for prompt in ([5, 6, 7, 8] * 6, [9, 10, 11, 12, 13] * 4):
        result = decode(step, lm, prompt, 48, start=start)
        assert result.tokens == greedy.generate(prompt, 48).tokens
        steps = result.stats.accepted_per_step
        assert sum(steps) / len(steps) > 1.0
    assert len(drafter.table) > 0


def test_a_sixteen_node_draft_is_cheap():
    """A smoke bound (not a benchmark): a 16-node draft from a learnt table stays cheap."""
    drafter = AdedDrafter(max_nodes=16, max_depth=6)
    text = [int(t) for t in np.random.default_rng(0).integers(0, 8, 400)]
    drafter.start(_state(text))
    state = _state(text[:40])
    started = time.perf_counter()
    for _ in range(20):
        assert len(drafter(state)) == 16
    assert (time.perf_counter() - started) / 20 < 0.05


@settings(max_examples=40, deadline=None)
@given(tokens=st.lists(st.integers(-1, 6), max_size=60), top_k=st.integers(1, 4))
def test_corpus_arrays_count_like_a_naive_reference(tokens, top_k):
    from collections import Counter

    from diagrammar.decoding.drafters.aded import corpus_arrays

    table = TrigramTable(top_k=top_k)
    table.load_arrays(corpus_arrays(np.array(tokens, dtype=np.int64), top_k,
                                    pseudo_counts=1e9))
    trigrams = Counter(zip(tokens, tokens[1:], tokens[2:]))
    contexts = Counter()
    for (a, b, c), n in trigrams.items():
        if min(a, b, c) >= 0:
            contexts[(a, b)] += n
    for (a, b), total in contexts.items():
        assert table.total(a, b) == total
        following = sorted(((-n, c) for (x, y, c), n in trigrams.items()
                            if (x, y) == (a, b) and c >= 0))[:top_k]
        assert table.weights(a, b) == {c: float(-n) for n, c in following}
    assert len(table.trigrams) == len(contexts)


def test_a_corpus_seed_keeps_the_most_frequent_contexts_and_survives_reset():
    from diagrammar.decoding.drafters.aded import corpus_arrays

    tokens = np.array([1, 2, 3] * 5 + [-1] + [4, 5, 6] * 2 + [-1, 7, 8, 9])
    arrays = corpus_arrays(tokens, top_k=2, max_contexts=2, pseudo_counts=2.0)
    table = TrigramTable(top_k=2)
    table.load_arrays(arrays)
    # The two most frequent contexts: (1, 2) seen 5 times, then (2, 3) or (3, 1), 4 times.
    assert (1, 2) in table.trigrams and len(table.trigrams) == 2
    assert not {(4, 5), (5, 6), (7, 8)} & set(table.trigrams)
    assert table.total(1, 2) == 2.0 and table.ranked(1, 2) == ((3, 1.0),)
    drafter = AdedDrafter(top_k=2, max_contexts=2)
    drafter.seed(tokens)
    drafter.table.record([1, 2, 4, 1, 2, 4])
    assert drafter.candidates(1, 2)[0][0] == 4          # learning moves it on
    drafter.reset()
    assert drafter.candidates(1, 2) == [(3, 1.0)]        # back to the corpus seed
