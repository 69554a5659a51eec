"""Constrained decoding inside speculative pipelines: a constrained speculative step writes
exactly the tokens of constrained greedy decoding without speculation, every output stays in
the language, drafts that leave the language are pruned before verification, and sampling
draws only allowed tokens.

The grammars here are random regular languages over token ids (a random automaton per test
case: a test double for the engines, whose own tests are in test_constraint_engines.py), so
that random small models and random drafts can be combined freely.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.constraints.masking import mask_scores
from diagrammar.decoding.constraints.step import ConstrainStep
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.steps import DrafterStep
from diagrammar.decoding.tree import DraftTree
from diagrammar.diagrams import (
    Constrain,
    Drafter,
    NoDraft,
    PromptLookup,
    SpeculativeSampling,
    box_registry,
    speculative,
)
from diagrammar.functors import Execute
from diagrammar.models import HFCausalLM

VOCAB = 48
EOS = 3
_MODELS: dict = {}


def _model(model_factory, seed: int):
    if seed not in _MODELS:
        _MODELS[seed] = model_factory("gpt2", seed, vocab=VOCAB)
    return _MODELS[seed]


class Automaton:
    """A random regular language over token ids: a transition table (state, token) -> state,
    accepting states where the end token is allowed."""

    def __init__(self, seed: int, states: int = 4, density: float = 0.3) -> None:
        rng = random.Random(seed)
        self.table = {}
        for state in range(states):
            allowed = [t for t in range(4, VOCAB) if rng.random() < density]
            if not allowed:
                allowed = [rng.randrange(4, VOCAB)]
            for token in allowed:
                self.table[state, token] = rng.randrange(states)
        self.accepting = {s for s in range(states) if rng.random() < 0.5} | {0}

    def matcher(self) -> AutomatonMatcher:
        return AutomatonMatcher(self)

    def accepts_prefix(self, tokens: list[int]) -> bool:
        state = 0
        for index, token in enumerate(tokens):
            if token == EOS:
                return state in self.accepting and index == len(tokens) - 1
            state = self.table.get((state, token))
            if state is None:
                return False
        return True


class AutomatonMatcher:
    def __init__(self, automaton: Automaton) -> None:
        self.automaton = automaton
        self.states = [0]
        self.ended = False

    def allowed(self) -> np.ndarray:
        mask = np.zeros(VOCAB, dtype=bool)
        if self.ended:
            return mask
        state = self.states[-1]
        for (source, token), _ in self.automaton.table.items():
            if source == state:
                mask[token] = True
        mask[EOS] = state in self.automaton.accepting
        return mask

    def advance(self, tokens) -> bool:
        states, ended = list(self.states), self.ended
        for token in tokens:
            if ended:
                return False
            if token == EOS:
                if states[-1] not in self.automaton.accepting:
                    return False
                ended = True
                states.append(states[-1])
                continue
            following = self.automaton.table.get((states[-1], token))
            if following is None:
                return False
            states.append(following)
        self.states, self.ended = states, ended
        return True

    def rollback(self, count: int) -> None:
        if count:
            del self.states[len(self.states) - count:]
            self.ended = False

    def is_accepting(self) -> bool:
        return self.states[-1] in self.automaton.accepting

    def is_stopped(self) -> bool:
        return self.ended


with box_registry():
    class RandomDraft(Drafter):
        """A test drafter: random trees (with some paths from a reference run)."""

        def __init__(self, seed: int = 0) -> None:
            super().__init__(seed=seed)


class RandomDraftDrafter:
    def __init__(self, seed: int, reference: list[int]) -> None:
        self.rng = random.Random(seed)
        self.reference = reference
        self.sizes: list[int] = []

    def __call__(self, state) -> DraftTree:
        rng = self.rng
        done = state.generated
        budget = min(state.draft_budget, 6)
        tree = DraftTree()
        for _ in range(rng.randint(0, 4)):
            depth = rng.randint(1, budget) if budget else 0
            path = list(self.reference[done:done + depth])
            if rng.random() < 0.4:
                path = [rng.randrange(VOCAB) for _ in range(depth)]
            tree.add_path(path)
        self.sizes.append(len(tree))
        return tree


def _constrained(lm, automaton, drafter_box, implementations=None, accept=None):
    table = {Constrain: lambda box, execute: ConstrainStep(automaton)}
    table.update(implementations or {})
    return Execute(lm, implementations=table, resources={"random": automaton})(
        speculative(drafter_box, accept, constrain=Constrain(grammar="random")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_seed=st.integers(0, 2), grammar_seed=st.integers(0, 10**6),
       prompt=st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=16),
       max_new_tokens=st.integers(1, 30), tree_seed=st.integers(0, 2**31),
       batched=st.booleans())
def test_constrained_speculation_equals_constrained_greedy(model_factory, model_seed,
                                                           grammar_seed, prompt,
                                                           max_new_tokens, tree_seed, batched):
    lm = HFCausalLM(_model(model_factory, model_seed))
    automaton = Automaton(grammar_seed)
    greedy = _constrained(lm, automaton, NoDraft()).generate(prompt, max_new_tokens)
    assert automaton.accepts_prefix(greedy.tokens)
    drafters: list[RandomDraftDrafter] = []

    def factory(box, execute):
        drafters.append(RandomDraftDrafter(box.spec["seed"], greedy.tokens + [5] * 8))
        return DrafterStep(drafters[-1])

    fast = _constrained(lm, automaton, RandomDraft(seed=tree_seed), {RandomDraft: factory})
    if batched:
        results = fast.generate([prompt, prompt[::-1]], max_new_tokens, max_batch=2)
        result = results[0]
        assert automaton.accepts_prefix(results[1].tokens)
    else:
        result = fast.generate(prompt, max_new_tokens)
    assert result.tokens == greedy.tokens
    assert result.stats.stop_reason == greedy.stats.stop_reason
    assert sum(result.stats.accepted_per_step) == len(result.tokens)


def test_constrained_greedy_is_the_best_allowed_token_each_step(model_factory):
    """The reference itself, checked step by step against the model's masked argmax."""
    model = _model(model_factory, 0)
    lm = HFCausalLM(model)
    prompt = [5, 6, 7]
    unconstrained = Execute(lm)(speculative(NoDraft())).generate(prompt, 12).tokens
    automaton = Automaton(7)
    automaton.table = {key: value for key, value in automaton.table.items()
                       if key[1] != unconstrained[0]}   # the model's favourite is refused
    result = _constrained(lm, automaton, NoDraft()).generate(prompt, 12)
    matcher = automaton.matcher()
    ids = list(prompt)
    for token in result.tokens:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].numpy()
        allowed = matcher.allowed()
        assert token == int(np.argmax(np.where(allowed, logits, -np.inf)))
        assert matcher.advance([token])
        ids.append(token)
    assert result.tokens[0] != unconstrained[0]     # the grammar really constrained it


