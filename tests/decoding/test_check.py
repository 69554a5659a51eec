"""The ``Check`` box: checkpoints, the box's spec, and checked decoding on the tiny default
model (it writes code-like text with many lines).

With a checker that always passes, a checked pipeline writes exactly the tokens of the same
pipeline without ``Check``. With a checker that fails some lines, every committed line
passes unless its segment was given up, and the output is greedy decoding with the tried
tokens excluded at each retried segment's first position: re-scoring the final sequence in
one forward pass finds every token the argmax of the target (minus the exclusions), which
also shows that rollbacks kept the cache and the tokens in agreement.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.decoding.check import CheckStep
from diagrammar.decoding.checkpoints import CHECKPOINTS, find_checkpoint
from diagrammar.diagrams import (
    Check,
    Commit,
    Constrain,
    NoDraft,
    PromptLookup,
    TokenRecycling,
    checked,
    is_lossless,
    speculative,
)
from diagrammar.diagrams.errors import WiringError
from diagrammar.diagrams.serialize import from_json, to_json
from diagrammar.functors import Execute

# -- checkpoints ---------------------------------------------------------------------------


@given(st.text(alphabet=st.characters(blacklist_characters="\n")), st.text())
def test_line_checkpoint_is_the_first_newline(head, tail):
    assert find_checkpoint("line", head + "\n" + tail) == len(head) + 1
    assert find_checkpoint("line", head) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=8)


@given(_JSON, st.sampled_from([" ", "\n", ",", " {\"x\": 1}"]))
def test_json_checkpoint_ends_the_first_value(value, tail):
    text = json.dumps(value)
    assert find_checkpoint("json", text + tail) == len(text)
    if isinstance(value, (list, dict, str)):
        assert find_checkpoint("json", text[:-1]) is None


@given(st.lists(st.text(alphabet="ab;' ", max_size=6), min_size=1, max_size=3))
def test_sql_checkpoint_skips_quoted_semicolons(literals):
    quoted = " , ".join("'" + s.replace("'", "''") + "'" for s in literals)
    statement = f"SELECT {quoted};"
    assert find_checkpoint("sql", statement + " SELECT 1;") == len(statement)


@given(st.lists(st.integers(), max_size=4), st.text(alphabet="ab\n(", max_size=6))
def test_statement_checkpoint_ignores_newlines_inside_brackets(items, tail):
    call = "f(\n" + ",\n".join(map(str, items)) + ", '\\n)', '''\n)''')\n"
    assert find_checkpoint("statement", call + tail) == len(call)
    assert find_checkpoint("statement", call[:-1]) is None


def test_end_checkpoint_never_comes_and_unknown_kinds_are_refused():
    assert find_checkpoint("end", "a\nb;{}\n") is None
    with pytest.raises(ValueError, match="unknown checkpoint 'word'"):
        find_checkpoint("word", "a")


# -- the box --------------------------------------------------------------------------------


def test_check_box_spec_validation_and_json():
    box = Check(checker="z3", checkpoint="sql", retries=1)
    assert box.role == "check" and not box.lossless and Check.resources == ("checker",)
    step = speculative(PromptLookup(), check=box)
    assert [b.name for b in step.boxes][-2:] == [box.name, "Commit"]
    assert not is_lossless(step)
    assert from_json(to_json(step)) == step
    assert checked(speculative(PromptLookup()), box) == step
    with pytest.raises(WiringError, match="already checked"):
        checked(step, box)
    for bad, message in [({"checkpoint": "word"}, "checkpoint must be one of"),
                         ({"retries": -1}, "retries must be"),
                         ({"retries": True}, "retries must be"),
                         ({"checker": ""}, "checker must name")]:
        with pytest.raises(ValueError, match=message):
            Check(**bad)
    with pytest.raises(TypeError, match="check box"):
        speculative(NoDraft(), check=Commit())


def test_check_step_refuses_bad_checkers_and_verdicts():
    with pytest.raises(TypeError, match="check"):
        CheckStep(object(), decode=str)
    with pytest.raises(ValueError, match="tokenizer"):
        CheckStep(Always("pass"))
    with pytest.raises(ValueError, match="retries"):
        CheckStep(Always("pass"), retries=-1, decode=str)

    class Session:
        def keep(self, path): pass

    from diagrammar.decoding.state import Acceptance, DecodeState

    step = CheckStep(Always("maybe"), decode=lambda ids: "".join(map(chr, ids)))
    state = DecodeState(Session(), [65], prompt_length=1, max_new_tokens=5)
    step.start(state)
    with pytest.raises(ValueError, match="status 'maybe'"):
        step(state, Acceptance((), (10,)))


# -- checked decoding -----------------------------------------------------------------------


class Always:
    def __init__(self, status: str) -> None:
        self.status = status
        self.texts: list[str] = []

    def check(self, text):
        self.texts.append(text)
        return SimpleNamespace(status=self.status, reason=f"always {self.status}")


class BlankLines:
    """Fails every segment that is only whitespace (the tiny model's favourite line)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def check(self, text):
        self.texts.append(text)
        bad = not text.strip()
        return SimpleNamespace(status="fail" if bad else "pass", reason="a blank line")


class FailFirst:
    """Fails its first ``count`` checks, then passes (or says unknown)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def check(self, text):
        self.count -= 1
        return SimpleNamespace(status="fail" if self.count >= 0 else "unknown", reason="first")


@pytest.fixture(scope="module")
def lm(default_tiny_path):
    return Execute(str(default_tiny_path)).model


DRAFTERS = {"autoregressive": NoDraft, "prompt-lookup": PromptLookup,
            "token-recycling": lambda: TokenRecycling(max_nodes=8)}
_FIXTURE = [HealthCheck.function_scoped_fixture]
PROMPTS = ["def f(x):\n", "import os\n", "class A:\n    ", "for i in range(3):\n",
           "x = [1,\n", "# a comment\n", "return None\n", "if x:\n    y = 2\n"]


def _check_step(decoder) -> CheckStep:
    return next(impl for _, impl, _, _ in decoder.layers if isinstance(impl, CheckStep))


@settings(max_examples=6, deadline=None, suppress_health_check=_FIXTURE)
@given(prompt=st.sampled_from(PROMPTS), drafter=st.sampled_from(sorted(DRAFTERS)),
       checkpoint=st.sampled_from(CHECKPOINTS), new=st.integers(1, 40))
def test_an_always_passing_check_changes_no_token(lm, prompt, drafter, checkpoint, new):
    plain = Execute(lm)(speculative(DRAFTERS[drafter]())).generate(prompt, new)
    checker = Always("pass")
    decoder = Execute(lm, resources={"checker": checker})(
        speculative(DRAFTERS[drafter](), check=Check(checkpoint=checkpoint)))
    result = decoder.generate(prompt, new)
    assert result.tokens == plain.tokens
    counters = result.stats.box_counters[f"Check(checkpoint={json.dumps(checkpoint)})"
                                         if checkpoint != "line" else "Check"]
    assert counters["failures"] == counters["repairs"] == counters["rollbacks"] == 0
    assert counters["checkpoints"] == len(checker.texts)
    if checkpoint == "line":
        assert len(checker.texts) >= result.text.count("\n") - 1   # a token may hold two
        assert "".join(checker.texts) == result.text[:len("".join(checker.texts))]
    if checkpoint == "end":
        assert checker.texts == ([result.text] if result.text else [])


def _assert_greedy_with_exclusions(lm, prompt_ids, tokens, tried):
    """Every generated token is the target's argmax after the tokens before it, with the
    tried tokens excluded at retried segment starts (all but the token kept there)."""
    ids = torch.tensor([prompt_ids + tokens])
    with torch.no_grad():
        logits = lm.model(ids).logits[0].double().numpy()
    start = len(prompt_ids)
    for offset, token in enumerate(tokens):
        row = logits[start + offset - 1].copy()
        excluded = set(tried.get(start + offset, ())) - {token}
        row[list(excluded)] = -np.inf
        best = int(row.argmax())
        assert token == best or row[best] - row[token] < 1e-4, (offset, token, best)


@settings(max_examples=8, deadline=None, suppress_health_check=_FIXTURE)
@given(prompt=st.sampled_from(PROMPTS), drafter=st.sampled_from(sorted(DRAFTERS)),
       retries=st.integers(0, 3), new=st.integers(5, 40))
def test_failing_lines_are_redecoded_with_the_next_best_token(lm, prompt, drafter, retries,
                                                               new):
    checker = BlankLines()
    decoder = Execute(lm, resources={"checker": checker})(
        speculative(DRAFTERS[drafter](), check=Check(retries=retries)))
    result = decoder.generate(prompt, new)
    step = _check_step(decoder)
    counters = result.stats.box_counters[f"Check(retries={retries})" if retries != 3
                                         else "Check"]
    given_up = {start - len(lm.encode(prompt)) for start in step.given_up}
    assert counters["gave_up"] == len(step.given_up) == len(counters["reasons"])
    # every complete line written passes, unless its segment was given up
    prompt_ids = lm.encode(prompt)
    offset = 0
    for index in range(len(result.tokens)):
        text = lm.decode(result.tokens[offset:index + 1])
        if find_checkpoint("line", text) is not None:
            assert text.strip() or offset in given_up, (text, offset)
            offset = index + 1
    assert counters["repairs"] <= counters["failures"]
    _assert_greedy_with_exclusions(lm, prompt_ids, result.tokens, step.tried)


def test_blank_lines_are_repaired_and_counted(lm):
    decoder = Execute(lm, resources={"checker": BlankLines()})(
        speculative(NoDraft(), check=Check()))
    plain = Execute(lm)(speculative(NoDraft())).generate("def f(x):\n", 30)
    assert "\n\n" in plain.text                          # the model writes blank lines...
    result = decoder.generate("def f(x):\n", 30)
    counters = result.stats.box_counters["Check"]
    assert counters["failures"] >= 1 and counters["repairs"] >= 1
    assert counters["rollbacks"] >= 1                     # lines span several steps
    assert counters["solver_seconds"] >= 0.0
    for line in result.text.splitlines(keepends=True)[:-1]:
        assert line.strip() or counters["gave_up"], result.text   # ...the checked one not


def test_gives_up_after_its_retries_with_the_reason(lm):
    checker = Always("fail")
    decoder = Execute(lm, resources={"rules": checker})(
        speculative(PromptLookup(), check=Check(checker="rules", retries=2)))
    result = decoder.generate("def f(x):\n", 25)
    counters = result.stats.box_counters['Check(checker="rules", retries=2)']
    assert counters["gave_up"] >= 1
    assert counters["repairs"] == 0
    assert all("failed 3 times: always fail" in reason for reason in counters["reasons"])
    step = _check_step(decoder)
    assert counters["failures"] == sum(map(len, step.tried.values()))
    assert all(len(step.tried[start]) == 3 for start in step.given_up)   # 1 try + 2 retries
    assert all(len(tried) <= 3 for tried in step.tried.values())
    _assert_greedy_with_exclusions(lm, lm.encode("def f(x):\n"), result.tokens, step.tried)


@pytest.mark.parametrize("drafter", sorted(DRAFTERS))
def test_the_end_checkpoint_rolls_back_across_steps(lm, drafter):
    prompt = "import os\n"
    decoder = Execute(lm, resources={"checker": FailFirst(2)})(
        speculative(DRAFTERS[drafter](), check=Check(checkpoint="end")))
    result = decoder.generate(prompt, 12)
    plain = Execute(lm)(speculative(NoDraft())).generate(prompt, 12)
    counters = result.stats.box_counters['Check(checkpoint="end")']
    assert counters["failures"] == 2 and counters["repairs"] == 1 and counters["rollbacks"] >= 1
    step = _check_step(decoder)
    start = len(lm.encode(prompt))
    assert step.tried == {start: [plain.tokens[0], step.tried[start][1]]}
    assert result.tokens[0] not in step.tried[start]
    assert len(result.tokens) == 12
    _assert_greedy_with_exclusions(lm, lm.encode(prompt), result.tokens, step.tried)


def test_check_composes_with_constrain(lm):
    pattern = "[a-z ]*\n[a-z ]+\n[a-z ]+\n"
    checker = BlankLines()
    step = speculative(PromptLookup(), constrain=Constrain(grammar="g"), check=Check())
    decoder = Execute(lm, resources={"checker": checker, "g": "regex:" + pattern})(step)
    result = decoder.generate("def f(x):\n", 30)
    counters = result.stats.box_counters["Check"]
    assert re.fullmatch("[a-z ]*(\n[a-z ]*){0,3}", result.text)
    for line in result.text.splitlines(keepends=True):
        if line.endswith("\n"):
            assert line.strip() or counters["gave_up"]
    assert counters["checkpoints"] >= 1


def test_check_needs_the_models_tokenizer(model_factory):
    from diagrammar.models import HFCausalLM

    lm = HFCausalLM(model_factory("gpt2", 0, vocab=48))
    with pytest.raises(ValueError, match="tokenizer"):
        Execute(lm, resources={"checker": Always("pass")})(speculative(NoDraft(),
                                                                        check=Check()))


def test_a_rollback_rolls_the_grammar_back_too(lm):
    pattern = "[a-z ]{1,40}\n"
    step = speculative(PromptLookup(), constrain=Constrain(grammar="g"),
                       check=Check(checkpoint="end"))
    decoder = Execute(lm, resources={"checker": FailFirst(1), "g": "regex:" + pattern})(step)
    result = decoder.generate("def f(x):\n", 12)
    counters = result.stats.box_counters['Check(checkpoint="end")']
    assert counters["failures"] == 1 and counters["repairs"] == 1
    steps = result.stats.accepted_per_step
    assert steps.index(0) >= 2 and sum(steps[:steps.index(0)]) >= 2   # across steps
    assert re.fullmatch("[a-z ]{1,40}\n?", result.text)
    unchecked = Execute(lm, resources={"g": "regex:" + pattern})(
        speculative(PromptLookup(), constrain=Constrain(grammar="g"))).generate("def f(x):\n", 12)
    assert result.tokens[0] != unchecked.tokens[0]


def test_the_first_line_is_checked_whole_with_the_prompts_unfinished_line():
    """A ``line`` checker sees ``7 * 8 = 56``, not only the generated `` 56``; the prompt is
    never rolled back."""
    from types import SimpleNamespace

    from diagrammar.decoding.check import CheckStep
    from diagrammar.decoding.state import Acceptance, DecodeState

    seen = []

    class Records:
        def check(self, text):
            seen.append(text)
            return SimpleNamespace(status="pass", reason="")

    class Session:
        def keep(self, path):
            pass

    def decode(ids):
        return "".join(chr(i) for i in ids)

    prompt = [ord(c) for c in "1 = 1\n7 * 8 ="]
    state = DecodeState(Session(), list(prompt), len(prompt), max_new_tokens=20)
    check = CheckStep(Records(), "line", retries=1, decode=decode)
    check.start(state)
    check(state, Acceptance((0, 1, 2, 3), tuple(map(ord, " 56\n2"))))
    assert seen == ["7 * 8 = 56\n"]
