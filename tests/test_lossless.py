"""Losslessness: speculative decoding over random draft trees writes exactly the tokens of our
greedy loop and of Hugging Face ``generate(do_sample=False)``.

Runs in float64, where tree-batched and sequential forward passes agree to ~1e-12, so an argmax
can only flip on an exact tie; the random models are sharpened to make ties vanishingly rare.

The float64 properties run on both backends (``backend`` in ``BACKENDS``): on ``jax`` the same
random Hugging Face model is saved and loaded as a float64 ``JaxCausalLM`` (its twin,
:mod:`jax_twins`; 64-bit JAX is on for this module only, once a jax test asks for a twin), and
its greedy tokens are checked against Hugging Face ``generate`` and the torch backend's greedy
tokens on the twin's reference (for Llama, Hugging Face's own with its float32 RMSNorm and
rotary tables lifted to float64, see :mod:`jax_twins`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from conftest import EOS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.decoding.steps import DrafterStep
from diagrammar.decoding.tree import DraftTree
from diagrammar.diagrams import (
    Aded,
    Drafter,
    DraftModel,
    PromptLookup,
    Rasd,
    Retrieval,
    Sized,
    TokenRecycling,
    autoregressive,
    box_registry,
    speculative,
)
from diagrammar.functors import Execute
from diagrammar.models import HFCausalLM

VOCAB = 48


# Test boxes stay out of the global registry (tests/conftest.py scopes those a test defines).
with box_registry():
    class OracleTree(Drafter):
        """A test drafter: random trees built around the true continuation, with corruptions."""

        def __init__(self, seed: int = 0, max_paths: int = 4, max_depth: int = 8) -> None:
            super().__init__(seed=seed, max_paths=max_paths, max_depth=max_depth)


class OracleTreeDrafter:
    def __init__(self, spec: dict, reference: list[int]) -> None:
        self.rng = random.Random(spec["seed"])
        self.max_paths = spec["max_paths"]
        self.max_depth = spec["max_depth"]
        self.reference = reference
        self.trees: list[DraftTree] = []

    def __call__(self, state) -> DraftTree:
        rng = self.rng
        done = state.generated
        budget = min(state.draft_budget, self.max_depth)
        tree = DraftTree()
        for _ in range(rng.randint(0, self.max_paths)):
            depth = rng.randint(1, budget) if budget else 0
            path = list(self.reference[done:done + depth])
            kind = rng.random()
            if kind < 0.3 and path:      # corrupt one position
                path[rng.randrange(len(path))] = rng.randrange(VOCAB)
            elif kind < 0.45:            # a random path
                path = [rng.randrange(VOCAB) for _ in range(depth)]
            start = -1
            if tree.tokens and rng.random() < 0.3:   # hang it below an existing node
                start = rng.randrange(len(tree))
                if len(tree.path_to(start)) + len(path) > budget:
                    start = -1
            tree.add_path(path, parent=start)
        self.trees.append(tree)
        return tree


def _model(model_factory, kind: str, seed: int):
    key = (kind, seed)
    if key not in _MODELS:
        _MODELS[key] = model_factory(kind, seed, vocab=VOCAB)
    return _MODELS[key]


_MODELS: dict = {}


# -- both backends -----------------------------------------------------------------------------
BACKENDS = ("torch", "jax")


@dataclass
class Target:
    """A random float64 model on one backend.

    Attributes:
        backend: the backend's name.
        lm: what ``Execute(lm, backend=backend)`` runs: an ``HFCausalLM`` or a ``JaxCausalLM``.
        reference: the Hugging Face torch model with the same weights, that ``generate`` runs.
    """

    backend: str
    lm: Any
    reference: Any

    def execute(self, **options: Any) -> Execute:
        return Execute(self.lm, backend=self.backend, **options)

    def hugging_face(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        """Hugging Face ``generate(do_sample=False)``'s new tokens."""
        return self.reference.generate(torch.tensor([prompt]), do_sample=False,
                                       max_new_tokens=max_new_tokens,
                                       pad_token_id=EOS)[0, len(prompt):].tolist()

    def greedy(self, prompt: list[int], max_new_tokens: int, check: bool = False
               ) -> list[int]:
        """Our greedy tokens on this backend, checked to be Hugging Face's when ``check`` and
        always on jax, where they are also checked to be the torch backend's (on torch,
        ``test_random_trees_are_lossless`` checks them against Hugging Face's)."""
        tokens = self.execute()(autoregressive()).generate(prompt, max_new_tokens).tokens
        if check or self.backend != "torch":
            assert tokens == self.hugging_face(prompt, max_new_tokens)
        if self.backend != "torch":
            assert tokens == Execute(HFCausalLM(self.reference))(autoregressive()).generate(
                prompt, max_new_tokens).tokens
        return tokens


