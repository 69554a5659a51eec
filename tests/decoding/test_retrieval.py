"""Retrieval drafting (REST) and RASD fusion against brute-force references: suffix lookup,
longest suffix match, trie counts, frequent-node selection, persistence and caching, tree
pruning and fusion; and end to end, lossless decoding with a tiny GPT-2."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.drafters import retrieval
from diagrammar.decoding.drafters.retrieval import (
    SEPARATOR,
    Datastore,
    DatastoreError,
    RasdDrafter,
    RetrievalDrafter,
    fuse_trees,
    prefix_counts,
    prune_by_first_tokens,
    select_frequent,
)
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.tree import DraftTree

documents_strategy = st.lists(st.lists(st.integers(0, 3), max_size=12), min_size=1,
                              max_size=4).filter(lambda docs: any(docs))


def _state(tokens, max_new_tokens=64):
    return DecodeState(None, list(tokens), prompt_length=len(tokens),
                       max_new_tokens=max_new_tokens)


def _occurrences(tokens, pattern):
    """Brute force: every position where ``pattern`` starts."""
    tokens, m = list(tokens), len(pattern)
    return [i for i in range(len(tokens) - m + 1) if tokens[i:i + m] == list(pattern)]


def _node_paths(tree):
    return {tuple(tree.tokens[i] for i in tree.path_to(node)) for node in range(len(tree))}


@settings(max_examples=80, deadline=None)
@given(documents=documents_strategy, pattern=st.lists(st.integers(0, 3), min_size=1,
                                                       max_size=4))
def test_suffix_lookup_finds_every_occurrence(documents, pattern):
    store = Datastore.from_token_lists(documents)
    tokens = store.tokens.tolist()
    # The library's index is the suffix array (shorter suffix first on a shared prefix).
    assert store.suffix_array.tolist() == sorted(range(len(tokens)), key=lambda i: tokens[i:])
    assert sorted(store.find(pattern).tolist()) == _occurrences(tokens, pattern)
    assert len(store) == sum(map(len, documents))
    assert store.documents == sum(1 for d in documents if d)


@settings(max_examples=60, deadline=None)
@given(documents=documents_strategy,
       context=st.lists(st.integers(0, 4), min_size=1, max_size=8),
       max_suffix=st.integers(1, 6), min_suffix=st.integers(1, 3))
def test_longest_suffix_match_is_the_longest_occurring_suffix(documents, context, max_suffix,
                                                             min_suffix):
    store = Datastore.from_token_lists(documents)
    match = store.longest_suffix_match(context, max_suffix, min_suffix)
    tokens = store.tokens.tolist()
    lengths = [n for n in range(min_suffix, min(max_suffix, len(context)) + 1)
               if _occurrences(tokens, context[-n:])]
    if not lengths:
        assert match is None
    else:
        assert match.length == max(lengths)
        assert match.count == len(_occurrences(tokens, context[-match.length:]))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.integers(-1, 3), min_size=3, max_size=3), max_size=12))
def test_prefix_counts_count_every_prefix(rows):
    array = np.array(rows, dtype=np.int32).reshape(len(rows), 3)
    expected = Counter()
    for row in rows:
        cut = row[:row.index(-1)] if -1 in row else row
        for depth in range(1, len(cut) + 1):
            expected[tuple(cut[:depth])] += 1
    assert prefix_counts(array) == dict(expected)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.integers(0, 2), min_size=3, max_size=3), min_size=1,
                     max_size=12), max_nodes=st.integers(0, 12))
def test_selection_keeps_parents_and_the_most_frequent_paths(rows, max_nodes):
    counts = prefix_counts(np.array(rows, dtype=np.int32))
    chosen = select_frequent(counts, max_nodes)
    assert len(chosen) == min(max_nodes, len(counts)) == len(set(chosen))
    for position, path in enumerate(chosen):
        assert len(path) == 1 or path[:-1] in chosen[:position]     # parents come first
    if chosen:
        floor = min(counts[p] for p in chosen)
        assert all(counts[p] <= floor for p in counts if p not in chosen)
    assert select_frequent(counts, max_nodes) == chosen               # deterministic


@settings(max_examples=60, deadline=None)
@given(documents=documents_strategy,
       context=st.lists(st.integers(0, 3), min_size=1, max_size=6),
       max_nodes=st.integers(1, 10), max_depth=st.integers(1, 4), left=st.integers(1, 6))
def test_retrieval_tree_is_the_frequent_continuations_within_bounds(documents, context,
                                                                   max_nodes, max_depth, left):
    store = Datastore.from_token_lists(documents)
    drafter = RetrievalDrafter(store, max_suffix=4, max_matches=10_000, max_nodes=max_nodes,
                               max_depth=max_depth)
    state = _state(context, max_new_tokens=left)
    tree = drafter(state)
    depth = min(max_depth, state.draft_budget)
    assert len(tree) <= max_nodes and tree.depth() <= depth
    match = store.longest_suffix_match(context, 4, 1)
    if match is None or depth == 0:
        assert len(tree) == 0
        return
    # Brute force: the continuations of every occurrence, counted path by path.
    tokens = store.tokens.tolist()
    counts = Counter()
    starts = _occurrences(tokens, context[-match.length:])
    for start in starts:
        follow = []
        for token in tokens[start + match.length:start + match.length + depth]:
            if token == SEPARATOR:
                break
            follow.append(token)
            counts[tuple(follow)] += 1
    for node in range(len(tree)):
        path = tuple(tree.tokens[i] for i in tree.path_to(node))
        assert tree.probs[node] == pytest.approx(counts[path] / len(starts))
    assert len(tree) == min(max_nodes, len(counts))
    assert drafter(state).tokens == tree.tokens                    # deterministic


def test_many_matches_are_sampled_across_the_range():
    store = Datastore.from_token_lists([[5, 1]] * 30 + [[5, 2]] * 10)
    tree = RetrievalDrafter(store, max_matches=8)(_state([5]))
    assert tree.tokens == [1, 2]
    assert tree.probs == pytest.approx([6 / 8, 2 / 8])


def test_save_and_load_round_trip_with_memmaps(tmp_path):
    rng = np.random.default_rng(0)
    documents = [rng.integers(0, 20, 50).tolist() for _ in range(5)]
    store = Datastore.from_token_lists(documents)
    store.save(tmp_path / "store")
    loaded = Datastore.load(tmp_path / "store")
    assert isinstance(loaded.tokens, np.memmap) and isinstance(loaded.suffix_array, np.memmap)
    assert loaded.tokens.tolist() == store.tokens.tolist()
    assert loaded.memory_bytes == store.memory_bytes and len(loaded) == len(store) == 250
    for doc in documents:
        for cut in (3, 17, 40):
            state = _state(doc[:cut], max_new_tokens=8)
            a = RetrievalDrafter(store, max_nodes=6)(state)
            b = RetrievalDrafter(loaded, max_nodes=6)(state)
            assert (a.tokens, a.parents, a.probs) == (b.tokens, b.parents, b.probs)
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["tokens"] == 255


def test_cache_builds_once_then_loads_memory_mapped(tmp_path, monkeypatch):
    builds = []
    original = retrieval.divsufsort
    monkeypatch.setattr(retrieval, "divsufsort", lambda a: builds.append(1) or original(a))
    encoded = []

    def encode(text):
        encoded.append(text)
        return [int(word) for word in text.split()]

    texts = ["1 2 3 4", "2 3 5"]
    first = Datastore.cached(texts, tmp_path, encode=encode, tokenizer="words-v1")
    again = Datastore.cached(texts, tmp_path, encode=encode, tokenizer="words-v1")
    assert len(builds) == 1 and len(encoded) == 2
    assert isinstance(again.tokens, np.memmap)
    assert again.tokens.tolist() == first.tokens.tolist()
    # Another tokenizer identity or other content is another entry.
    Datastore.cached(texts, tmp_path, encode=encode, tokenizer="words-v2")
    Datastore.cached([[1, 2, 3, 4]], tmp_path)
    assert len(builds) == 3 and len(list(tmp_path.iterdir())) == 3
    with pytest.raises(TypeError, match="encode"):
        Datastore.cached(["9 9"], tmp_path)


def test_datastore_errors_are_clear(tmp_path):
    with pytest.raises(DatastoreError, match="empty"):
        Datastore.from_token_lists([[], []])
    with pytest.raises(DatastoreError, match="integer"):
        Datastore.from_token_lists([[1.5, 2.0]])
    with pytest.raises(DatastoreError, match="outside"):
        Datastore.from_token_lists([[1, -2]])
    with pytest.raises(DatastoreError, match="int32"):
        Datastore(np.arange(3, dtype=np.int64), np.arange(3), documents=1)
    with pytest.raises(DatastoreError, match="entries"):
        Datastore(np.arange(3, dtype=np.int32), np.arange(2), documents=1)
    with pytest.raises(TypeError, match="one string"):
        Datastore.from_texts("1 2", str.split)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        Datastore.from_files([tmp_path / "missing.txt"], str.split)
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(DatastoreError, match="not UTF-8"):
        Datastore.from_files([tmp_path / "bad.txt"], str.split)
    with pytest.raises(DatastoreError, match="no saved datastore"):
        Datastore.load(tmp_path)
    folder = Datastore.from_token_lists([[1, 2, 3]]).save(tmp_path / "s")
    manifest = json.loads((folder / "manifest.json").read_text())
    for change, message in (({"format_version": 99}, "format version"),
                            ({"tokens": 7}, "does not match its manifest"),
                            ({"digest": "0" * 64}, "digest")):
        (folder / "manifest.json").write_text(json.dumps({**manifest, **change}))
        with pytest.raises(DatastoreError, match=message):
            Datastore.load(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(DatastoreError, match="cannot read"):
        Datastore.load(folder)
    with pytest.raises(ValueError, match="min_suffix"):
        RetrievalDrafter(Datastore.from_token_lists([[1]]), max_suffix=2, min_suffix=3)
    with pytest.raises(ValueError, match="max_nodes"):
        RetrievalDrafter(Datastore.from_token_lists([[1]]), max_nodes=0)
    with pytest.raises(TypeError, match="Datastore"):
        RetrievalDrafter([[1, 2]])


def test_files_build_the_same_store_as_texts(tmp_path):
    (tmp_path / "a.txt").write_text("1 2 3")
    (tmp_path / "b.txt").write_text("3 4")
    encode = lambda text: [int(w) for w in text.split()]  # noqa: E731
    files = Datastore.from_files([tmp_path / "a.txt", tmp_path / "b.txt"], encode)
    assert files.tokens.tolist() == Datastore.from_texts(["1 2 3", "3 4"], encode).tokens.tolist()


# -- RASD --------------------------------------------------------------------------------

paths_strategy = st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=4), max_size=6)


def _tree(paths, probs=None):
    tree = DraftTree()
    for path in paths:
        tree.add_path(path)
    if probs is not None:
        tree.probs = [probs(token) for token in tree.tokens]
    return tree


@settings(max_examples=80, deadline=None)
@given(drafted=paths_strategy, retrieved=paths_strategy, top_k=st.integers(1, 4),
       with_probs=st.booleans(), open_slots=st.booleans(), budget=st.integers(1, 30))
def test_fusion_holds_both_pruned_trees_and_merges_prefixes(drafted, retrieved, top_k,
                                                            with_probs, open_slots, budget):
    draft_tree = _tree(drafted, (lambda t: 0.5 / (t + 2)) if with_probs else None)
    retrieval_tree = _tree(retrieved)
    pruned = prune_by_first_tokens(retrieval_tree, draft_tree, top_k, open_slots=open_slots)
    # Brute force pruning: the retrieval paths that start with an allowed first token.
    first = [t for t, p in zip(draft_tree.tokens, draft_tree.parents) if p == -1]
    if with_probs:
        first = sorted(first)                       # the probability falls with the token
    allowed = first[:top_k]
    retrieved_first = [t for t, p in zip(retrieval_tree.tokens, retrieval_tree.parents)
                       if p == -1]
    if open_slots:
        allowed += [t for t in retrieved_first if t not in allowed][:top_k - len(allowed)]
    if not first:
        allowed = retrieved_first
    assert _node_paths(pruned) == {p for p in _node_paths(retrieval_tree) if p[0] in allowed}
    wanted = _node_paths(draft_tree) | _node_paths(pruned)
    fused = fuse_trees(draft_tree, pruned, max_nodes=budget)
    assert len(fused) <= budget
    if budget >= len(wanted):
        # Every path of each input is a path of the fused tree, and nothing else is: shared
        # prefixes are one node.
        assert _node_paths(fused) == wanted and len(fused) == len(wanted)
    else:
        # The drafter's nodes come first; what else fits comes from the retrieval tree.
        assert _node_paths(fused) <= wanted
        assert _node_paths(draft_tree) & _node_paths(fused) == {
            tuple(draft_tree.tokens[i] for i in draft_tree.path_to(n))
            for n in range(min(budget, len(draft_tree)))}


def test_pruning_uses_probabilities_and_the_threshold():
    drafted = DraftTree()
    for token, prob in ((4, 0.1), (5, 0.6), (6, 0.3)):
        drafted.add(-1, token, prob)
    retrieved = _tree([[4, 1], [5, 2], [6, 3]])
    assert prune_by_first_tokens(retrieved, drafted, top_k=2).paths() == [[5, 2], [6, 3]]
    assert prune_by_first_tokens(retrieved, drafted, top_k=3, min_prob=0.5).paths() == [[5, 2]]
    assert prune_by_first_tokens(retrieved, DraftTree(), top_k=1) is retrieved
    # A chain drafter shows one first token: retrieval fills the other slots, unless told not
    # to, or unless the mass the drafter left (here 0.2) is below the threshold.
    chain = DraftTree()
    chain.add(-1, 6, 0.8)
    assert prune_by_first_tokens(retrieved, chain, top_k=2).paths() == [[4, 1], [6, 3]]
    assert prune_by_first_tokens(retrieved, chain, top_k=2, open_slots=False).paths() == [[6, 3]]
    assert prune_by_first_tokens(retrieved, chain, top_k=2, min_prob=0.3).paths() == [[6, 3]]


class _Recording:
    def __init__(self, tree):
        self.tree, self.started, self.seen = tree, 0, []

    def start(self, state):
        self.started += 1

    def __call__(self, state):
        return self.tree

    def observe(self, state, verification):
        self.seen.append(verification)

    def learns(self):
        return True


def test_rasd_forwards_start_and_observe_and_respects_bounds():
    store = Datastore.from_token_lists([[1, 2, 3, 4, 5, 6], [1, 2, 7], [1, 8]])
    inner = _Recording(_tree([[2, 3], [9]]))
    rasd = RasdDrafter(RetrievalDrafter(store), inner, max_nodes=5, top_k=2)
    assert rasd.learns() and not RasdDrafter(RetrievalDrafter(store), lambda s: None).learns()
    state = _state([1])
    rasd.start(state)
    tree = rasd(state)
    assert inner.started == 1 and len(tree) == 5
    # 8 is pruned (the drafter never starts with it); the budget stops the rest at 5 nodes.
    assert sorted(tree.paths()) == [[2, 3, 4], [2, 7], [9]]
    assert rasd(_state([1], max_new_tokens=3)).depth() <= 2
    rasd.observe(state, "pass")
    assert inner.seen == ["pass"]
    unpruned = RasdDrafter(RetrievalDrafter(store), inner, max_nodes=20, prune=False)
    assert [8] in unpruned(state).paths()
    with pytest.raises(ValueError, match="min_prob"):
        RasdDrafter(RetrievalDrafter(store), inner, min_prob=2.0)
    with pytest.raises(TypeError, match="drafter"):
        RasdDrafter(RetrievalDrafter(store), 3)


# -- end to end ------------------------------------------------------------------------------


def _decode(lm, drafter, prompt, max_new_tokens):
    from conftest import greedy_step

    from diagrammar.decoding.loop import decode

    step, start = greedy_step(drafter)
    return decode(step, lm, prompt, max_new_tokens, start=start)


def _untied_gpt2(seed, vocab):
    """A tiny random GPT-2 with its own output layer (the tied one only repeats tokens)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from diagrammar.models import HFCausalLM

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_positions=128, n_embd=32, n_layer=2, n_head=4,
                        eos_token_id=3, bos_token_id=3, tie_word_embeddings=False)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(4.0)
    return HFCausalLM(model.double().eval())


