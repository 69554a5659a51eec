"""The step's contract with drafters and pipelines: budgets, ids, progress, clear errors."""

from __future__ import annotations

import pytest

from diagrammar.decoding import DraftTree
from diagrammar.decoding.steps import DecodingError, DrafterStep
from diagrammar.diagrams import (
    Context,
    Drafter,
    Pipeline,
    PromptLookup,
    Verify,
    autoregressive,
    speculative,
)
from diagrammar.functors import Execute, ExecuteError, generate


class Deep(Drafter):
    def __init__(self, tokens: list | None = None) -> None:
        super().__init__(tokens=tokens or [])


def _fixed(box, execute):
    return DrafterStep(lambda state: DraftTree.chain(box.spec["tokens"]))


@pytest.fixture
def model(model_factory):
    return model_factory("gpt2", 0)


def test_verify_prunes_drafts_deeper_than_the_budget(model):
    greedy = Execute(model)(autoregressive()).generate([5, 6], 40).tokens
    execute = Execute(model, implementations={Deep: _fixed})
    for budget in (1, 2, 5):
        result = execute(speculative(Deep(tokens=greedy))).generate([5, 6], budget)
        assert result.tokens == greedy[:budget] and result.stats.steps == 1


def test_draft_ids_outside_the_vocabulary_are_a_clear_error(model):
    execute = Execute(model, implementations={Deep: _fixed})
    with pytest.raises(DecodingError, match="token id 48, outside the model's vocabulary of 48"):
        execute(speculative(Deep(tokens=[5, 48]))).generate([5, 6], 8)


@pytest.mark.parametrize("prompt, message", [
    ([5, 99], "prompt token id 99 .at position 1. is outside the model's vocabulary of 48"),
    ([5, -1], "prompt token id -1"), ([5, 1.5], "must be integers"),
])
def test_prompt_ids_are_checked(model, prompt, message):
    with pytest.raises(ValueError, match=message):
        Execute(model)(autoregressive()).generate(prompt, 3)


def test_a_pipeline_that_commits_nothing_is_refused(model):
    with pytest.raises(ExecuteError, match="no box that commits"):
        Execute(model)(Pipeline.id(Context))
    with pytest.raises(ExecuteError, match="no box that commits"):
        generate(model, [5, 6], '{"format": "diagrammar.pipeline", "version": 1, '
                                '"dom": ["Context"], "cod": ["Context"], "layers": []}')


def test_a_drafter_only_pipeline_says_it_cannot_decode(model):
    compiled = Execute(model)(PromptLookup() >> Verify())
    with pytest.raises(ExecuteError, match="goes Context -> Context @ Draft @ Scores, so it "
                                           "cannot decode"):
        compiled.generate([5, 6], 4)
