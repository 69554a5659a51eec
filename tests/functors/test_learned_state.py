"""Online adaptation: drafters that learn from the target keep learning across prompts; what
they learned can be saved and loaded (so a run can start warm, reproducibly); ``frozen``
stops the learning."""

from __future__ import annotations

import numpy as np
import pytest

from diagrammar.decoding.drafters.base import drafter_parts
from diagrammar.decoding.drafters.merge import MergeDrafter
from diagrammar.diagrams import (
    Aded,
    DraftModel,
    PromptLookup,
    TokenRecycling,
    speculative,
)
from diagrammar.functors import Execute, ExecuteError

STEPS = {
    "token recycling": speculative(TokenRecycling(max_nodes=8)),
    "aded": speculative(Aded(max_nodes=8)),
    "adaptive draft model": speculative(DraftModel(num_tokens=4, stop_threshold=0.5)),
    "merged": speculative(PromptLookup() | TokenRecycling(max_nodes=6, dynamic=True)
                          | Aded(max_nodes=4)),
}


@pytest.fixture(scope="module")
def models():
    from conftest import make_model

    return make_model("gpt2", 0), make_model("gpt2", 1)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_saved_state_makes_a_fresh_decoder_draft_the_same(models, name, tmp_path):
    target, draft = models
    step = STEPS[name]
    learned = Execute(target, resources={"draft": draft})(step)
    for prompt in ([5, 6, 7, 8] * 3, [9, 10, 11, 12, 9, 10], [20, 21, 22]):
        learned.generate(prompt, 20)
    assert learned.learned_state(), "a learning drafter was found"
    learned.save_state(tmp_path)
    fresh = Execute(target, resources={"draft": draft})(step)
    fresh.load_state(tmp_path)
    cold = Execute(target, resources={"draft": draft})(step)
    prompt = [5, 6, 7, 8, 30, 31]
    warm_run, loaded_run = learned.generate(prompt, 24), fresh.generate(prompt, 24)
    assert loaded_run.tokens == warm_run.tokens == cold.generate(prompt, 24).tokens
    assert loaded_run.stats.accepted_per_step == warm_run.stats.accepted_per_step


def test_state_of_another_step_is_refused(models, tmp_path):
    target, _ = models
    Execute(target)(STEPS["aded"]).save_state(tmp_path / "aded")
    with pytest.raises(ExecuteError, match="holds the state of drafters"):
        Execute(target)(STEPS["token recycling"]).load_state(tmp_path / "aded")
    with pytest.raises(ExecuteError, match="no saved drafter state"):
        Execute(target)(STEPS["aded"]).load_state(tmp_path / "nothing")


def test_frozen_drafters_do_not_change(models):
    target, draft = models
    for box in (TokenRecycling(max_nodes=8, frozen=True), Aded(frozen=True),
                DraftModel(stop_threshold=0.5, frozen=True)):
        decoder = Execute(target, resources={"draft": draft})(speculative(box))
        (_, drafter), = decoder.learned_state()
        before = _snapshot(drafter)
        decoder.generate([5, 6, 7, 8] * 3, 20)
        assert _snapshot(drafter) == before, box.name


def _snapshot(drafter):
    import io

    buffer = io.BytesIO()
    drafter.save(buffer)
    buffer.seek(0)
    with np.load(buffer) as data:   # an unfilled matrix (all -1) is the same as none
        return {name: (int((data[name] >= 0).sum()) if name == "matrix" else
                       float(data[name].sum()) if name == "probs" else data[name].tolist())
                for name in data.files}


def test_composite_drafters_expose_their_parts():
    from diagrammar.decoding.drafters import NoDraftDrafter, PromptLookupDrafter

    inner = MergeDrafter([NoDraftDrafter(), PromptLookupDrafter()])
    assert [type(d).__name__ for d in drafter_parts(MergeDrafter([inner]))] == [
        "MergeDrafter", "MergeDrafter", "NoDraftDrafter", "PromptLookupDrafter"]
