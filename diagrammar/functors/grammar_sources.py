"""Front-ends: grammars and schemas from text, JSON Schema, regular expressions and Python types.

Every front-end fails fast, before any engine sees the grammar, with a
:class:`GrammarSourceError` that says where the fault is: line and column in a grammar or
JSON text, position in a pattern, the path inside a schema.

* :func:`from_lark` reads Lark text (the ``lark`` package's syntax, with llguidance's
  ``x{m,n}``) into a :class:`~diagrammar.diagrams.grammar.Grammar`, parsing it with a Lark
  grammar of Lark itself; :func:`from_gbnf` reads GBNF / xgrammar EBNF (``name ::= ...``).
* :func:`json_schema_spec` checks a schema against its meta-schema; :func:`regex_spec` checks
  a pattern; both return the :class:`GrammarSpec` the engines compile.
* :func:`schema_of` turns Python types into JSON Schema — schemas written as code, the
  KnowCoder idea: Pydantic models (``model_json_schema``) and dataclasses (a small typed
  mapping of our own, so no Pydantic is needed for them); :func:`type_spec` wraps the schema.

>>> g = from_lark('''
... start: pair ("," pair)*
... pair: KEY "=" INT
... KEY: /[a-z]+/
... %import common.INT
... %ignore " "
... ''')
>>> sorted(g.rules), sorted(g.terminals)
(['pair', 'start'], ['INT', 'KEY'])
>>> from_lark("start: item+\\nitem: NAME")
Traceback (most recent call last):
...
diagrammar.functors.grammar_sources.GrammarSourceError: rule 'item' refers to undefined \
symbol 'NAME' (line 2, column 7)
  item: NAME
        ^

>>> from dataclasses import dataclass
>>> @dataclass
... class Point:
...     x: int
...     y: float = 0.0
>>> schema_of(Point)["required"]
['x']
>>> type_spec(Point).format
'json_schema'
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import json
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from diagrammar.decoding.constraints.protocol import GrammarError, GrammarSpec
from diagrammar.diagrams.grammar import (
    COMMON_TERMINALS,
    Alt,
    Definition,
    Expr,
    Grammar,
    GrammarDefinitionError,
    Literal,
    Pattern,
    Ref,
    Repeat,
    Seq,
)

__all__ = [
    "GrammarSourceError",
    "as_spec",
    "from_gbnf",
    "from_lark",
    "json_schema_spec",
    "load_schema",
    "regex_spec",
    "schema_of",
    "type_spec",
]


class GrammarSourceError(GrammarDefinitionError, GrammarError):
    """A grammar, schema or pattern that cannot be read; ``line``/``column`` (1-based) point
    at the fault in text, ``path`` is the JSON pointer of the fault inside a schema."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 symbol: str | None = None, path: str | None = None) -> None:
        super().__init__(message, line, column, symbol)
        self.path = path


def _context(text: str, line: int, column: int) -> str:
    lines = text.splitlines() or [""]
    if not 1 <= line <= len(lines):
        return ""
    shown = lines[line - 1]
    return f"\n  {shown}\n  {' ' * (column - 1)}^"


# ----------------------------------------------------------------------------- Lark text

