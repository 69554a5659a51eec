"""Whole-step compilation: the compiled loop against the per-step loop and Hugging Face.

On random GPT-2 and Llama models in float64 (64-bit JAX for this module), a pipeline decoded
as one compiled ``lax.while_loop`` writes exactly the tokens of the same pipeline in the
per-step loop and of ``generate(do_sample=False)``, step for step (the same tokens committed
at every step, the same draft sizes), through end tokens and budgets of 0 and 1; the learned
state (Token Recycling's matrix) is the same after either loop; and a step that cannot compile
falls back to the per-step loop with the reason in its stats.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import EOS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax_twins import jax_twin, x64

from diagrammar.decoding import GenerationConfig
from diagrammar.decoding.steps import DecodingError
from diagrammar.diagrams import (
    PromptLookup,
    TokenRecycling,
    autoregressive,
    speculative,
)
from diagrammar.functors import Execute, ExecuteError

VOCAB = 48
PIPELINES = {
    "autoregressive": autoregressive,
    "prompt-lookup": lambda: speculative(PromptLookup(num_tokens=6, max_ngram=2)),
    "token-recycling": lambda: speculative(TokenRecycling(k=4, max_nodes=12)),
}


@pytest.fixture(scope="module", autouse=True)
def sixty_four_bits():
    with x64():
        yield


_TWINS: dict = {}


@pytest.fixture(scope="module")
def twins(model_factory, tmp_path_factory):
    """``get(kind, seed)``: (float64 Hugging Face reference, float64 JaxCausalLM)."""

    def get(kind: str, seed: int):
        if (kind, seed) not in _TWINS:
            model = model_factory(kind, seed, vocab=VOCAB)
            _TWINS[kind, seed] = jax_twin(model, tmp_path_factory.mktemp(f"{kind}-{seed}"))
        return _TWINS[kind, seed]

    return get


def hf_greedy(reference, prompt: list[int], max_new_tokens: int) -> list[int]:
    if max_new_tokens == 0:
        return []
    with torch.no_grad():
        out = reference.generate(torch.tensor([prompt]), max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=EOS, pad_token_id=EOS)
    return out[0, len(prompt):].tolist()


def decoders(model, name: str):
    """The same pipeline in both loops."""
    return (Execute(model, backend="jax", step_mode="compiled")(PIPELINES[name]()),
            Execute(model, backend="jax", step_mode="per-step")(PIPELINES[name]()))


prompts = st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=6).flatmap(
    lambda pattern: st.integers(1, 4).map(lambda repeats: pattern * repeats))


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["gpt2", "llama"]), seed=st.integers(0, 1),
       name=st.sampled_from(sorted(PIPELINES)), prompt=prompts,
       max_new_tokens=st.integers(0, 40))
def test_the_compiled_loop_is_the_per_step_loop_and_hugging_face(twins, kind, seed, name,
                                                                  prompt, max_new_tokens):
    reference, model = twins(kind, seed)
    compiled, per_step = decoders(model, name)
    fast = compiled.generate(prompt, max_new_tokens)
    slow = per_step.generate(prompt, max_new_tokens)
    assert fast.stats.mode == "compiled" and slow.stats.mode == "per-step"
    assert fast.tokens == slow.tokens == hf_greedy(reference, prompt, max_new_tokens)
    assert fast.stats.accepted_per_step == slow.stats.accepted_per_step
    assert fast.stats.draft_nodes_per_step == slow.stats.draft_nodes_per_step


def test_speculation_is_accepted_and_end_tokens_stop_the_loop(twins):
    reference, model = twins("gpt2", 0)
    compiled, per_step = decoders(model, "prompt-lookup")
    prompt = [5, 6, 7, 8, 9] * 6
    fast, slow = compiled.generate(prompt, 60), per_step.generate(prompt, 60)
    assert fast.tokens == slow.tokens == hf_greedy(reference, prompt, 60)
    assert fast.stats.mean_accepted > 1.0
    ended = [i for i, token in enumerate(fast.tokens) if token == EOS]
    if ended:                                   # an end token is the last token
        assert ended == [len(fast.tokens) - 1]


def test_end_tokens_end_both_loops_alike(twins):
    """Prompts after which this model writes its end token early (found by a search)."""
    reference, model = twins("llama", 0)
    for prompt in ([23, 34, 26, 41] * 3, [18, 19, 13, 38, 32] * 2, [42, 42]):
        compiled, per_step = decoders(model, "prompt-lookup")
        fast, slow = compiled.generate(prompt, 48), per_step.generate(prompt, 48)
        assert fast.tokens == slow.tokens == hf_greedy(reference, prompt, 48)
        assert fast.tokens[-1] == EOS and len(fast.tokens) < 48
        assert fast.stats.accepted_per_step == slow.stats.accepted_per_step


def test_token_recycling_learns_the_same_matrix_in_both_loops(twins):
    _, model = twins("gpt2", 1)
    compiled, per_step = decoders(model, "token-recycling")
    for prompt in ([4, 5, 6, 7] * 3, [8, 9] * 5, [12, 13, 14] * 4):
        fast, slow = compiled.generate(prompt, 30), per_step.generate(prompt, 30)
        assert fast.tokens == slow.tokens
        assert fast.stats.accepted_per_step == slow.stats.accepted_per_step
    (_, learned), = compiled.learned_state()
    (_, host), = per_step.learned_state()
    assert np.array_equal(learned.matrix, host.matrix)
    np.testing.assert_allclose(learned.probs, host.probs, rtol=1e-4, atol=1e-6)


def test_a_hot_matrix_passes_between_the_loops(twins, tmp_path):
    """The compiled loop starts from the drafter's matrix and gives it back: saving after a
    compiled decode and loading into a per-step decoder drafts the same trees."""
    _, model = twins("gpt2", 0)
    compiled, per_step = decoders(model, "token-recycling")
    compiled.generate([4, 5, 6, 7] * 3, 30)
    compiled.save_state(tmp_path)
    per_step.load_state(tmp_path)
    prompt = [6, 7, 4, 5] * 3
    assert compiled.generate(prompt, 20).stats.draft_nodes_per_step == \
        per_step.generate(prompt, 20).stats.draft_nodes_per_step


def test_compiles_are_counted_once_per_capacity_and_kept_apart(twins, monkeypatch):
    from diagrammar.decoding.compiled import loop

    monkeypatch.setattr(loop, "_EXECUTABLES", {})          # forget other tests' compiles
    _, model = twins("llama", 0)
    compiled, _ = decoders(model, "autoregressive")
    first = compiled.generate([5, 6, 7], 10)
    again = compiled.generate([8, 9, 10], 20)               # same shapes: nothing compiles
    assert first.stats.compiles >= 1 and first.stats.compile_seconds > 0
    assert again.stats.compiles == 0 and again.stats.compile_seconds == 0
    loops = [entry for entry in model.compiled if entry[0] == "whole-step"]
    compiled.generate([8, 9, 10, 11, 12], 30)                # a new prefill shape, same loop
    assert [entry for entry in model.compiled if entry[0] == "whole-step"] == loops
    assert ("whole-step", 1, 128) in model.compiled
    longer = compiled.generate([5] * 100, 100)               # a larger capacity compiles
    assert longer.stats.compiles >= 1
    assert "compiled loop" in first.stats.summary()
    assert first.stats.as_dict()["mode"] == "compiled"
    other, _ = decoders(model, "autoregressive")             # another decoder shares them
    assert other.generate([5, 6, 7], 10).stats.compiles == 0


def test_steps_that_cannot_compile_run_per_step_and_say_why(twins):
    _, model = twins("gpt2", 0)
    execute = Execute(model, backend="jax")
    tree = execute(speculative(PromptLookup(branches=3)))
    result = tree.generate([5, 6, 7] * 4, 10)
    assert result.stats.mode == "per-step"
    assert "branches" in result.stats.mode_reason
    with pytest.raises(DecodingError, match="GreedyAccept decodes greedily"):  # as per step
        execute(autoregressive()).generate([5, 6], 5,
                                           config=GenerationConfig(temperature=0.8, seed=1))
    assert execute(autoregressive()).generate([5, 6], 5).stats.mode == "compiled"
    asked = Execute(model, backend="jax", step_mode="per-step")(autoregressive())
    assert asked.generate([5, 6], 5).stats.mode_reason == "step_mode='per-step' was asked"
    with pytest.raises(ExecuteError, match="branches"):
        Execute(model, backend="jax", step_mode="compiled")(
            speculative(PromptLookup(branches=3))).generate([5, 6], 5)
    with pytest.raises(ValueError, match="step_mode must be one of"):
        Execute(model, backend="jax", step_mode="fast")


def test_a_custom_implementation_keeps_its_box_per_step(twins):
    from diagrammar.decoding.steps import DrafterStep
    from diagrammar.decoding.tree import DraftTree
    from diagrammar.diagrams import NoDraft

    _, model = twins("gpt2", 0)
    calls = []

    def mine(box, execute):
        def drafter(state):
            calls.append(len(state.tokens))
            return DraftTree()
        return DrafterStep(drafter)

    decoder = Execute(model, backend="jax", implementations={NoDraft: mine})(autoregressive())
    result = decoder.generate([5, 6, 7], 4)
    assert result.stats.mode == "per-step" and "custom" in result.stats.mode_reason
    assert calls                                     # the user's drafter ran


def test_the_torch_backend_reports_no_reason(twins):
    reference, _ = twins("gpt2", 0)
    result = Execute(reference)(autoregressive()).generate([5, 6, 7], 4)
    assert result.stats.mode == "per-step" and result.stats.mode_reason is None
    with pytest.raises(ExecuteError, match="does not compile whole steps"):
        Execute(reference, step_mode="compiled")(autoregressive()).generate([5, 6], 3)


def test_the_compiled_loop_runs_the_pallas_kernel(model_factory, tmp_path):
    """In float32 (the kernel has no float64), with the Pallas kernel interpreted on the CPU:
    the compiled loop writes the tokens of the per-step loop with the einsum attention."""
    from diagrammar.models.jax import JaxCausalLM

    model = model_factory("llama", 0, vocab=VOCAB, dtype=torch.float32)
    model.save_pretrained(tmp_path)
    kernel = JaxCausalLM.from_folder(tmp_path, require_tokenizer=False, attention="pallas")
    einsum = JaxCausalLM.from_folder(tmp_path, require_tokenizer=False)
    prompt = [5, 6, 7, 8] * 3
    for name in ("autoregressive", "prompt-lookup"):
        fast = Execute(kernel, backend="jax", step_mode="compiled")(PIPELINES[name]())
        slow = Execute(einsum, backend="jax", step_mode="per-step")(PIPELINES[name]())
        assert fast.generate(prompt, 12).tokens == slow.generate(prompt, 12).tokens


def test_a_check_box_keeps_its_step_per_step_with_the_same_tokens(twins):
    """A ``Check`` box has no array implementation: the step runs per step, says why, and an
    always-passing checker changes no token."""
    from diagrammar.diagrams import Check

    class Passes:
        def check(self, text):
            return type("Verdict", (), {"status": "pass", "reason": ""})()

    _, model = twins("gpt2", 0)
    execute = Execute(model, backend="jax", resources={"checker": Passes()})
    checked = execute(speculative(PromptLookup(), check=Check())).generate([5, 6, 7] * 4, 16)
    assert checked.stats.mode == "per-step" and "Check" in checked.stats.mode_reason
    assert checked.tokens == execute(speculative(PromptLookup())).generate([5, 6, 7] * 4,
                                                                          16).tokens
