"""The batched session of generic Hugging Face models against the single-sequence one.

Reference: a :class:`~diagrammar.models.hf_session.TreeSession` per row, fed the same history
(prompt, trees, kept paths, rollbacks). Over random compositions (rows of different lengths
added and removed between passes, random trees per row, some rows left out of a pass, some
verified on their own while others wait to keep), every row's scores equal the reference's
(float64, 1e-9), on Llama, GPT-2 (``fast=False``), Mistral (every layer sliding, window 4)
and Qwen2 (full and sliding layers mixed: masks by layer kind). Batched greedy decoding
writes each prompt's tokens exactly as decoding it alone does.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.batch import SplitStep, decode_batch
from diagrammar.decoding.drafters import PromptLookupDrafter
from diagrammar.decoding.loop import decode
from diagrammar.decoding.steps import DrafterStep
from diagrammar.decoding.tree import DraftTree
from diagrammar.models import HFCausalLM, ModelError
from diagrammar.models.hf_batch import HFBatchSession
from diagrammar.models.hf_session import TreeSession

VOCAB = 40
EOS = 3
KINDS = ["llama", "gpt2", "mistral", "qwen2"]
_MODELS: dict[str, HFCausalLM] = {}


def _model(kind: str) -> torch.nn.Module:
    import transformers as tf

    torch.manual_seed(11)
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1,
                  eos_token_id=EOS, tie_word_embeddings=False)
    if kind == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(num_hidden_layers=2, **common))
    elif kind == "gpt2":
        model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_positions=256, n_embd=32,
                                                 n_layer=2, n_head=4, eos_token_id=EOS,
                                                 bos_token_id=EOS))
    elif kind == "mistral":       # every layer slides over 4 positions
        model = tf.MistralForCausalLM(tf.MistralConfig(num_hidden_layers=2, sliding_window=4,
                                                       **common))
    elif kind == "qwen2":         # layer 0 full, layers 1 and 2 sliding over 5 positions
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(num_hidden_layers=3, use_sliding_window=True,
                                                   sliding_window=5, max_window_layers=1,
                                                   **common))
    else:
        raise ValueError(kind)
    with torch.no_grad():         # sharper: greedy decoding not dominated by near-ties
        model.get_output_embeddings().weight.mul_(4.0)
    return model.to(torch.float64).eval()


def _lm(kind: str) -> HFCausalLM:
    if kind not in _MODELS:
        _MODELS[kind] = HFCausalLM(_model(kind), fast=False)
    return _MODELS[kind]


def _random_tree(rng: random.Random, nodes: int) -> DraftTree:
    tree = DraftTree()
    while len(tree) < nodes:
        parent = len(tree) - 1 if rng.random() < 0.4 else rng.randrange(-1, len(tree))
        tree.add(parent, rng.randrange(VOCAB))
    return tree


def _close(scores: torch.Tensor, expected: torch.Tensor) -> None:
    assert scores.shape == expected.shape
    torch.testing.assert_close(scores, expected, atol=1e-9, rtol=0)


def _check(requests, scores, references) -> None:
    """Each request's scores equal its reference session's ``verify`` of the same tree."""
    assert len(scores) == len(requests)
    for (_row, root, tokens, parents), reference, row_scores in zip(requests, references,
                                                                    scores, strict=True):
        _close(row_scores, reference.verify(root, tokens, parents))


class _Pair:
    """A batch row and its reference session, fed the same history."""

    def __init__(self, row, reference: TreeSession) -> None:
        self.row, self.reference = row, reference
        self.tree: DraftTree | None = None

    def keep(self, rng: random.Random) -> None:
        path = self.tree.path_to(rng.randrange(len(self.tree))) if len(self.tree) else []
        if rng.random() < 0.15:
            path = path[:-1]      # a shorter path than drafted, as acceptance often keeps
        self.row.keep(path)
        self.reference.keep(path)
        self.tree = None
        assert self.row.cache_length == self.reference.cache_length


@settings(max_examples=24, deadline=None)
@given(kind=st.sampled_from(KINDS), max_batch=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_rows_score_as_their_own_session(kind, max_batch, seed):
    lm = _lm(kind)
    rng = random.Random(seed)
    batch = lm.batch_session(max_batch)
    assert isinstance(batch, HFBatchSession)
    pairs: list[_Pair] = []
    for _ in range(6):
        # Rows leave, and new prompts (several at once, of different lengths) take free slots.
        for pair in list(pairs):
            if rng.random() < 0.2:
                batch.remove(pair.row)
                pairs.remove(pair)
        free = max_batch - len(pairs)
        if free:
            prompts = [[rng.randrange(4, VOCAB) for _ in range(rng.randint(1, 20))]
                       for _ in range(rng.randint(0 if pairs else 1, free))]
            rows = batch.add(prompts)
            pairs += [_Pair(row, TreeSession(lm, prompt))
                      for row, prompt in zip(rows, prompts, strict=True)]
        assert {id(row) for row in batch.rows} == {id(pair.row) for pair in pairs}
        # Some rows roll back a little first.
        for pair in pairs:
            if rng.random() < 0.15 and pair.row.cache_length:
                length = rng.randrange(pair.row.cache_length)
                pair.row.truncate(length)
                pair.reference.truncate(length)
        # One pass over a random subset (usually all) of the rows, random trees each.
        share = rng.choice([0.5, 1.0])
        chosen = [pair for pair in pairs if rng.random() < share] or [rng.choice(pairs)]
        requests = []
        for pair in chosen:
            pair.tree = _random_tree(rng, rng.choice([0, 1, 3, 6, 10]))
            requests.append((pair.row, rng.randrange(4, VOCAB), pair.tree.tokens,
                             pair.tree.parents))
        _check(requests, batch.verify_rows(requests), [pair.reference for pair in chosen])
        # The rows left out are verified next, while the others still wait to keep: on their
        # own, or in a second pass whose slot range spans rows waiting to keep.
        others = [pair for pair in pairs if pair not in chosen]
        if others and rng.random() < 0.7:
            late = []
            for pair in others:
                pair.tree = _random_tree(rng, rng.randint(0, 6))
                late.append((pair.row, rng.randrange(4, VOCAB), pair.tree.tokens,
                             pair.tree.parents))
            if rng.random() < 0.3:
                scores = [row.verify(*request) for row, *request in late]
            else:
                scores = batch.verify_rows(late)
            _check(late, scores, [pair.reference for pair in others])
            chosen += others
        for pair in chosen:
            pair.keep(rng)
    # The caches hold the histories: one last pass of every row scores the same.
    requests = [(pair.row, 5, [6, 7], [-1, -1]) for pair in pairs]
    _check(requests, batch.verify_rows(requests), [pair.reference for pair in pairs])


def _prompts(seed: int, count: int) -> list[list[int]]:
    """Prompts that repeat themselves, so that prompt lookup drafts (and is partly right)."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        motif = [rng.randrange(4, VOCAB) for _ in range(rng.randint(2, 6))]
        prompt = (motif * 4)[:rng.randint(1, 20)]
        prompts.append([rng.randrange(4, VOCAB)] + prompt)
    return prompts