_LARK_META = r"""
start: (_NL | _item)*
_item: rule | term | template | statement
rule: RULE priority? ":" expansions _NL
term: TERMINAL priority? ":" expansions _NL
template: RULE "{" _names "}" priority? ":" expansions _NL
priority: "." NUMBER
statement: IGNORE expansions _NL                                   -> ignore
         | IMPORT import_path ("->" name)? _NL                     -> import_one
         | IMPORT import_path "(" _names ")" _NL                   -> import_many
         | DECLARE name+ _NL                                        -> declare
         | OTHER_DIRECTIVE /[^\n]+/? _NL                            -> directive
import_path: DOT? name (DOT name)*
_names: name (COMMA name)*
expansions: alias ((_OR | _NL_OR) alias)*
alias: expansion ("->" RULE)?
expansion: expr*
expr: atom OP?
    | atom "~" NUMBER (".." NUMBER)?                                 -> tilde
    | atom "{" NUMBER "}"                                           -> braces
    | atom "{" NUMBER COMMA NUMBER? "}"                             -> braces
    | atom "{" COMMA NUMBER "}"                                     -> braces
?atom: "(" expansions ")"
     | "[" expansions "]"                                           -> maybe
     | value
?value: STRING ".." STRING                                          -> literal_range
      | name
      | STRING                                                      -> string
      | REGEXP                                                      -> regexp
name: RULE | TERMINAL
RULE: /[!?]*_?[a-z][_a-z0-9]*/
TERMINAL: /_?[A-Z][_A-Z0-9]*/
STRING: /"(\\"|\\\\|[^"\n])*?"i?/
REGEXP: /\/(?!\/)(\\\/|\\\\|[^\/\n])*?\/[imslux]*/
NUMBER: /[+-]?[0-9]+/
OP: /[+*]|[?](?![a-z_])/
DOT: "."
COMMA: ","
IGNORE: "%ignore"
IMPORT: "%import"
DECLARE: "%declare"
OTHER_DIRECTIVE.-1: /%[a-z]+/
_OR: "|"
_NL_OR: /(\r?\n)+[ \t]*\|/
_NL: /(\r?\n[ \t]*)+/
COMMENT: /[ \t]*(\/\/|#)[^\n]*/
%ignore /[ \t]+/
%ignore /\\[ \t]*\r?\n/
%ignore COMMENT
"""


@functools.lru_cache(maxsize=1)
def _lark_meta():
    import lark

    return lark.Lark(_LARK_META, parser="lalr", propagate_positions=True,
                     maybe_placeholders=False)


def _pos(item) -> tuple[int, int] | None:
    line = getattr(item, "line", None)
    if line is None:
        meta = getattr(item, "meta", None)
        if meta is None or getattr(meta, "empty", True):
            return None
        return meta.line, meta.column
    return line, item.column


