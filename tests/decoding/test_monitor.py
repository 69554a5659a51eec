"""Monitors: after ``obj.``, only the members jedi finds may follow.

The masks are checked against a brute-force reading of the rule over the whole vocabulary of
the tiny default model's tokenizer, with the members asked of jedi directly; the monitor is
checked to stay out of strings, comments and float literals, to roll back exactly, and to
keep the contracts of constrained decoding in model pipelines (speculation equals greedy;
composition with a grammar).
"""

from __future__ import annotations

import copy
import random
import re
import threading
import time

import numpy as np
import pytest
import torch

from diagrammar.decoding.constraints.monitor import JediMonitor, dereferenced
from diagrammar.diagrams import (
    Constrain,
    Monitor,
    NoDraft,
    PromptLookup,
    constrained,
    from_json,
    resource_kinds,
    speculative,
    to_json,
)
from diagrammar.functors import Execute
from diagrammar.functors.execute import ExecuteError
from diagrammar.models import HFCausalLM

COUNTER = "import collections\ncounts = collections.Counter(words)\ncounts."
BASKET = ("class Basket:\n"
          "    def __init__(self, owner):\n"
          "        self.owner = owner\n"
          "        self.items = []\n"
          "\n"
          "    def add(self, item):\n"
          "        self.items.append(item)\n"
          "\n"
          "    def total(self):\n"
          "        return len(self.")
#: Code ending in a member access (and a partial name), from standard-library-style code.
MEMBER_ACCESSES = [
    COUNTER,
    COUNTER + "most",
    COUNTER + "most_common",                       # a complete member: it may end here
    "import os\nos.path.",
    "import os\nos.path.jo",
    BASKET,
    BASKET + "it",
    BASKET.replace("len(self.", "x = 1\n\nbasket = Basket('ann')\nbasket."),
    '"abc".upper().',
    "items = [3, 1, 2]\nitems.",
]
_STATE: dict = {}


@pytest.fixture
def tokenizer(default_tiny):
    return default_tiny[1]


def _monitor(tokenizer, context=None) -> JediMonitor:
    key = ("monitor", context)
    if key not in _STATE:
        _STATE[key] = JediMonitor(tokenizer, len(tokenizer), [tokenizer.eos_token_id],
                                  context=context, timeout=60.0)
    return _STATE[key]


def _jedi_members(code: str) -> set[str]:
    import jedi

    line = code.count("\n") + 1
    column = len(code.split("\n")[-1])
    return {c.name for c in jedi.Script(code).complete(line, column) if c.type != "keyword"}


def _reference_mask(tokenizer, members: set[str], partial: str) -> np.ndarray:
    """The rule read literally, token by token: ``partial`` + the token's text either goes on
    spelling a member, or spells one whole and then something that is not a name."""
    special = set(tokenizer.all_special_ids)
    mask = np.zeros(len(tokenizer), dtype=bool)
    for token in range(len(tokenizer)):
        if token in special:
            mask[token] = partial in members
            continue
        text = partial + tokenizer.decode([token])
        for member in members:
            if re.fullmatch(r"\w+", text) and member.startswith(text):
                mask[token] = True
            elif text.startswith(member) and len(text) > len(member) \
                    and not re.match(r"\w", text[len(member)]):
                mask[token] = True
    return mask


@pytest.mark.parametrize("code", MEMBER_ACCESSES)
def test_masks_allow_exactly_the_tokens_that_spell_a_member(tokenizer, code):
    partial = re.search(r"\w*\Z", code).group()
    members = _jedi_members(code[:len(code) - len(partial)])
    assert len(members) > 3 and any(m.startswith(partial) for m in members)
    matcher = _monitor(tokenizer).matcher_for_prompt(tokenizer.encode(code))
    allowed = matcher.allowed()
    expected = _reference_mask(tokenizer, members, partial)
    assert 0 < expected.sum() < len(tokenizer) / 2
    wrong = [(token, tokenizer.decode([token])) for token in np.flatnonzero(allowed != expected)]
    assert not wrong, wrong
    assert matcher.is_accepting() == (partial in members)


