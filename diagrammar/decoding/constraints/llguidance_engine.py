"""The llguidance engine: Lark, JSON Schema and regex masks from Microsoft's ``llguidance``.

A thin adapter over ``llguidance.LLMatcher`` (an Earley parser over a lexer, in Rust). What it
adds to the library:

- masks as NumPy boolean arrays over the *model's* vocabulary (ids the tokenizer lacks are never
  allowed; the end token exactly when the output may end; nothing after the end token);
- :meth:`~LLGuidanceMatcher.advance` checks before it consumes, so a refused token leaves the
  matcher usable (llguidance itself enters a permanent error state);
- exact masks: llguidance's *forcing* (where the grammar forces some bytes, it allows only the
  canonical tokenization of them) is switched off with its ``no_forcing`` option, so a mask
  allows every token that keeps the output a valid prefix — what speculative drafts and the
  other engine need;
- errors as :class:`~.protocol.GrammarError` with llguidance's message (line and column of a
  Lark fault; the keyword or regex of a JSON Schema one). llguidance refuses JSON-Schema
  keywords it does not implement (``uniqueItems``, ``not``, ``if``/``then``, ``contains``,
  ``propertyNames``, ``dependentRequired``, unknown ``format`` values, ``oneOf`` whose branches
  may overlap...): those are errors too, never ignored. Warnings it gives for a grammar that
  does compile are kept on :attr:`LLGuidanceGrammar.warnings` and issued as Python warnings.

Compiling builds the parser and its first mask in a worker thread with a deadline (see
:func:`~.protocol.compile_within`); llguidance releases the GIL meanwhile.

>>> from transformers import AutoTokenizer
>>> from diagrammar.models.default.shipped import shipped_path
>>> tokenizer = AutoTokenizer.from_pretrained(shipped_path("tiny"))
>>> grammar = LLGuidanceEngine().compile(GrammarSpec("regex", "[0-9]+"), tokenizer, 4100)
>>> matcher = grammar.matcher()
>>> mask = matcher.allowed()
>>> mask.shape, bool(mask[tokenizer.convert_tokens_to_ids("7")]), bool(mask[4099])
((4100,), True, False)
>>> matcher.advance(tokenizer.encode("x")), matcher.advance(tokenizer.encode("42"))
(False, True)
>>> matcher.is_accepting(), bool(matcher.allowed()[tokenizer.eos_token_id])
(True, True)
"""

from __future__ import annotations

import functools
import json
import re
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .protocol import BitmaskMatcher, GrammarError, GrammarSpec, compile_within

#: Appended to every grammar: exact masks (no canonical-tokenization forcing; see the module).
NO_FORCING = '\n%llguidance {"no_forcing": true}\n'

#: llguidance's JSON options (a schema's own ``x-guidance`` wins): any ``\\uXXXX`` escape in
#: strings, as JSON allows (llguidance's default takes only a few).
JSON_OPTIONS = {"json_allow_general_unicode_escapes": True}

#: An excerpt of the wrapper grammar in llguidance's messages (``   1 | start: ...``).
_EXCERPT = re.compile(r"^\s+\d+ \| ")


def schema_text(source: Any, name: str) -> str:
    """The JSON text of a schema given as a dict or as text (an object, or true/false).

    >>> schema_text('{"type": "integer"}', "n")
    '{"type": "integer"}'
    >>> schema_text('{"type": }', "n")
    Traceback (most recent call last):
    ...
    diagrammar.decoding.constraints.protocol.GrammarError: schema 'n' is not JSON: line 1, \
column 10: Expecting value
    """
    if isinstance(source, (str, bytes)):
        try:
            parsed = json.loads(source)
        except json.JSONDecodeError as error:
            raise GrammarError(f"schema {name!r} is not JSON: line {error.lineno}, column "
                               f"{error.colno}: {error.msg}") from None
    else:
        parsed = source
    if not isinstance(parsed, (dict, bool)):
        raise GrammarError(f"schema {name!r} must be a JSON object, not "
                           f"{type(parsed).__name__}")
    try:
        return source if isinstance(source, str) else json.dumps(parsed)
    except (TypeError, ValueError) as error:
        raise GrammarError(f"schema {name!r} is not JSON-serialisable: {error}") from None


