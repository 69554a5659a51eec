"""The contract between the ``Constrain`` box and grammar engines (llguidance, xgrammar).

A :class:`GrammarSpec` says what the output must match, in a format the engines read: Lark
(context-free grammars; our grammar diagrams compile to it), a JSON Schema, or a regular
expression. An engine compiles it against a tokenizer into a :class:`CompiledGrammar`, whose
:meth:`~CompiledGrammar.matcher` follows one sequence token by token: which tokens may come
next (a boolean mask over the model's vocabulary), advance, roll back.

>>> spec = GrammarSpec("regex", "[0-9]+")
>>> spec.format, spec.source
('regex', '[0-9]+')
>>> GrammarSpec("yaml", "a: b")
Traceback (most recent call last):
...
ValueError: unknown grammar format 'yaml'; known: json_schema, lark, regex
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

#: The formats every engine reads.
FORMATS = ("json_schema", "lark", "regex")


class GrammarError(ValueError):
    """A grammar or schema that cannot be compiled (the message points at the fault), or a
    feature an engine does not support (named, never silently ignored)."""


@dataclass(frozen=True)
class GrammarSpec:
    """What the output must match.

    Attributes:
        format: ``"lark"``, ``"json_schema"`` or ``"regex"``.
        source: the grammar text, the schema (a dict or its JSON text) or the pattern.
        name: a label for messages and stats.
    """

    format: str
    source: Any
    name: str = "grammar"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown grammar format {self.format!r}; known: "
                             f"{', '.join(FORMATS)}")


@runtime_checkable
class Matcher(Protocol):
    """One sequence's position in a grammar, token by token."""

    def allowed(self) -> np.ndarray:
        """Which tokens may come next: a boolean array over the model's vocabulary (the end
        token is allowed once the output is complete)."""
        ...

    def advance(self, tokens: Sequence[int]) -> bool:
        """Consumes ``tokens``; false (and nothing consumed) when one is not allowed."""
        ...

    def rollback(self, count: int) -> None:
        """Un-consumes the last ``count`` tokens."""
        ...

    def is_accepting(self) -> bool:
        """Whether the output so far is complete (it may end here)."""
        ...

    def is_stopped(self) -> bool:
        """Whether nothing more can follow (the output is complete and cannot grow)."""
        ...


@runtime_checkable
class ForcingMatcher(Matcher, Protocol):
    """A matcher that also says which tokens the grammar forces next (optional: the
    ``Constrain`` box drafts them where a matcher offers this)."""

    def forced_tokens(self, limit: int) -> list[int]:
        """At most ``limit`` tokens spelling text every valid continuation starts with, each
        allowed after the ones before it (empty where nothing is forced)."""
        ...


@runtime_checkable
class CompiledGrammar(Protocol):
    """A grammar compiled for one tokenizer; makes a fresh matcher per sequence."""

    spec: GrammarSpec

    def matcher(self) -> Matcher:
        ...


@runtime_checkable
class GrammarEngine(Protocol):
    """Compiles grammar specs for a tokenizer (time-bounded: a timeout is a GrammarError)."""

    name: str

    def compile(self, spec: GrammarSpec, tokenizer: Any, vocab_size: int,
                timeout: float = 10.0) -> CompiledGrammar:
        """``tokenizer`` is a Hugging Face tokenizer; ``vocab_size`` the model's (masks have
        that length, which may exceed the tokenizer's)."""
        ...


T = TypeVar("T")

#: Stack of the thread that compiles: deeply nested grammars recurse deeply inside the engines
#: (llguidance overflows the default 8 MiB on a chain of a few thousand rules). Only the pages
#: actually touched are committed; where such a stack cannot be had, the default one is used.
COMPILE_STACK_BYTES = 256 * 1024 * 1024


