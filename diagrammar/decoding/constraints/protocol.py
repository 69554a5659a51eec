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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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


__all__ = ["FORMATS", "GrammarError", "GrammarSpec", "Matcher", "CompiledGrammar",
           "GrammarEngine"]