@pytest.fixture(scope="module")
def jax_twins(model_factory, tmp_path_factory):
    """``get(kind, seed)``: ``(reference, float64 JaxCausalLM)`` of ``_model(kind, seed)``,
    cached; 64-bit JAX is on from the first jax test to the end of this module."""
    from jax_twins import jax_twin, x64

    twins: dict = {}

    def get(kind: str, seed: int):
        if (kind, seed) not in twins:
            twins[kind, seed] = jax_twin(_model(model_factory, kind, seed),
                                         tmp_path_factory.mktemp(f"lossless-{kind}-{seed}"))
        return twins[kind, seed]

    with x64():
        yield get


@pytest.fixture
def targets(backend, model_factory, request):
    """``get(kind, seed, fast=True)``: the :class:`Target` of ``_model(kind, seed)`` on the
    test's backend (``fast`` picks the torch backend's lean GPT-2 forward)."""
    if backend == "torch":
        def get(kind: str, seed: int, fast: bool = True) -> Target:
            model = _model(model_factory, kind, seed)
            return Target("torch", HFCausalLM(model, fast=fast), model)
        return get
    twins = request.getfixturevalue("jax_twins")   # JAX (and 64-bit JAX) only when asked for

    def get(kind: str, seed: int, fast: bool = True) -> Target:
        reference, twin = twins(kind, seed)
        return Target(backend, twin, reference)
    return get


def check(backend: str, examples: dict[str, int], **strategies):
    """Runs the decorated property at once, with ``examples[backend]`` hypothesis examples.

    The JAX variants run fewer examples, to keep them to about 45 s on a 2-core CPU: their time
    is mostly compiles (a per-step pass per tree bucket and cache capacity, a whole-step loop
    per step signature, e.g. per Token Recycling template, each per architecture: 1-6 s each),
    so more examples mostly mean more shapes to compile. The torch variants keep their numbers.
    """
    def run(prop) -> None:
        settings(max_examples=examples[backend], deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])(given(**strategies)(prop))()
    return run


KINDS = {"torch": ["gpt2", "gpt2-generic", "llama"], "jax": ["gpt2", "llama"]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_trees_are_lossless(backend, targets):
    """gpt2 runs the lean GPT-2 forward on torch; gpt2-generic (torch only) and llama the
    Hugging Face forward."""

    @check(backend, {"torch": 200, "jax": 30}, kind=st.sampled_from(KINDS[backend]),
           model_seed=st.integers(0, 3),
           prompt=st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=40),
           max_new_tokens=st.integers(1, 40), tree_seed=st.integers(0, 2**31))
    def lossless(kind, model_seed, prompt, max_new_tokens, tree_seed):
        target = targets(kind.removesuffix("-generic"), model_seed,
                         fast=not kind.endswith("-generic"))
        if backend == "torch":
            assert target.lm.fast == (kind == "gpt2")
        greedy = target.greedy(prompt, max_new_tokens, check=True)

        drafters: list[OracleTreeDrafter] = []

        def oracle(box, execute):
            drafters.append(OracleTreeDrafter(box.spec, greedy))
            return DrafterStep(drafters[-1])

        custom = target.execute(implementations={OracleTree: oracle})
        result = custom(speculative(OracleTree(seed=tree_seed))).generate(prompt, max_new_tokens)
        assert result.tokens == greedy
        assert sum(result.stats.accepted_per_step) == len(greedy)
        # The trees really were trees, and drafts really were accepted, across the run.
        assert drafters[0].trees


