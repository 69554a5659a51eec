"""The XGrammar engine: Lark, JSON Schema and regex masks from MLC's ``xgrammar``.

A thin adapter over ``xgrammar.GrammarCompiler`` and ``GrammarMatcher`` (a pushdown automaton
with precomputed token masks, in C++). xgrammar reads Lark itself (``compile_lark``: rules,
terminals, regexes, repetition, ``%ignore``, ``%import common``; it refuses, by name, what it
does not support: templates, priorities, ``&``, ``~``...), JSON Schema and regexes. What this
adapter adds, as :class:`~.protocol.BitmaskMatcher` does for every engine:

- masks as NumPy boolean arrays over the model's vocabulary; the end token exactly where the
  output may end; refused tokens leave the matcher as it was;
- JSON Schema with its standard meaning (``strict_mode=False``: properties not listed are
  allowed unless ``additionalProperties`` says otherwise), any whitespace, properties in the
  order the schema lists them (as llguidance);
- nothing silently ignored. xgrammar skips some things with a log line only (``allOf``,
  ``multipleOf`` on non-integers, ``patternProperties``, length limits next to ``pattern`` or
  ``format``, lookahead in patterns, ``uniqueItems``, ``not``, ``if``/``then``...). So a schema
  or regex is first checked by llguidance (the other engine: it refuses every keyword or regex
  construct it does not implement), then against :data:`JSON_KEYWORDS`, the keywords this
  engine passes on: anything else is a :class:`~.protocol.GrammarError` naming the keyword and
  where it is.

Compiling runs in a worker thread with a deadline (xgrammar releases the GIL meanwhile; see
:func:`~.protocol.compile_within`).

>>> from transformers import AutoTokenizer
>>> from diagrammar.models.default.shipped import shipped_path
>>> tokenizer = AutoTokenizer.from_pretrained(shipped_path("tiny"))
>>> schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
>>> grammar = XGrammarEngine().compile(GrammarSpec("json_schema", schema), tokenizer, 4096)
>>> matcher = grammar.matcher()
>>> matcher.advance(tokenizer.encode('{"n": 12}')), matcher.is_stopped()
(True, True)
>>> XGrammarEngine().compile(GrammarSpec("json_schema", {"allOf": [{"type": "integer"}]}),
...                          tokenizer, 4096)
Traceback (most recent call last):
...
diagrammar.decoding.constraints.protocol.GrammarError: schema 'grammar': xgrammar does not \
support the JSON Schema keyword 'allOf' (at #)
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import numpy as np

from .llguidance_engine import check_grammar, encoder, lark_text, schema_text
from .protocol import BitmaskMatcher, GrammarError, GrammarSpec, compile_within

#: JSON Schema keywords this engine passes on to xgrammar (which enforces them). Annotations
#: are allowed and ignored, as JSON Schema says; every other keyword is a GrammarError.
JSON_KEYWORDS = frozenset({
    "type", "enum", "const", "anyOf", "$ref", "$defs", "definitions",
    "properties", "required", "additionalProperties", "minProperties", "maxProperties",
    "items", "prefixItems", "minItems", "maxItems",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "format",
})
ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "readOnly",
    "writeOnly", "deprecated", "contentEncoding", "contentMediaType",
})
_SCHEMA_MAPS = ("properties", "$defs", "definitions")          # name -> subschema
_SCHEMA_LISTS = ("anyOf", "prefixItems")                       # [subschema]
_SCHEMAS = ("items", "additionalProperties")                   # subschema (or a boolean)

#: xgrammar's log prefix on its messages (``[12:00:00] /project/cpp/file.cc:83: ``).
_LOG_PREFIX = re.compile(r"\[[\d:]+\] \S+?:\d+: ")


def unsupported_keyword(schema: Any, where: str = "#") -> str | None:
    """The first keyword of ``schema`` this engine would not enforce, with where it is, or
    ``None``.

    >>> unsupported_keyword({"type": "object", "properties": {"a": {"not": {}}}})
    "'not' (at #/properties/a)"
    >>> unsupported_keyword({"type": "number", "multipleOf": 0.5})
    "'multipleOf' on a non-integer type (at #)"
    >>> unsupported_keyword({"type": "string", "title": "s", "maxLength": 3}) is None
    True
    """
    if not isinstance(schema, dict):
        return None
    for key in schema:
        if key not in JSON_KEYWORDS and key not in ANNOTATIONS and not key.startswith("x-"):
            return f"{key!r} (at {where})"
    if "multipleOf" in schema and schema.get("type") != "integer":
        return f"'multipleOf' on a non-integer type (at {where})"
    limits = [key for key in ("minLength", "maxLength") if key in schema]
    shapes = [key for key in ("pattern", "format") if key in schema]
    if limits and shapes:
        return f"{limits[0]!r} next to {shapes[0]!r} (at {where})"
    for key in _SCHEMA_MAPS:
        for name, sub in (schema.get(key) or {}).items():
            found = unsupported_keyword(sub, f"{where}/{key}/{name}")
            if found:
                return found
    for key in _SCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key) or []):
            found = unsupported_keyword(sub, f"{where}/{key}/{index}")
            if found:
                return found
    for key in _SCHEMAS:
        found = unsupported_keyword(schema.get(key), f"{where}/{key}")
        if found:
            return found
    return None


def _message(error: Exception) -> str:
    lines = [_LOG_PREFIX.sub("", line) for line in str(error).strip().splitlines()]
    return "\n".join(line for line in lines if line.strip())


class XGrammarMatcher(BitmaskMatcher):
    """One sequence's position in an xgrammar grammar (see :class:`~.protocol.Matcher`)."""

    def __init__(self, matcher: Any, vocab_size: int, eos: int, name: str,
                 encode: Any = None) -> None:
        super().__init__(vocab_size, eos, name, encode)
        self._matcher = matcher
        self._rows = self._words.reshape(1, -1)           # xgrammar wants (batch, words)
        self._stop_words = np.zeros_like(self._words)
        self._stop_words[eos // 32] = np.int32(np.uint32(1 << (eos % 32)).view(np.int32))

    def _fill(self, words: np.ndarray) -> None:
        self._matcher.fill_next_token_bitmask(self._rows)

    def _forced_bytes(self) -> bytes:
        return self._matcher.find_jump_forward_string().encode("utf-8")

    def _consume(self, tokens: list[int]) -> bool:
        for done, token in enumerate(tokens):
            if not self._matcher.accept_token(token):
                if done:
                    self._matcher.rollback(done)
                return False
        return True

    def _undo(self, count: int) -> None:
        self._matcher.rollback(count)

    def _accepting(self) -> bool:
        return self._matcher.is_completed()

    def _stopped(self) -> bool:
        """Accepting, and the mask allows the end token only (xgrammar has no such query)."""
        if not self._matcher.is_completed():
            return False
        self._fill(self._words)
        return not np.any(self._words & ~self._stop_words)


class XGrammarGrammar:
    """A spec compiled by xgrammar for one tokenizer (see :class:`~.protocol.CompiledGrammar`).

    Attributes:
        spec: what it matches.
        vocab_size: length of the masks.
        warnings: always empty: what xgrammar would not enforce is an error here.
    """

    def __init__(self, spec: GrammarSpec, compiled: Any, vocab_size: int, eos: int,
                 encode: Any = None) -> None:
        self.spec = spec
        self.vocab_size = vocab_size
        self.warnings: tuple[str, ...] = ()
        self._compiled = compiled
        self._eos = eos
        self._encode = encode

    def matcher(self) -> XGrammarMatcher:
        """A fresh matcher at the start of the grammar."""
        import xgrammar

        return XGrammarMatcher(xgrammar.GrammarMatcher(self._compiled), self.vocab_size,
                               self._eos, self.spec.name, self._encode)


class XGrammarEngine:
    """Compiles specs with xgrammar (see the module). One ``GrammarCompiler`` per tokenizer
    object and vocabulary size, cached (its own grammar cache is off: :func:`~.engines.
    compile_grammar` caches compiled grammars)."""

    name = "xgrammar"

    def __init__(self, max_threads: int = 2) -> None:
        self.max_threads = max_threads
        self._compilers: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def _compiler(self, tokenizer: Any, vocab_size: int) -> Any:
        import xgrammar

        key = (id(tokenizer), vocab_size)
        with self._lock:
            entry = self._compilers.get(key)
        if entry is None:           # the entry keeps the tokenizer alive, so its id stays its
            size = len(tokenizer)
            if vocab_size < size:
                raise GrammarError(f"the model's vocabulary ({vocab_size}) is smaller than "
                                   f"its tokenizer's ({size})")
            if tokenizer.eos_token_id is None:
                raise GrammarError("the tokenizer has no end-of-sequence token "
                                   "(eos_token_id), which a grammar needs to say when the "
                                   "output may end")
            info = xgrammar.TokenizerInfo.from_huggingface(
                tokenizer, vocab_size=vocab_size, stop_token_ids=[tokenizer.eos_token_id])
            compiler = xgrammar.GrammarCompiler(info, max_threads=self.max_threads,
                                                cache_enabled=False)
            entry = (tokenizer, compiler)
            with self._lock:
                self._compilers[key] = entry
        return entry[1]

    def compile(self, spec: GrammarSpec, tokenizer: Any, vocab_size: int,
                timeout: float = 10.0) -> XGrammarGrammar:
        """``spec`` compiled for ``tokenizer``; masks have ``vocab_size`` entries.

        Raises:
            GrammarError: an invalid grammar (xgrammar's message, with line and column for
                Lark), a feature xgrammar would not enforce (named), or compiling took longer
                than ``timeout`` seconds.
        """
        kind = {"lark": "grammar", "json_schema": "schema", "regex": "regex"}[spec.format]
        what = f"{kind} {spec.name!r}"

        def build() -> XGrammarGrammar:
            compiler = self._compiler(tokenizer, vocab_size)
            try:
                if spec.format == "lark":
                    if not isinstance(spec.source, str):
                        raise GrammarError(f"{what}: Lark source must be text, not "
                                           f"{type(spec.source).__name__}")
                    compiled = compiler.compile_lark(spec.source)
                elif spec.format == "regex":
                    check_grammar(spec, lark_text(spec))
                    compiled = compiler.compile_regex(spec.source)
                else:
                    text = schema_text(spec.source, spec.name)
                    check_grammar(spec, lark_text(spec))
                    found = unsupported_keyword(
                        spec.source if isinstance(spec.source, dict) else json.loads(text))
                    if found:
                        raise GrammarError(f"{what}: xgrammar does not support the JSON "
                                           f"Schema keyword {found}")
                    schema = json.loads(text)
                    options = schema.get("x-guidance") or {} if isinstance(schema, dict) \
                        else {}
                    flexible = bool(options.get("whitespace_flexible", True))
                    separators = None if flexible else (
                        options.get("item_separator", ","), options.get("key_separator", ":"))
                    compiled = compiler.compile_json_schema(
                        text, strict_mode=False, any_whitespace=flexible,
                        separators=separators)
            except RuntimeError as error:
                raise GrammarError(f"{what}: {_message(error)}") from None
            return XGrammarGrammar(spec, compiled, vocab_size, tokenizer.eos_token_id,
                                   encoder(tokenizer))

        return compile_within(build, timeout, what)


__all__ = ["ANNOTATIONS", "JSON_KEYWORDS", "XGrammarEngine", "XGrammarGrammar",
           "XGrammarMatcher", "unsupported_keyword"]
