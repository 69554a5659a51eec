"""The grammar engines (llguidance, xgrammar) behind one contract, on the default model's real
tokenizer (byte-level BPE, 4096 tokens; masks over a model vocabulary of 4100).

Every mask is checked against a slow, obviously-correct reference: for each of the 4096 tokens,
whether the text so far plus the token's bytes is still a prefix of the language (a partial
``regex.fullmatch``, or a hand-written counter for arithmetic), and the end token exactly where
the text is complete. Both engines must also agree with each other on random states.
"""

from __future__ import annotations

import random
import re
import threading
import time

import numpy as np
import pytest

from diagrammar.decoding.constraints import engines as engines_module
from diagrammar.decoding.constraints import llguidance_engine
from diagrammar.decoding.constraints.engines import (
    ENGINES,
    clear_cache,
    compile_grammar,
    get_engine,
)
from diagrammar.decoding.constraints.protocol import (
    CompiledGrammar,
    GrammarError,
    GrammarSpec,
    Matcher,
)

regex = pytest.importorskip("regex")       # partial matching (a dependency of transformers)

ENGINE_NAMES = ["llguidance", "xgrammar"]
VOCAB = 4100                               # the model's: 4 ids more than the tokenizer has

WS = r"[ \t\n\r]*"
ARITHMETIC = r"""
start: expr
expr: term (("+" | "-") term)*
term: factor (("*" | "/") factor)*
factor: NUMBER | "(" expr ")"
NUMBER: /[0-9]+/
%ignore " "
"""
PATTERN = r"(ab|c)+-[0-9]{2,3}(x[a-f]*)?"
PETS = {
    "type": "object",
    "properties": {
        "kind": {"enum": ["cat", "dog"]},
        "legs": {"type": "integer", "minimum": 0, "maximum": 12},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
    },
    "required": ["kind", "legs"],
    "additionalProperties": False,
}
_TAG = r'"[ab]"'
#: PETS as a regex (properties in the schema's order, as both engines write them).
PETS_REGEX = (
    r"\{" + WS + r'"kind"' + WS + ":" + WS + r'"(cat|dog)"' + WS + "," + WS + r'"legs"' + WS
    + ":" + WS + r"(0|[1-9]|1[0-2])"
    + "(" + WS + "," + WS + r'"tags"' + WS + ":" + WS + r"\[" + WS
    + "(" + _TAG + "(" + WS + "," + WS + _TAG + ")*)?" + WS + r"\])?" + WS + r"\}")
MIXED = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "score": {"type": "number", "minimum": -5, "maximum": 100},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "ok": {"type": "boolean"},
        "extra": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 4}]},
    },
    "required": ["name", "score"],
}


# -- fixtures and references ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer(default_tiny_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_tiny_path)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: token characters -> bytes."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(char): byte for byte, char in zip(printable, chars)}


@pytest.fixture(scope="module")
def vocab(tokenizer) -> list[bytes | None]:
    """Each token's bytes (``None`` for the special end token)."""
    decoder = _byte_decoder()
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    return [None if index in special else bytes(decoder[c] for c in piece)
            for index, piece in enumerate(pieces)]


@pytest.fixture(scope="module")
def ascii_vocab(vocab) -> list[tuple[int, str]]:
    """The tokens that are ASCII text (every other token leaves our ASCII languages)."""
    return [(index, piece.decode()) for index, piece in enumerate(vocab)
            if piece is not None and piece.isascii()]


def reference_mask(text: str, ascii_vocab, eos: int, is_prefix, is_complete) -> np.ndarray:
    mask = np.zeros(VOCAB, dtype=bool)
    for index, piece in ascii_vocab:
        mask[index] = is_prefix(text + piece)
    mask[eos] = is_complete(text)
    return mask


def regex_reference(pattern: str):
    compiled = regex.compile(pattern)
    return (lambda text: compiled.fullmatch(text, partial=True) is not None,
            lambda text: compiled.fullmatch(text) is not None)