class _LarkReader:
    """Turns the meta-parse of a Lark grammar into definitions (our expressions)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.definitions: list[Definition] = []
        self.ignore: list[Expr] = []
        self.declared: list[str] = []

    def fail(self, message: str, position: tuple[int, int] | None, symbol: str | None = None):
        line, column = position or (None, None)
        where = f" (line {line}, column {column})" if position else ""
        raise GrammarSourceError(message + where + (_context(self.text, line, column)
                                                    if position else ""),
                                 line, column, symbol)

    def read(self, tree) -> None:
        for item in tree.children:
            getattr(self, "_" + item.data)(item)

    def _name(self, token) -> str:
        return str(token).lstrip("!?") if token.type == "RULE" else str(token)

    def _priority(self, children) -> int | None:
        for child in children:
            if getattr(child, "data", None) == "priority":
                return int(next(t for t in child.children if t.type == "NUMBER"))
        return None

    def _rule(self, item) -> None:
        name_token = item.children[0]
        body = self.expansions(item.children[-1])
        self.definitions.append(Definition(self._name(name_token), body,
                                           self._priority(item.children), None,
                                           _pos(name_token)))

    _term = _rule

    def _template(self, item) -> None:
        self.fail(f"templates are not supported (rule {str(item.children[0])!r})",
                  _pos(item.children[0]), str(item.children[0]))

    def _ignore(self, item) -> None:
        self.ignore.append(self.expansions(item.children[1]))

    def _declare(self, item) -> None:
        self.declared.extend(str(n.children[0]) for n in item.children[1:]
                             if getattr(n, "data", None) == "name")

    def _directive(self, item) -> None:
        self.fail(f"{item.children[0]} is not supported (only %ignore, %import common and "
                  "%declare)", _pos(item.children[0]))

    def _import_path(self, path) -> list:
        parts = [c for c in path.children if getattr(c, "type", None) != "DOT"]
        if any(getattr(c, "type", None) == "DOT" for c in path.children[:1]):
            self.fail("relative imports are not supported (only %import common)", _pos(path))
        return [str(p.children[0]) for p in parts]

    def _import(self, module: str, name: str, alias: str, position) -> None:
        if module != "common":
            self.fail(f"cannot import from {module!r}: only Lark's 'common' library is "
                      "supported", position)
        if name not in COMMON_TERMINALS:
            self.fail(f"common has no terminal {name!r}; it has "
                      f"{', '.join(sorted(COMMON_TERMINALS))}", position, name)
        self.definitions.append(Definition(alias, COMMON_TERMINALS[name], None,
                                           "common" if alias == name else None, position))

    def _import_one(self, item) -> None:
        parts = self._import_path(item.children[1])
        if len(parts) < 2:
            self.fail("an import names a module and a symbol, e.g. %import common.NUMBER",
                      _pos(item.children[0]))
        alias = str(item.children[2].children[0]) if len(item.children) > 2 else parts[-1]
        self._import(".".join(parts[:-1]), parts[-1], alias, _pos(item.children[1]))

    def _import_many(self, item) -> None:
        module = ".".join(self._import_path(item.children[1]))
        for name in item.children[2:]:
            if getattr(name, "data", None) != "name":
                continue
            self._import(module, str(name.children[0]), str(name.children[0]), _pos(name))

    # expressions

    def expansions(self, tree) -> Expr:
        options = [self.expansion(alias.children[0]) for alias in tree.children]
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def expansion(self, tree) -> Expr:
        items = [self.expr(child) for child in tree.children]
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def expr(self, tree) -> Expr:
        kind = tree.data
        if kind == "expr":
            atom = self.atom(tree.children[0])
            if len(tree.children) == 1:
                return atom
            op = str(tree.children[1])
            return {"?": atom.opt, "*": atom.star, "+": atom.plus}[op]()
        atom = self.atom(tree.children[0])
        tokens = list(tree.children[1:])
        numbers = [int(t) for t in tokens if t.type == "NUMBER"]
        try:
            if kind == "tilde" or "COMMA" not in [t.type for t in tokens]:
                return Repeat(atom, numbers[0], numbers[-1])
            comma = [t.type for t in tokens].index("COMMA")
            least = int(tokens[0]) if comma > 0 else 0
            most = int(tokens[comma + 1]) if comma + 1 < len(tokens) else None
            return Repeat(atom, least, most)
        except GrammarDefinitionError as error:
            self.fail(str(error), _pos(tokens[0]))

    def atom(self, tree) -> Expr:
        import lark

        if isinstance(tree, lark.Token):
            raise AssertionError(tree)
        kind = tree.data
        if kind == "expansions":
            return self.expansions(tree)
        if kind == "maybe":
            return self.expansions(tree.children[0]).opt()
        if kind == "name":
            token = tree.children[0]
            return Ref(self._name(token), _pos(token))
        if kind == "string":
            return self.string(tree.children[0])
        if kind == "regexp":
            token = tree.children[0]
            match = re.fullmatch(r"/(.*)/([imslux]*)", str(token), re.S)
            regex, flags = match.group(1).replace("\\/", "/"), match.group(2).replace("l", "")
            try:
                return Pattern(regex, flags)
            except GrammarDefinitionError as error:
                self.fail(str(error), _pos(token))
        if kind == "literal_range":
            low, high = (self.string(t) for t in tree.children)
            if not (isinstance(low, Literal) and isinstance(high, Literal)
                    and len(low.text) == len(high.text) == 1):
                self.fail("a range \"a\"..\"z\" joins two single characters",
                          _pos(tree.children[0]))
            return Pattern(f"[{re.escape(low.text)}-{re.escape(high.text)}]")
        raise AssertionError(kind)

    def string(self, token) -> Expr:
        raw = str(token)
        ignore_case = raw.endswith("i")
        body = raw[1:-2] if ignore_case else raw[1:-1]
        try:
            text = ast.literal_eval('"' + body.replace("\\/", "/") + '"')
        except (SyntaxError, ValueError) as error:
            self.fail(f"bad string literal {raw}: {error}", _pos(token))
        return Literal(text, ignore_case) if text else Seq(())


def from_lark(text: str, start: str = "start", allow_unreachable: bool = False) -> Grammar:
    """Reads Lark grammar text into a :class:`Grammar`.

    Understood: rules and terminals with priorities, alternatives (also on continuation lines
    starting with ``|``), ``()``, ``[]``, ``? * +``, ``~ n``, ``~ n..m`` and llguidance's
    ``{m,n}``, string literals (``"..."i``), ranges ``"a".."z"``, ``/regex/flags``,
    ``%ignore``, ``%import common.NAME`` / ``%import common (A, B)`` (with ``-> ALIAS``) and
    ``%declare``. Tree-shaping marks (``?rule``, ``!rule``, ``-> alias``) do not change the
    language and are dropped. Templates, ``%override``/``%extend`` and imports from other
    files are refused with their position.

    Raises:
        GrammarSourceError: a syntax error (line, column, the offending line) or an invalid
            grammar (undefined/unreachable/unproductive symbol with its position).
    """
    import lark

    source = text if text.endswith("\n") else text + "\n"
    try:
        tree = _lark_meta().parse(source)
    except lark.exceptions.UnexpectedInput as error:
        line, column = error.line, error.column
        if isinstance(error, lark.exceptions.UnexpectedToken):
            found = "the end of the grammar" if error.token.type == "$END" else repr(
                str(error.token))
            expected = sorted(error.expected)
            hint = "; expected one of: " + ", ".join(expected[:8]) if expected else ""
        else:
            found = repr(source[error.pos_in_stream]) if error.pos_in_stream < len(
                source) else "the end"
            hint = ""
        raise GrammarSourceError(f"invalid Lark grammar at line {line}, column {column}: "
                                 f"unexpected {found}{hint}{_context(source, line, column)}",
                                 line, column) from None
    reader = _LarkReader(source)
    reader.read(tree)
    return _grammar(start, reader.definitions, reader.ignore, reader.declared,
                    allow_unreachable, source)


def _grammar(start: str, definitions, ignore, declared, allow_unreachable: bool,
             source: str) -> Grammar:
    try:
        return Grammar(start, tuple(definitions), tuple(ignore), tuple(declared),
                       allow_unreachable=allow_unreachable)
    except GrammarDefinitionError as error:
        context = _context(source, error.line, error.column) if error.line else ""
        raise GrammarSourceError(str(error) + context, error.line, error.column,
                                 error.symbol) from None


# ----------------------------------------------------------------------------- GBNF text

_GBNF_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<define>::=)
  | (?P<name>[A-Za-z0-9_-]+)
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<cls>\[(?:\\.|[^\]\\])*\])
  | (?P<braces>\{\s*\d*\s*(?:,\s*\d*\s*)?\})
  | (?P<op>[()|?*+.])
""", re.X)

