"""Sliding-window attention under tree verification: windows far smaller than the text, so that
they matter, on models whose layers all slide (Mistral, Starcoder2) or mix sliding and full
layers (Qwen2 with ``max_window_layers``, Gemma2, Gemma3).

Three checks: every node's logits equal those of its path fed alone (1e-9 in float64, 1e-4 in
float32; Gemma2's eager attention takes its softmax in float32 even in a float64 model, so
1e-6 there), before and after rejected branches are dropped; decoding with partly rejected trees
writes exactly Hugging Face ``generate(do_sample=False)``'s tokens; and the drafting pipelines
do too.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.tree import DraftTree
from diagrammar.diagrams import PromptLookup, autoregressive, speculative
from diagrammar.functors import Execute
from diagrammar.models import HFCausalLM
from diagrammar.models.hf_session import GrowingLayer

VOCAB = 48
KINDS = ["mistral", "qwen2", "gemma2", "gemma3", "starcoder2"]
_MODELS: dict = {}


def make_sliding_model(kind: str, window: int, dtype: torch.dtype = torch.float64,
                       seed: int = 0) -> torch.nn.Module:
    """A tiny random causal LM whose attention slides over ``window`` positions."""
    import transformers as tf

    torch.manual_seed(seed)
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1,
                  eos_token_id=None, pad_token_id=0, sliding_window=window,
                  tie_word_embeddings=False)   # tied ones echo their last input token
    if kind == "mistral":
        model = tf.MistralForCausalLM(tf.MistralConfig(num_hidden_layers=2, **common))
    elif kind == "starcoder2":
        model = tf.Starcoder2ForCausalLM(tf.Starcoder2Config(num_hidden_layers=2, **common))
    elif kind == "qwen2":        # layer 0 full, layers 1 and 2 sliding
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(num_hidden_layers=3, use_sliding_window=True,
                                                   max_window_layers=1, **common))
    elif kind == "gemma2":       # sliding, full, sliding
        model = tf.Gemma2ForCausalLM(tf.Gemma2Config(num_hidden_layers=3, head_dim=8, **common))
    elif kind == "gemma3":
        model = tf.Gemma3ForCausalLM(tf.Gemma3TextConfig(
            num_hidden_layers=3, head_dim=8,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"], **common))
    else:
        raise ValueError(kind)
    # Sharpen the random model so that greedy decoding is not dominated by near-ties.
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(4.0)
    return model.to(dtype).eval()


def _lm(kind: str, window: int, dtype: torch.dtype = torch.float64) -> HFCausalLM:
    key = (kind, window, dtype)
    if key not in _MODELS:
        _MODELS[key] = HFCausalLM(make_sliding_model(kind, window, dtype))
    return _MODELS[key]


def _reference_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1]


def _generate(model, prompt: list[int], max_new_tokens: int) -> list[int]:
    return model.generate(torch.tensor([prompt]), do_sample=False,
                          max_new_tokens=max_new_tokens, pad_token_id=0)[0, len(prompt):].tolist()


def _random_tree(rng: random.Random, nodes: int) -> DraftTree:
    """Random trees, often deeper than small windows: half the nodes extend the last one."""
    tree = DraftTree()
    while len(tree) < nodes:
        parent = len(tree) - 1 if rng.random() < 0.5 else rng.randrange(-1, len(tree))
        tree.add(parent, rng.randrange(VOCAB))
    return tree


def _oracle_tree(rng: random.Random, truth: list[int], budget: int = 8) -> DraftTree:
    """Branches around the true continuation: some right, some corrupted, some random, some
    hung below other branches, so that steps accept part of a non-first branch."""
    tree = DraftTree()
    for _ in range(rng.randint(0, 4)):
        depth = rng.randint(1, budget)
        path = list(truth[:depth])
        kind = rng.random()
        if kind < 0.3 and path:
            path[rng.randrange(len(path))] = rng.randrange(VOCAB)
        elif kind < 0.45:
            path = [rng.randrange(VOCAB) for _ in range(depth)]
        parent = -1
        if tree.tokens and rng.random() < 0.3:
            parent = rng.randrange(len(tree))
            if len(tree.path_to(parent)) + len(path) > budget:
                parent = -1
        tree.add_path(path, parent=parent)
    return tree


def _tree_decode(lm: HFCausalLM, prompt: list[int], max_new_tokens: int, truth: list[int],
                 seed: int) -> tuple[list[int], list[DraftTree], list[list[int]]]:
    """Greedy tree decoding on the session alone: verify, walk the argmax, keep, repeat."""
    rng = random.Random(seed)
    session = lm.session(prompt)
    out: list[int] = []
    trees, paths = [], []
    root = prompt[-1]
    while len(out) < max_new_tokens:
        tree = _oracle_tree(rng, truth[len(out):])
        best = session.verify(root, tree.tokens, tree.parents).argmax(-1).tolist()
        path, node = [], -1
        while (child := tree.child(node, best[node + 1])) is not None:
            path.append(child)
            node = child
        session.keep(path)
        trees.append(tree)
        paths.append(path)
        root = best[node + 1]
        out += [tree.tokens[i] for i in path] + [root]
    return out[:max_new_tokens], trees, paths


@pytest.mark.parametrize("kind", KINDS)
def test_the_window_matters_in_these_tests(kind):
    """Guards the tests themselves: with the window lifted, HF writes other tokens."""
    prompt = list(range(4, 34))
    windowed = _generate(_lm(kind, 8).model, prompt, 20)
    lifted = make_sliding_model(kind, 10**6)
    assert _generate(lifted, prompt, 20) != windowed


@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(KINDS), window=st.sampled_from([2, 5, 8]),
       seed=st.integers(0, 10**6), prompt_length=st.integers(1, 30),
       nodes=st.lists(st.integers(0, 16), min_size=1, max_size=3))
def test_tree_logits_match_each_path(dtype, tolerance, kind, window, seed, prompt_length,
                                     nodes):
    """Per-node logits equal their path's alone, over several steps that keep a random path
    (often not the first branch), so that the committed text outgrows the window."""
    lm = _lm(kind, window, dtype)
    if kind == "gemma2" and dtype == torch.float64:
        tolerance = 1e-6       # its softmax runs in float32: sums of other lengths round apart
    rng = random.Random(seed)
    text = [rng.randrange(4, VOCAB) for _ in range(prompt_length)]
    session = lm.session(text)
    for size in nodes:
        tree = _random_tree(rng, size)
        scores = session.verify(text[-1], tree.tokens, tree.parents)
        assert scores.shape == (size + 1, VOCAB)
        torch.testing.assert_close(scores[0], _reference_logits(lm.model, text),
                                   atol=tolerance, rtol=0)
        for node in range(size):
            path = [tree.tokens[i] for i in tree.path_to(node)]
            torch.testing.assert_close(scores[node + 1],
                                       _reference_logits(lm.model, text + path),
                                       atol=tolerance, rtol=0)
        path = tree.path_to(rng.randrange(size)) if size else []
        session.keep(path)
        text += [tree.tokens[i] for i in path] + [rng.randrange(4, VOCAB)]
    assert session.cache_length == len(text) - 1


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), window=st.sampled_from([3, 8]),
       prompt=st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=30),
       seed=st.integers(0, 2**31))
def test_tree_decoding_writes_what_generate_writes(kind, window, prompt, seed):
    """40 new tokens (text far past the window), trees partly rejected: HF's very tokens."""
    lm = _lm(kind, window)
    expected = _generate(lm.model, prompt, 40)
    tokens, trees, paths = _tree_decode(lm, prompt, 40, expected, seed)
    assert tokens == expected