def arithmetic_state(text: str) -> bool | None:
    """``None`` when ``text`` is no prefix of an ARITHMETIC expression, else whether it is a
    whole one (a counter automaton: parentheses depth and what may come next)."""
    depth, state = 0, "operand"                    # operand | number | after
    if text.startswith(" "):
        return None                                # %ignore'd text may not come first
    for char in text:
        if char == " ":
            state = "after" if state == "number" else state
        elif char in "0123456789":
            if state == "after":
                return None
            state = "number"
        elif char in "+-*/":
            if state == "operand":
                return None
            state = "operand"
        elif char == "(":
            if state != "operand":
                return None
            depth += 1
        elif char == ")":
            if state == "operand" or depth == 0:
                return None
            depth, state = depth - 1, "after"
        else:
            return None
    return state != "operand" and depth == 0


ARITHMETIC_REFERENCE = (lambda text: arithmetic_state(text) is not None,
                        lambda text: arithmetic_state(text) is True)


def check_along(grammar, tokenizer, ascii_vocab, texts, reference) -> int:
    """Compares the masks with the reference at every token boundary of ``texts``."""
    eos = tokenizer.eos_token_id
    checked = 0
    for text in texts:
        ids = tokenizer.encode(text)
        matcher = grammar.matcher()
        for position in range(len(ids) + 1):
            prefix = tokenizer.decode(ids[:position])
            mask = matcher.allowed()
            expected = reference_mask(prefix, ascii_vocab, eos, *reference)
            wrong = np.flatnonzero(mask != expected)
            assert not len(wrong), (
                f"after {prefix!r}: tokens {[tokenizer.decode([i]) for i in wrong[:8]]} "
                f"engine says {mask[wrong[:8]].tolist()}")
            assert bool(mask[eos]) == matcher.is_accepting()
            checked += 1
            if position < len(ids):
                assert matcher.advance([ids[position]]), (text, position)
    return checked


def random_walk(grammar, rng: random.Random, steps: int, eos: int) -> list[int]:
    """Random allowed tokens (never the end token), up to ``steps`` of them."""
    matcher = grammar.matcher()
    tokens: list[int] = []
    for _ in range(steps):
        choices = np.flatnonzero(matcher.allowed())
        choices = choices[choices != eos]
        if not len(choices):
            break
        token = int(rng.choice(list(choices)))
        assert matcher.advance([token])
        tokens.append(token)
    return tokens


@pytest.fixture(params=ENGINE_NAMES)
def engine(request) -> str:
    return request.param


# -- masks against references ---------------------------------------------------------------

def test_registry_and_contract(engine, tokenizer):
    assert sorted(ENGINES) == ENGINE_NAMES
    assert get_engine(engine).name == engine
    with pytest.raises(ValueError, match="unknown grammar engine 'nope'; known: llguidance, "
                                         "xgrammar"):
        get_engine("nope")
    grammar = compile_grammar(GrammarSpec("regex", "[0-9]+"), tokenizer, VOCAB, engine=engine)
    assert isinstance(grammar, CompiledGrammar) and isinstance(grammar.matcher(), Matcher)
    mask = grammar.matcher().allowed()
    assert mask.dtype == bool and mask.shape == (VOCAB,)
    assert not mask[len(tokenizer):].any()                 # ids the tokenizer lacks


def test_regex_masks_are_exact(engine, tokenizer, ascii_vocab):
    grammar = compile_grammar(GrammarSpec("regex", PATTERN, "codes"), tokenizer, VOCAB,
                              engine=engine)
    checked = check_along(grammar, tokenizer, ascii_vocab,
                          ["abcab-123xfe", "c-00", "ccab-999x"], regex_reference(PATTERN))
    assert checked > 10


def test_regex_classes_are_ascii(engine, tokenizer):
    grammar = compile_grammar(GrammarSpec("regex", r"\d+\w?/"), tokenizer, VOCAB,
                              engine=engine)
    for text, taken in [("12a/", True), ("3_/", True), ("\u0663/", False), ("1\u00e9/", False)]:
        matcher = grammar.matcher()
        assert (matcher.advance(tokenizer.encode(text)) and matcher.is_accepting()) == taken


