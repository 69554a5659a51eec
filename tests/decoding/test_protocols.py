"""The contracts as code: real classes and small fakes satisfy the protocols, and the step
wiring needs nothing beyond them."""

from __future__ import annotations

import numpy as np

from diagrammar.decoding import (
    BaseDrafter,
    Drafter,
    DraftTree,
    LanguageModel,
    MergeDrafter,
    NoDraftDrafter,
    PromptLookupDrafter,
    Session,
    Verification,
)
from diagrammar.decoding.loop import decode
from diagrammar.decoding.steps import (
    DrafterStep,
)


class FakeSession:
    """Predicts ``(token + 1) % 10`` after every token; records the calls it gets."""

    def __init__(self, prompt):
        self.cache_length = len(prompt) - 1
        self.calls = []

    def verify(self, root, tokens, parents):
        self.calls.append(("verify", root, list(tokens), list(parents)))
        scores = np.zeros((len(tokens) + 1, 10))
        for row, token in enumerate([root, *tokens]):
            scores[row, (token + 1) % 10] = 1.0
        return scores

    def keep(self, path):
        self.calls.append(("keep", list(path)))
        self.cache_length += len(path) + 1

    def truncate(self, length):
        self.cache_length = length


class FakeModel:
    eos_token_ids = frozenset()
    vocab_size = 10

    def encode(self, text):
        return [int(c) for c in text]

    def decode(self, ids):
        return "".join(map(str, ids))

    def check_length(self, prompt_length, max_new_tokens):
        pass

    def session(self, prompt_ids):
        self.last = FakeSession(prompt_ids)
        return self.last


class Counting(BaseDrafter):
    """Drafts the right next token and one wrong sibling; remembers every verification."""

    def __init__(self):
        self.seen: list[Verification] = []
        self.started = 0

    def start(self, state):
        self.started += 1

    def __call__(self, state):
        tree = DraftTree()
        tree.add_path([(state.tokens[-1] + 1) % 10, (state.tokens[-1] + 2) % 10])
        tree.add_path([(state.tokens[-1] + 5) % 10])
        return tree

    def observe(self, state, verification):
        self.seen.append(verification)


def _step(drafter):
    from conftest import greedy_step

    return greedy_step(drafter)


def test_real_and_fake_classes_satisfy_the_protocols(model_factory):
    from diagrammar.models import HFCausalLM
    from diagrammar.models.hf_session import TreeSession

    assert isinstance(FakeModel(), LanguageModel) and isinstance(FakeSession([1]), Session)
    lm = HFCausalLM(model_factory("gpt2", 0))
    assert isinstance(lm, LanguageModel)
    assert isinstance(lm.session([1, 2]), Session)
    assert isinstance(TreeSession(HFCausalLM(model_factory("llama", 0)), [1, 2]), Session)
    for drafter in (PromptLookupDrafter(), NoDraftDrafter(), MergeDrafter([NoDraftDrafter()]),
                    Counting()):
        assert isinstance(drafter, Drafter)
    assert not isinstance(lambda state: DraftTree(), Drafter)
    assert not isinstance(object(), Session) and not isinstance(object(), LanguageModel)


def test_wiring_runs_on_fakes_and_observe_sees_every_whole_tree():
    model, drafter = FakeModel(), Counting()
    step, start = _step(drafter)
    result = decode(step, model, [1, 2], max_new_tokens=9, start=start)
    assert result.tokens == [3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert drafter.started == 1
    assert len(drafter.seen) == result.stats.steps == 3
    first = drafter.seen[0]
    assert first.root == 2 and first.tree.tokens == [3, 4, 7]
    assert first.scores.shape == (4, 10)                  # the whole tree, rejected node too
    assert first.acceptance.path == (0, 1) and first.acceptance.tokens == (3, 4, 5)
    assert model.last.calls[0] == ("verify", 2, [3, 4, 7], [-1, 0, -1])


def test_merge_forwards_start_and_observe():
    inner = [Counting(), Counting()]
    step, start = _step(MergeDrafter(inner))
    decode(step, FakeModel(), [1, 2], max_new_tokens=4, start=start)
    assert [d.started for d in inner] == [1, 1]
    assert [len(d.seen) for d in inner] == [2, 2]


def test_plain_callables_still_draft():
    step, start = _step(lambda state: DraftTree.chain([(state.tokens[-1] + 1) % 10]))
    assert decode(step, FakeModel(), [4], max_new_tokens=4, start=start).tokens == [5, 6, 7, 8]


def test_decoding_and_diagrams_import_no_tensor_library():
    import subprocess
    import sys

    code = ("import sys, diagrammar.decoding, diagrammar.decoding.steps, diagrammar.diagrams; "
            "print(sorted(m for m in ('torch', 'jax', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"


def test_box_timing_synchronises_an_accelerator_session_after_every_box():
    from types import SimpleNamespace

    from diagrammar.diagrams import PromptLookup, speculative
    from diagrammar.functors.backends import Backend, backend_registry, register_backend
    from diagrammar.functors.execute import Execute

    synced = []

    class OnDevice(FakeModel):
        def __init__(self, device_type):
            self.device_type = device_type

        def session(self, prompt_ids):
            session = FakeSession(prompt_ids)
            session.device = SimpleNamespace(type=self.device_type)
            session.synchronize = lambda: synced.append(1)
            return session

    with backend_registry():
        register_backend(Backend("fake", load_model=lambda model: model))
        for device_type, per_box in (("cuda", True), ("cpu", False)):
            synced.clear()
            decoder = Execute(OnDevice(device_type), backend="fake")(
                speculative(PromptLookup()))
            steps = decoder.generate([1, 2], 3).stats.steps
            # once after the prefill, then after each of the step's four boxes on a device
            assert len(synced) == 1 + (4 * steps if per_box else 0)


def test_only_drafters_that_learn_are_handed_the_verification_passes():
    from diagrammar.decoding.drafters.base import learns
    from diagrammar.decoding.state import DecodeState

    assert not learns(PromptLookupDrafter()) and not learns(NoDraftDrafter())
    assert learns(Counting()) and learns(MergeDrafter([NoDraftDrafter(), Counting()]))
    assert not learns(MergeDrafter([NoDraftDrafter(), PromptLookupDrafter()]))
    state = DecodeState(None, [1, 2], 2, 4)
    DrafterStep(PromptLookupDrafter()).start(state)
    assert state.observers == []