def compile_within(build: Callable[[], T], timeout: float, what: str) -> T:
    """``build()`` run in a worker thread, or a :class:`GrammarError` after ``timeout`` seconds.

    Both engines release the GIL while they compile, so the deadline holds; a thread cannot
    be killed, though: after a timeout the engine finishes (and its result is dropped) in the
    background. Exceptions of ``build`` are raised here.

    >>> compile_within(lambda: 42, 1.0, "answer")
    42
    >>> import time
    >>> try:
    ...     compile_within(lambda: time.sleep(0.5), 0.01, "grammar 'slow'")
    ... except GrammarError as error:
    ...     print(error)
    grammar 'slow': compiling took longer than 0.01 s; simplify it or raise the timeout
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = build()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=work, name=f"compile {what}", daemon=True)
    previous = threading.stack_size()
    try:
        threading.stack_size(COMPILE_STACK_BYTES)
        worker.start()
    except (ValueError, RuntimeError):      # no such stack here: the default one, then
        threading.stack_size(previous)
        worker = threading.Thread(target=work, name=f"compile {what}", daemon=True)
        worker.start()
    finally:
        threading.stack_size(previous)
    worker.join(timeout)
    if worker.is_alive():
        raise GrammarError(f"{what}: compiling took longer than {timeout:g} s; simplify it or "
                           "raise the timeout")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class BitmaskMatcher:
    """What engine adapters share: a :class:`Matcher` over an engine that fills a packed
    bitmask (32 tokens per ``int32`` word, least significant bit first) and consumes all of a
    token list or none of it. A subclass supplies five hooks (``_fill``, ``_consume``,
    ``_undo``, ``_accepting``, ``_stopped``); this class keeps the contract around them:

    - masks are boolean arrays of the model's ``vocab_size``;
    - the end token ``eos`` is handled here, never passed to the engine: it may come last in
      :meth:`advance`, only where the output is accepting; after it nothing is allowed (and it
      rolls back like any token);
    - ids outside the vocabulary are refused, not errors.

    >>> class Even(BitmaskMatcher):      # toy engine: even ids, at most two; 1 ends
    ...     seen = 0
    ...     def _fill(self, words):
    ...         words[:] = 0
    ...         if self.seen < 2: words[0] = 0b0101
    ...         if self._accepting(): words[0] |= 0b0010
    ...     def _consume(self, tokens):
    ...         if any(t % 2 for t in tokens) or self.seen + len(tokens) > 2: return False
    ...         self.seen += len(tokens); return True
    ...     def _undo(self, count): self.seen -= count
    ...     def _accepting(self): return self.seen > 0
    ...     def _stopped(self): return self.seen == 2
    >>> m = Even(vocab_size=5, eos=1, name="even")
    >>> m.allowed().tolist(), m.advance([1]), m.advance([0, 3])
    ([True, False, True, False, False], False, False)
    >>> m.advance([2, 1]), m.is_stopped(), bool(m.allowed().any())
    (True, True, False)
    >>> m.rollback(2); m.allowed().tolist()
    [True, False, True, False, False]
    """

    def __init__(self, vocab_size: int, eos: int, name: str,
                 encode: Callable[[str], list[int]] | None = None) -> None:
        self.vocab_size = vocab_size
        self.eos = eos
        self.name = name
        self.encode = encode               # text -> token ids, for forced_tokens()
        self._words = np.zeros((vocab_size + 31) // 32, dtype=np.int32)
        self._consumed = 0                 # tokens the engine has consumed
        self._ended = False                # the end token came after them

    # -- hooks -------------------------------------------------------------------------
    def _fill(self, words: np.ndarray) -> None:
        """Writes the engine's mask into ``words`` (``int32``, ``ceil(vocab_size / 32)``)."""
        raise NotImplementedError

    def _consume(self, tokens: list[int]) -> bool:
        """Consumes all of ``tokens`` (none is the end token), or none of them and false."""
        raise NotImplementedError

    def _undo(self, count: int) -> None:
        """Un-consumes the engine's last ``count`` tokens."""
        raise NotImplementedError

    def _accepting(self) -> bool:
        raise NotImplementedError

    def _stopped(self) -> bool:
        raise NotImplementedError

    def _forced_bytes(self) -> bytes:
        """The bytes every valid continuation starts with (none, unless the engine says)."""
        return b""

    # -- the Matcher contract ----------------------------------------------------------
    def allowed(self) -> np.ndarray:
        """Tokens that keep the output a valid prefix, and the end token where it may end;
        none after the end token."""
        if self._ended:
            return np.zeros(self.vocab_size, dtype=bool)
        self._fill(self._words)
        bits = np.unpackbits(self._words.view(np.uint8), count=self.vocab_size,
                             bitorder="little")
        return bits.view(bool)

    def advance(self, tokens: Sequence[int]) -> bool:
        """Consumes ``tokens``; false (and nothing consumed) when one is not allowed."""
        tokens = [int(token) for token in tokens]
        if not tokens:
            return True
        if self._ended:
            return False
        end = tokens[-1] == self.eos
        body = tokens[:-1] if end else tokens
        if any(token == self.eos or not 0 <= token < self.vocab_size for token in body):
            return False
        if body and not self._consume(body):
            return False
        if end and not self._accepting():
            if body:
                self._undo(len(body))
            return False
        self._consumed += len(body)
        self._ended = end
        return True

    def rollback(self, count: int) -> None:
        """Un-consumes the last ``count`` tokens (the end token counts as one)."""
        if not 0 <= count <= self._consumed + self._ended:
            raise ValueError(f"matcher of {self.name!r}: cannot roll back {count} tokens; "
                             f"{self._consumed + self._ended} consumed")
        if count and self._ended:
            count -= 1
            self._ended = False
        if count:
            self._undo(count)
            self._consumed -= count

    def is_accepting(self) -> bool:
        """Whether the output so far is complete (it may end here)."""
        return self._ended or self._accepting()

    def is_stopped(self) -> bool:
        """Whether nothing but the end token may follow (or it came already)."""
        return self._ended or self._stopped()

    def forced_tokens(self, limit: int) -> list[int]:
        """The engine's forced text, tokenized by ``encode`` and cut where a token is not
        allowed or at ``limit`` tokens; the matcher is left where it was. (The model may
        spell the text with other tokens, or merge its last token with what follows: these
        are drafts, verified like any other.)"""
        if self._ended or self.encode is None or limit <= 0:
            return []
        try:
            text = self._forced_bytes().decode("utf-8")
        except UnicodeDecodeError:              # forced text ending inside a character
            return []
        if not text:
            return []
        tokens = self.encode(text)[:limit]
        taken: list[int] = []
        for token in tokens:
            if token == self.eos or not self.advance([token]):
                break
            taken.append(token)
        if taken:
            self.rollback(len(taken))
        return taken


__all__ = ["FORMATS", "GrammarError", "GrammarSpec", "Matcher", "ForcingMatcher",
           "CompiledGrammar", "GrammarEngine", "BitmaskMatcher", "compile_within"]
