"""Exact speculative sampling: every rule's output follows the target's sampling distribution.

The proof is statistical but not flaky: fixed seeds, and a test that fails for a rule that is
known to be wrong (so the test can fail). Per node, each rule is checked on many draws against
``p``; end to end, each sampling pipeline's distribution over all continuations of 3 tokens of
a small-vocabulary model (enumerated exactly) passes a chi-square and a total-variation test,
as plain sampling without speculation does.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import EOS
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from markov_backend import MarkovModel
from scipy.stats import chisquare

from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.sampling import (
    draw_with_replacement,
    draw_without_replacement,
    residual,
    sample_token,
    spectr_accept,
    spectr_rho,
    speculative_sample,
    warp,
)
from diagrammar.decoding.tree import DraftTree, Proposal
from diagrammar.diagrams import (
    Commit,
    DraftModel,
    GreedyAccept,
    NoDraft,
    PromptLookup,
    SpecTrAccept,
    SpeculativeSampling,
    TokenRecycling,
    Verify,
    autoregressive,
    speculative,
)
from diagrammar.functors import Execute
from diagrammar.functors.backends import Backend, backend_registry, register_backend
from diagrammar.models import HFCausalLM

# -- the warp: what a config samples from, as Hugging Face's generate defines it -------------


@settings(max_examples=60, deadline=None)
@given(logits=st.lists(st.floats(-6, 6), min_size=2, max_size=12),
       temperature=st.floats(0.2, 2.0), top_k=st.one_of(st.none(), st.integers(1, 12)),
       top_p=st.one_of(st.none(), st.floats(0.05, 1.0)))
def test_warp_matches_hugging_face_warpers(logits, temperature, top_k, top_p):
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    assume(np.diff(np.sort(logits)).min() > 1e-6)   # tied tokens may be kept in either order
    config = GenerationConfig(temperature=temperature, top_k=top_k, top_p=top_p)
    scores = torch.tensor([logits], dtype=torch.float64)
    scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p is not None:
        scores = TopPLogitsWarper(top_p)(None, scores)
    expected = scores.softmax(-1)[0].numpy()
    got = warp(np.array(logits), config)
    # Where the top-p boundary falls exactly on a cumulative sum, rounding may decide either
    # way; everywhere else the distributions are equal.
    if not np.allclose(got, expected, atol=1e-9):
        order = np.sort(np.exp(np.array(logits) / temperature))[::-1]
        cumulative = np.cumsum(order / order.sum())
        assert top_p is not None and np.isclose(cumulative, top_p, atol=1e-9).any()


def test_warp_at_temperature_zero_is_the_argmax():
    assert warp(np.array([0.0, 2.0, 2.0, 1.0]), GenerationConfig()).tolist() == [0, 1, 0, 0]


def test_draws_follow_their_distribution():
    probs = np.array([0.1, 0.0, 0.6, 0.3])
    rng = np.random.default_rng(0)
    counts = Counter(sample_token(probs, rng) for _ in range(20000))
    assert counts[1] == 0
    assert chisquare([counts[0], counts[2], counts[3]],
                     [2000, 12000, 6000]).pvalue > 1e-3
    pairs = Counter(draw_without_replacement(probs, 2, rng) for _ in range(20000))
    # First draw 2 (0.6), then 3 among the rest (0.3 / 0.4): 0.45.
    assert abs(pairs[(2, 3)] / 20000 - 0.45) < 0.015
    assert all(len(set(pair)) == 2 for pair in pairs)
    assert len(draw_with_replacement(probs, 5, rng)) == 5


def test_residual_and_spectr_rho():
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    assert residual(p, q).tolist() == [1.0, 0.0, 0.0]
    for k in (1, 2, 3, 5):
        rho = spectr_rho(p, q, k)
        beta = np.minimum(q, p / rho).sum()
        assert 1.0 <= rho <= k
        assert (1 - (1 - beta) ** k) / beta <= rho + 1e-9      # the residual stays >= 0
    assert spectr_rho(p, q, 1) == 1.0


# -- one node: the rules against p over many seeded draws ------------------------------------

VOCAB = 5
P = np.array([0.35, 0.25, 0.2, 0.15, 0.05])
NODE_CASES = {
    "close": np.array([0.3, 0.3, 0.2, 0.1, 0.1]),
    "far": np.array([0.02, 0.03, 0.05, 0.1, 0.8]),
    "disjoint": np.array([0.0, 0.0, 0.0, 0.0, 1.0]),
    "equal": P.copy(),
}


def _node_tree(q, mode, k, rng):
    tree = DraftTree()
    if mode == "one-hot":
        for token in draw_without_replacement(q, k, rng):
            tree.add(-1, token)
    elif mode == "without-replacement":
        tree.propose(-1, Proposal(q, draw_without_replacement(q, k, rng), replacement=False))
    else:
        tree.propose(-1, Proposal(q, draw_with_replacement(q, k, rng)))
    return tree


@pytest.mark.parametrize("case", sorted(NODE_CASES))
@pytest.mark.parametrize("mode,rule,k", [
    ("iid", speculative_sample, 1), ("iid", speculative_sample, 3),
    ("without-replacement", speculative_sample, 3), ("one-hot", speculative_sample, 2),
    ("iid", spectr_accept, 1), ("iid", spectr_accept, 3), ("iid", spectr_accept, 4)])
def test_each_rule_outputs_p_at_one_node(case, mode, rule, k):
    q = NODE_CASES[case]
    logits = np.log(np.vstack([P, np.full(VOCAB, 0.2)] + [np.full(VOCAB, 0.2)] * VOCAB))
    config = GenerationConfig(temperature=1.0)
    rng = np.random.default_rng(zlib.crc32(f"{case} {mode} {k} {rule.__name__}".encode()))
    samples = 6000
    counts = np.zeros(VOCAB)
    for _ in range(samples):
        tree = _node_tree(q, mode, k, rng)
        counts[rule(tree, logits[: len(tree) + 1], config, rng).tokens[0]] += 1
    assert chisquare(counts, P * samples).pvalue > 1e-3
    assert 0.5 * np.abs(counts / samples - P).sum() < 0.03


def test_a_wrong_rule_fails_the_same_test():
    """The positive control: accepting every draft outright (no rejection) is not exact, and
    the per-node test detects it."""
    q, rng, samples = NODE_CASES["far"], np.random.default_rng(0), 6000
    counts = np.zeros(VOCAB)
    for _ in range(samples):
        counts[draw_with_replacement(q, 1, rng)[0]] += 1
    assert chisquare(counts, P * samples).pvalue < 1e-6


# -- end to end: whole pipelines on a small Markov model --------------------------------------

PROMPT = [1, 2, 3, 1, 2]
LENGTH = 3


@pytest.fixture(scope="module")
def markov():
    target = MarkovModel(VOCAB, seed=0)
    draft = MarkovModel(VOCAB, seed=1, base=target, noise=0.7)
    with backend_registry():
        register_backend(Backend("markov", load_model=lambda model: model))
        yield target, draft


def _distribution_test(decoder, exact, config, samples):
    counts = Counter()
    for seed in range(samples):
        run = GenerationConfig(temperature=config.temperature, top_k=config.top_k,
                               top_p=config.top_p, seed=seed)
        counts[tuple(decoder.generate(PROMPT, LENGTH, config=run).tokens)] += 1
    observed = np.array([counts[c] for c in exact], dtype=float)
    expected = np.array([exact[c] for c in exact]) * samples
    assert sum(counts.values()) == observed.sum() == samples   # nothing outside the support
    small = expected < 5                       # pool the rare continuations into one cell
    observed = np.append(observed[~small], observed[small].sum())
    expected = np.append(expected[~small], expected[small].sum())
    keep = expected > 0
    pvalue = chisquare(observed[keep], expected[keep]).pvalue
    tv = 0.5 * np.abs(observed - expected).sum() / samples
    return pvalue, tv


PIPELINES = {
    "plain sampling": speculative(NoDraft(), SpeculativeSampling()),
    "chain (Leviathan/Chen)": speculative(DraftModel(num_tokens=3), SpeculativeSampling()),
    "SpecInfer tree": speculative(DraftModel(num_tokens=3, branches=[2, 2, 1]),
                                  SpeculativeSampling()),
    "RSD tree": speculative(DraftModel(num_tokens=3, branches=[3, 2],
                                       sampling="without-replacement"), SpeculativeSampling()),
    "SpecTr": speculative(DraftModel(num_tokens=3, branches=[3], sampling="sequences"),
                          SpecTrAccept()),
    "prompt lookup": speculative(PromptLookup(num_tokens=3, branches=2),
                                 SpeculativeSampling()),
    "Token Recycling | draft model": speculative(
        TokenRecycling(k=3, max_nodes=6) | DraftModel(num_tokens=2, branches=[2]),
        SpeculativeSampling()),
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_sampling_pipelines_follow_the_exact_distribution(markov, name):
    target, draft = markov
    config = GenerationConfig(temperature=0.8)
    exact = target.continuation_distribution(PROMPT, LENGTH, config)
    decoder = Execute(target, backend="markov", resources={"draft": draft})(PIPELINES[name])
    pvalue, tv = _distribution_test(decoder, exact, config, samples=2500)
    assert pvalue > 1e-3, (name, pvalue)
    assert tv < 0.08, (name, tv)


@pytest.mark.parametrize("name", ["SpecInfer tree", "RSD tree", "SpecTr"])
def test_top_k_and_top_p_apply_to_target_and_residuals_alike(markov, name):
    target, draft = markov
    config = GenerationConfig(temperature=1.2, top_k=4, top_p=0.9)
    exact = target.continuation_distribution(PROMPT, LENGTH, config)
    decoder = Execute(target, backend="markov", resources={"draft": draft})(PIPELINES[name])
    pvalue, tv = _distribution_test(decoder, exact, config, samples=2500)
    assert pvalue > 1e-3 and tv < 0.08, (name, pvalue, tv)


def test_the_distribution_test_rejects_a_lossy_pipeline(markov):
    """A rule known to be wrong (greedy acceptance of sampled drafts, then plain sampling)
    fails the same end-to-end test: it can fail."""
    from diagrammar.decoding.sampling import sample_token, score_row
    from diagrammar.decoding.state import Acceptance

    class AcceptDrafts(SpeculativeSampling):
        lossless = False

    def accept_drafts(box, execute):
        def run(state, tree, scores):
            path = tuple(tree.path_to(len(tree) - 1)) if tree.tokens else ()
            last = path[-1] if path else -1
            bonus = sample_token(warp(score_row(scores, last + 1), state.config), state.rng)
            return state, Acceptance(path, tuple(tree.tokens[i] for i in path) + (bonus,))
        return run

    target, draft = markov
    config = GenerationConfig(temperature=0.8)
    exact = target.continuation_distribution(PROMPT, LENGTH, config)
    step = DraftModel(num_tokens=3) >> Verify() >> AcceptDrafts() >> Commit()
    decoder = Execute(target, backend="markov", resources={"draft": draft},
                      implementations={AcceptDrafts: accept_drafts})(step)
    pvalue, tv = _distribution_test(decoder, exact, config, samples=2500)
    assert pvalue < 1e-6 and tv > 0.08


# -- temperature 0: the sampling rules decode greedily, token for token ----------------------


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 3), prompt=st.lists(st.integers(4, 47), min_size=1, max_size=10),
       branches=st.sampled_from([None, [2], [3, 1]]),
       rule=st.sampled_from([SpeculativeSampling, SpecTrAccept]))
def test_at_temperature_zero_sampling_rules_are_greedy(model_factory, seed, prompt, branches,
                                                       rule):
    target = HFCausalLM(model_factory("gpt2", seed, vocab=48))
    draft = HFCausalLM(model_factory("gpt2", seed + 10, vocab=48))
    resources = {"draft": draft}
    greedy = Execute(target)(autoregressive()).generate(prompt, 12).tokens
    for drafter in (DraftModel(num_tokens=3, branches=branches),
                    PromptLookup(num_tokens=4) | TokenRecycling(max_nodes=8)):
        step = speculative(drafter, rule())
        assert Execute(target, resources=resources)(step).generate(prompt, 12).tokens == greedy
    with pytest.raises(Exception, match="GreedyAccept decodes greedily"):
        Execute(target)(speculative(NoDraft(), GreedyAccept())).generate(
            prompt, 4, config=GenerationConfig(temperature=0.7))


def test_sampling_on_a_torch_model_follows_the_exact_distribution(model_factory):
    """The same test through the torch backend (a random GPT-2 over 6 tokens, 2 new tokens),
    with an RSD draft tree from a second random GPT-2."""
    target_model = model_factory("gpt2", 0, vocab=6, layers=1, width=16, heads=2)
    with torch.no_grad():
        target_model.get_output_embeddings().weight.mul_(0.25)
    target = HFCausalLM(target_model)
    draft = HFCausalLM(model_factory("gpt2", 1, vocab=6, layers=1, width=16, heads=2))
    prompt, length, config = [1, 2, 3], 2, GenerationConfig(temperature=0.9)
    exact = {}
    with torch.no_grad():
        first = warp(target_model(torch.tensor([prompt])).logits[0, -1].numpy(), config)
        for a in range(6):
            if a == EOS:                    # the generation ends at the end token
                exact[(a,)] = first[a]
                continue
            second = warp(target_model(torch.tensor([prompt + [a]])).logits[0, -1].numpy(),
                          config)
            for b in range(6):
                exact[(a, b)] = first[a] * second[b]
    step = speculative(DraftModel(num_tokens=2, branches=[2], sampling="without-replacement"),
                       SpeculativeSampling())
    decoder = Execute(target, resources={"draft": draft})(step)
    counts = Counter(tuple(decoder.generate(prompt, length, config=GenerationConfig(
        temperature=0.9, seed=seed)).tokens) for seed in range(800))
    observed = np.array([counts[c] for c in exact], dtype=float)
    expected = np.array(list(exact.values())) * 800
    small = expected < 5
    observed = np.append(observed[~small], observed[small].sum())
    expected = np.append(expected[~small], expected[small].sum())
    keep = expected > 0
    assert chisquare(observed[keep], expected[keep]).pvalue > 1e-3
