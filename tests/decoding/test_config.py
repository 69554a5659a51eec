from __future__ import annotations

import pytest

from diagrammar.decoding import GenerationConfig
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.steps import DecodingError
from diagrammar.diagrams import PromptLookup, autoregressive, speculative
from diagrammar.functors import Execute


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": -1}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"top_k": 0}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"top_p": 0}, "top_p"),
    ({"seed": -3}, "seed"), ({"seed": True}, "seed"),
])
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**kwargs)


def test_one_rng_per_generation_reproducible_from_the_seed():
    config = GenerationConfig(temperature=1.0, seed=7)
    first = DecodeState(None, [1], 1, 4, config=config).rng.random(5)
    again = DecodeState(None, [1], 1, 4, config=config).rng.random(5)
    other = DecodeState(None, [1], 1, 4, config=GenerationConfig(temperature=1.0, seed=8))
    assert (first == again).all() and not (first == other.rng.random(5)).all()


def test_greedy_is_the_default_and_explicit_greedy_is_identical(model_factory):
    decoder = Execute(model_factory("gpt2", 0))(speculative(PromptLookup()))
    prompt = [5, 6, 7, 5, 6, 7, 5]
    default = decoder.generate(prompt, 20)
    explicit = decoder.generate(prompt, 20, config=GenerationConfig(seed=3))
    assert default.tokens == explicit.tokens
    assert default.stats.config == GenerationConfig()
    assert default.stats.as_dict()["config"]["temperature"] == 0.0


def test_greedy_acceptance_refuses_a_sampling_config(model_factory):
    decoder = Execute(model_factory("gpt2", 0))(autoregressive())
    with pytest.raises(DecodingError, match="GreedyAccept decodes greedily.*temperature=0.7"):
        decoder.generate([5, 6], 4, config=GenerationConfig(temperature=0.7))