def _step() -> SplitStep:
    return SplitStep(DrafterStep(PromptLookupDrafter(num_tokens=5, branches=2,
                                                     branch_tokens=2)))


@pytest.mark.parametrize("kind", KINDS)
def test_batched_greedy_decoding_writes_what_each_prompt_alone_writes(kind):
    lm = _lm(kind)
    prompts = _prompts(len(kind), 5)
    alone = []
    for prompt in prompts:
        step = _step()
        alone.append(decode(step.step, lm, prompt, 24, start=step.start).tokens)
    run = decode_batch(_step, lm, prompts, 24, max_batch=3)
    together = dict(run)
    assert [together[index].tokens for index in range(len(prompts))] == alone
    assert max(run.stats.rows_per_step) == 3 and max(run.stats.width_per_step) > 1


def test_rows_come_and_go_and_a_removed_row_is_refused():
    lm = _lm("llama")
    batch = lm.batch_session(2)
    first, second = batch.add([[4, 5, 6], [7]])
    assert (first.cache_length, second.cache_length) == (2, 0)
    with pytest.raises(ValueError, match="max_batch is 2"):
        batch.add([[8]])
    reference = TreeSession(lm, [7])
    batch.remove(first)
    assert batch.rows == [second] and second.slot == 0
    with pytest.raises(RuntimeError, match="removed"):
        first.verify(6, [], [])
    with pytest.raises(ValueError, match="another batch"):
        batch.verify_rows([(first, 6, [], [])])
    with pytest.raises(ValueError, match="does not belong"):
        batch.remove(first)
    (third,) = batch.add([[9, 10, 11, 12]])
    _close(batch.verify_rows([(second, 7, [8], [-1])])[0], reference.verify(7, [8], [-1]))
    second.keep([0])
    reference.keep([0])
    _close(second.verify(9, [], []), reference.verify(9, [], []))
    assert third.cache_length == 3 and batch.verify_rows([]) == []


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_a_pass_leaves_the_trees_of_rows_waiting_to_keep(kind):
    """Rows 0 and 2 pass together while row 1, between them, waits to keep its tree."""
    lm = _lm(kind)
    prompts = [[4, 5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]]
    batch = lm.batch_session(3)
    rows = batch.add(prompts)
    references = [TreeSession(lm, prompt) for prompt in prompts]
    tree = ([20, 21, 22, 23], [-1, 0, -1, 2])
    _close(rows[1].verify(12, *tree), references[1].verify(12, *tree))
    late = [(rows[0], 10, [24, 25], [-1, 0]), (rows[2], 16, [26], [-1])]
    _check(late, batch.verify_rows(late), [references[0], references[2]])
    for row, reference, path in zip(rows, references, [[0, 1], [2, 3], [0]]):
        row.keep(path)
        reference.keep(path)
    requests = [(row, 30, [31], [-1]) for row in rows]
    _check(requests, batch.verify_rows(requests), references)


def test_contract_errors():
    lm = _lm("gpt2")
    batch = HFBatchSession(lm, 3)
    row, other = batch.add([[4, 5], [6, 7, 8]])
    with pytest.raises(ValueError, match="requested twice"):
        batch.verify_rows([(row, 5, [], []), (row, 5, [], [])])
    with pytest.raises(ValueError, match="2 tokens but 1 parents"):
        batch.verify_rows([(row, 5, [6, 7], [-1])])
    with pytest.raises(ValueError, match="parents must come before"):
        batch.verify_rows([(row, 5, [6, 7], [1, -1])])
    batch.verify_rows([(row, 5, [6], [-1])])
    with pytest.raises(RuntimeError, match="called twice"):
        batch.verify_rows([(other, 8, [], []), (row, 5, [], [])])
    assert other.pending == 0       # nothing ran: the refused pass left no row verified
    with pytest.raises(ValueError, match="empty"):
        batch.add([[]])
    with pytest.raises(ValueError, match="max_batch"):
        HFBatchSession(lm, 0)


def test_models_without_position_ids_are_refused():
    import transformers as tf

    model = tf.BloomForCausalLM(tf.BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=1,
                                               n_head=4)).eval()
    with pytest.raises(ModelError, match="bloom model cannot verify rows in a batch"):
        HFBatchSession(HFCausalLM(model), 2)
