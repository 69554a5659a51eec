"""Batched decoding: every row is token-identical to decoding its prompt alone (and to Hugging
Face greedy), whatever the batch's composition; the batched GPT-2 session scores each row as a
single-sequence session does; the batch-aware policy's estimates and choices.

float64 models, as in tests/test_lossless.py: batched and single passes then agree to ~1e-15.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.decoding.batch import SerialBatch, SplitStep, decode_batch
from diagrammar.decoding.batch_policy import BatchCostPolicy
from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.drafters import NoDraftDrafter, PromptLookupDrafter
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.steps import DrafterStep, verify_step
from diagrammar.decoding.tree import DraftTree
from diagrammar.diagrams import (
    PIPELINES,
    Drafter,
    Verify,
    autoregressive,
    box_registry,
    speculative,
)
from diagrammar.functors import Execute
from diagrammar.models import HFCausalLM
from diagrammar.models.batched_gpt2 import GPT2Batch
from diagrammar.models.fast_gpt2 import FastGPT2Session

VOCAB = 48
_MODELS: dict = {}


def _model(model_factory, seed: int):
    if seed not in _MODELS:
        _MODELS[seed] = model_factory("gpt2", seed, vocab=VOCAB)
    return _MODELS[seed]


with box_registry():
    class RandomTree(Drafter):
        """A test drafter: random trees around each row's true continuation."""

        def __init__(self, seed: int = 0) -> None:
            super().__init__(seed=seed)


class RandomTreeDrafter:
    """Trees of random size and shape per row and step: some paths follow the row's greedy
    continuation (so drafts get accepted), some are corrupted or random."""

    def __init__(self, seed: int, references: dict[tuple[int, ...], list[int]]) -> None:
        self.rng = random.Random(seed)
        self.references = references
        self.sizes: list[int] = []

    def __call__(self, state: DecodeState) -> DraftTree:
        rng = self.rng
        reference = self.references[tuple(state.tokens[:state.prompt_length])]
        done = state.generated
        budget = min(state.draft_budget, 6)
        tree = DraftTree()
        for _ in range(rng.randint(0, 4)):
            depth = rng.randint(1, budget) if budget else 0
            path = list(reference[done:done + depth])
            if rng.random() < 0.3 and path:
                path[rng.randrange(len(path))] = rng.randrange(VOCAB)
            elif rng.random() < 0.2:
                path = [rng.randrange(VOCAB) for _ in range(depth)]
            tree.add_path(path)
        self.sizes.append(len(tree))
        return tree


class Unbatched:
    """A model without ``batch_session``: the decode falls back to :class:`SerialBatch`."""

    def __init__(self, lm: HFCausalLM) -> None:
        self.lm = lm
        self.eos_token_ids, self.vocab_size = lm.eos_token_ids, lm.vocab_size
        self.session, self.check_length = lm.session, lm.check_length


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_seed=st.integers(0, 2),
       prompts=st.lists(st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=20),
                        min_size=1, max_size=6),
       budgets=st.lists(st.integers(0, 24), min_size=6, max_size=6),
       max_batch=st.integers(1, 4), tree_seed=st.integers(0, 2**31),
       policy=st.booleans())
def test_batched_rows_are_token_identical_to_decoding_alone(model_factory, model_seed, prompts,
                                                            budgets, max_batch, tree_seed,
                                                            policy):
    """Random compositions: prompt lengths, budgets, end tokens (the random models write the
    end token 3 now and then), trees of different sizes per row, rows joining and leaving
    (more prompts than slots), with and without the batch-aware policy."""
    model = _model(model_factory, model_seed)
    lm = HFCausalLM(model)
    budgets = budgets[:len(prompts)]
    greedy = Execute(lm)(autoregressive())
    expected, references = [], {}
    for prompt, budget in zip(prompts, budgets):
        expected.append(greedy.generate(prompt, budget).tokens)
        hf = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=budget,
                            pad_token_id=3)[0, len(prompt):].tolist() if budget else []
        assert expected[-1] == hf
        longest = references.get(tuple(prompt), [])
        if len(expected[-1]) >= len(longest):           # the drafter's truth: the longest run
            references[tuple(prompt)] = expected[-1] + [0] * 8
    drafters: list[RandomTreeDrafter] = []

    def factory(box, execute):
        drafters.append(RandomTreeDrafter(box.spec["seed"] + len(drafters), references))
        return DrafterStep(drafters[-1])

    decoder = Execute(lm, implementations={RandomTree: factory})(
        speculative(RandomTree(seed=tree_seed)))
    results = decoder.generate(prompts, budgets, max_batch=max_batch,
                               policy=BatchCostPolicy(explore_every=3) if policy else None)
    assert [r.tokens for r in results] == expected
    for result in results:
        assert sum(result.stats.accepted_per_step) == len(result.tokens)
    stats = decoder.batch_stats
    assert max(stats.rows_per_step, default=0) <= max_batch
    assert len(drafters) <= max_batch            # one step per slot, reused by later prompts