def test_retrieval_decoding_is_lossless_and_accepts_retrieved_text():
    from diagrammar.decoding.drafters.draft_model import DraftModelDrafter
    from diagrammar.diagrams import autoregressive
    from diagrammar.functors import Execute

    vocab, new = 48, 24
    lm, weak = _untied_gpt2(0, vocab), _untied_gpt2(1, vocab)
    prompt = [5, 17, 9, 30, 12, 8]
    greedy = Execute(lm)(autoregressive()).generate(prompt, new).tokens
    assert len(set(greedy)) > new // 2                   # not a repetition of one token
    rng = np.random.default_rng(1)
    noise = [" ".join(map(str, rng.integers(4, vocab, 30))) for _ in range(3)]
    encode = lambda text: [int(word) for word in text.split()]  # noqa: E731
    # The datastore holds the model's own continuation, as text, among unrelated documents.
    store = Datastore.from_texts(noise + [" ".join(map(str, prompt + greedy))], encode)
    result = _decode(lm, RetrievalDrafter(store, max_nodes=8), prompt, new)
    assert result.tokens == greedy
    assert result.stats.mean_accepted > 1.5
    # A store of unrelated text still decodes exactly.
    unrelated = Datastore.from_texts(noise, encode)
    assert _decode(lm, RetrievalDrafter(unrelated), prompt, new).tokens == greedy
    # RASD with a weak draft model (another random model) is lossless too, and the retrieval
    # branches it fuses in are accepted where the draft model alone is not.
    alone = _decode(lm, DraftModelDrafter(weak, 2), prompt, new)
    rasd = RasdDrafter(RetrievalDrafter(store, max_nodes=8), DraftModelDrafter(weak, 2),
                       max_nodes=10)
    fused = _decode(lm, rasd, prompt, new)
    assert alone.tokens == fused.tokens == greedy
    assert fused.stats.mean_accepted > max(1.5, alone.stats.mean_accepted)