def test_drafts_leaving_the_language_are_pruned_before_verification(model_factory):
    lm = HFCausalLM(_model(model_factory, 1))
    automaton = Automaton(3)
    steps: list[ConstrainStep] = []

    def constrain(box, execute):
        steps.append(ConstrainStep(automaton))
        return steps[-1]

    prompt = [9, 10, 11, 9, 10, 11, 9, 10]
    greedy = _constrained(lm, automaton, NoDraft()).generate(prompt, 20)
    fast = Execute(lm, implementations={Constrain: constrain}, resources={"random": None})(
        speculative(PromptLookup(), constrain=Constrain(grammar="random")))
    result = fast.generate(prompt, 20)
    assert result.tokens == greedy.tokens
    assert steps[0].nodes_pruned > 0


def test_a_grammar_that_allows_nothing_ends_the_generation_with_a_reason(model_factory):
    class Finite:
        """Exactly two tokens (6 then 7), and no end token: then nothing is allowed."""

        def matcher(self):
            automaton = Automaton(0)
            automaton.table = {(0, 6): 1, (1, 7): 2}
            automaton.accepting = set()
            return AutomatonMatcher(automaton)

    lm = HFCausalLM(_model(model_factory, 0))
    for box in (NoDraft(), PromptLookup()):
        result = _constrained(lm, Finite(), box).generate([6, 7, 6, 7, 6], 10)
        assert result.tokens == [6, 7]
        assert "allows no further token" in result.stats.stop_reason
        batched = _constrained(lm, Finite(), box).generate([[6, 7, 6], [5]], 10)
        assert [r.tokens for r in batched] == [[6, 7], [6, 7]]


def test_constrained_sampling_draws_only_allowed_tokens(model_factory):
    lm = HFCausalLM(_model(model_factory, 2))
    automaton = Automaton(11, density=0.2)
    config = GenerationConfig(temperature=1.0, seed=3)
    decoder = _constrained(lm, automaton, PromptLookup(), accept=SpeculativeSampling())
    for prompt in ([5, 6, 7, 5, 6, 7], [8, 9], [30, 31, 30, 31]):
        result = decoder.generate(prompt, 25, config=config)
        assert automaton.accepts_prefix(result.tokens)