def test_rows_really_share_passes_and_trees_differ_per_row(model_factory):
    """Guards the property test: rows are verified together with trees of different sizes,
    drafts get accepted, and a finished row's slot goes to a waiting prompt."""
    model = _model(model_factory, 0)
    lm = HFCausalLM(model)
    prompts = [[5, 6, 7, 8], [9, 10], [11, 12, 13], [14] * 7, [20, 21, 22]]
    greedy = Execute(lm)(autoregressive())
    references = {tuple(p): greedy.generate(p, 30).tokens + [0] * 8 for p in prompts}
    drafters: list[RandomTreeDrafter] = []

    def factory(box, execute):
        drafters.append(RandomTreeDrafter(len(drafters), references))
        return DrafterStep(drafters[-1])

    decoder = Execute(lm, implementations={RandomTree: factory})(speculative(RandomTree()))
    results = decoder.generate(prompts, [30, 5, 30, 12, 30], max_batch=3, policy=None)
    assert [r.tokens for r in results] == [references[tuple(p)][:len(r.tokens)]
                                           for p in prompts for r in [results[prompts.index(p)]]]
    stats = decoder.batch_stats
    assert max(stats.rows_per_step) == 3 and min(stats.rows_per_step) < 3
    assert len(set(stats.width_per_step)) > 2
    assert sum(r.stats.new_tokens for r in results) > sum(r.stats.steps for r in results)
    assert stats.new_tokens == sum(len(r.tokens) for r in results)
    assert len(drafters) == 3


def test_batched_sampling_draws_what_each_row_draws_alone(model_factory):
    """Each row samples with its own generator seeded from the config, so a batched row
    writes exactly the tokens of that prompt sampled alone."""
    lm = HFCausalLM(_model(model_factory, 1))
    config = GenerationConfig(temperature=0.8, top_k=20, seed=7)
    execute = Execute(lm)
    decoder = execute(PIPELINES["prompt-lookup-sampling"]())
    prompts = [[5, 6, 7, 5, 6, 7, 5], [9, 10, 11], [12, 13, 12, 13, 12]]
    alone = [decoder.generate(p, 20, config=config).tokens for p in prompts]
    batched = execute(PIPELINES["prompt-lookup-sampling"]()).generate(
        prompts, 20, config=config, max_batch=2, policy=None)
    assert [r.tokens for r in batched] == alone


def test_every_named_pipeline_decodes_batched_exactly(model_factory):
    lm = HFCausalLM(_model(model_factory, 2))
    execute = Execute(lm, resources={"draft": lm, "cost": {
        "sizes": [1, 4, 16, 64], "median_seconds": [1.0, 1.1, 1.5, 3.0]}})
    prompts = [[5, 6, 7, 5, 6, 7, 5, 6], [9, 10, 11, 9, 10], [30, 31]]
    greedy = execute(autoregressive())
    expected = [greedy.generate(p, 16).tokens for p in prompts]
    for name in ("prompt-lookup", "prompt-lookup-tree", "token-recycling", "aded",
                 "draft-model"):
        results = execute(PIPELINES[name]()).generate(prompts, 16, max_batch=2)
        assert [r.tokens for r in results] == expected, name


def test_a_step_that_cannot_be_split_runs_row_by_row(model_factory):
    """A custom Verify implementation: the batch cannot verify around it, so each row runs its
    whole step, verifying alone through its row of the batch."""
    lm = HFCausalLM(_model(model_factory, 0))
    calls = []

    def my_verify(box, execute):
        def implementation(state, tree):
            calls.append(len(tree))
            return verify_step(state, tree)
        return implementation

    prompts = [[5, 6, 7, 5, 6, 7], [8, 9, 10], [11]]
    expected = [Execute(lm)(autoregressive()).generate(p, 12).tokens for p in prompts]
    decoder = Execute(lm, implementations={Verify: my_verify})(speculative(
        PIPELINES["prompt-lookup"]().boxes[0]))
    assert [r.tokens for r in decoder.generate(prompts, 12, max_batch=2)] == expected
    assert calls


