"""The JAX session's attention implementations: ``"pallas"`` (the tree-attention kernel, here
in Pallas' interpreter) against ``"xla"`` (the einsum over the cache).

Random float32 GPT-2 and Llama folders (Llama with grouped KV heads: 4 query heads over 2) are
saved with ``save_pretrained`` and loaded twice, once per attention. Scores agree within
:data:`TOLERANCE` (absolute: the two sum the same products in a different order, so float32
rounding differs) tree after tree, through ``keep``, ``truncate``,
a prefill of more than 64 rows (which the kernel leaves to the einsum), a tree of 63 draft
nodes (the kernel's largest block) and a cache of 256 positions; greedy decoding with the
autoregressive, prompt-lookup and Token Recycling pipelines writes the same tokens. The kernel
itself is checked against the JAX reference for 1 and 2 key/value heads under 4 query heads.

Compiles dominate the time (a pass compiles once per shape and attention, the interpreted
kernel in about twice the einsum's time), so both tests use one prompt length (one cache
capacity) and the score test's tree sizes cover the decoding passes' shapes.
"""

from __future__ import annotations

import inspect
import random
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from diagrammar.decoding.tree import DraftTree
from diagrammar.diagrams import PIPELINES, PromptLookup, TokenRecycling, speculative
from diagrammar.functors import Execute
from diagrammar.kernels.jax_reference import (
    ancestor_word_pairs,
    mask_word_pairs,
    pair_bits,
    tree_attention_jax_reference,
)
from diagrammar.kernels.pallas_tree import tree_attention_pallas
from diagrammar.models.jax import JaxCausalLM, transformer
from diagrammar.models.jax.model import ATTENTION_VARIABLE

VOCAB = 48
EOS = 3
#: pallas vs xla, float32 scores (logits of a few units), absolute: differences of ~3e-7 are
#: seen here (6e-6 on the default tiny model, whose logits reach 11).
TOLERANCE = 1e-5
#: pallas vs the JAX reference, float32 attention outputs of size ~1.
KERNEL_TOLERANCE = 1e-5