def test_lark_arithmetic_masks_are_exact(engine, tokenizer, ascii_vocab):
    grammar = compile_grammar(GrammarSpec("lark", ARITHMETIC, "arithmetic"), tokenizer,
                              VOCAB, engine=engine)
    check_along(grammar, tokenizer, ascii_vocab,
                ["(1+23)*4", "12 * (3 - 4) / 5 ", "((7))"], ARITHMETIC_REFERENCE)
    matcher = grammar.matcher()
    assert not matcher.advance(tokenizer.encode("1 2"))          # two numbers in a row
    assert not matcher.advance(tokenizer.encode("(1))"))
    assert matcher.advance(tokenizer.encode("(1)")) and matcher.is_accepting()


def test_json_schema_masks_are_exact(engine, tokenizer, ascii_vocab):
    grammar = compile_grammar(GrammarSpec("json_schema", PETS, "pets"), tokenizer, VOCAB,
                              engine=engine)
    check_along(grammar, tokenizer, ascii_vocab,
                ['{"kind": "cat", "legs": 4, "tags": ["a", "b"]}', '{ "kind":"dog" ,"legs":12}',
                 '{\n  "kind": "dog",\n  "legs": 0,\n  "tags": []\n}'],
                regex_reference(PETS_REGEX))


def test_json_schema_documents(engine, tokenizer):
    """Whole documents: the engine takes exactly the valid ones (by ``jsonschema``)."""
    jsonschema = pytest.importorskip("jsonschema")
    import json

    grammar = compile_grammar(GrammarSpec("json_schema", MIXED, "mixed"), tokenizer, VOCAB,
                              engine=engine)
    documents = [
        '{"name": "Ada", "score": 99.5, "count": -3, "tags": ["x", "y"], "ok": true}',
        '{"name":"", "score":-5, "extra": null}',
        '{"name": "e\\u00e9\\n", "score": 100, "extra": "abcd"}',
        '{"name": "a", "score": 100.5}',                       # above the maximum
        '{"name": "a", "score": -5.01}',                       # below the minimum
        '{"score": 1, "name": "a"}',       # valid JSON Schema, but out of the schema's order
        '{"name": "a"}',                                       # a required key missing
        '{"name": "a", "score": 1, "tags": ["a", "b", "c", "d"]}',            # too many
        '{"name": "a", "score": 1, "count": 1.5}',
        '{"name": "a", "score": 1, "extra": "abcde"}',
        '{"name": "a", "score": 1, "more": [1, {"b": null}]}',      # other keys are allowed
    ]
    for document in documents:
        valid = jsonschema.Draft202012Validator(MIXED).is_valid(json.loads(document))
        in_order = not document.startswith('{"score"')
        matcher = grammar.matcher()
        taken = matcher.advance(tokenizer.encode(document)) and matcher.is_accepting()
        assert taken == (valid and in_order), document
        if taken:
            assert matcher.is_stopped()


def test_stopped_at_the_end_of_a_json_value(engine, tokenizer):
    eos = tokenizer.eos_token_id
    grammar = compile_grammar(GrammarSpec("json_schema", PETS, "pets"), tokenizer, VOCAB,
                              engine=engine)
    matcher = grammar.matcher()
    assert matcher.advance(tokenizer.encode('{"kind": "cat", "legs": 4'))
    assert not matcher.is_accepting() and not matcher.is_stopped()
    assert matcher.advance(tokenizer.encode("}"))
    assert matcher.is_accepting() and matcher.is_stopped()
    assert np.flatnonzero(matcher.allowed()).tolist() == [eos]
    numbers = compile_grammar(GrammarSpec("regex", "[0-9]+"), tokenizer, VOCAB, engine=engine)
    matcher = numbers.matcher()
    assert matcher.advance(tokenizer.encode("42"))
    assert matcher.is_accepting() and not matcher.is_stopped()     # more digits may follow


# -- advance, refuse, roll back, end ---------------------------------------------------------

@pytest.mark.parametrize("spec", [GrammarSpec("json_schema", MIXED, "mixed"),
                                  GrammarSpec("lark", ARITHMETIC, "arithmetic")],
                         ids=["json", "lark"])