@pytest.mark.parametrize("backend", BACKENDS)
def test_prompt_lookup_is_lossless(backend, targets):
    @check(backend, {"torch": 30, "jax": 10}, kind=st.sampled_from(["gpt2", "llama"]),
           model_seed=st.integers(0, 3),
           pattern=st.lists(st.integers(4, VOCAB - 1), min_size=2, max_size=6),
           repeats=st.integers(2, 6), max_new_tokens=st.integers(1, 48),
           branches=st.integers(1, 3))
    def lossless(kind, model_seed, pattern, repeats, max_new_tokens, branches):
        target = targets(kind, model_seed)
        prompt = pattern * repeats
        greedy = target.greedy(prompt, max_new_tokens)
        fast = target.execute()(speculative(PromptLookup(branches=branches))).generate(
            prompt, max_new_tokens)
        assert fast.tokens == greedy


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_recycling_is_lossless_with_a_hot_matrix(backend, targets):
    """One compiled pipeline decodes several prompts: later ones draft from a matrix the
    earlier ones filled, so the trees are real (deep, branching) trees."""

    @check(backend, {"torch": 30, "jax": 6}, kind=st.sampled_from(["gpt2", "llama"]),
           model_seed=st.integers(0, 3),
           prompts=st.lists(st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=24),
                            min_size=1, max_size=3),
           max_new_tokens=st.integers(1, 40), max_nodes=st.sampled_from([None, 1, 7, 30]),
           k=st.integers(1, 8), dynamic=st.sampled_from([False, True, "sized"]))
    def lossless(kind, model_seed, prompts, max_new_tokens, max_nodes, k, dynamic):
        target = targets(kind, model_seed)
        template = None if k == 8 else [[r] for r in range(k)] + [[0, r] for r in range(k)]
        box = TokenRecycling(k=k, template=template, max_nodes=max_nodes, dynamic=bool(dynamic),
                             cost="cost" if dynamic == "sized" else None)
        if dynamic == "sized" and k % 2:   # the generic cost-sized wrapper, around a merge
            box = Sized(PromptLookup(num_tokens=6) | box)
        curve = {"sizes": [1, 4, 16, 64], "median_seconds": [1.0, 1.1, 1.5, 3.0]}
        recycled = target.execute(resources={"cost": curve})(speculative(box))
        for prompt in [*prompts, prompts[0]]:
            result = recycled.generate(prompt, max_new_tokens)
            assert result.tokens == target.greedy(prompt, max_new_tokens)
            assert sum(result.stats.accepted_per_step) == len(result.tokens)


@pytest.mark.parametrize("backend", BACKENDS)
def test_oracle_trees_exercise_branching_and_acceptance(targets):
    """Guards the property test itself: its trees branch and its drafts get accepted."""
    target = targets("gpt2", 0)
    prompt = [5, 6, 7, 8, 9]
    greedy = target.greedy(prompt, 40)
    seen: list[OracleTreeDrafter] = []

    def oracle(box, execute):
        seen.append(OracleTreeDrafter(box.spec, greedy))
        return DrafterStep(seen[-1])

    result = target.execute(implementations={OracleTree: oracle})(
        speculative(OracleTree(seed=1))).generate(prompt, 40)
    assert result.tokens == greedy
    assert result.stats.mean_accepted > 1.5
    assert any(t.parents.count(-1) > 1 or len(set(t.parents)) < len(t.parents)
               for t in seen[0].trees)
    assert type(target.lm).__name__ == {"torch": "HFCausalLM", "jax": "JaxCausalLM"}[
        target.backend]