def save_model(folder: Path, kind: str, kv_heads: int = 2) -> Path:
    """A random one-layer float32 GPT-2 (4 heads of 8) or Llama (4 query heads over
    ``kv_heads``) with a word-level tokenizer (``t0`` ... ``t47``), its head sharpened so that
    greedy decoding meets no near ties."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=256, n_embd=32,
                                           n_layer=1, n_head=4, eos_token_id=EOS,
                                           bos_token_id=EOS))
    else:
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=68, num_hidden_layers=1,
            num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=256,
            eos_token_id=EOS, bos_token_id=1, tie_word_embeddings=False))
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(4.0)
    model.eval().save_pretrained(folder)
    words = Tokenizer(models.WordLevel({f"t{i}": i for i in range(VOCAB)}, unk_token="t0"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=words, eos_token=f"t{EOS}").save_pretrained(folder)
    return folder


KINDS = [("gpt2", 4), ("llama", 2)]
#: Decoding here runs the per-step loop (the sessions' passes), where ``Execute`` can also
#: compile whole steps.
PER_STEP = ({"step_mode": "per-step"} if "step_mode" in inspect.signature(Execute).parameters
            else {})
#: The prompt length of every session here: a prefill of 129 rows, a cache of 256 positions.
PROMPT = 70


@pytest.fixture(scope="module")
def pairs_of_models(tmp_path_factory):
    """``(kind, kv_heads) -> (xla model, pallas model)`` from one saved folder each."""
    found = {}
    for kind, kv_heads in KINDS:
        folder = save_model(tmp_path_factory.mktemp(f"{kind}-{kv_heads}"), kind, kv_heads)
        found[kind, kv_heads] = (JaxCausalLM.from_folder(folder, attention="xla"),
                                 JaxCausalLM.from_folder(folder, attention="pallas"))
    return found


def random_tree(rng: random.Random, nodes: int) -> DraftTree:
    tree = DraftTree()
    while len(tree) < nodes:
        tree.add(rng.randrange(-1, len(tree)), rng.randrange(VOCAB))
    return tree


# -- the kernel's additions ----------------------------------------------------------------------
def test_dense_masks_pack_into_word_pairs():
    rng = np.random.default_rng(0)
    for size in (1, 32, 33, 64):
        mask = rng.random((size, size)) < 0.5
        np.testing.assert_array_equal(pair_bits(mask_word_pairs(mask), size), mask)
    parents = [-1, 0, 1, 0, 3, *range(4, 63)]
    mask = np.asarray(pair_bits(ancestor_word_pairs(parents), 64))
    np.testing.assert_array_equal(mask_word_pairs(jnp.asarray(mask)),
                                  ancestor_word_pairs(parents))
    with pytest.raises(ValueError, match="holds at most 64"):
        mask_word_pairs(jnp.ones((65, 65), bool))


@pytest.mark.parametrize("kv_heads", [1, 2])
def test_the_kernel_groups_query_heads_per_key_value_head(kv_heads):
    """4 query heads over ``kv_heads`` key/value heads: the reference with the keys and values
    repeated per query head; a cache buffer of which only a prefix is visible."""
    q, k_tree, v_tree = jax.random.normal(jax.random.key(0), (3, 4, 6, 16))
    k_tree, v_tree = k_tree[:kv_heads], v_tree[:kv_heads]
    k_prefix, v_prefix = jax.random.normal(jax.random.key(1), (2, kv_heads, 128, 16))
    pairs = ancestor_word_pairs([-1, 0, 1, 0, 3, 3])
    out = tree_attention_pallas(q, k_prefix, v_prefix, k_tree, v_tree, pairs,
                                prefix_length=77, interpret=True)

    def repeat(array):
        return jnp.repeat(array, 4 // kv_heads, axis=0)

    expected = tree_attention_jax_reference(q, repeat(k_prefix), repeat(v_prefix),
                                            repeat(k_tree), repeat(v_tree), pairs,
                                            prefix_length=77)
    np.testing.assert_allclose(out, expected, atol=KERNEL_TOLERANCE, rtol=0)


def test_grouped_heads_must_divide_the_query_heads():
    q = jnp.zeros((4, 2, 16))
    keys = jnp.zeros((3, 2, 16))
    with pytest.raises(ValueError, match="3 heads, which does not divide q's 4"):
        tree_attention_pallas(q, keys, keys, keys, keys, ancestor_word_pairs([-1, 0]))
    with pytest.raises(ValueError, match="k_tree has shape \\(1, 2, 16\\); q has 2 key/value"):
        tree_attention_pallas(q, keys[:2], keys[:2], keys[:1], keys[:1],
                              ancestor_word_pairs([-1, 0]))


# -- the session ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: f"{kind[0]}-kv{kind[1]}")
def test_pallas_scores_equal_xla_scores(pairs_of_models, kind):
    xla, pallas = pairs_of_models[kind]
    assert (xla.attention, pallas.attention) == ("xla", "pallas")
    rng = random.Random(len(kind[0]) + kind[1])
    prompt = [rng.randrange(4, VOCAB) for _ in range(PROMPT)]  # a prefill of 69 rows: einsum
    ours, theirs = pallas.session(prompt), xla.session(prompt)
    assert ours.capacity == 256
    root = prompt[-1]
    for step, nodes in enumerate([4, 63, 16, 2]):
        tree = random_tree(rng, nodes)
        scores = ours.verify(root, tree.tokens, tree.parents)
        expected = theirs.verify(root, tree.tokens, tree.parents)
        assert scores.shape == expected.shape == (nodes + 1, VOCAB)
        np.testing.assert_allclose(scores, expected, atol=TOLERANCE, rtol=0)
        path = tree.path_to(rng.randrange(nodes)) if nodes else []
        ours.keep(path)
        theirs.keep(path)
        root = rng.randrange(VOCAB)
        if step == 2:
            ours.truncate(ours.cache_length - 4)
            theirs.truncate(theirs.cache_length - 4)
    # 69 prompt rows: the einsum for both; 63 nodes: the kernel's 64 rows, the einsum's 65
    assert {entry[:2] for entry in pallas.compiled} >= {("prefill", 129), ("verify", 64)}
    assert {entry[:2] for entry in xla.compiled} >= {("prefill", 129), ("verify", 65)}


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: f"{kind[0]}-kv{kind[1]}")
def test_decoding_is_token_identical(pairs_of_models, kind):
    xla, pallas = pairs_of_models[kind]
    rng = random.Random(kind[1])
    pattern = [rng.randrange(4, VOCAB) for _ in range(7)]
    prompt = " ".join(f"t{token}" for token in pattern * (PROMPT // 7))
    steps = [PIPELINES["autoregressive"](), speculative(PromptLookup(branches=3)),
             speculative(TokenRecycling(max_nodes=16))]
    accepted = 0.0
    for step in steps:
        expected = Execute(xla, backend="jax", **PER_STEP)(step).generate(prompt, 24)
        result = Execute(pallas, backend="jax", **PER_STEP)(step).generate(prompt, 24)
        assert len(result.tokens) == 24 and result.tokens == expected.tokens, step
        assert result.stats.accepted_per_step == expected.stats.accepted_per_step
        accepted = max(accepted, result.stats.mean_accepted)
    assert accepted > 1.2                      # drafts were accepted: trees really ran


# -- choosing the attention ----------------------------------------------------------------------
def test_the_attention_is_chosen_and_checked(pairs_of_models, monkeypatch):
    xla, _ = pairs_of_models["gpt2", 4]
    folder = xla.folder
    monkeypatch.delenv(ATTENTION_VARIABLE, raising=False)
    assert JaxCausalLM.from_folder(folder).attention == "xla"       # the default, on a CPU
    monkeypatch.setenv(ATTENTION_VARIABLE, "pallas")
    assert JaxCausalLM.from_folder(folder).attention == "pallas"
    assert JaxCausalLM.from_folder(folder, attention="xla").attention == "xla"
    assert "attention='pallas'" in repr(JaxCausalLM.from_folder(folder))
    monkeypatch.setenv(ATTENTION_VARIABLE, "flash")
    with pytest.raises(ValueError, match="unknown attention 'flash' \\(from "
                                         "\\$DIAGRAMMAR_JAX_ATTENTION\\)"):
        JaxCausalLM.from_folder(folder)
    with pytest.raises(ValueError, match="unknown attention 'sdpa': choose one of 'xla', "
                                         "'pallas'"):
        JaxCausalLM.from_folder(folder, attention="sdpa")
    with jax.enable_x64(True), pytest.raises(ValueError, match="no float64 kernel"):
        JaxCausalLM.from_folder(folder, dtype="float64", attention="pallas")
    with pytest.raises(ValueError, match="unknown attention 'triton'"):
        transformer.forward(xla.params, (), (), jnp.zeros(1, jnp.int32), jnp.zeros(1, jnp.int32),
                            jnp.ones((1, 1), bool), jnp.int32(0), arch=xla.architecture,
                            attention="triton")
