"""What a ``Constrain`` box's grammar resource may be, turned into a :class:`GrammarSpec`, and
the box's implementation: the spec compiled by the named engine for the model's tokenizer.

A grammar resource is any of:

* a :class:`~diagrammar.decoding.constraints.protocol.GrammarSpec`;
* an object with a ``grammar_spec()`` method (a grammar diagram);
* a JSON Schema as a ``dict``;
* a Pydantic model class or a dataclass type (its JSON Schema; the KnowCoder idea of schemas
  written as code);
* a path to a file: ``.lark`` or ``.gbnf`` (a grammar), ``.json`` (JSON Schema), ``.regex``
  (a pattern);
* the text ``"regex:PATTERN"``, ``"lark:GRAMMAR"``, or the name of a built-in grammar
  (``json``, ``arithmetic``, ``sql_select``, ``python``: function bodies, indentation unrolled
  to a fixed depth for the engines).

>>> load_grammar({"type": "integer"}).format
'json_schema'
>>> load_grammar("regex:[0-9]+").source
'[0-9]+'
>>> load_grammar("sql_select").format
'lark'
>>> load_grammar(3)
Traceback (most recent call last):
...
diagrammar.decoding.constraints.protocol.GrammarError: cannot use 3 (int) as a grammar: ...
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

from diagrammar.decoding.constraints.protocol import GrammarError, GrammarSpec

_SUFFIXES = (".lark", ".json", ".regex", ".gbnf")
_KINDS = ("a GrammarSpec, a grammar diagram, a JSON Schema dict, a Pydantic model or "
          "dataclass, a .lark/.gbnf/.json/.regex file, 'regex:...', 'lark:...' or a built-in "
          "grammar name (json, arithmetic, sql_select, python)")

#: Built-in grammars as engines read them: Python's indentation unrolled to a fixed depth
#: (llguidance and xgrammar have no INDENT/DEDENT post-lexer).
_ENGINE_FORMS = {"python": "python_unrolled"}


def load_grammar(value: Any) -> GrammarSpec:
    """The :class:`GrammarSpec` of a grammar resource (see the module for what it may be),
    checked by the front-ends (a fault is reported with its position).

    Raises:
        GrammarError: a value that is none of those, a file that cannot be read or parsed.
    """
    from diagrammar.functors.grammar import to_spec
    from diagrammar.functors.grammar_sources import (
        as_spec,
        from_gbnf,
        from_lark,
        json_schema_spec,
        regex_spec,
    )

    if isinstance(value, GrammarSpec):
        return value
    to_own_spec = getattr(value, "grammar_spec", None)
    if callable(to_own_spec):
        return to_own_spec()
    if isinstance(value, str) and Path(value).suffix in _SUFFIXES and Path(value).is_file():
        value = Path(value)
    if isinstance(value, Path):
        if value.suffix not in _SUFFIXES:
            raise GrammarError(f"grammar file {value}: unknown kind {value.suffix!r}; use "
                               f"{', '.join(_SUFFIXES)}")
        if value.suffix == ".json":
            return json_schema_spec(value)
        try:
            text = value.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise GrammarError(f"cannot read grammar file {value}: {error}") from None
        if value.suffix == ".regex":
            return regex_spec(text.strip(), value.stem)
        grammar = from_lark(text) if value.suffix == ".lark" else from_gbnf(text)
        return to_spec(grammar, value.stem)
    if isinstance(value, str):
        if value.startswith("regex:"):
            return regex_spec(value[len("regex:"):])
        if value.startswith("lark:"):
            return to_spec(from_lark(value[len("lark:"):]), "lark")
        from diagrammar.diagrams.builtin_grammars import BUILTIN_GRAMMARS, builtin

        if value in BUILTIN_GRAMMARS:
            return to_spec(builtin(_ENGINE_FORMS.get(value, value)), value)
        raise GrammarError(f"grammar {value!r} is not a file, a 'regex:'/'lark:' text or a "
                           f"built-in grammar name: give {_KINDS}")
    from diagrammar.diagrams.grammar import Grammar

    if not isinstance(value, (dict, type, re.Pattern, Grammar)) \
            and typing.get_origin(value) is None:
        raise GrammarError(f"cannot use {value!r} ({type(value).__name__}) as a grammar: give "
                           f"{_KINDS}")
    return as_spec(value)


def model_tokenizer(box: Any, model: Any, needs: str) -> Any:
    """The model's tokenizer, which a box that reads tokens as text (a grammar, a monitor)
    needs; a :class:`GrammarError` naming the box when the model has none."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise GrammarError(f"box {box.name!r}: {needs} needs the model's tokenizer (to know "
                           "which text each token is), and this model has none: load a model "
                           "folder with its tokenizer files")
    return tokenizer


def constrain_implementation(box: Any, execute: Any) -> Any:
    """The ``Constrain`` box on a backend: its grammar resource compiled by its engine for
    the model's tokenizer (see :class:`~diagrammar.decoding.constraints.step.ConstrainStep`)."""
    from diagrammar.decoding.constraints.engines import compile_grammar
    from diagrammar.decoding.constraints.step import ConstrainStep

    spec = load_grammar(execute.resource(box, "grammar"))
    model = execute.model
    tokenizer = model_tokenizer(box, model, "a grammar")
    compiled = compile_grammar(spec, tokenizer, model.vocab_size, engine=box.spec["engine"])
    return ConstrainStep(compiled, draft_forced=box.spec.get("draft_forced", 16))


__all__ = ["load_grammar", "constrain_implementation", "model_tokenizer"]