def lark_text(spec: GrammarSpec) -> str:
    """The Lark grammar llguidance compiles for ``spec`` (regex and JSON Schema wrapped)."""
    import llguidance

    if spec.format == "lark":
        if not isinstance(spec.source, str):
            raise GrammarError(f"grammar {spec.name!r}: Lark source must be text, not "
                               f"{type(spec.source).__name__}")
        return spec.source + NO_FORCING
    if spec.format == "regex":
        if not isinstance(spec.source, str):
            raise GrammarError(f"regex {spec.name!r} must be text, not "
                               f"{type(spec.source).__name__}")
        ascii_classes = llguidance.regex_to_lark(spec.source, "dw")    # as xgrammar's
        return f"start: /{ascii_classes}/" + NO_FORCING
    schema = json.loads(schema_text(spec.source, spec.name))
    if isinstance(schema, dict):
        options = dict(schema.get("x-guidance") or {})
        if options.get("whitespace_flexible") is False:      # compact: fixed separators,
            options.setdefault("item_separator", ",")          # the same on both engines
            options.setdefault("key_separator", ":")
        schema = {**schema, "x-guidance": {**JSON_OPTIONS, **options}}
    return f"start: %json {json.dumps(schema)}" + NO_FORCING


def check_grammar(spec: GrammarSpec, grammar: str, tokenizer: Any = None) -> list[str]:
    """llguidance's verdict on ``grammar`` (made from ``spec``): its warnings, or a
    :class:`~.protocol.GrammarError` with its message (cleaned of the wrapper's excerpt).

    The XGrammar engine calls this too (without a tokenizer) to refuse, by llguidance's
    checks, the JSON-Schema keywords and regex constructs xgrammar would silently ignore.
    """
    import llguidance

    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    if failed:
        raise GrammarError(f"{_kind(spec)} {spec.name!r}: {_clean(spec, messages[0])}")
    return list(messages)


def _kind(spec: GrammarSpec) -> str:
    return {"lark": "grammar", "json_schema": "schema", "regex": "regex"}[spec.format]


def _clean(spec: GrammarSpec, message: str) -> str:
    """llguidance's ``message`` without what the user did not write: its state dump, the
    options line we append, and for regex and schema the excerpt of the wrapper grammar."""
    message = message.split("<state>")[0].strip()
    lines = message.splitlines()
    if spec.format == "lark":              # the excerpt shows the user's own grammar
        lines = [line for line in lines
                 if not (_EXCERPT.match(line) and line.rstrip().endswith(NO_FORCING.strip()))]
    else:
        for index, line in enumerate(lines):
            if _EXCERPT.match(line):       # the wrapper "start: /.../" or "start: %json ..."
                lines = lines[:index]
                break
    text = "\n".join(lines).strip()
    position = r"line \1, column \2: " if spec.format == "lark" else ""
    return re.sub(r"^(?:at )?(\d+)\((\d+)\): ", position, text)


def llguidance_tokenizer(tokenizer: Any, vocab_size: int) -> Any:
    """``llguidance.LLTokenizer`` for a Hugging Face fast tokenizer (or a
    :class:`~.vocabulary.TokenVocabulary`) and the model's vocab size."""
    import llguidance.hf

    from .vocabulary import TokenVocabulary

    size = len(tokenizer)
    if isinstance(tokenizer, TokenVocabulary):    # a model's own token list
        if vocab_size < size:
            raise GrammarError(f"the model's vocabulary ({vocab_size}) is smaller than its "
                               f"token list ({size})")
        return llguidance.LLTokenizer(llguidance.TokenizerWrapper(tokenizer),
                                      n_vocab=vocab_size, eos_token=tokenizer.eos_token_id)
    if vocab_size < size:
        raise GrammarError(f"the model's vocabulary ({vocab_size}) is smaller than its "
                           f"tokenizer's ({size})")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise GrammarError("the tokenizer has no end-of-sequence token (eos_token_id), which "
                           "a grammar needs to say when the output may end")
    try:
        return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=eos)
    except ValueError as error:
        raise GrammarError(f"llguidance cannot read the tokenizer "
                           f"({type(tokenizer).__name__}): {error}") from None


def encoder(tokenizer: Any) -> Any:
    """``text -> token ids`` without special tokens, for forced text (see
    :meth:`~.protocol.BitmaskMatcher.forced_tokens`); cached, since a schema forces the same
    key names again and again."""
    fast = getattr(tokenizer, "backend_tokenizer", None)    # the Rust tokenizer, if any

    @functools.lru_cache(maxsize=4096)
    def cached(text: str) -> tuple[int, ...]:
        if fast is not None:
            return tuple(fast.encode(text, add_special_tokens=False).ids)
        return tuple(tokenizer.encode(text, add_special_tokens=False))

    def encode(text: str) -> list[int]:
        return list(cached(text))
    return encode