def test_models_without_a_batch_session_verify_row_by_row(model_factory):
    lm = HFCausalLM(_model(model_factory, 0))
    prompts = [[5, 6, 7, 5, 6, 7], [8, 9, 10]]
    expected = [Execute(lm)(autoregressive()).generate(p, 10).tokens for p in prompts]
    run = decode_batch(lambda: SplitStep(DrafterStep(PromptLookupDrafter())), Unbatched(lm),
                       prompts, 10, max_batch=2)
    assert sorted(run) and run.stats.steps > 0
    run = decode_batch(lambda: SplitStep(DrafterStep(PromptLookupDrafter())), Unbatched(lm),
                       prompts, 10, max_batch=2)
    assert [tokens for _, tokens in sorted((i, g.tokens) for i, g in run)] == expected
    assert isinstance(SerialBatch(lm).add([[1, 2]])[0], FastGPT2Session)


def test_generate_takes_texts_and_returns_them_in_order(saved_model_dir):
    execute = Execute(str(saved_model_dir))
    decoder = execute(PIPELINES["prompt-lookup"]())
    texts = ["def add(a, b):", "import os\n", "x = 1\nx = 1\n"]
    results = decoder.generate(texts, 6, max_batch=2)
    alone = [decoder.generate(t, 6) for t in texts]
    assert [r.text for r in results] == [a.text for a in alone]
    assert [r.tokens for r in results] == [a.tokens for a in alone]
    streamed = dict(decoder.stream(texts, 6, max_batch=3))
    assert sorted(streamed) == [0, 1, 2]


def test_bad_batches_fail_naming_the_prompt(model_factory):
    decoder = Execute(HFCausalLM(_model(model_factory, 0)))(autoregressive())
    with pytest.raises(ValueError, match="prompt 1: prompt token id 99"):
        decoder.generate([[5, 6], [5, 99]], 4)
    with pytest.raises(ValueError, match="prompt 0: the prompt is empty"):
        decoder.generate([[], [5]], 4)
    with pytest.raises(ValueError, match="2 budgets for 3 prompts"):
        decoder.generate([[5], [6], [7]], [4, 4])
    with pytest.raises(ValueError, match="max_batch must be an integer >= 1"):
        decoder.generate([[5]], 4, max_batch=0)
    with pytest.raises(ValueError, match="prompt 0: .*context holds 256"):
        decoder.generate([[5] * 250], 20)


# -- the batched GPT-2 session -----------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_gpt2_batch_scores_every_row_as_a_single_session(model_factory, seed):
    model = _model(model_factory, seed % 3)
    rng = random.Random(seed)
    batch = GPT2Batch(model, max_batch=4)
    prompts = [[rng.randrange(VOCAB) for _ in range(rng.randint(1, 12))] for _ in range(3)]
    rows = batch.add(prompts)
    singles = [FastGPT2Session(model, p) for p in prompts]
    history = [list(p) for p in prompts]
    for step in range(12):
        trees = []
        for _ in rows:
            size = rng.randint(0, 6)
            trees.append(([rng.randrange(VOCAB) for _ in range(size)],
                          [rng.randint(-1, i - 1) for i in range(size)]))
        requests = [(row, history[i][-1], *trees[i]) for i, row in enumerate(rows)]
        rng.shuffle(requests)
        scores = dict(zip((id(r[0]) for r in requests), batch.verify_rows(requests)))
        for i, row in enumerate(rows):
            tokens, parents = trees[i]
            reference = singles[i].verify(history[i][-1], tokens, parents)
            torch.testing.assert_close(scores[id(row)], reference, rtol=0, atol=1e-9)
            path = []
            if tokens:
                node = rng.randrange(len(tokens))
                path = [node]
                while parents[path[0]] >= 0:
                    path.insert(0, parents[path[0]])
            row.keep(path)
            singles[i].keep(path)
            history[i] += [tokens[j] for j in path] + [rng.randrange(VOCAB)]
        if step == 4:                                   # a row leaves, another joins
            gone = rng.randrange(len(rows))
            batch.remove(rows.pop(gone))
            singles.pop(gone)
            history.pop(gone)
            prompt = [rng.randrange(VOCAB) for _ in range(rng.randint(1, 30))]
            rows += batch.add([prompt])
            singles.append(FastGPT2Session(model, prompt))
            history.append(list(prompt))
        if step == 8:                                   # one row verified on its own
            alone = rows[0].verify(history[0][-1], [1, 2], [-1, 0])
            torch.testing.assert_close(alone, singles[0].verify(history[0][-1], [1, 2],
                                                                [-1, 0]), rtol=0, atol=1e-9)
            rows[0].keep([0])
            singles[0].keep([0])
            history[0] += [1, 5]
    assert [row.slot for row in batch.rows] == list(range(len(batch.rows)))