@pytest.mark.parametrize("kind", KINDS)
def test_tree_decoding_in_float32(kind):
    """Fixed seeds in float32: the same tokens as generate, through branching trees whose
    accepted path is often not the first branch."""
    lm = _lm(kind, 8, torch.float32)
    moved = 0
    for seed in range(3):
        prompt = [4 + (7 * i + seed) % (VOCAB - 4) for i in range(6 + 9 * seed)]
        expected = _generate(lm.model, prompt, 40)
        tokens, trees, paths = _tree_decode(lm, prompt, 40, expected, seed)
        assert tokens == expected
        moved += sum(path != list(range(len(path))) for path in paths)
    assert moved, "no step kept a path other than the first branch"


@pytest.mark.parametrize("kind", KINDS)
def test_drafting_pipelines_write_what_generate_writes(kind):
    """Prompt lookup with several branches (drafts rejected and partly accepted) and the plain
    greedy loop, through Execute, on a text three windows long."""
    lm = _lm(kind, 8)
    prompt = [5, 6, 7, 8, 9, 10] * 3 + [11, 12, 5, 6, 7]
    expected = _generate(lm.model, prompt, 40)
    execute = Execute(lm)
    assert execute(autoregressive()).generate(prompt, 40).tokens == expected
    for branches in (1, 3):
        result = execute(speculative(PromptLookup(branches=branches))).generate(prompt, 40)
        assert result.tokens == expected


def test_keep_and_truncate_copy_only_the_accepted_tail():
    """keep() writes the accepted path into the layers' buffers in place; truncate() moves an
    end marker: no layer reallocates, and the masks are put back after every verify."""
    lm = _lm("qwen2", 5)        # full and sliding layers: both masks
    prompt = list(range(4, 40))
    session = lm.session(prompt)
    layers = [layer for layer in session.cache.layers if isinstance(layer, GrowingLayer)]
    assert len(layers) == 3 and all(not layer.is_sliding for layer in layers)
    buffers = [(layer._keys.data_ptr(), layer._values.data_ptr()) for layer in layers]
    session.verify(prompt[-1], [7, 8, 9, 10, 11], [-1, 0, -1, 2, 3])
    for kind, buffer in session._masks.buffers.items():
        assert bool((buffer == (0 if kind == "full_attention" else torch.finfo(buffer.dtype).min)
                     ).all()), kind
    session.keep([2, 3, 4])
    assert [(layer._keys.data_ptr(), layer._values.data_ptr()) for layer in layers] == buffers
    assert all(layer.get_seq_length() == len(prompt) + 3 for layer in layers)
    scores = session.verify(12, [], [])
    torch.testing.assert_close(scores[0],
                               _reference_logits(lm.model, prompt + [9, 10, 11, 12]),
                               atol=1e-9, rtol=0)
    session.truncate(20)
    assert [(layer._keys.data_ptr(), layer._values.data_ptr()) for layer in layers] == buffers
    scores = session.verify(prompt[20], [5, 6], [-1, -1])
    torch.testing.assert_close(scores[2], _reference_logits(lm.model, prompt[:21] + [6]),
                               atol=1e-9, rtol=0)