class LLGuidanceMatcher(BitmaskMatcher):
    """One sequence's position in an llguidance grammar (see :class:`~.protocol.Matcher`)."""

    def __init__(self, matcher: Any, vocab_size: int, eos: int, name: str,
                 encode: Any = None) -> None:
        super().__init__(vocab_size, eos, name, encode)
        self._matcher = matcher

    def _forced_bytes(self) -> bytes:
        forced = self._matcher.compute_ff_bytes()
        self._check()
        return forced

    def _fill(self, words: np.ndarray) -> None:
        self._matcher.unsafe_compute_mask_ptr(words.ctypes.data, words.nbytes)
        self._check()

    def _consume(self, tokens: list[int]) -> bool:
        # check first: a refused token would put llguidance in a permanent error state
        if self._matcher.validate_tokens(tokens) < len(tokens):
            return False
        if not self._matcher.consume_tokens(tokens):
            self._check()
        return True

    def _undo(self, count: int) -> None:
        self._matcher.rollback(count)
        self._check()

    def _accepting(self) -> bool:
        return self._matcher.is_accepting()

    def _stopped(self) -> bool:
        return self._matcher.is_stopped()

    def _check(self) -> None:
        if self._matcher.is_error():
            error = self._matcher.get_error().split("<state>")[0].strip()
            raise GrammarError(f"grammar {self.name!r}: llguidance failed: {error}")


class LLGuidanceGrammar:
    """A spec compiled by llguidance for one tokenizer (see :class:`~.protocol.CompiledGrammar`).

    Attributes:
        spec: what it matches.
        vocab_size: length of the masks.
        warnings: llguidance's warnings about the grammar (it compiled nonetheless).
    """

    def __init__(self, spec: GrammarSpec, prototype: Any, vocab_size: int, eos: int,
                 warnings: Sequence[str] = (), encode: Any = None) -> None:
        self.spec = spec
        self.vocab_size = vocab_size
        self.warnings = tuple(warnings)
        self._prototype = prototype
        self._eos = eos
        self._encode = encode

    def matcher(self) -> LLGuidanceMatcher:
        """A fresh matcher at the start of the grammar (a copy of a compiled one: cheap)."""
        return LLGuidanceMatcher(self._prototype.deep_copy(), self.vocab_size, self._eos,
                                 self.spec.name, self._encode)


class LLGuidanceEngine:
    """Compiles specs with llguidance (see the module). Tokenizer conversions are cached per
    tokenizer object and vocabulary size."""

    name = "llguidance"

    def __init__(self) -> None:
        self._tokenizers: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def _tokenizer(self, tokenizer: Any, vocab_size: int) -> Any:
        key = (id(tokenizer), vocab_size)
        with self._lock:
            entry = self._tokenizers.get(key)
        if entry is None:           # the entry keeps the tokenizer alive, so its id stays its
            entry = (tokenizer, llguidance_tokenizer(tokenizer, vocab_size))
            with self._lock:
                self._tokenizers[key] = entry
        return entry[1]

    def compile(self, spec: GrammarSpec, tokenizer: Any, vocab_size: int,
                timeout: float = 10.0) -> LLGuidanceGrammar:
        """``spec`` compiled for ``tokenizer``; masks have ``vocab_size`` entries.

        Raises:
            GrammarError: an invalid or unsupported grammar (llguidance's message), or
                compiling took longer than ``timeout`` seconds.
        """
        import llguidance

        def build() -> LLGuidanceGrammar:
            lltokenizer = self._tokenizer(tokenizer, vocab_size)
            grammar = lark_text(spec)
            messages = check_grammar(spec, grammar, lltokenizer)
            prototype = llguidance.LLMatcher(lltokenizer, grammar, log_level=0)
            if prototype.is_error():
                raise GrammarError(f"{_kind(spec)} {spec.name!r}: "
                                   f"{_clean(spec, prototype.get_error())}")
            prototype.compute_bitmask()        # the first mask builds the lexer: time it too
            if prototype.is_error():
                raise GrammarError(f"{_kind(spec)} {spec.name!r}: "
                                   f"{_clean(spec, prototype.get_error())}")
            messages += [message for message in prototype.get_grammar_warnings()
                         if message not in messages]
            return LLGuidanceGrammar(spec, prototype, vocab_size, tokenizer.eos_token_id,
                                     messages, encoder(tokenizer))

        compiled = compile_within(build, timeout, f"{_kind(spec)} {spec.name!r}")
        for message in compiled.warnings:
            warnings.warn(f"llguidance, {_kind(spec)} {spec.name!r}: {message}", stacklevel=2)
        return compiled


__all__ = ["LLGuidanceEngine", "LLGuidanceGrammar", "LLGuidanceMatcher", "NO_FORCING",
           "check_grammar", "encoder", "lark_text", "llguidance_tokenizer", "schema_text"]
