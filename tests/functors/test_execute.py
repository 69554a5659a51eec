from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from diagrammar.decoding import DraftTree
from diagrammar.decoding.steps import DrafterStep
from diagrammar.diagrams import (
    Aded,
    Check,
    Commit,
    Constrain,
    Context,
    Drafter,
    DraftModel,
    GreedyAccept,
    Monitor,
    NoDraft,
    Pipeline,
    PromptLookup,
    Rasd,
    Retrieval,
    Sized,
    SpecTrAccept,
    SpeculativeSampling,
    StepBox,
    TokenRecycling,
    autoregressive,
    box_registry,
    constrained,
    speculative,
)
from diagrammar.functors import CompiledDiagram, Decoder, Execute, ExecuteError, generate
from diagrammar.models import HFCausalLM
from diagrammar.models.loader import load_torch_model

PROMPT = [5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6]


@pytest.fixture(scope="module")
def model(model_factory):
    return model_factory("gpt2", 3)


# Test boxes stay out of the global registry (tests/conftest.py scopes those a test defines).
with box_registry():
    class Fixed(Drafter):
        def __init__(self, tokens: list | None = None) -> None:
            super().__init__(tokens=tokens or [])


def test_execute_builds_a_decoder_with_stats(model):
    decoder = Execute(model)(speculative(PromptLookup()))
    assert isinstance(decoder, Decoder)
    result = decoder.generate(PROMPT, 30)
    assert len(result.tokens) == 30 and result.text is None
    stats = result.stats
    assert stats.steps == len(stats.accepted_per_step) and sum(stats.accepted_per_step) == 30
    assert set(stats.box_seconds) == {box.name for box in decoder.diagram.boxes}
    assert all(seconds > 0 for seconds in stats.box_seconds.values())
    again = decoder.generate(PROMPT, 30)          # timers and drafter index reset per decode
    assert again.tokens == result.tokens and again.stats.steps == stats.steps


def test_override_table_is_a_custom_functor(model):
    calls = []

    def fixed(box, execute):
        calls.append(box.spec["tokens"])
        return DrafterStep(lambda state: DraftTree.chain(box.spec["tokens"][:state.draft_budget]))

    greedy = Execute(model)(autoregressive()).generate(PROMPT, 12).tokens
    execute = Execute(model, implementations={Fixed: fixed})
    result = execute(speculative(Fixed(tokens=greedy[:5]))).generate(PROMPT, 12)
    assert calls == [greedy[:5]]
    assert result.tokens == greedy
    assert result.stats.accepted_per_step[0] == 6          # five drafted tokens and the bonus


def test_override_replaces_a_builtin_box(model):
    seen = []

    def spy_commit(box, execute):
        from diagrammar.decoding.steps import commit_step

        def run(state, accepted):
            seen.append(accepted.tokens)
            return commit_step(state, accepted)
        return run

    Execute(model, implementations={Commit: spy_commit})(autoregressive()).generate(PROMPT, 4)
    assert len(seen) == 4


def test_subclass_overrides_implement(model):
    class Tracing(Execute):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.implemented = []

        def implement(self, box):
            self.implemented.append(type(box).__name__)
            return super().implement(box)

    tracing = Tracing(model)
    tracing(speculative(PromptLookup() | NoDraft()))
    assert tracing.implemented == ["Merge", "PromptLookup", "NoDraft", "Verify",
                                   "GreedyAccept", "Commit"]


def test_unknown_box_and_backend_are_clear_errors(model):
    with pytest.raises(ExecuteError, match=r"box 'Fixed\(tokens=\[\]\)' \(Fixed\) has no "
                                           "implementation on the 'torch' backend"):
        Execute(model)(speculative(Fixed()))
    with pytest.raises(ValueError, match="unknown backend 'tpu'; known backends: jax, torch"):
        Execute(model, backend="tpu")
    with pytest.raises(TypeError, match="takes a pipeline"):
        Execute(model)("not a diagram")


def test_parallel_diagrams_run_side_by_side(model):
    """``@`` runs two steps on two sequences; a swap exchanges the wires."""
    class Tick(StepBox):
        dom, cod = Context, Context

        def __init__(self):
            super().__init__()

    ticks = []

    def tick(box, execute):
        return lambda value: (ticks.append(value) or value + 1,)

    compiled = Execute(model, implementations={Tick: tick})(
        (Tick() @ Tick()) >> Pipeline.swap(Context, Context) >> (Tick() @ Pipeline.id(Context)))
    assert isinstance(compiled, CompiledDiagram) and not isinstance(compiled, Decoder)
    assert compiled(10, 20) == (22, 11)
    assert ticks == [10, 20, 21]


def test_generate_shortcut_and_model_forms(model, saved_model_dir):
    assert generate(model, PROMPT, "autoregressive", max_new_tokens=3).stats.steps == 3
    lm = HFCausalLM(model)
    assert load_torch_model(lm) is lm
    assert isinstance(load_torch_model((model, None)), HFCausalLM)
    assert isinstance(load_torch_model(str(saved_model_dir)), HFCausalLM)
    with pytest.raises(TypeError, match="the torch backend takes"):
        load_torch_model(42)
    result = generate(saved_model_dir, "def f(x):", "prompt-lookup", max_new_tokens=5)
    assert isinstance(result.text, str) and len(result.tokens) == 5


def test_every_builtin_box_runs_on_the_torch_backend(model):
    from diagrammar.decoding.drafters.retrieval import Datastore
    from diagrammar.diagrams import BOX_CLASSES

    builtin = {cls for cls in BOX_CLASSES.values() if cls.__module__.startswith("diagrammar.")}
    drafter = (PromptLookup() | NoDraft() | TokenRecycling() | DraftModel() | Aded()
               | Rasd(Retrieval(), DraftModel(num_tokens=2)) | Sized(PromptLookup()))
    steps = [speculative(drafter, accept())
             for accept in (GreedyAccept, SpeculativeSampling, SpecTrAccept)]
    used = {type(box) for step in steps for box in step.boxes} | {
        type(d) for d in drafter.drafters} | {Retrieval, Constrain, Monitor, Check}
    # Constrain runs below, on a model with a tokenizer; Monitor in test_monitor.py; Check
    # (which reads text, so needs a tokenizer) in tests/decoding/test_check.py
    assert used == builtin
    store = Datastore.from_token_lists([PROMPT * 3])
    curve = {"sizes": [1, 8], "median_seconds": [1.0, 1.5]}
    for step in steps:
        decoder = Execute(model, resources={"draft": model, "datastore": store,
                                            "cost": curve})(step)
        assert len(decoder.generate(PROMPT, 6).tokens) == 6


def test_custom_functor_example_runs():
    example = Path(__file__).parents[2] / "examples" / "custom_functor.py"
    out = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert out.count("identical to greedy: True") == 2


def test_constrain_runs_on_the_torch_backend_with_a_real_engine(saved_model_dir):
    """The Constrain box through the implementation table: a grammar resource compiled by
    each engine for the model's tokenizer; every output matches the grammar."""
    import re

    for engine in ("llguidance", "xgrammar"):
        execute = Execute(str(saved_model_dir), resources={"g": "regex:[a-d]+( [a-d]+)*"})
        step = constrained(speculative(PromptLookup()), Constrain(grammar="g", engine=engine))
        result = execute(step).generate("abc abc abc", 12)
        assert result.tokens and re.fullmatch(r"[a-d]+( [a-d]+)*", result.text.rstrip(
            execute.model.tokenizer.eos_token or "")), result.text

