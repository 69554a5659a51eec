"""What a ``Constrain`` box's grammar resource may be, turned into a :class:`GrammarSpec`, and
the box's implementation: the spec compiled by the named engine for the model's tokenizer.

A grammar resource is any of:

* a :class:`~diagrammar.decoding.constraints.protocol.GrammarSpec`;
* an object with a ``grammar_spec()`` method (a grammar diagram);
* a JSON Schema as a ``dict``;
* a Pydantic model class or a dataclass type (its JSON Schema; the KnowCoder idea of schemas
  written as code);
* a path to a file: ``.lark`` (Lark grammar), ``.json`` (JSON Schema), ``.regex`` (a pattern);
* the text ``"regex:PATTERN"``, ``"lark:GRAMMAR"``, or the name of a built-in grammar.

>>> load_grammar({"type": "integer"}).format
'json_schema'
>>> load_grammar("regex:[0-9]+")
GrammarSpec(format='regex', source='[0-9]+', name='regex')
>>> load_grammar(3)
Traceback (most recent call last):
...
diagrammar.decoding.constraints.protocol.GrammarError: cannot use 3 (int) as a grammar: ...
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from diagrammar.decoding.constraints.protocol import GrammarError, GrammarSpec

_SUFFIXES = {".lark": "lark", ".json": "json_schema", ".regex": "regex"}
_KINDS = ("a GrammarSpec, a grammar diagram, a JSON Schema dict, a Pydantic model or "
          "dataclass, a .lark/.json/.regex file, 'regex:...', 'lark:...' or a built-in "
          "grammar name")


def _builtin(name: str) -> GrammarSpec | None:
    try:
        from diagrammar.diagrams import builtin_grammars
    except ImportError:
        return None
    find = getattr(builtin_grammars, "builtin_grammar", None)
    if find is None:
        return None
    try:
        grammar = find(name)
    except (KeyError, ValueError):
        return None
    return load_grammar(grammar)


def _schema_of_type(kind: type) -> dict[str, Any] | None:
    schema = getattr(kind, "model_json_schema", None)          # a Pydantic model
    if callable(schema):
        return schema()
    if dataclasses.is_dataclass(kind):
        try:
            from pydantic import TypeAdapter
        except ImportError as error:
            raise GrammarError("a dataclass grammar needs pydantic for its JSON Schema: "
                               "pip install pydantic") from error
        return TypeAdapter(kind).json_schema()
    return None


def load_grammar(value: Any) -> GrammarSpec:
    """The :class:`GrammarSpec` of a grammar resource (see the module for what it may be).

    Raises:
        GrammarError: a value that is none of those, a file that cannot be read or parsed.
    """
    if isinstance(value, GrammarSpec):
        return value
    to_spec = getattr(value, "grammar_spec", None)
    if callable(to_spec):
        return to_spec()
    if isinstance(value, dict):
        return GrammarSpec("json_schema", value, str(value.get("title", "json_schema")))
    if isinstance(value, type):
        schema = _schema_of_type(value)
        if schema is not None:
            return GrammarSpec("json_schema", schema, value.__name__)
    if isinstance(value, Path) or (isinstance(value, str) and Path(value).suffix in _SUFFIXES
                                   and Path(value).is_file()):
        return _from_file(Path(value))
    if isinstance(value, str):
        for prefix in ("regex", "lark"):
            if value.startswith(prefix + ":"):
                return GrammarSpec(prefix, value[len(prefix) + 1:], prefix)
        builtin = _builtin(value)
        if builtin is not None:
            return builtin
        raise GrammarError(f"grammar {value!r} is not a file, a 'regex:'/'lark:' text or a "
                           f"built-in grammar name: give {_KINDS}")
    raise GrammarError(f"cannot use {value!r} ({type(value).__name__}) as a grammar: give "
                       f"{_KINDS}")


def _from_file(path: Path) -> GrammarSpec:
    kind = _SUFFIXES.get(path.suffix)
    if kind is None:
        raise GrammarError(f"grammar file {path}: unknown kind {path.suffix!r}; use .lark, "
                           ".json (JSON Schema) or .regex")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise GrammarError(f"cannot read grammar file {path}: {error.strerror}") from None
    if kind == "json_schema":
        try:
            source: Any = json.loads(text)
        except json.JSONDecodeError as error:
            raise GrammarError(f"{path}: not JSON (line {error.lineno}, column {error.colno}: "
                               f"{error.msg})") from None
    else:
        source = text.strip() if kind == "regex" else text
    return GrammarSpec(kind, source, path.stem)


def constrain_implementation(box: Any, execute: Any) -> Any:
    """The ``Constrain`` box on a backend: its grammar resource compiled by its engine for
    the model's tokenizer (see :class:`~diagrammar.decoding.constraints.step.ConstrainStep`)."""
    from diagrammar.decoding.constraints.engines import compile_grammar
    from diagrammar.decoding.constraints.step import ConstrainStep

    spec = load_grammar(execute.resource(box, "grammar"))
    model = execute.model
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise GrammarError(f"box {box.name!r}: a grammar needs the model's tokenizer (to know "
                           "which text each token is), and this model has none: load a model "
                           "folder with its tokenizer files")
    compiled = compile_grammar(spec, tokenizer, model.vocab_size, engine=box.spec["engine"])
    return ConstrainStep(compiled)


__all__ = ["load_grammar", "constrain_implementation"]