def test_members_come_from_the_code_the_prompt_defines(tokenizer):
    matcher = _monitor(tokenizer).matcher_for_prompt(tokenizer.encode(BASKET))
    texts = {tokenizer.decode([t]) for t in np.flatnonzero(matcher.allowed())}
    assert {"items", "owner", "add", "total"} <= texts
    assert "append" not in texts and "size" not in texts


def test_extra_context_code_is_read_before_the_prompt(tokenizer):
    context = "class Point:\n    def __init__(self):\n        self.x = 0\n        self.y = 0\n"
    prompt = tokenizer.encode("p = Point()\np.")
    assert _monitor(tokenizer).matcher_for_prompt(prompt).allowed().all()   # unknown type
    matcher = _monitor(tokenizer, context).matcher_for_prompt(prompt)
    assert {tokenizer.decode([t]) for t in np.flatnonzero(matcher.allowed())} >= {"x", "y"}
    assert not matcher.advance(tokenizer.encode("z"))


def test_advance_refuses_what_the_mask_refuses_and_consumes_nothing(tokenizer):
    matcher = _monitor(tokenizer).matcher_for_prompt(tokenizer.encode(COUNTER))
    assert not matcher.advance(tokenizer.encode("size"))
    assert not matcher.advance(tokenizer.encode("most_com") + tokenizer.encode("x"))
    assert matcher.advance(tokenizer.encode("most_common"))
    assert matcher.is_accepting()
    assert matcher.advance(tokenizer.encode("(3)\nx = 1.5 + counts.total()"))
    assert matcher.allowed().all()
    assert matcher.advance([tokenizer.eos_token_id]) and matcher.is_stopped()
    assert not matcher.allowed().any() and not matcher.advance(tokenizer.encode("x"))


def test_rollback_restores_exactly(tokenizer):
    """Random walks of advances and rollbacks: every mask equals that of a fresh matcher
    whose prompt is the text so far."""
    monitor = _monitor(tokenizer)
    rng = random.Random(0)
    pieces = [tokenizer.encode(text) for text in
              ("most_common", "(2)", "\n", "counts.", "ele", "ments", "()", "items", ".",
               "keys", " + 1.", "5", " # x.", "'a.", "total", "upper")]
    for prompt_text in (COUNTER, BASKET):
        prompt = tokenizer.encode(prompt_text)
        matcher = monitor.matcher_for_prompt(prompt)
        generated: list[int] = []
        for _ in range(40):
            if generated and rng.random() < 0.35:
                count = rng.randint(1, len(generated))
                matcher.rollback(count)
                del generated[len(generated) - count:]
            else:
                piece = rng.choice(pieces)
                if matcher.advance(piece):
                    generated += piece
            fresh = monitor.matcher_for_prompt(prompt + generated)
            assert np.array_equal(matcher.allowed(), fresh.allowed())
            assert matcher.is_accepting() == fresh.is_accepting()
        with pytest.raises(ValueError, match="cannot roll back"):
            matcher.rollback(len(generated) + 1)


@pytest.mark.parametrize("code", [
    "x = 'counts.", "x = \"\"\"\nimport os\nos.", "# os.path.", "import os  # see os.",
    "x = 1.", "x = 1.5 + 2.", "from .", "from .. import", "foo.", "import os\nos",
    "import os\nos. ", "import os\nos.path.join(", "x = f'text {1} os.",
])
def test_inactive_in_strings_comments_floats_and_unknown_types(tokenizer, code):
    matcher = _monitor(tokenizer).matcher_for_prompt(tokenizer.encode("import os\n" + code))
    assert matcher.allowed().all()
    assert matcher.is_accepting()