_GBNF_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "[": "[", "]": "]",
                 "-": "-", "^": "^", "/": "/"}


def _gbnf_unescape(body: str, position, fail) -> list[tuple[str, bool]]:
    """Characters of a GBNF string or class body, each with whether it was escaped."""
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append((ch, False))
            i += 1
            continue
        kind = body[i + 1:i + 2]
        width = {"x": 2, "u": 4, "U": 8}.get(kind)
        if width:
            digits = body[i + 2:i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                fail(f"bad escape \\{kind}{digits}", position)
            out.append((chr(int(digits, 16)), True))
            i += 2 + width
        elif kind in _GBNF_ESCAPES:
            out.append((_GBNF_ESCAPES[kind], True))
            i += 2
        else:
            fail(f"unknown escape \\{kind}", position)
    return out


def from_gbnf(text: str, start: str = "root", allow_unreachable: bool = False) -> Grammar:
    """Reads GBNF (llama.cpp) / xgrammar EBNF text into a :class:`Grammar`.

    GBNF has no lexer: every name is a rule (dashes become underscores, names are lower-cased)
    and there is no ``%ignore``; ``[...]`` classes and ``.`` become patterns.

    >>> g = from_gbnf('root ::= "a" digit+  # a comment\\ndigit ::= [0-9]')
    >>> print(g["root"])
    "a" digit+

    Raises:
        GrammarSourceError: a syntax error or invalid grammar, with line and column.
    """
    tokens: list[tuple[str, str, tuple[int, int]]] = []
    offset = 0

    def where(at: int) -> tuple[int, int]:
        line = text.count("\n", 0, at) + 1
        return line, at - (text.rfind("\n", 0, at) + 1) + 1

    def fail(message: str, position: tuple[int, int] | None) -> None:
        line, column = position or (None, None)
        where_ = f" at line {line}, column {column}" if position else ""
        raise GrammarSourceError(f"invalid GBNF{where_}: {message}"
                                 + (_context(text, line, column) if position else ""),
                                 line, column)

    while offset < len(text):
        match = _GBNF_TOKEN.match(text, offset)
        if not match:
            fail(f"unexpected {text[offset]!r}", where(offset))
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group(), where(offset)))
        offset = match.end()
    tokens.append(("end", "", where(len(text))))

    names: dict[str, str] = {}

    def rule_name(raw: str, position) -> str:
        name = raw.replace("-", "_").lower()
        if not re.match(r"[a-z]", name):
            name = "r_" + name.lstrip("_")
        if names.setdefault(name, raw) != raw:
            fail(f"names {names[name]!r} and {raw!r} both become rule {name!r}", position)
        return name

    index = 0

    def peek(k: int = 0) -> tuple[str, str, tuple[int, int]]:
        return tokens[min(index + k, len(tokens) - 1)]

    def take(kind: str, value: str | None = None):
        nonlocal index
        token = peek()
        if token[0] != kind or (value is not None and token[1] != value):
            wanted = repr(value) if value else kind
            found = "the end of the grammar" if token[0] == "end" else repr(token[1])
            fail(f"expected {wanted}, found {found}", token[2])
        index += 1
        return token

    def alternatives() -> Expr:
        options = [sequence()]
        while peek()[:2] == ("op", "|"):
            take("op", "|")
            options.append(sequence())
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def sequence() -> Expr:
        items: list[Expr] = []
        while True:
            kind, value, position = peek()
            if kind == "end" or (kind == "op" and value in "|)"):
                break
            if kind == "name" and peek(1)[0] == "define":
                break
            items.append(postfix(atom()))
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def postfix(expr: Expr) -> Expr:
        while True:
            kind, value, position = peek()
            if kind == "op" and value in "?*+":
                take("op")
                expr = {"?": expr.opt, "*": expr.star, "+": expr.plus}[value]()
            elif kind == "braces":
                take("braces")
                numbers = re.fullmatch(r"\{\s*(\d*)\s*(,)?\s*(\d*)\s*\}", value)
                least = int(numbers.group(1) or 0)
                most = (int(numbers.group(3)) if numbers.group(3) else None) if numbers.group(
                    2) else least
                try:
                    expr = Repeat(expr, least, most)
                except GrammarDefinitionError as error:
                    fail(str(error), position)
            else:
                return expr

    def atom() -> Expr:
        kind, value, position = peek()
        if kind == "op" and value == "(":
            take("op", "(")
            inner = alternatives()
            take("op", ")")
            return inner
        if kind == "op" and value == ".":
            take("op")
            return Pattern(r"[\s\S]")
        if kind == "name":
            take("name")
            return Ref(rule_name(value, position), position)
        if kind == "string":
            take("string")
            chars = "".join(c for c, _ in _gbnf_unescape(value[1:-1], position, fail))
            return Literal(chars) if chars else Seq(())
        if kind == "cls":
            take("cls")
            body = value[1:-1]
            negate = body.startswith("^")
            chars = _gbnf_unescape(body[1:] if negate else body, position, fail)
            parts, i = [], 0
            while i < len(chars):
                ch, _ = chars[i]
                if i + 2 < len(chars) and chars[i + 1] == ("-", False):
                    parts.append(f"{_class_escape(ch)}-{_class_escape(chars[i + 2][0])}")
                    i += 3
                else:
                    parts.append(_class_escape(ch))
                    i += 1
            try:
                return Pattern(f"[{'^' if negate else ''}{''.join(parts)}]")
            except GrammarDefinitionError as error:
                fail(str(error), position)
        found = "the end of the grammar" if kind == "end" else repr(value)
        fail(f"expected a name, string, class or '(', found {found}", position)

    definitions = []
    while peek()[0] != "end":
        kind, value, position = take("name")
        take("define")
        definitions.append(Definition(rule_name(value, position), alternatives(),
                                      position=position))
    if not definitions:
        fail("no rules", (1, 1))
    return _grammar(rule_name(start, None), definitions, (), (), allow_unreachable, text)