def test_gpt2_batch_refuses_misuse(model_factory):
    model = _model(model_factory, 0)
    batch, other = GPT2Batch(model, max_batch=2), GPT2Batch(model, max_batch=2)
    first, second = batch.add([[1, 2], [3]])
    with pytest.raises(ValueError, match="max_batch is 2"):
        batch.add([[4]])
    with pytest.raises(ValueError, match="another batch"):
        other.verify_rows([(first, 2, [], [])])
    with pytest.raises(ValueError, match="requested twice"):
        batch.verify_rows([(first, 2, [], []), (first, 2, [], [])])
    batch.verify_rows([(first, 2, [5], [-1])])
    with pytest.raises(RuntimeError, match="verify\\(\\) called twice"):
        batch.verify_rows([(first, 2, [], [])])
    first.keep([])
    batch.remove(second)
    with pytest.raises(ValueError, match="removed"):
        batch.remove(second)
    with pytest.raises(ValueError, match="empty"):
        batch.add([[]])
    with pytest.raises(ValueError, match=">= 1"):
        GPT2Batch(model, max_batch=0)


# -- the batch-aware policy --------------------------------------------------------------------
def _state(prompt_length: int = 3) -> DecodeState:
    class Session:
        cache_length = 100

        def truncate(self, length):
            pass

    return DecodeState(Session(), [5] * prompt_length, prompt_length, 32)


class FakeBatch:
    """Pass times from a formula, so the policy's calibration sees a known machine."""

    def __init__(self, per_token: float, fixed: float = 1e-3) -> None:
        self.per_token, self.fixed = per_token, fixed
        self.calls = 0

    def verify_rows(self, requests):
        import time

        self.calls += 1
        width = 1 + max(len(tokens) for _, _, tokens, _ in requests)
        time.sleep(self.fixed + self.per_token * len(requests) * width)
        return [None] * len(requests)


def test_policy_fits_the_pass_time_of_the_machine():
    policy = BatchCostPolicy()
    true = np.array([2e-3, 5e-5, 1e-6])
    passes = [(b, w, 300, float(true @ [1, b * w, b * (300 + w)]))
              for b in (1, 2, 8) for w in (1, 4, 16)]
    policy.fit(passes)
    assert policy.pass_time(4, 8, 300) == pytest.approx(float(true @ [1, 32, 4 * 308]))
    with pytest.raises(RuntimeError, match="no pass measured"):
        BatchCostPolicy().pass_time(1, 1, 1)


def test_policy_estimates_acceptance_per_level_from_the_cuts_it_verified():
    policy = BatchCostPolicy(prior_accept=0.5, prior_weight=0.0)
    assert policy.gain(None, 3) == pytest.approx(0.5 + 0.25 + 0.125)
    state = _state()
    chain = DraftTree.chain([7, 8, 9, 10])
    for accepted in (4, 4, 1):
        policy._caps[id(state)] = 4
        state.accepted_per_step.append(accepted + 1)
        policy.observe([(state, chain)], 0.0, 0.0)
    # level 1: 3 trials, 3 hits; level 2: 3 trials, 2 hits; levels 3, 4: 2 trials, 2 hits
    assert policy.accept_rate(state, 1) == pytest.approx(1.0)
    assert policy.accept_rate(state, 2) == pytest.approx(2 / 3)
    assert policy.gain(state, 2) == pytest.approx(1 + 2 / 3)
    policy.forget_row(state)
    assert policy.accept_rate(state, 2) == policy.accept_rate(None, 2)


def test_policy_drafts_deep_when_passes_are_cheap_and_nothing_when_they_are_dear():
    rows = [(_state(), DraftTree.chain([7, 8, 9, 10, 11, 12])) for _ in range(4)]
    cheap = BatchCostPolicy(prior_accept=0.9, repeats=1)
    assert cheap.choose(FakeBatch(per_token=0.0), rows) == [6, 6, 6, 6]
    dear = BatchCostPolicy(prior_accept=0.3, repeats=1)
    assert dear.choose(FakeBatch(per_token=2e-3), rows) == [0, 0, 0, 0]
    assert dear.report()["pass_time"]["per_token"] > 1e-3
    rows_without = [(_state(), DraftTree()) for _ in range(2)]
    assert BatchCostPolicy().choose(FakeBatch(0.0), rows_without) == [0, 0]


def test_policy_gives_the_width_to_the_rows_that_use_it():
    """One row keeps accepting everything, the other nothing: a width that fits the good
    row's tree pays, and the bad row gets no draft of its own beyond what fits for free."""
    policy = BatchCostPolicy(prior_weight=1.0, repeats=1)
    good, bad = _state(), _state(4)
    tree = DraftTree.chain([7, 8, 9, 10])
    policy._rows[id(good)] = {}
    for _ in range(30):
        for state, accepted in ((good, 4), (bad, 0)):
            policy._caps[id(state)] = 4
            state.accepted_per_step.append(accepted + 1)
        policy.observe([(good, tree), (bad, tree)], 0.0, 0.0)
    assert policy.gain(good, 4) > 3.0 > 0.5 > policy.gain(bad, 4)
    caps = policy.choose(FakeBatch(per_token=3e-4), [(good, tree), (bad, tree)])
    assert caps[0] == 4


def test_auto_policy_is_used_only_when_the_step_drafts(model_factory):
    lm = HFCausalLM(_model(model_factory, 0))
    execute = Execute(lm)
    plain = execute(autoregressive())
    plain.generate([[5, 6], [7]], 4)
    assert plain.batch_stats.depth_cap_per_step == [None] * plain.batch_stats.steps
    drafting = execute(PIPELINES["prompt-lookup"]())
    drafting.generate([[5, 6, 5, 6, 5], [7, 8, 7, 8]], 8)
    assert drafting.batch_stats.policy["pass_time"]
    with pytest.raises(ValueError, match="policy must be"):
        drafting.generate([[5]], 4, policy="fast")


def test_no_draft_split_step_in_the_loop(model_factory):
    lm = HFCausalLM(_model(model_factory, 0))
    expected = Execute(lm)(autoregressive()).generate([5, 6, 7], 9).tokens
    run = decode_batch(lambda: SplitStep(DrafterStep(NoDraftDrafter())), lm, [[5, 6, 7]], 9)
    assert [g.tokens for _, g in run] == [expected]
    assert run.stats.tokens_per_second > 0


def test_policy_stops_drafting_a_row_whose_drafts_do_not_pay_for_the_drafting():
    """Passes are cheap but the drafter is slow and its drafts rarely accepted: the row
    verifies no draft, stops drafting, and tries again every ``explore_every`` steps."""
    policy = BatchCostPolicy(prior_accept=0.2, repeats=1, explore_every=4)
    state = _state()
    tree = DraftTree.chain([7, 8, 9])
    assert policy.wants_draft(state)
    assert policy.choose(FakeBatch(per_token=0.0), [(state, tree)], [0.05]) == [0]
    assert [policy.wants_draft(state) for _ in range(8)] == [False, False, False, True] * 2
    cheap = BatchCostPolicy(prior_accept=0.9, repeats=1)
    assert cheap.wants_draft(state)
    assert cheap.choose(FakeBatch(per_token=0.0), [(state, tree)], [1e-6]) == [3]
    assert cheap.wants_draft(state)


def test_skipped_drafts_stay_exact(model_factory):
    """A policy that never lets rows draft: the drafters are skipped, tokens unchanged."""

    class Never(BatchCostPolicy):
        def wants_draft(self, state):
            return False

    lm = HFCausalLM(_model(model_factory, 1))
    execute = Execute(lm)
    prompts = [[5, 6, 7, 5, 6, 7, 5], [8, 9, 10, 8, 9]]
    expected = [execute(autoregressive()).generate(p, 12).tokens for p in prompts]
    decoder = execute(PIPELINES["prompt-lookup"]())
    results = decoder.generate(prompts, 12, max_batch=2, policy=Never())
    assert [r.tokens for r in results] == expected
    assert all(n == 0 for r in results for n in r.stats.draft_nodes_per_step)
    assert decoder.batch_stats.width_per_step == [1] * decoder.batch_stats.steps