def test_dynamic_members_are_not_monitored(tokenizer):
    code = ("class Anything:\n    def __getattr__(self, name):\n        return 1\n\n"
            "Anything().")
    assert _monitor(tokenizer).matcher_for_prompt(tokenizer.encode(code)).allowed().all()


def test_no_analysis_outside_member_accesses(tokenizer):
    monitor = JediMonitor(tokenizer, len(tokenizer), [tokenizer.eos_token_id])
    matcher = monitor.matcher_for_prompt(tokenizer.encode("def f(x):\n    return x + 1\n"))
    for piece in ("y = f(2)", " * 3", "\n", "print(y)", "\n"):
        assert matcher.allowed().all()
        assert matcher.advance(tokenizer.encode(piece))
    assert monitor.analyses == 0


def test_dereferenced():
    assert [dereferenced(code) for code in ("a.", "a[0].", "f(x).", "None.", "'s'.",
                                            "x = 1 .", "a.\n", "b'a'.", "s = rb'x.",
                                            "x = ..")] == \
        [True, True, True, True, True, True, False, True, False, False]


def test_a_slow_analysis_times_out_and_leaves_the_position_unmonitored(tokenizer,
                                                                      monkeypatch):
    release = threading.Event()
    monitor = JediMonitor(tokenizer, len(tokenizer), [tokenizer.eos_token_id], timeout=0.05)
    monkeypatch.setattr(monitor, "_analyse", lambda code: release.wait(10) and None)
    try:
        began = time.perf_counter()
        matcher = monitor.matcher_for_prompt(tokenizer.encode(COUNTER))
        assert matcher.allowed().all()
        assert time.perf_counter() - began < 2.0
        assert monitor.timeouts == 1
        matcher.allowed()                    # the position is remembered: no second wait
        assert monitor.timeouts == 1
    finally:
        release.set()


def test_an_analysis_that_fails_leaves_the_position_unmonitored(tokenizer, monkeypatch):
    monitor = JediMonitor(tokenizer, len(tokenizer), [tokenizer.eos_token_id])

    def fail(code):
        raise RecursionError("deep")

    monkeypatch.setattr(monitor, "_analyse", fail)
    matcher = monitor.matcher_for_prompt(tokenizer.encode(COUNTER))
    assert matcher.allowed().all() and matcher.advance(tokenizer.encode("size"))
    assert monitor.analyses == 1 and monitor.timeouts == 0


# -- the box, its pipelines and its JSON --------------------------------------------------------
def test_the_box_round_trips_through_json_and_names_its_resource():
    step = speculative(PromptLookup(), constrain=(Constrain(grammar="g"),
                                                  Monitor(context="code", timeout=2.0)))
    assert from_json(to_json(step)) == step
    assert [box.name for box in step.boxes][:3] == [
        "PromptLookup", 'Constrain(grammar="g")', 'Monitor(context="code", timeout=2.0)']
    assert resource_kinds(step) == {"g": "grammar", "code": "context"}
    assert resource_kinds(speculative(NoDraft(), constrain=Monitor())) == {}
    assert constrained(speculative(PromptLookup()), Monitor()) == \
        speculative(PromptLookup(), constrain=Monitor())
    with pytest.raises(ValueError, match="timeout"):
        Monitor(timeout=0)
    with pytest.raises(TypeError, match="constrain boxes"):
        speculative(NoDraft(), constrain=(Monitor(), PromptLookup()))


def _lm(default_tiny, boost: str | None = None) -> HFCausalLM:
    """The tiny default model in float64; ``boost``: its logits for the first token of that
    text raised by 30 everywhere (the model then writes it wherever it may)."""
    key = ("lm", boost)
    if key not in _STATE:
        model, tokenizer = default_tiny
        model = copy.deepcopy(model).double()
        if boost is not None:
            token = tokenizer.encode(boost)[0]

            def raise_logits(module, inputs, output):
                output = output.clone()
                output[..., token] += 30.0
                return output

            model.get_output_embeddings().register_forward_hook(raise_logits)
        _STATE[key] = HFCausalLM(model, tokenizer, fast=boost is None)
    return _STATE[key]


