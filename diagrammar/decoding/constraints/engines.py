"""The grammar engines by name, and compiling with a process-wide cache.

:data:`ENGINES` maps a name to a factory of a :class:`~.protocol.GrammarEngine`; an engine's
module is imported (and the engine made) the first time :func:`get_engine` asks for it, so
importing this module loads neither library. Add an engine by adding a factory:
``ENGINES["mine"] = MyEngine``.

:func:`compile_grammar` is what the ``Constrain`` box calls: it compiles a spec once per
engine, tokenizer object and vocabulary size, and returns the same compiled grammar after
that (each :meth:`~.protocol.CompiledGrammar.matcher` is a fresh sequence). Failures are not
cached.

What a spec means, on either engine (tested in ``tests/decoding/test_constraint_engines.py``,
where both engines' masks are compared token by token with brute-force references and with
each other):

- a mask allows exactly the tokens after which the output is still a prefix of the language
  (no canonical-tokenization restriction), and the end token exactly where it is complete;
- Lark: as the ``lark`` library, except that ``%ignore``d text may not come *first* (both
  engines' rule); templates, priorities, ``%declare``/``%override`` are errors. In a Lark
  regex terminal ``\\d`` and ``\\w`` are Unicode classes on llguidance, ASCII on xgrammar:
  write ``[0-9]`` to mean the same on both;
- regex: the whole output matches; ``\\d`` is ``[0-9]`` and ``\\w`` is ``[0-9a-zA-Z_]``;
  lookaround, backreferences and anchors in the middle are errors;
- JSON Schema: any whitespace between tokens, none around the value; properties in the order
  the schema lists them (a departure from JSON Schema, where any order is valid); properties
  not listed are allowed unless ``additionalProperties`` says otherwise; bounded numbers take
  no exponent; keywords an engine does not enforce are errors naming them. llguidance is
  stricter than JSON in three corners of strings, where xgrammar is not: a raw DEL
  character, the escape ``\\/``, and UTF-8-encoded surrogates (invalid UTF-8).

>>> sorted(ENGINES)
['llguidance', 'xgrammar']
>>> get_engine("llguidance").name
'llguidance'
>>> get_engine("outlines")
Traceback (most recent call last):
...
ValueError: unknown grammar engine 'outlines'; known: llguidance, xgrammar
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .protocol import CompiledGrammar, GrammarEngine, GrammarError, GrammarSpec


def _llguidance() -> GrammarEngine:
    from .llguidance_engine import LLGuidanceEngine

    return LLGuidanceEngine()


def _xgrammar() -> GrammarEngine:
    from .xgrammar_engine import XGrammarEngine

    return XGrammarEngine()


#: Engine name -> factory (called once; the engine is kept).
ENGINES: dict[str, Callable[[], GrammarEngine]] = {
    "llguidance": _llguidance,
    "xgrammar": _xgrammar,
}

#: How many compiled grammars the cache keeps (least recently used go first).
CACHE_SIZE = 256

_engines: dict[str, GrammarEngine] = {}
_cache: OrderedDict[tuple[Any, ...], tuple[Any, CompiledGrammar]] = OrderedDict()
_lock = threading.Lock()


def get_engine(name: str) -> GrammarEngine:
    """The engine called ``name`` (one instance per process).

    Raises:
        ValueError: no engine has that name (the message lists those that do).
    """
    with _lock:
        engine = _engines.get(name)
    if engine is not None:
        return engine
    if name not in ENGINES:
        raise ValueError(f"unknown grammar engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    engine = ENGINES[name]()
    with _lock:
        return _engines.setdefault(name, engine)


def _source_key(spec: GrammarSpec) -> str:
    if isinstance(spec.source, str):
        return spec.source
    try:       # key order kept: it is the order properties must come in
        return json.dumps(spec.source)
    except (TypeError, ValueError) as error:
        raise GrammarError(f"grammar {spec.name!r}: its source is neither text nor JSON: "
                           f"{error}") from None


def compile_grammar(spec: GrammarSpec, tokenizer: Any, vocab_size: int,
                    engine: str = "llguidance", timeout: float = 10.0) -> CompiledGrammar:
    """``spec`` compiled by ``engine`` for ``tokenizer``, masks of ``vocab_size``: cached per
    (engine, spec, tokenizer object, vocab size).

    Raises:
        ValueError: an unknown engine.
        GrammarError: an invalid or unsupported grammar, or compiling took longer than
            ``timeout`` seconds.
    """
    key = (engine, spec.format, _source_key(spec), spec.name, id(tokenizer), vocab_size)
    with _lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache.move_to_end(key)
            return entry[1]
    compiled = get_engine(engine).compile(spec, tokenizer, vocab_size, timeout=timeout)
    with _lock:        # the entry keeps the tokenizer alive, so its id stays its own
        _cache[key] = (tokenizer, compiled)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def clear_cache() -> None:
    """Forgets every compiled grammar."""
    with _lock:
        _cache.clear()


__all__ = ["CACHE_SIZE", "ENGINES", "clear_cache", "compile_grammar", "get_engine"]