def _class_escape(ch: str) -> str:
    if ch in "\\]^-[":
        return "\\" + ch
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if not ch.isprintable():
        code = ord(ch)
        return (f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}" if code <= 0xFFFF
                else f"\\U{code:08x}")
    return ch


# ----------------------------------------------------------------------------- JSON Schema


def load_schema(schema: Mapping[str, Any] | str | os.PathLike) -> dict:
    """A schema from a dict, JSON text, or a path to a JSON file; JSON syntax errors give
    their line and column.

    >>> load_schema('{"type": "integer"}')
    {'type': 'integer'}
    >>> load_schema('{"type": integer}')
    Traceback (most recent call last):
    ...
    diagrammar.functors.grammar_sources.GrammarSourceError: invalid JSON in schema at line \
1, column 10: Expecting value
      {"type": integer}
               ^
    """
    if isinstance(schema, Mapping):
        return dict(schema)
    if isinstance(schema, bool):
        raise GrammarSourceError("a boolean schema constrains nothing useful; give an object")
    if isinstance(schema, os.PathLike) or (isinstance(schema, str) and not
                                           schema.lstrip().startswith(("{", "["))
                                           and Path(schema).suffix == ".json"):
        path = Path(schema)
        if not path.is_file():
            raise GrammarSourceError(f"schema file {str(path)!r} does not exist")
        text, origin = path.read_text(encoding="utf-8"), f" {path}"
    elif isinstance(schema, str):
        text, origin = schema, ""
    else:
        raise GrammarSourceError(f"a schema is a dict, JSON text or a path, not "
                                 f"{type(schema).__name__}")
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        raise GrammarSourceError(f"invalid JSON in schema{origin} at line {error.lineno}, "
                                 f"column {error.colno}: {error.msg}"
                                 f"{_context(text, error.lineno, error.colno)}",
                                 error.lineno, error.colno) from None
    if not isinstance(loaded, dict):
        raise GrammarSourceError(f"a JSON Schema is an object, got {type(loaded).__name__}")
    return loaded


def _pointer(parts: Sequence[Any]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_schema(schema: Mapping[str, Any]) -> None:
    """Checks a JSON Schema against its meta-schema (the draft its ``$schema`` names, else
    2020-12); the error names the path of the fault inside the schema.

    >>> check_schema({"type": "object", "properties": {"age": {"type": "integr"}}})
    Traceback (most recent call last):
    ...
    diagrammar.functors.grammar_sources.GrammarSourceError: invalid JSON Schema at \
/properties/age/type: 'integr' is not valid under any of the given schemas
    """
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = list(cls(cls.META_SCHEMA).iter_errors(schema))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        path = _pointer(error.absolute_path)
        raise GrammarSourceError(f"invalid JSON Schema at {path}: {error.message}", path=path)
    try:  # references must resolve
        _check_refs(schema, schema, [])
    except GrammarSourceError:
        raise


def _check_refs(node: Any, root: Mapping[str, Any], path: list) -> None:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            target: Any = root
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, Mapping) and part in target:
                    target = target[part]
                elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                    target = target[int(part)]
                else:
                    where = _pointer(path + ["$ref"])
                    raise GrammarSourceError(f"invalid JSON Schema at {where}: reference "
                                             f"{ref!r} points at nothing", path=where)
        for key, value in node.items():
            _check_refs(value, root, path + [key])
    elif isinstance(node, list):
        for k, value in enumerate(node):
            _check_refs(value, root, path + [k])


def json_schema_spec(schema: Mapping[str, Any] | str | os.PathLike,
                     name: str | None = None) -> GrammarSpec:
    """A checked JSON Schema as the spec engines compile (``GrammarSpec("json_schema", ...)``).

    >>> json_schema_spec('{"type": "array", "items": {"type": "string"}}').source
    {'type': 'array', 'items': {'type': 'string'}}
    """
    loaded = load_schema(schema)
    check_schema(loaded)
    return GrammarSpec("json_schema", loaded, name or str(loaded.get("title", "json_schema")))


