"""Models that cannot take tree position ids (ALiBi by key index: Bloom, MPT, Falcon with
``alibi``): chain drafts are exact, a branching tree is refused with one clear error."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.tree import DraftTree
from diagrammar.diagrams import PromptLookup, autoregressive, speculative
from diagrammar.functors import Execute
from diagrammar.models import HFCausalLM, ModelError

VOCAB = 48
_MODELS: dict = {}


def make_alibi_model(kind: str, seed: int = 0) -> torch.nn.Module:
    import transformers as tf

    torch.manual_seed(seed)
    special = dict(bos_token_id=1, eos_token_id=None, pad_token_id=0, tie_word_embeddings=False)
    if kind == "bloom":
        model = tf.BloomForCausalLM(tf.BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=2,
                                                   n_head=4, **special))
    elif kind == "mpt":
        model = tf.MptForCausalLM(tf.MptConfig(vocab_size=VOCAB, d_model=32, n_heads=4,
                                               n_layers=2, max_seq_len=256, **special))
    elif kind == "falcon":
        model = tf.FalconForCausalLM(tf.FalconConfig(
            vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            alibi=True, **special))
    else:
        raise ValueError(kind)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(4.0)
    return model.to(torch.float64).eval()


def _lm(kind: str) -> HFCausalLM:
    if kind not in _MODELS:
        _MODELS[kind] = HFCausalLM(make_alibi_model(kind))
    return _MODELS[kind]


def _generate(model, prompt: list[int], max_new_tokens: int) -> list[int]:
    return model.generate(torch.tensor([prompt]), do_sample=False,
                          max_new_tokens=max_new_tokens, pad_token_id=0)[0, len(prompt):].tolist()


def _chain_decode(lm: HFCausalLM, prompt: list[int], max_new_tokens: int, truth: list[int],
                  seed: int) -> tuple[list[int], int]:
    """Greedy decoding with chain drafts around the truth, some corrupted (partly rejected)."""
    rng = random.Random(seed)
    session = lm.session(prompt)
    out: list[int] = []
    rejected = 0
    root = prompt[-1]
    while len(out) < max_new_tokens:
        draft = truth[len(out):len(out) + rng.randint(0, 8)]
        if draft and rng.random() < 0.4:
            draft[rng.randrange(len(draft))] = rng.randrange(VOCAB)
        tree = DraftTree.chain(draft)
        best = session.verify(root, tree.tokens, tree.parents).argmax(-1).tolist()
        accepted = 0
        while accepted < len(draft) and draft[accepted] == best[accepted]:
            accepted += 1
        rejected += accepted < len(draft)
        session.keep(list(range(accepted)))
        root = best[accepted]
        out += draft[:accepted] + [root]
    return out[:max_new_tokens], rejected


@pytest.mark.parametrize("kind", ["bloom", "mpt", "falcon"])
@settings(max_examples=8, deadline=None)
@given(prompt=st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=30),
       seed=st.integers(0, 2**31))
def test_chain_drafts_write_what_generate_writes(kind, prompt, seed):
    lm = _lm(kind)
    expected = _generate(lm.model, prompt, 30)
    assert _chain_decode(lm, prompt, 30, expected, seed)[0] == expected


def test_bloom_pipelines_with_chain_drafts_write_what_generate_writes():
    lm = _lm("bloom")
    prompt = [5, 6, 7, 8, 9] * 4
    expected = _generate(lm.model, prompt, 30)
    execute = Execute(lm)
    assert execute(autoregressive()).generate(prompt, 30).tokens == expected
    result = execute(speculative(PromptLookup(branches=1))).generate(prompt, 30)
    assert result.tokens == expected
    _, rejected = _chain_decode(lm, prompt, 30, expected, seed=3)
    assert rejected, "no chain draft was rejected: the test would not roll anything back"


@pytest.mark.parametrize("kind", ["bloom", "mpt", "falcon"])
def test_a_branching_tree_is_refused_clearly(kind):
    lm = _lm(kind)
    prompt = [5, 6, 7, 8]
    session = lm.session(prompt)
    with pytest.raises(ModelError, match=rf"a {kind} model cannot verify a branching draft "
                                         r"tree: .*Chain drafts \(a single branch\) work"):
        session.verify(8, [9, 10, 11], [-1, -1, 0])
    # The refusal leaves the session as it was: a chain verifies next, exactly.
    scores = session.verify(8, [9, 10], [-1, 0])
    with torch.inference_mode():
        reference = lm.model(input_ids=torch.tensor([prompt + [9, 10]])).logits[0, -3:]
    # (1e-6: MPT takes its attention softmax in float32 even in a float64 model)
    torch.testing.assert_close(scores, reference, atol=1e-6, rtol=0)


def test_the_pipeline_reports_the_refusal():
    lm = _lm("bloom")
    prompt = [5, 6, 7, 8, 9] * 4 + [5, 6, 7, 1, 5, 6, 7]
    with pytest.raises(ModelError, match="bloom"):
        Execute(lm)(speculative(PromptLookup(branches=3))).generate(prompt, 30)