def test_the_monitor_turns_a_missing_member_into_an_existing_one(default_tiny):
    lm = _lm(default_tiny, boost="size")
    prompt = "items = [3, 1, 2]\nitems."
    plain = Execute(lm)(speculative(NoDraft())).generate(prompt, 6)
    assert re.match(r"\w+", plain.text).group().startswith("size")     # no list has it
    for drafter in (NoDraft(), PromptLookup()):
        monitored = Execute(lm)(speculative(drafter, constrain=Monitor())).generate(prompt, 6)
        name = re.match(r"\w+", monitored.text).group()
        assert name in dir(list), monitored.text
        counters = monitored.stats.box_counters["Monitor"]
        assert counters["monitor_active"] >= 1 and counters["monitor_timeouts"] == 0


PROMPTS = [
    BASKET.replace("return len(self.", "return len(self.items)\n\n"
                   "    def owner_name(self):\n        return self."),
    "import os\n\ndef find(root):\n    for name in os.listdir(root):\n"
    "        path = os.path.join(root, name)\n        if os.path.",
    COUNTER[:-len("counts.")] + "top = counts.most_common(3)\nrest = counts.",
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_monitored_speculation_equals_monitored_greedy(default_tiny, prompt):
    lm = _lm(default_tiny, boost="size")
    greedy = Execute(lm)(speculative(NoDraft(), constrain=Monitor())).generate(prompt, 24)
    fast = Execute(lm)(speculative(PromptLookup(), constrain=Monitor())).generate(prompt, 24)
    assert fast.tokens == greedy.tokens
    assert greedy.stats.box_counters["Monitor"]["monitor_active"] >= 1
    assert fast.stats.steps <= greedy.stats.steps


def test_composes_with_a_grammar_in_one_pipeline(default_tiny):
    """The grammar allows three names, the monitor two of them: the boosted name the grammar
    alone lets through is refused, and speculation still equals greedy."""
    lm = _lm(default_tiny, boost="q")
    prompt = "import os\nos.path."
    resources = {"g": "regex:(qx|exists|isdir)\\(\\)"}
    execute = Execute(lm, resources=resources)
    alone = execute(speculative(NoDraft(), constrain=Constrain(grammar="g"))).generate(prompt, 8)
    assert alone.text == "qx()"
    both = (Constrain(grammar="g"), Monitor())
    greedy = execute(speculative(NoDraft(), constrain=both)).generate(prompt, 8)
    assert greedy.text in ("exists()", "isdir()")
    fast = execute(constrained(speculative(PromptLookup()), both)).generate(prompt, 8)
    assert fast.tokens == greedy.tokens


def test_context_resource_and_errors(default_tiny, tmp_path):
    lm = _lm(default_tiny)
    (tmp_path / "shapes.py").write_text("class Square:\n    side = 1\n    def area(self):\n"
                                        "        return self.side ** 2\n")
    prompt = "from shapes import Square\nsq = Square()\nsq."
    for context in (tmp_path, {"project": str(tmp_path)}):
        decoder = Execute(lm, resources={"repo": context})(
            speculative(NoDraft(), constrain=Monitor(context="repo")))
        name = re.match(r"\w+", decoder.generate(prompt, 4).text).group()
        assert name in ("side", "area") or name.startswith("__"), name
    with pytest.raises(ExecuteError, match="repo"):
        Execute(lm)(speculative(NoDraft(), constrain=Monitor(context="repo")))
    with pytest.raises(ValueError, match="unknown monitor kind 'pyright'"):
        Execute(lm)(speculative(NoDraft(), constrain=Monitor(kind="pyright")))
    with pytest.raises(ValueError, match="as a monitor's context"):
        Execute(lm, resources={"repo": 3})(speculative(NoDraft(),
                                                       constrain=Monitor(context="repo")))


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield
