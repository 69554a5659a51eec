"""Tree verification: the logits at every node of a tree, scored in one pass over the cache,
equal those of running that node's root-to-node path on its own.

Tolerance: 1e-9 (absolute) in float64; 1e-4 in float32, where batching changes the order of
floating-point sums.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.tree import DraftTree
from diagrammar.models import ContextTooLongError, HFCausalLM, ModelLoadError, load_model

_MODELS: dict = {}


KINDS = ["gpt2", "gpt2-generic", "llama"]


def _lm(model_factory, kind, dtype=torch.float64):
    """gpt2 runs the lean GPT-2 session; gpt2-generic and llama the Hugging Face forward."""
    key = (kind, dtype)
    if key not in _MODELS:
        model = model_factory(kind.removesuffix("-generic"), 7, dtype=dtype)
        _MODELS[key] = HFCausalLM(model, fast=not kind.endswith("-generic"))
    return _MODELS[key]


def _random_tree(rng: random.Random, nodes: int, vocab: int) -> DraftTree:
    tree = DraftTree()
    while len(tree) < nodes:
        parent = rng.randrange(-1, len(tree))
        tree.add(parent, rng.randrange(vocab))
    return tree


def _reference_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1]


@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 10**6),
       prompt_length=st.integers(1, 30), nodes=st.integers(0, 24))
def test_tree_logits_match_each_path(model_factory, dtype, tolerance, kind, seed,
                                     prompt_length, nodes):
    lm = _lm(model_factory, kind, dtype)
    rng = random.Random(seed)
    prompt = [rng.randrange(4, lm.vocab_size) for _ in range(prompt_length)]
    tree = _random_tree(rng, nodes, lm.vocab_size)
    session = lm.session(prompt)
    scores = session.verify(prompt[-1], tree.tokens, tree.parents)
    assert scores.shape == (nodes + 1, lm.vocab_size)
    torch.testing.assert_close(scores[0], _reference_logits(lm.model, prompt),
                               atol=tolerance, rtol=0)
    for node in range(nodes):
        path = [tree.tokens[i] for i in tree.path_to(node)]
        torch.testing.assert_close(scores[node + 1], _reference_logits(lm.model, prompt + path),
                                   atol=tolerance, rtol=0)


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(KINDS), seed=st.integers(0, 10**6))
def test_keep_leaves_the_cache_of_the_accepted_path(model_factory, kind, seed):
    """After keep(path), scoring the next token equals a fresh run over prompt + path."""
    lm = _lm(model_factory, kind)
    rng = random.Random(seed)
    prompt = [rng.randrange(4, lm.vocab_size) for _ in range(rng.randint(1, 20))]
    tree = _random_tree(rng, rng.randint(1, 16), lm.vocab_size)
    session = lm.session(prompt)
    session.verify(prompt[-1], tree.tokens, tree.parents)
    leaf = rng.randrange(len(tree))
    path = tree.path_to(leaf)
    session.keep(path)
    assert session.cache_length == len(prompt) + len(path)
    accepted = [tree.tokens[i] for i in path]
    follow = rng.randrange(lm.vocab_size)
    scores = session.verify(follow, [], [])
    torch.testing.assert_close(scores[0],
                               _reference_logits(lm.model, prompt + accepted + [follow]),
                               atol=1e-9, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_truncate_rolls_back(model_factory, kind):
    lm = _lm(model_factory, kind)
    prompt = list(range(4, 20))
    session = lm.session(prompt)
    session.verify(prompt[-1], [5, 6, 7], [-1, 0, 1])
    session.keep([0, 1, 2])
    session.truncate(10)
    assert session.cache_length == 10
    scores = session.verify(prompt[10], [], [])
    torch.testing.assert_close(scores[0], _reference_logits(lm.model, prompt[:11]),
                               atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match="cannot roll back"):
        session.truncate(99)


@pytest.mark.parametrize("kind", KINDS)
def test_keep_requires_verify_and_parents_come_first(model_factory, kind):
    lm = _lm(model_factory, kind)
    session = lm.session([4, 5, 6])
    with pytest.raises(RuntimeError, match="must follow verify"):
        session.keep([])
    with pytest.raises(ValueError, match="parents must come before"):
        session.verify(6, [7, 8], [1, -1])


def test_context_too_long_is_a_clear_error(model_factory):
    lm = _lm(model_factory, "gpt2")
    with pytest.raises(ContextTooLongError, match="context holds 256"):
        lm.check_length(250, 10)
    with pytest.raises(ValueError, match="empty"):
        lm.check_length(0, 10)


def test_load_model_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelLoadError, match="is not a folder"):
        load_model(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot load the model"):
        load_model(broken)


def test_load_model_round_trip(saved_model_dir):
    lm = load_model(saved_model_dir)
    ids = lm.encode("def add(a, b):\n    return a + b\n")
    assert lm.decode(ids) == "def add(a, b):\n    return a + b\n"
    assert lm.eos_token_ids == {lm.tokenizer.eos_token_id}
    assert lm.max_positions == 128
    no_tokenizer = HFCausalLM(lm.model)
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        no_tokenizer.encode("x")


def test_lean_session_is_used_only_for_plain_gpt2(model_factory):
    from diagrammar.models.fast_gpt2 import FastGPT2Session, supports

    gpt2 = model_factory("gpt2", 1)
    assert supports(gpt2) and isinstance(HFCausalLM(gpt2).session([4, 5]), FastGPT2Session)
    assert not isinstance(HFCausalLM(gpt2, fast=False).session([4, 5]), FastGPT2Session)
    assert not supports(model_factory("llama", 1))
    gpt2.config.scale_attn_by_inverse_layer_idx = True
    assert not supports(gpt2)


def test_lean_session_grows_its_buffer(model_factory):
    lm = _lm(model_factory, "gpt2")
    prompt = list(range(4, 40))
    session = lm.session(prompt)
    capacity = session.capacity
    tokens = [5] * (capacity - len(prompt) + 3)
    scores = session.verify(prompt[-1], tokens, list(range(-1, len(tokens) - 1)))
    assert session.capacity > capacity
    torch.testing.assert_close(scores[-1], _reference_logits(lm.model, prompt + tokens),
                               atol=1e-9, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_synchronize_waits_for_the_sessions_device(model_factory, kind, monkeypatch):
    """On the CPU synchronize() does nothing; on CUDA it waits for the session's device."""
    lm = _lm(model_factory, kind)
    session = lm.session([4, 5, 6])
    session.verify(6, [7], [-1])
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", calls.append)
    session.synchronize()
    assert calls == []
    session.device = torch.device("cuda", 1)
    session.synchronize()
    assert calls == [torch.device("cuda", 1)]


def test_the_base_session_synchronizes_nothing():
    from diagrammar.models.session import CachedSession

    assert CachedSession(3).synchronize() is None


@pytest.mark.parametrize("kind", ["gpt2-generic", "llama"])
def test_keep_moves_only_the_accepted_path(model_factory, kind, monkeypatch):
    """keep() copies the path's entries (when it is not the first branch) into the layers'
    buffers in place, and nothing at all for the first branch: O(path), never O(context)."""
    from diagrammar.models.hf_session import GrowingLayer

    lm = _lm(model_factory, kind)
    moved = []
    move = GrowingLayer.move
    monkeypatch.setattr(GrowingLayer, "move", lambda layer, sources, destination: (
        moved.append((sources.tolist(), destination)), move(layer, sources, destination)))
    prompt = list(range(4, 44))
    session = lm.session(prompt)
    layers = session.cache.layers
    assert len(layers) == 2 and all(isinstance(layer, GrowingLayer) for layer in layers)
    buffers = [layer._keys.data_ptr() for layer in layers]
    session.verify(prompt[-1], [5, 6, 7, 8, 9], [-1, 0, -1, 2, 3])
    session.keep([0, 1])                                 # the first branch: nothing moves
    assert moved == []
    text = prompt + [5, 6, 7]
    session.verify(7, [5, 6, 7, 8, 9], [-1, 0, -1, 2, 3])
    session.keep([2, 3])                                 # another branch: its 2 entries move
    assert moved == [([43 + 2, 43 + 3], 43)] * 2      # one copy per layer, 2 positions
    assert [layer._keys.data_ptr() for layer in layers] == buffers
    text += [7, 8, 4]
    scores = session.verify(4, [], [])
    torch.testing.assert_close(scores[0], _reference_logits(lm.model, text), atol=1e-9, rtol=0)


def test_verify_reads_no_parameters_and_reuses_its_masks(model_factory, monkeypatch):
    """device and dtype are read once, when the session is made; the tree masks live in
    buffers that are sliced, not rebuilt, and are clean again after each verify."""
    lm = _lm(model_factory, "llama")
    prompt = list(range(4, 30))
    session = lm.session(prompt)
    assert (session.device, session.dtype) == (torch.device("cpu"), torch.float64)

    def no_parameters(*args, **kwargs):
        raise AssertionError("verify() walked the model's parameters")

    monkeypatch.setattr(type(lm.model), "parameters", no_parameters)
    session.verify(prompt[-1], [5, 6, 7], [-1, -1, 1])
    (mask,) = session._masks.buffers.values()
    pointer = mask.data_ptr()
    for _ in range(6):
        session.keep([0])
        session.verify(5, [6, 7, 8], [-1, -1, 1])
        assert session._masks.buffers["full_attention"].data_ptr() == pointer
        assert not session._masks.buffers["full_attention"].any()