def test_advance_and_rollback_round_trip(engine, tokenizer, spec):
    eos = tokenizer.eos_token_id
    grammar = compile_grammar(spec, tokenizer, VOCAB, engine=engine)
    rng = random.Random(1)
    for _ in range(3):
        tokens = random_walk(grammar, rng, 25, eos)
        matcher = grammar.matcher()
        seen = []
        for token in tokens:
            seen.append((matcher.allowed(), matcher.is_accepting(), matcher.is_stopped()))
            assert matcher.advance([token])
        seen.append((matcher.allowed(), matcher.is_accepting(), matcher.is_stopped()))
        for _ in range(6):                # roll back some, replay in one call, compare
            count = rng.randint(0, len(tokens))
            matcher.rollback(count)
            depth = len(tokens) - count
            mask, accepting, stopped = seen[depth]
            assert np.array_equal(matcher.allowed(), mask)
            assert (matcher.is_accepting(), matcher.is_stopped()) == (accepting, stopped)
            assert matcher.advance(tokens[depth:])
            assert np.array_equal(matcher.allowed(), seen[-1][0])
        with pytest.raises(ValueError, match="cannot roll back"):
            matcher.rollback(len(tokens) + 1)


def test_refused_tokens_leave_the_matcher_usable(engine, tokenizer):
    grammar = compile_grammar(GrammarSpec("json_schema", PETS, "pets"), tokenizer, VOCAB,
                              engine=engine)
    matcher = grammar.matcher()
    assert matcher.advance(tokenizer.encode('{"kind": "c'))
    before = matcher.allowed()
    refused = [tokenizer.encode("x"), tokenizer.encode('at", "legs": 13'), [VOCAB - 1], [-1],
               [VOCAB + 5], [tokenizer.eos_token_id], tokenizer.encode("at") + [before.size]]
    for tokens in refused:
        assert not matcher.advance(tokens), tokens
        assert np.array_equal(matcher.allowed(), before)       # nothing consumed
    assert matcher.advance([])
    assert matcher.advance(tokenizer.encode('at", "legs": 3}')) and matcher.is_stopped()


def test_end_token_exactly_where_accepting(engine, tokenizer):
    eos = tokenizer.eos_token_id
    grammar = compile_grammar(GrammarSpec("regex", PATTERN), tokenizer, VOCAB, engine=engine)
    rng = random.Random(2)
    ends = 0
    for _ in range(8):
        tokens = random_walk(grammar, rng, 12, eos)
        matcher = grammar.matcher()
        for token in tokens:
            assert matcher.advance([token])
            accepting = matcher.is_accepting()
            assert bool(matcher.allowed()[eos]) == accepting
            if accepting:                          # the end token, then nothing; roll it back
                ends += 1
                assert matcher.advance([eos])
                assert matcher.is_stopped() and not matcher.allowed().any()
                assert not matcher.advance([token])
                matcher.rollback(1)
                assert matcher.allowed()[eos] and not matcher.is_stopped()
            else:
                assert not matcher.advance([eos])
    assert ends > 3
    matcher = grammar.matcher()               # the end token may close a multi-token advance
    start = matcher.allowed()
    assert not matcher.advance(tokenizer.encode("ab-1") + [eos])
    assert np.array_equal(matcher.allowed(), start)
    assert matcher.advance(tokenizer.encode("ab-12") + [eos]) and matcher.is_stopped()


# -- the engines agree ----------------------------------------------------------------------

def _llguidance_stricter(prefix: bytes, piece: bytes | None) -> bool:
    """Where llguidance refuses valid JSON that xgrammar takes (documented in the engine):
    a raw DEL in a string, the escape ``\\/``, and UTF-8-encoded surrogates (invalid UTF-8,
    which xgrammar lets through)."""
    if piece is None:
        return False
    escaped_slash = piece.startswith(b"/") and re.search(rb"(?<!\\)(\\\\)*\\$", prefix)
    surrogate = prefix.endswith(b"\xed") and 0xA0 <= piece[0] <= 0xBF
    return b"\x7f" in piece or bool(escaped_slash) or surrogate