def test_mask_scores_on_torch_and_numpy():
    scores = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    masked = mask_scores(scores, [np.array([True, True, False]), np.array([False, True])])
    assert masked.tolist() == [[1.0, 2.0, float("-inf")], [float("-inf"), 2.0, float("-inf")]]
    with pytest.raises(ValueError, match="1 masks for 2 rows"):
        mask_scores(scores, [None])


def test_constrain_step_keeps_refused_sampled_nodes_for_rejection():
    """A drafted node the grammar refuses, under a node whose children were sampled, stays
    (rejection sampling rejects it; the proposal's other draws stay intact); its children go."""
    from diagrammar.decoding.tree import Proposal

    automaton = Automaton(0)
    automaton.table = {(0, 5): 0, (0, 6): 0}
    step = ConstrainStep(automaton)
    state = DecodeState(None, [5], prompt_length=1, max_new_tokens=8)
    step.start(state)
    tree = DraftTree.from_parents([5, 9, 6], [-1, -1, 1])
    q = np.full(VOCAB, 1 / VOCAB)
    tree.propose(-1, Proposal(q, (5, 9), replacement=True))
    state, kept = step(state, tree)
    assert kept.tokens == [5, 9] and kept.proposals[-1][0].draws == (5, 9)
    assert state.score_masks[1][2] is None


# -- real grammars, a real tokenizer and both engines ------------------------------------------
_PROPERTIES = {
    "count": {"type": "integer", "minimum": 0, "maximum": 500},
    "ok": {"type": "boolean"},
    "kind": {"enum": ["alpha", "beta", "gamma"]},
    "label": {"type": "string", "maxLength": 8},
    "sizes": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9},
              "maxItems": 3},
}
_PROMPTS = ["import json\n\nCONFIG = '", "def load():\n    return json.loads('",
            "# settings\nvalue = "]
_TINY: dict = {}


def _tiny_lm(default_tiny):
    if "lm" not in _TINY:
        import copy

        model, tokenizer = default_tiny
        _TINY["lm"] = HFCausalLM(copy.deepcopy(model).double(), tokenizer)
    return _TINY["lm"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(st.sampled_from(sorted(_PROPERTIES)), min_size=1, max_size=3,
                     unique=True),
       compact=st.booleans(), engine=st.sampled_from(["llguidance", "xgrammar"]),
       prompt=st.sampled_from(_PROMPTS), tree_seed=st.integers(0, 2**31),
       max_new_tokens=st.integers(4, 40), draft_forced=st.sampled_from([0, 1, 3, 16]))
def test_json_schemas_decode_identically_with_speculation_on_both_engines(
        default_tiny, keys, compact, engine, prompt, tree_seed, max_new_tokens, draft_forced):
    """Random schemas from a small family, the tiny default model and its tokenizer (float64):
    constrained speculation (prompt lookup; random trees; forced tokens drafted or not) equals
    constrained greedy, and every output is valid JSON under the schema once it ends (a valid
    prefix before)."""
    import json

    import jsonschema

    from diagrammar.decoding.constraints.engines import compile_grammar
    from diagrammar.diagrams import constrained
    from diagrammar.functors.grammars import load_grammar

    lm = _tiny_lm(default_tiny)
    schema = {"type": "object", "properties": {k: _PROPERTIES[k] for k in keys},
              "required": keys, "additionalProperties": False}
    if compact:
        schema["x-guidance"] = {"whitespace_flexible": False}
    plain = Constrain(grammar="schema", engine=engine, draft_forced=0)
    box = Constrain(grammar="schema", engine=engine, draft_forced=draft_forced)
    execute = Execute(lm, resources={"schema": schema})
    greedy = execute(speculative(NoDraft(), constrain=plain)).generate(prompt, max_new_tokens)
    drafters: list[RandomDraftDrafter] = []

    def factory(random_box, execute):
        drafters.append(RandomDraftDrafter(random_box.spec["seed"], greedy.tokens + [5] * 8))
        return DrafterStep(drafters[-1])

    custom = Execute(lm, implementations={RandomDraft: factory}, resources={"schema": schema})
    for step in (speculative(PromptLookup(), constrain=box),
                 speculative(NoDraft(), constrain=box),
                 constrained(speculative(RandomDraft(seed=tree_seed)), box)):
        decoder = custom(step)
        assert decoder.generate(prompt, max_new_tokens).tokens == greedy.tokens
    matcher = compile_grammar(load_grammar(schema), lm.tokenizer, lm.vocab_size,
                              engine=engine).matcher()
    assert matcher.advance(greedy.tokens)
    if greedy.tokens and greedy.tokens[-1] in lm.eos_token_ids:
        text = lm.decode(greedy.tokens[:-1])
        jsonschema.validate(json.loads(text), schema)