# ----------------------------------------------------------------------------- regex


def regex_spec(pattern: str | re.Pattern, name: str = "regex") -> GrammarSpec:
    """A checked regular expression as a spec (``GrammarSpec("regex", pattern)``).

    The pattern must compile with Python's ``re`` (the error gives the position) and use only
    what the engines' regex dialects read: no look-arounds, back-references, lazy or
    possessive repeats.

    >>> regex_spec(r"[0-9]{3}-[0-9]{4}").source
    '[0-9]{3}-[0-9]{4}'
    >>> regex_spec("(ab")
    Traceback (most recent call last):
    ...
    diagrammar.functors.grammar_sources.GrammarSourceError: invalid regular expression at \
position 0: missing ), unterminated subpattern
      (ab
      ^
    """
    from diagrammar.functors.grammar import _unsupported_regex_features

    text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    if not isinstance(text, str) or not text:
        raise GrammarSourceError("a regular expression is a non-empty string")
    try:
        re.compile(text)
    except re.error as error:
        column = (error.pos or 0) + 1
        raise GrammarSourceError(f"invalid regular expression at position {error.pos}: "
                                 f"{error.msg}{_context(text, 1, column)}", 1,
                                 column) from None
    bad = _unsupported_regex_features(text)
    if bad:
        found = re.search(r"\(\?<?[=!]|\\[1-9]|\(\?P=|[*+?}]\?|[*+?}]\+|\(\?>", text)
        column = found.start() + 1 if found else None
        raise GrammarSourceError(f"regular expression uses {', '.join(bad)}, which the "
                                 f"engines do not read" + (f" (position {column - 1})"
                                                           + _context(text, 1, column)
                                                           if column else ""),
                                 1 if column else None, column)
    return GrammarSpec("regex", text, name)


# ----------------------------------------------------------------------------- Python types

_SCALARS: dict[Any, dict] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}


def _is_pydantic_model(tp: Any) -> bool:
    return isinstance(tp, type) and any(
        cls.__module__.startswith("pydantic") and cls.__name__ == "BaseModel"
        for cls in tp.__mro__)


def _dataclass_schema(tp: type, defs: dict[str, dict], stack: tuple) -> dict:
    name = tp.__name__
    if name not in defs:
        if tp in stack:
            return {"$ref": f"#/$defs/{name}"}
        hints = typing.get_type_hints(tp)
        properties, required = {}, []
        defs[name] = {}  # placeholder for recursion
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            prop = _schema(hints.get(f.name, Any), defs, stack + (tp,))
            if f.default is not dataclasses.MISSING and _jsonable(f.default):
                prop = {**prop, "default": _jsonable_value(f.default)}
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
            properties[f.name] = prop
        entry = {"type": "object", "title": name, "properties": properties,
                 "required": required, "additionalProperties": False}
        if tp.__doc__ and not tp.__doc__.startswith(f"{name}("):
            entry["description"] = " ".join(tp.__doc__.split())
        defs[name] = entry
    return {"$ref": f"#/$defs/{name}"}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(_jsonable_value(value))
    except (TypeError, ValueError):
        return False
    return True


def _jsonable_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _schema(tp: Any, defs: dict[str, dict], stack: tuple) -> dict:
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if tp is Any or tp is object:
        return {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _schema(args[0], defs, stack)
    if origin is typing.Literal:
        return {"enum": list(args)} if len(args) > 1 else {"const": args[0]}
    if origin in (typing.Union, types.UnionType):
        options = [_schema(a, defs, stack) for a in args]
        return {"anyOf": options}
    if origin in (list, Sequence, set, frozenset) or tp in (list, set, frozenset):
        schema: dict = {"type": "array"}
        if args:
            schema["items"] = _schema(args[0], defs, stack)
        if origin in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0], defs, stack)}
        return {"type": "array", "prefixItems": [_schema(a, defs, stack) for a in args],
                "minItems": len(args), "maxItems": len(args)}
    if origin in (dict, Mapping) or tp is dict:
        if args and args[0] is not str:
            raise GrammarSourceError(f"JSON object keys are strings; cannot map {tp!r}")
        schema = {"type": "object"}
        if args:
            schema["additionalProperties"] = _schema(args[1], defs, stack)
        return schema
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp], "title": tp.__name__}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_schema(tp, defs, stack)
    if _is_pydantic_model(tp):
        sub = tp.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[tp.__name__] = sub
        return {"$ref": f"#/$defs/{tp.__name__}"}
    return _pydantic_schema(tp, defs)