@pytest.mark.parametrize("spec", [GrammarSpec("regex", PATTERN, "codes"),
                                  GrammarSpec("regex", r"(\w+ ?\d*[.,;]){2,5}", "words"),
                                  GrammarSpec("json_schema", MIXED, "mixed"),
                                  GrammarSpec("json_schema", {"type": "object"}, "any"),
                                  GrammarSpec("lark", ARITHMETIC, "arithmetic")],
                         ids=["regex", "regex-classes", "json", "json-any", "lark"])
def test_engines_agree_on_random_states(tokenizer, vocab, spec):
    eos = tokenizer.eos_token_id
    first, second = (compile_grammar(spec, tokenizer, VOCAB, engine=name)
                     for name in ENGINE_NAMES)
    rng = random.Random(3)
    states = 0
    for _ in range(25):
        left, right = first.matcher(), second.matcher()
        text = b""
        for _ in range(30):
            one, other = left.allowed(), right.allowed()
            states += 1
            for token in np.flatnonzero(one != other):
                assert not one[token] and _llguidance_stricter(text, vocab[token]), (
                    f"after {text!r}: token {vocab[token]!r}: llguidance {one[token]}")
            assert left.is_accepting() == right.is_accepting()
            assert left.is_stopped() == right.is_stopped()
            choices = np.flatnonzero(one & other)
            choices = choices[choices != eos]
            if not len(choices):
                break
            token = int(rng.choice(list(choices)))
            assert left.advance([token]) and right.advance([token])
            text += vocab[token]
    assert states > 200


# -- errors, unsupported features, timeouts -------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    (GrammarSpec("lark", 'start: a\na: "x"\n  b', "broken"), r"'broken': .*line 3, column 4"),
    (GrammarSpec("lark", "start: foo", "undefined"), r"line 1, column 8: unknown name"),
    (GrammarSpec("lark", 'start: x\nx.2: "a"', "priority"), r"line 2, column \d+: .*priorit"),
    (GrammarSpec("regex", "[a-", "open"), r"regex 'open': .*unclosed character class"),
    (GrammarSpec("regex", "a(?=b)", "ahead"), r"look-around"),
    (GrammarSpec("regex", "a^b", "anchor"), r"invalid regex \"a\^b\""),
    (GrammarSpec("json_schema", {"type": "objekt"}, "typo"), r"schema 'typo': .*objekt"),
    (GrammarSpec("json_schema", '{"type": }', "text"), r"not JSON: line 1, column 10"),
    (GrammarSpec("json_schema", [1], "list"), r"must be a JSON object, not list"),
    (GrammarSpec("json_schema", {"$ref": "#/$defs/gone"}, "ref"), r"/\$defs/gone"),
    (GrammarSpec("json_schema", {"type": "array", "uniqueItems": True}, "u"), r"uniqueItems"),
    (GrammarSpec("json_schema", {"not": {"type": "string"}}, "n"), r"\"not\""),
    (GrammarSpec("json_schema", {"type": "string", "pattern": "a(?=b)"}, "p"), r"look-around"),
    (GrammarSpec("json_schema", {"type": "string", "format": "madeup"}, "f"), r"madeup"),
])
def test_invalid_and_unsupported_grammars(engine, tokenizer, spec, message):
    with pytest.raises(GrammarError, match="(?s)" + message):      # messages span lines
        compile_grammar(spec, tokenizer, VOCAB, engine=engine)


@pytest.mark.parametrize("schema, keyword", [
    ({"allOf": [{"type": "integer"}, {"minimum": 3}]}, r"'allOf' \(at #\)"),
    ({"type": "object", "properties": {"x": {"type": "number", "multipleOf": 0.5}}},
     r"'multipleOf' on a non-integer type \(at #/properties/x\)"),
    ({"type": "string", "pattern": "a+", "maxLength": 3}, r"'maxLength' next to 'pattern'"),
    ({"type": "object", "patternProperties": {"^a": {}}}, r"'patternProperties'"),
])
def test_xgrammar_refuses_what_it_would_ignore(tokenizer, schema, keyword):
    with pytest.raises(GrammarError, match="xgrammar does not support the JSON Schema keyword "
                                           + keyword):
        compile_grammar(GrammarSpec("json_schema", schema), tokenizer, VOCAB, engine="xgrammar")
    compile_grammar(GrammarSpec("json_schema", schema), tokenizer, VOCAB, engine="llguidance")