@pytest.mark.parametrize("engine", ["llguidance", "xgrammar"])
def test_forced_tokens_are_drafted_and_save_steps(default_tiny, engine):
    """A schema whose keys and punctuation are forced: with forced drafting the output is the
    same in fewer steps, and the drafted forced tokens are counted."""
    lm = _tiny_lm(default_tiny)
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"identifier_of_the_record": {"type": "integer"},
                             "human_readable_description": {"enum": ["first", "second"]}},
              "required": ["identifier_of_the_record", "human_readable_description"],
              "x-guidance": {"whitespace_flexible": False}}
    execute = Execute(lm, resources={"g": schema})
    runs = {}
    for forced in (0, 16):
        decoder = execute(speculative(NoDraft(), constrain=Constrain(
            grammar="g", engine=engine, draft_forced=forced)))
        runs[forced] = (decoder.generate("record = ", 60), decoder)
    (plain, _), (fast, decoder) = runs[0], runs[16]
    assert fast.tokens == plain.tokens
    assert lm.decode(plain.tokens[:-1]).startswith('{"identifier_of_the_record":')
    assert fast.stats.steps < plain.stats.steps - 10
    (counters,) = fast.stats.box_counters.values()
    assert counters["nodes_forced"] >= 10
    ((name, counts),) = plain.stats.box_counters.items()
    assert name.startswith("Constrain") and counts["mask_seconds"] > 0
    assert (counts["nodes_pruned"], counts["nodes_forced"]) == (0, 0)
    assert fast.stats.as_dict()["box_counters"] == fast.stats.box_counters


def test_forced_tokens_of_a_regex(default_tiny):
    from diagrammar.decoding.constraints.engines import compile_grammar
    from diagrammar.decoding.constraints.protocol import GrammarSpec

    lm = _tiny_lm(default_tiny)
    for engine in ("llguidance", "xgrammar"):
        matcher = compile_grammar(GrammarSpec("regex", "release-[0-9]+"), lm.tokenizer,
                                  lm.vocab_size, engine=engine).matcher()
        forced = matcher.forced_tokens(16)
        assert lm.decode(forced) == "release-", engine
        assert matcher.forced_tokens(1) == forced[:1]
        assert matcher.advance(lm.encode("release-4"))            # the matcher did not move
        assert matcher.forced_tokens(16) == []
        assert matcher.forced_tokens(0) == []


def test_two_constrain_steps_intersect_their_masks():
    """A second grammar in the same step sees the first one's pruned tree and masks, keeps
    only what both allow."""
    first = ConstrainStep(_Toy(allowed={0, 1, 2, 3}, eos=11))
    second = ConstrainStep(_Toy(allowed={1, 2, 3, 4}, eos=11))
    state = DecodeState(None, [11], prompt_length=1, max_new_tokens=8)
    tree = DraftTree.from_parents([0, 1, 4, 2], [-1, -1, -1, 1])
    state, tree = first(state, tree)
    assert tree.tokens == [0, 1, 2]
    state, tree = second(state, tree)
    assert (tree.tokens, tree.parents) == ([1, 2], [-1, 0])
    kept, masks = state.score_masks
    assert kept is tree
    assert [sorted(map(int, mask.nonzero()[0])) for mask in masks] == [[1, 2, 3, 11]] * 3


class _Toy:
    """A grammar of any number of tokens from ``allowed`` (the end token anywhere)."""

    def __init__(self, allowed: set[int], eos: int) -> None:
        self.allowed, self.eos = allowed, eos

    def matcher(self) -> _ToyMatcher:
        return _ToyMatcher(self)


class _ToyMatcher:
    def __init__(self, grammar: _Toy) -> None:
        self.grammar, self.seen = grammar, 0

    def allowed(self) -> np.ndarray:
        mask = np.zeros(12, dtype=bool)
        mask[sorted(self.grammar.allowed | {self.grammar.eos})] = True
        return mask

    def advance(self, tokens) -> bool:
        if any(t not in self.grammar.allowed for t in tokens):
            return False
        self.seen += len(tokens)
        return True

    def rollback(self, count: int) -> None:
        self.seen -= count

    def is_accepting(self) -> bool:
        return True

    def is_stopped(self) -> bool:
        return False


def test_a_complete_json_value_ends_with_the_end_token(default_tiny):
    lm = _tiny_lm(default_tiny)
    schema = {"enum": ["alpha", "beta"]}
    decoder = Execute(lm, resources={"g": schema})(
        speculative(PromptLookup(), constrain=Constrain(grammar="g")))
    result = decoder.generate("x = ", 20)
    assert result.tokens[-1] in lm.eos_token_ids
    assert lm.decode(result.tokens[:-1]) in ('"alpha"', '"beta"')