def _pydantic_schema(tp: Any, defs: dict[str, dict]) -> dict:
    """Any other type through Pydantic's ``TypeAdapter`` (TypedDict, NamedTuple, dates...),
    when Pydantic is installed."""
    reason = "other types need Pydantic"
    try:
        import pydantic
    except ImportError:
        pydantic = None
    if pydantic is not None:
        try:
            sub = pydantic.TypeAdapter(tp).json_schema(ref_template="#/$defs/{model}")
        except (pydantic.PydanticUserError, pydantic.errors.PydanticSchemaGenerationError,
                TypeError) as error:
            reason = "Pydantic: " + str(error).splitlines()[0]
        else:
            defs.update(sub.pop("$defs", {}))
            return sub
    raise GrammarSourceError(f"no JSON Schema for type {tp!r}: use str, int, float, bool, "
                             "None, list/tuple/set/dict, Optional/Union, Literal, Enum, "
                             f"dataclasses or Pydantic models ({reason})")


def schema_of(tp: Any) -> dict:
    """The JSON Schema of a Python type.

    Pydantic models give Pydantic's own ``model_json_schema()``; dataclasses (nested,
    recursive, with ``Optional``, ``Literal``, ``Enum``, containers) are mapped here, so they
    need no Pydantic; other types (``TypedDict``, ``NamedTuple``, dates) go through Pydantic's
    ``TypeAdapter`` when it is installed. A dataclass's schema is its definition inlined at
    the top, the nested ones under ``$defs``; fields without defaults are required and no
    other keys are allowed.

    >>> schema_of(list[int])
    {'type': 'array', 'items': {'type': 'integer'}}
    """
    if _is_pydantic_model(tp):
        return tp.model_json_schema()
    defs: dict[str, dict] = {}
    schema = _schema(tp, defs, ())
    if "$ref" in schema and dataclasses.is_dataclass(tp):
        name = tp.__name__
        top = dict(defs.pop(name))
        referenced = json.dumps(defs) + json.dumps(top)
        if f"#/$defs/{name}\"" in referenced:  # recursive: keep it reachable
            defs[name] = dict(top)
        schema = top
    if defs:
        schema["$defs"] = defs
    return schema


def type_spec(tp: Any, name: str | None = None) -> GrammarSpec:
    """The spec for outputs that are JSON values of type ``tp`` (see :func:`schema_of`)."""
    schema = schema_of(tp)
    check_schema(schema)
    return GrammarSpec("json_schema", schema, name or getattr(tp, "__name__", "json_schema"))


def as_spec(source: Any, name: str | None = None) -> GrammarSpec:
    """Any front-end's input as a spec: a :class:`GrammarSpec` as it is, a :class:`Grammar`
    (Lark), a compiled ``re.Pattern`` (regex), a dict (JSON Schema), or a Python type (schema
    of the type). Text is ambiguous: call :func:`from_lark`, :func:`json_schema_spec` or
    :func:`regex_spec` for it.

    >>> as_spec(re.compile("[a-z]+")).format, as_spec({"type": "string"}).format
    ('regex', 'json_schema')
    """
    if isinstance(source, GrammarSpec):
        return source
    if isinstance(source, Grammar):
        from diagrammar.functors.grammar import to_spec

        return to_spec(source, name)
    if isinstance(source, re.Pattern):
        return regex_spec(source, name or "regex")
    if isinstance(source, Mapping):
        return json_schema_spec(source, name)
    if isinstance(source, type) or typing.get_origin(source) is not None:
        return type_spec(source, name)
    raise GrammarSourceError(f"cannot make a grammar spec from {type(source).__name__}: give "
                             "a Grammar, re.Pattern, schema dict or type (text: use "
                             "from_lark / json_schema_spec / regex_spec)")