# -- float32: exact up to measured near-ties ---------------------------------------------------
# (torch only: the JAX backend's float32 decoding is checked up to near-ties against Hugging
# Face in tests/models/test_jax_backend.py.)
#: In float32, a tree-batched pass and a sequential pass differ by ~1e-6 in the logits, so an
#: argmax may flip only where the top two logits are closer than this.
NEAR_TIE = 1e-4
_MODELS32: dict = {}


def _first_divergence(reference: list[int], tokens: list[int]) -> int | None:
    for index, (a, b) in enumerate(zip(reference, tokens)):
        if a != b:
            return index
    return None if len(reference) == len(tokens) else min(len(reference), len(tokens))


def _margin(model, ids: list[int]) -> float:
    """Top-1 minus top-2 logit of the model's next token after ``ids`` (sequential pass)."""
    with torch.no_grad():
        top = model(torch.tensor([ids])).logits[0, -1].double().topk(2).values
    return float(top[0] - top[1])


def assert_lossless_up_to_near_ties(model, prompt, reference, tokens) -> None:
    """Passes when ``tokens == reference``, or when they first differ at a measured near-tie."""
    index = _first_divergence(reference, tokens)
    if index is None:
        return
    margin = _margin(model, prompt + reference[:index])
    assert margin < NEAR_TIE, (f"diverged from the reference at token {index} where the "
                               f"target's top-2 margin is {margin:.3g}: not a near-tie")


def test_the_near_tie_check_fails_on_a_real_divergence(model_factory):
    model = model_factory("gpt2", 0, vocab=VOCAB, dtype=torch.float32)
    prompt = [5, 6, 7]
    reference = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=6,
                               pad_token_id=3)[0, 3:].tolist()
    assert_lossless_up_to_near_ties(model, prompt, reference, list(reference))
    wrong = list(reference)
    wrong[2] = (wrong[2] + 1) % VOCAB
    with pytest.raises(AssertionError, match="diverged from the reference at token 2"):
        assert_lossless_up_to_near_ties(model, prompt, reference, wrong)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["gpt2", "gpt2-generic", "llama"]), model_seed=st.integers(0, 3),
       prompt=st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=40),
       max_new_tokens=st.integers(1, 40), tree_seed=st.integers(0, 2**31))