def test_llguidance_warnings_are_kept_and_issued(tokenizer, monkeypatch):
    monkeypatch.setattr(llguidance_engine, "check_grammar", lambda *args: ["something odd"])
    spec = GrammarSpec("regex", "[a-z]+", "warned")
    with pytest.warns(UserWarning, match="llguidance, regex 'warned': something odd"):
        grammar = get_engine("llguidance").compile(spec, tokenizer, VOCAB)
    assert grammar.warnings == ("something odd",)


def _wait_for_compile_threads() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("compile "):
            thread.join()


HUGE = {   # each takes about half a second or more to compile
    "llguidance": GrammarSpec("lark", "start: item+\nitem: " + " | ".join(
        f'"tok{i}" NUM' for i in range(20000)) + "\nNUM: /[0-9]+/\n", "huge"),
    "xgrammar": GrammarSpec("json_schema", {"type": "string", "pattern": "(" + "|".join(
        f"w{i}[a-z]{{2,9}}q" for i in range(600)) + ")"}, "huge"),
}


def test_compiling_a_huge_grammar_times_out(engine, tokenizer):
    began = time.perf_counter()
    with pytest.raises(GrammarError, match="'huge': compiling took longer than 0.02 s"):
        compile_grammar(HUGE[engine], tokenizer, VOCAB, engine=engine, timeout=0.02)
    assert time.perf_counter() - began < 0.3
    _wait_for_compile_threads()


def test_a_slow_compile_times_out(engine, tokenizer, monkeypatch):
    helper = {"llguidance": "_tokenizer", "xgrammar": "_compiler"}[engine]
    instance = get_engine(engine)
    original = getattr(instance, helper)

    def slow(*args):
        time.sleep(0.3)
        return original(*args)

    monkeypatch.setattr(instance, helper, slow)
    with pytest.raises(GrammarError, match="regex 'slow': compiling took longer than 0.05 s"):
        instance.compile(GrammarSpec("regex", "[0-9]+", "slow"), tokenizer, VOCAB, timeout=0.05)
    _wait_for_compile_threads()


def test_a_deeply_nested_grammar_compiles(engine, tokenizer):
    """A chain of 3000 nested rules (llguidance overflows a default thread stack on it)."""
    depth = 3000
    chain = "start: r0\n" + "\n".join(f'r{i}: "x" r{i + 1}? "y"' for i in range(depth - 1))
    chain += f'\nr{depth - 1}: "z"'
    grammar = compile_grammar(GrammarSpec("lark", chain, "chain"), tokenizer, VOCAB,
                              engine=engine)
    matcher = grammar.matcher()
    assert matcher.advance(tokenizer.encode("xxxyyy")) and matcher.is_accepting()


# -- the cache ------------------------------------------------------------------------------

def test_compiled_grammars_are_cached(engine, tokenizer, monkeypatch):
    clear_cache()
    spec = GrammarSpec("json_schema", PETS, "pets")
    grammar = compile_grammar(spec, tokenizer, VOCAB, engine=engine)
    assert compile_grammar(GrammarSpec("json_schema", dict(PETS), "pets"), tokenizer, VOCAB,
                           engine=engine) is grammar
    assert compile_grammar(spec, tokenizer, VOCAB + 32, engine=engine) is not grammar
    reordered = {"required": PETS["required"], **PETS}         # the key order is meaningful
    assert compile_grammar(GrammarSpec("json_schema", reordered, "pets"), tokenizer, VOCAB,
                           engine=engine) is not grammar
    calls = []
    instance = get_engine(engine)
    original = instance.compile
    monkeypatch.setattr(instance, "compile", lambda *a, **k: calls.append(1) or original(*a, **k))
    bad = GrammarSpec("regex", "(", "bad")
    for _ in range(2):                                        # failures are not cached
        with pytest.raises(GrammarError):
            compile_grammar(bad, tokenizer, VOCAB, engine=engine)
    assert len(calls) == 2
    assert engines_module.CACHE_SIZE >= 16
