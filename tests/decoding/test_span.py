"""Extractive span decoding: the trie search against scoring every span alone."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.decoding.span import Span, best_span, greedy_span
from diagrammar.models.hf import HFCausalLM

EOS = 3
_MODELS: dict = {}


def _gpt2(model_factory, kind: str = "gpt2") -> HFCausalLM:
    """A small random float64 model (GPT-2: the lean session; Llama: the Hugging Face one)."""
    if kind not in _MODELS:
        _MODELS[kind] = HFCausalLM(model_factory(kind, seed=11))
    return _MODELS[kind]


def _tiny(default_tiny) -> HFCausalLM:
    if "tiny" not in _MODELS:
        model, tokenizer = default_tiny
        _MODELS["tiny"] = HFCausalLM(copy.deepcopy(model).double(), tokenizer)
    return _MODELS["tiny"]


def brute_force(lm: HFCausalLM, prompt: list[int], passage: list[int], ends: list[int],
                longest: int) -> dict[tuple[int, ...], tuple[float, int]]:
    """Every distinct span (its first start) scored alone by a plain forward pass."""
    found: dict[tuple[int, ...], tuple[float, int]] = {}
    for start in range(len(passage)):
        for stop in range(start + 1, min(len(passage), start + longest) + 1):
            span = tuple(passage[start:stop])
            if span in found:
                continue
            with torch.inference_mode():
                logits = lm.model(torch.tensor([prompt + list(span)])).logits[0]
            logp = logits.double().log_softmax(-1)
            rows = torch.arange(len(prompt) - 1, len(prompt) + len(span) - 1)
            score = logp[rows, torch.tensor(span)].sum() + logp[-1, ends].logsumexp(-1)
            found[span] = (float(score), start)
    return found


def check_against_brute_force(lm, prompt, passage, ends, longest, top_k, spans):
    truth = sorted(brute_force(lm, prompt, passage, ends, longest).items(),
                   key=lambda item: (-item[1][0], item[1][1], len(item[0])))
    assert len(spans) == min(top_k, len(truth))
    assert [s.log_prob for s in spans] == pytest.approx([t[1][0] for t in truth[:top_k]],
                                                        abs=1e-9)
    # the argmax is the same span (no exact ties among distinct spans in float64)
    assert spans[0].token_ids == truth[0][0] and spans[0].start_token == truth[0][1][1]
    for span in spans:
        assert list(span.token_ids) == passage[span.start_token:
                                               span.start_token + len(span.token_ids)]
        assert 1 <= len(span.token_ids) <= longest
    scores = [s.log_prob for s in spans]
    assert scores == sorted(scores, reverse=True)
    assert len({s.token_ids for s in spans}) == len(spans)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["gpt2", "llama"]),
       passage=st.lists(st.integers(4, 12), min_size=1, max_size=9),
       prompt=st.lists(st.integers(0, 47), min_size=1, max_size=5),
       max_span=st.one_of(st.none(), st.integers(1, 5)), top_k=st.integers(1, 5),
       cap=st.integers(1, 30), end=st.sampled_from([None, 7, (7, 9)]))
def test_exact_search_equals_brute_force_on_random_models(model_factory, kind, passage, prompt,
                                                          max_span, top_k, cap, end):
    """Random passages (a small alphabet, so repeats and shared prefixes occur), random node
    caps (so tries are split and long suffixes chained): the trie search returns exactly the
    brute-force top-k, and greedy never beats it."""
    lm = _gpt2(model_factory, kind)
    spans = best_span(lm, prompt, passage, end=end, max_span_tokens=max_span, top_k=top_k,
                      max_nodes_per_pass=cap)
    ends = sorted({EOS} | ({end} if isinstance(end, int) else set(end or ())))
    longest = len(passage) if max_span is None else max_span
    check_against_brute_force(lm, prompt, passage, ends, longest, top_k, spans)
    assert all(s.text is None for s in spans)  # no tokenizer
    greedy = greedy_span(lm, prompt, passage, end=end, max_span_tokens=max_span)
    truth = brute_force(lm, prompt, passage, ends, longest)
    assert greedy.log_prob == pytest.approx(truth[greedy.token_ids][0], abs=1e-9)
    assert spans[0].log_prob >= greedy.log_prob - 1e-9


def test_long_passage_split_across_passes_gives_the_same_answer(model_factory):
    lm = _gpt2(model_factory)
    rng = np.random.default_rng(0)
    passage = rng.integers(4, 20, size=32).tolist()
    prompt = [1, 2, 5]
    one = best_span(lm, prompt, passage, end=7, top_k=5, max_nodes_per_pass=10_000)
    for cap in (3, 17, 100):  # chained segments, small tries, a few big tries
        split = best_span(lm, prompt, passage, end=7, top_k=5, max_nodes_per_pass=cap)
        assert [s.token_ids for s in split] == [s.token_ids for s in one]
        assert [s.start_token for s in split] == [s.start_token for s in one]
        assert [s.log_prob for s in split] == pytest.approx([s.log_prob for s in one],
                                                            abs=1e-9)
    assert one[0].log_prob >= greedy_span(lm, prompt, passage, end=7).log_prob - 1e-9


class _NumpySession:
    """A session whose scores are NumPy arrays (another backend)."""

    def __init__(self, session):
        self.inner = session

    @property
    def cache_length(self):
        return self.inner.cache_length

    def verify(self, root, tokens, parents):
        return np.asarray(self.inner.verify(root, tokens, parents).tolist())

    def keep(self, path):
        self.inner.keep(path)

    def truncate(self, length):
        self.inner.truncate(length)


class _NumpyModel:
    def __init__(self, lm):
        self.lm = lm
        self.eos_token_ids, self.vocab_size = lm.eos_token_ids, lm.vocab_size

    def encode(self, text):
        return self.lm.encode(text)

    def decode(self, ids):
        return self.lm.decode(ids)

    def check_length(self, prompt_length, max_new_tokens):
        self.lm.check_length(prompt_length, max_new_tokens)

    def session(self, prompt_ids):
        return _NumpySession(self.lm.session(prompt_ids))


def test_numpy_scores_give_the_same_spans(model_factory):
    lm = _gpt2(model_factory)
    passage, prompt = [5, 6, 5, 8, 9, 10, 5, 6], [1, 2]
    torch_spans = best_span(lm, prompt, passage, end=7, top_k=4, max_nodes_per_pass=9)
    numpy_spans = best_span(_NumpyModel(lm), prompt, passage, end=7, top_k=4,
                            max_nodes_per_pass=9)
    assert [s.token_ids for s in numpy_spans] == [s.token_ids for s in torch_spans]
    assert [s.log_prob for s in numpy_spans] == pytest.approx(
        [s.log_prob for s in torch_spans], abs=1e-9)
    assert (greedy_span(_NumpyModel(lm), prompt, passage, end=7).log_prob
            == pytest.approx(greedy_span(lm, prompt, passage, end=7).log_prob, abs=1e-9))


_PASSAGES = ["def load(path):\n    return json.loads(path)",
             "the session keeps the cache of the root",
             "import numpy as np\nx = np.zeros(3)"]
_PROMPTS = ["# Question: what is loaded?\n# Answer: ", "Answer:", "x = "]


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(passage=st.sampled_from(_PASSAGES), prompt=st.sampled_from(_PROMPTS),
       top_k=st.integers(1, 3), cap=st.sampled_from([8, 64, 512]))
def test_exact_search_equals_brute_force_on_the_tiny_default_model(default_tiny, passage,
                                                                   prompt, top_k, cap):
    lm = _tiny(default_tiny)
    spans = best_span(lm, prompt, passage, top_k=top_k, max_nodes_per_pass=cap)
    passage_ids = list(lm.tokenizer(passage, add_special_tokens=False)["input_ids"])
    ends = sorted(lm.eos_token_ids | set(lm.tokenizer("\n", add_special_tokens=False)
                                         ["input_ids"]))
    check_against_brute_force(lm, lm.encode(prompt), passage_ids, ends, len(passage_ids),
                              top_k, spans)
    for span in spans:  # byte-level BPE: offsets index the passage itself
        assert span.text == passage[span.start_char:span.end_char]
    greedy = greedy_span(lm, prompt, passage)
    assert greedy.text == passage[greedy.start_char:greedy.end_char]
    assert spans[0].log_prob >= greedy.log_prob - 1e-9


def test_bad_input_is_refused_clearly(model_factory, default_tiny):
    lm = _gpt2(model_factory)
    with pytest.raises(ValueError, match="passage is empty"):
        best_span(lm, [1], [])
    with pytest.raises(ValueError, match="passage is empty"):
        greedy_span(lm, [1], [], end=None)
    with pytest.raises(ValueError, match="max_span_tokens must be at least 1"):
        best_span(lm, [1], [4, 5], end=None, max_span_tokens=0)
    with pytest.raises(ValueError, match="prompt is empty"):
        best_span(lm, [], [4, 5], end=None)
    with pytest.raises(ValueError, match="top_k"):
        best_span(lm, [1], [4, 5], end=None, top_k=0)
    with pytest.raises(ValueError, match="max_nodes_per_pass"):
        best_span(lm, [1], [4, 5], end=None, max_nodes_per_pass=0)
    with pytest.raises(ValueError, match="no answer terminator"):
        best_span(lm, [1], [4, 5], end=None, eos=False)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        best_span(lm, [1], [4, 5], end=1000)
    tiny = _tiny(default_tiny)
    with pytest.raises(ValueError, match=r"is \d+ tokens"):
        best_span(tiny, "x", "abc", end="zqxjzqxj")
    with pytest.raises(ValueError, match="empty string"):
        best_span(tiny, "x", "abc", end="")


def test_span_is_a_plain_record():
    span = Span("a", 0, 1, (4,), -1.5, 0)
    assert span.token_ids == (4,) and span.log_prob == -1.5