def test_float32_random_trees_are_lossless_up_to_near_ties(model_factory, kind, model_seed,
                                                            prompt, max_new_tokens, tree_seed):
    base = kind.removesuffix("-generic")
    if (base, model_seed) not in _MODELS32:
        _MODELS32[base, model_seed] = model_factory(base, model_seed, vocab=VOCAB,
                                                    dtype=torch.float32)
    model = _MODELS32[base, model_seed]
    lm = HFCausalLM(model, fast=not kind.endswith("-generic"))
    hf = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=max_new_tokens,
                        pad_token_id=3)[0, len(prompt):].tolist()

    def oracle(box, execute):
        return DrafterStep(OracleTreeDrafter(box.spec, hf))

    result = Execute(lm, implementations={OracleTree: oracle})(
        speculative(OracleTree(seed=tree_seed))).generate(prompt, max_new_tokens)
    assert_lossless_up_to_near_ties(model, prompt, hf, result.tokens)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_draft_model_is_lossless(backend, targets):
    """The draft model is another random model over the same vocabulary (sometimes the target
    itself, which makes every draft token right), on the target's backend; it drafts chains
    (of adaptive length) or trees of its top tokens."""

    @check(backend, {"torch": 30, "jax": 10}, kind=st.sampled_from(["gpt2", "llama"]),
           model_seed=st.integers(0, 3), draft_seed=st.integers(0, 3),
           prompt=st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=24),
           max_new_tokens=st.integers(1, 40), num_tokens=st.integers(1, 6),
           shape=st.sampled_from([(None, None), (0.3, None), (0.8, None), (None, [2]),
                                  (None, [3, 1]), (None, [2, 2, 1])]),
           cost=st.booleans())
    def lossless(kind, model_seed, draft_seed, prompt, max_new_tokens, num_tokens, shape,
                 cost):
        stop_threshold, branches = shape
        target = targets(kind, model_seed)
        draft = target.lm if draft_seed == model_seed else targets("gpt2", draft_seed).lm
        # A cost curve under which drafting sometimes pays and sometimes not (steps skipped).
        curve = {"sizes": [1, 2, 8], "median_seconds": [1e-3, 1.5e-3, 4e-3]}
        execute = target.execute(resources={"draft": draft, "cost": curve})
        greedy = target.greedy(prompt, max_new_tokens)
        step = speculative(DraftModel(num_tokens=num_tokens, stop_threshold=stop_threshold,
                                      branches=branches, cost="cost" if cost else None))
        result = execute(step).generate(prompt, max_new_tokens)
        assert result.tokens == greedy
        if draft is target.lm and stop_threshold is None and max_new_tokens > num_tokens + 1 \
                and not cost and EOS not in result.tokens:   # an end token cuts the step short
            assert max(result.stats.accepted_per_step) == num_tokens + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_aded_is_lossless_with_a_hot_table(backend, targets):
    """Later prompts draft from a table the earlier ones filled, seeded from a corpus or not."""
    from diagrammar.decoding.drafters.retrieval import Datastore

    @check(backend, {"torch": 25, "jax": 8}, kind=st.sampled_from(["gpt2", "llama"]),
           model_seed=st.integers(0, 3),
           prompts=st.lists(st.lists(st.integers(4, VOCAB - 1), min_size=2, max_size=20),
                            min_size=1, max_size=3),
           max_new_tokens=st.integers(1, 40), max_nodes=st.sampled_from([1, 6, 16]),
           simulations=st.sampled_from([1, 8, 32]), corpus=st.booleans())
    def lossless(kind, model_seed, prompts, max_new_tokens, max_nodes, simulations, corpus):
        target = targets(kind, model_seed)
        store = Datastore.from_token_lists([p * 3 for p in prompts])
        aded = target.execute(resources={"corpus": store})(speculative(Aded(
            max_nodes=max_nodes, simulations=simulations, corpus="corpus" if corpus else None)))
        for prompt in [*prompts, prompts[0]]:
            assert aded.generate(prompt, max_new_tokens).tokens == target.greedy(
                prompt, max_new_tokens)


@pytest.mark.parametrize("backend", BACKENDS)
def test_retrieval_and_rasd_are_lossless(backend, targets):
    """The datastore holds the true continuation (some tokens corrupted) among random
    sequences, so drafts are partly right and partly wrong."""
    from diagrammar.decoding.drafters.retrieval import Datastore

    @check(backend, {"torch": 25, "jax": 8}, kind=st.sampled_from(["gpt2", "llama"]),
           model_seed=st.integers(0, 3),
           prompt=st.lists(st.integers(4, VOCAB - 1), min_size=2, max_size=16),
           max_new_tokens=st.integers(1, 40), corrupt=st.integers(0, 5),
           rasd=st.booleans(), data_seed=st.integers(0, 100))
    def lossless(kind, model_seed, prompt, max_new_tokens, corrupt, rasd, data_seed):
        target = targets(kind, model_seed)
        greedy = target.greedy(prompt, max_new_tokens)
        rng = random.Random(data_seed)
        truth = list(prompt[-4:]) + greedy
        for _ in range(corrupt):
            truth[rng.randrange(len(truth))] = rng.randrange(4, VOCAB)
        noise = [[rng.randrange(4, VOCAB) for _ in range(30)] for _ in range(3)]
        store = Datastore.from_token_lists([truth, *noise])
        drafter = (Rasd(Retrieval(min_suffix=1), DraftModel(num_tokens=2, branches=[2]))
                   if rasd else Retrieval(min_suffix=1))
        draft = targets("gpt2", (model_seed + 1) % 4).lm
        step = speculative(drafter)
        result = target.execute(resources={"datastore": store, "draft": draft})(step).generate(
            prompt, max_new_tokens)
        assert result.tokens == greedy
        if corrupt == 0 and max_new_tokens >= 10:   # the true continuation is retrieved
            assert result.stats.mean_accepted > 1.5
