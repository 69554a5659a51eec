"""The seam, proven: a second backend (NumPy) runs the same pipelines unchanged and writes the
same tokens as the torch backend."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy_gpt2_backend import NumpyGPT2

from diagrammar.decoding import DraftTree, LanguageModel, Session
from diagrammar.decoding.drafters.retrieval import Datastore
from diagrammar.decoding.steps import DrafterStep
from diagrammar.diagrams import PIPELINES, Drafter, box_registry, speculative
from diagrammar.functors import Execute
from diagrammar.functors.backends import Backend, backend_registry, register_backend


@pytest.fixture
def numpy_backend():
    with backend_registry():
        register_backend(Backend("numpy", load_model=NumpyGPT2))
        yield "numpy"


def test_numpy_model_follows_the_contracts(model_factory):
    lm = NumpyGPT2(model_factory("gpt2", 0))
    assert isinstance(lm, LanguageModel)
    assert isinstance(lm.session([5, 6, 7]), Session)


def test_numpy_scores_match_torch_scores(model_factory):
    from diagrammar.models import HFCausalLM

    model = model_factory("gpt2", 1)
    ours = NumpyGPT2(model).session([5, 6, 7, 8])
    theirs = HFCausalLM(model).session([5, 6, 7, 8])
    args = (8, [9, 10, 11, 12], [-1, 0, -1, 2])
    assert abs(ours.verify(*args) - theirs.verify(*args).numpy()).max() < 1e-9


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(PIPELINES)), seed=st.integers(0, 3),
       pattern=st.lists(st.integers(4, 47), min_size=2, max_size=5), repeats=st.integers(1, 4),
       max_new_tokens=st.integers(1, 30))
def test_every_named_pipeline_is_token_identical_across_backends(
        model_factory, numpy_backend, name, seed, pattern, repeats, max_new_tokens):
    model = model_factory("gpt2", seed)
    prompt = pattern * repeats
    step = PIPELINES[name]()
    # Pipelines that need a draft model get another random GPT-2 over the same vocabulary,
    # loaded by each backend (so it too runs on NumPy there).
    # Retrieval pipelines get a datastore holding the prompt's pattern among other sequences.
    store = Datastore.from_token_lists([pattern * 4, list(range(4, 40)), pattern[::-1] * 3])
    resources = {"draft": model_factory("gpt2", seed + 4),
                 "cost": {"sizes": [1, 8, 64], "median_seconds": [1.0, 1.2, 3.0]},
                 "datastore": store}
    on_torch = Execute(model, resources=resources)(step).generate(prompt, max_new_tokens)
    on_numpy = Execute(model, backend=numpy_backend, resources=resources)(step).generate(
        prompt, max_new_tokens)
    assert on_numpy.tokens == on_torch.tokens
    assert on_numpy.stats.accepted_per_step == on_torch.stats.accepted_per_step


def test_random_trees_are_identical_across_backends(model_factory, numpy_backend):
    """A custom drafter of random branching trees: same steps on both backends."""
    model = model_factory("gpt2", 2)
    prompt = [5, 6, 7, 8, 9]
    with box_registry():
        class RandomTree(Drafter):
            def __init__(self, seed: int = 0) -> None:
                super().__init__(seed=seed)

        def random_tree(box, execute):
            rng = random.Random(box.spec["seed"])

            def draft(state):
                tree = DraftTree()
                for _ in range(3):
                    tree.add_path([rng.randrange(4, 48) for _ in range(rng.randint(1, 4))])
                return tree
            return DrafterStep(draft)

        results = []
        for backend in ("torch", numpy_backend):
            execute = Execute(model, backend=backend, implementations={RandomTree: random_tree})
            results.append(execute(speculative(RandomTree(seed=3))).generate(prompt, 25))
    assert results[0].tokens == results[1].tokens
    assert results[0].stats.steps == results[1].stats.steps
