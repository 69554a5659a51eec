"""Context-free grammars as diagrams: rules are boxes, derivations (parse trees) are diagrams.

A :class:`Grammar` is a start symbol and named definitions, each a small EBNF expression
(:class:`Literal`, :class:`Pattern`, :class:`Ref`, :class:`Seq`, :class:`Alt`,
:class:`Repeat`). Names follow Lark's convention: lower-case names are *rules* (structure),
upper-case names are *terminals* (lexemes, regular, never recursive). Expressions compose with
``+`` (sequence) and ``|`` (alternatives); plain strings are literals.

>>> r = Refs()
>>> arithmetic = Grammar("expr", {
...     "expr": r.expr + "+" + r.term | r.term,
...     "term": r.NUMBER | "(" + r.expr + ")",
...     "NUMBER": Pattern("[0-9]+"),
... }, ignore=(Pattern(" +"),))
>>> print(arithmetic["expr"])
expr "+" term | term

The rules are boxes: :meth:`Grammar.productions` desugars every alternative into a discopy
context-free rule (:class:`discopy.grammar.cfg.Rule`) whose domain is the symbols it reads and
whose codomain is the symbol it defines.

>>> [str(box.dom) for box in arithmetic.productions()]
['expr @ "+" @ term', 'term', 'NUMBER', '"(" @ expr @ ")"']

A derivation is a :class:`discopy.grammar.cfg.Tree` of rule applications over words (the
lexemes of the text); :func:`derivation_diagram` turns it into a monoidal diagram from the
empty type to the start symbol, which discopy draws. :meth:`Grammar.check` verifies a
derivation against the rules.

>>> tree = node("expr", node("term", leaf("1", "NUMBER")))
>>> arithmetic.check(tree)
True
>>> derivation_text(tree), derivation_diagram(tree).cod
('1', monoidal.Ty(cat.Ob('expr')))

Invalid grammars fail when they are built, with a message that points at the fault (and its
line and column when the grammar was read from text):

>>> Grammar("expr", {"expr": r.expr + "+" + r.trm | r.term, "term": Pattern("[0-9]+")})
Traceback (most recent call last):
...
diagrammar.diagrams.grammar.GrammarDefinitionError: rule 'expr' refers to undefined \
symbol 'trm'; did you mean 'term'?

This module is syntax: discopy and the standard library only. The functors in
:mod:`diagrammar.functors.grammar` map grammars to the texts engines read (Lark, GBNF) and
parse outputs into derivations; :mod:`diagrammar.functors.grammar_sources` reads grammars from
text, JSON Schema, regular expressions and Python types.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from discopy.grammar import cfg
from discopy.monoidal import Diagram, Ty

from diagrammar.diagrams.errors import DiagramError

__all__ = [
    "COMMON_TERMINALS",
    "Alt",
    "Definition",
    "DerivationError",
    "Expr",
    "Grammar",
    "GrammarDefinitionError",
    "Indentation",
    "Literal",
    "Pattern",
    "Ref",
    "Refs",
    "Repeat",
    "Seq",
    "derivation_diagram",
    "derivation_leaves",
    "derivation_text",
    "identifier",
    "is_terminal_name",
    "leaf",
    "node",
    "symbol_type",
]

_RULE_NAME = re.compile(r"_?[a-z][_a-z0-9]*\Z")
_TERMINAL_NAME = re.compile(r"_?[A-Z][_A-Z0-9]*\Z")
_PATTERN_FLAGS = frozenset("imsux")


class GrammarDefinitionError(DiagramError):
    """A grammar that cannot be used: undefined, unreachable or unproductive symbols, recursive
    terminals, bad names or patterns. ``line`` and ``column`` (1-based) point at the fault when
    the grammar was read from text; ``symbol`` names the definition at fault."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 symbol: str | None = None) -> None:
        super().__init__(message)
        self.line, self.column, self.symbol = line, column, symbol


class DerivationError(DiagramError):
    """A derivation (parse tree) that the grammar does not license; the message names the
    node."""


def _at(position: tuple[int, int] | None) -> str:
    return f" (line {position[0]}, column {position[1]})" if position else ""


def is_terminal_name(name: str) -> bool:
    """Whether ``name`` names a terminal (upper case, Lark's convention) rather than a rule.

    >>> is_terminal_name("NUMBER"), is_terminal_name("_NL"), is_terminal_name("expr")
    (True, True, False)
    """
    return name.lstrip("_")[:1].isupper()


# --------------------------------------------------------------------------- expressions


class Expr:
    """An EBNF expression: the body of a definition.

    ``a + b`` is the sequence, ``a | b`` the alternatives, and ``.opt()``, ``.star()``,
    ``.plus()``, ``.rep(m, n)`` the repetitions; plain strings are literals.

    >>> r = Refs()
    >>> print((r.key + ":" + r.value).plus())
    (key ":" value)+
    """

    def __add__(self, other: Expr | str) -> Seq:
        return Seq((self, _expr(other)))

    def __radd__(self, other: Expr | str) -> Seq:
        return Seq((_expr(other), self))

    def __or__(self, other: Expr | str) -> Alt:
        return Alt((self, _expr(other)))

    def __ror__(self, other: Expr | str) -> Alt:
        return Alt((_expr(other), self))

    def opt(self) -> Repeat:
        """Zero or one."""
        return Repeat(self, 0, 1)

    def star(self) -> Repeat:
        """Zero or more."""
        return Repeat(self, 0, None)

    def plus(self) -> Repeat:
        """One or more."""
        return Repeat(self, 1, None)

    def rep(self, least: int, most: int | None = None) -> Repeat:
        """Between ``least`` and ``most`` times (``most=None``: no upper bound)."""
        return Repeat(self, least, most)

    def children(self) -> tuple[Expr, ...]:
        """The sub-expressions."""
        return ()

    def walk(self) -> Iterator[Expr]:
        """This expression and all its sub-expressions, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()

    def refs(self) -> Iterator[Ref]:
        """Every symbol reference inside, in reading order."""
        return (e for e in self.walk() if isinstance(e, Ref))

    def map_leaves(self, fn: Callable[[Expr], Expr]) -> Expr:
        """The same expression with every leaf (literal, pattern or reference) ``x`` replaced
        by ``fn(x)``.

        >>> r = Refs()
        >>> print((r.a + "b").map_leaves(lambda x: x + r._WS.opt()))
        a _WS? "b" _WS?
        """
        return fn(self)

    def _wrap(self, parent: type) -> str:
        return str(self)


def _expr(value: Expr | str) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, str):
        return Literal(value) if value else Seq(())
    raise TypeError(f"a grammar expression is an Expr or a str, not {type(value).__name__}: "
                    f"{value!r}")


def _quote(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class Literal(Expr):
    """A literal string, matched exactly (or ignoring case)."""

    text: str
    ignore_case: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text:
            raise GrammarDefinitionError(
                f"a literal is a non-empty string, got {self.text!r} (the empty sequence is "
                "Seq(()))")

    def __str__(self) -> str:
        return _quote(self.text) + ("i" if self.ignore_case else "")


@dataclass(frozen=True)
class Pattern(Expr):
    """A regular expression (Python ``re`` syntax, the common subset engines read) with
    optional flags from ``imsux``. Checked when built; an invalid pattern names its position.

    >>> Pattern("[0-9")
    Traceback (most recent call last):
    ...
    diagrammar.diagrams.grammar.GrammarDefinitionError: invalid pattern /[0-9/ at \
position 0: unterminated character set
    """

    regex: str
    flags: str = ""

    def __post_init__(self) -> None:
        bad = set(self.flags) - _PATTERN_FLAGS
        if bad:
            raise GrammarDefinitionError(f"pattern /{self.regex}/ has unknown flags "
                                         f"{''.join(sorted(bad))!r}; known: imsux")
        try:
            re.compile(self.python_regex())
        except re.error as error:
            raise GrammarDefinitionError(f"invalid pattern /{self.regex}/ at position "
                                         f"{error.pos}: {error.msg}") from None

    @property
    def matches_empty(self) -> bool:
        """Whether the pattern matches the empty string (a lexeme may not)."""
        return re.fullmatch(self.python_regex(), "") is not None

    def python_regex(self) -> str:
        """The pattern with its flags inlined, for Python's ``re``."""
        flags = self.flags.replace("u", "")
        return f"(?{flags}:{self.regex})" if flags else self.regex

    def __str__(self) -> str:
        return "/" + self.regex.replace("/", "\\/").replace("\n", "\\n") + "/" + self.flags


@dataclass(frozen=True)
class Ref(Expr):
    """A reference to a rule or terminal by name; ``position`` (line, column) is where it was
    written, when read from text (not part of equality)."""

    name: str
    position: tuple[int, int] | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return self.name


class Refs:
    """``Refs().expr`` is ``Ref("expr")``: a short way to write grammars in Python.

    >>> Refs().NUMBER
    Ref(name='NUMBER')
    """

    def __getattr__(self, name: str) -> Ref:
        if name.startswith("__"):
            raise AttributeError(name)
        return Ref(name)


@dataclass(frozen=True)
class Seq(Expr):
    """A sequence; ``Seq(())`` is the empty sequence (epsilon). Nested sequences flatten."""

    items: tuple[Expr, ...]

    def __post_init__(self) -> None:
        flat: list[Expr] = []
        for item in self.items:
            item = _expr(item)
            flat.extend(item.items if isinstance(item, Seq) else (item,))
        object.__setattr__(self, "items", tuple(flat))

    def children(self) -> tuple[Expr, ...]:
        return self.items

    def map_leaves(self, fn: Callable[[Expr], Expr]) -> Expr:
        return Seq(tuple(item.map_leaves(fn) for item in self.items))

    def __str__(self) -> str:
        if not self.items:
            return "()"
        return " ".join(item._wrap(Seq) for item in self.items)

    def _wrap(self, parent: type) -> str:
        return f"({self})" if parent is Repeat and len(self.items) != 1 else str(self)


@dataclass(frozen=True)
class Alt(Expr):
    """Alternatives, tried in any order. Nested alternatives flatten."""

    options: tuple[Expr, ...]

    def __post_init__(self) -> None:
        flat: list[Expr] = []
        for option in self.options:
            option = _expr(option)
            flat.extend(option.options if isinstance(option, Alt) else (option,))
        if not flat:
            raise GrammarDefinitionError("alternatives need at least one option")
        object.__setattr__(self, "options", tuple(flat))

    def children(self) -> tuple[Expr, ...]:
        return self.options

    def map_leaves(self, fn: Callable[[Expr], Expr]) -> Expr:
        return Alt(tuple(option.map_leaves(fn) for option in self.options))

    def __str__(self) -> str:
        return " | ".join(option._wrap(Alt) for option in self.options)

    def _wrap(self, parent: type) -> str:
        return str(self) if parent is Alt else f"({self})"


@dataclass(frozen=True)
class Repeat(Expr):
    """``item`` repeated between ``least`` and ``most`` times (``most=None``: unbounded)."""

    item: Expr
    least: int = 0
    most: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "item", _expr(self.item))
        if self.least < 0 or (self.most is not None and self.most < max(self.least, 1)):
            raise GrammarDefinitionError(f"bad repetition bounds {{{self.least},{self.most}}} "
                                         f"on {self.item}")

    def children(self) -> tuple[Expr, ...]:
        return (self.item,)

    def map_leaves(self, fn: Callable[[Expr], Expr]) -> Expr:
        return Repeat(self.item.map_leaves(fn), self.least, self.most)

    def operator(self) -> str:
        """The EBNF operator: ``?``, ``*``, ``+`` or ``{m,n}``."""
        bounds = (self.least, self.most)
        if bounds == (0, 1):
            return "?"
        if bounds == (0, None):
            return "*"
        if bounds == (1, None):
            return "+"
        if self.most == self.least:
            return f"{{{self.least}}}"
        return f"{{{self.least},{'' if self.most is None else self.most}}}"

    def __str__(self) -> str:
        inner = self.item._wrap(Repeat)
        if isinstance(self.item, Repeat):
            inner = f"({inner})"
        return inner + self.operator()


_LEAVES = (Literal, Pattern, Ref)


# ------------------------------------------------------------------------------- grammars


@dataclass(frozen=True)
class Definition:
    """One named definition: a rule (lower-case name) or a terminal (upper-case name).

    Attributes:
        name: the symbol defined.
        body: its expression.
        priority: a Lark priority (``NAME.2``), kept for Lark; engines may refuse it.
        origin: ``"common"`` when imported from Lark's common library.
        position: (line, column) of the definition in its source text, if any.
    """

    name: str
    body: Expr
    priority: int | None = None
    origin: str | None = None
    position: tuple[int, int] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", _expr(self.body))

    @property
    def is_terminal(self) -> bool:
        """Whether this defines a terminal (a lexeme)."""
        return is_terminal_name(self.name)


@dataclass(frozen=True)
class Indentation:
    """Python-style indentation: a post-lexer turns each ``newline`` terminal into INDENT and
    DEDENT tokens by comparing its indentation with a stack; inside brackets newlines are
    dropped. This is context-sensitive, so it is part of the syntax rather than of any rule;
    engines without such a post-lexer cannot read it (see the bounded-depth Python grammar in
    :mod:`diagrammar.diagrams.builtin_grammars`).
    """

    newline: str = "_NEWLINE"
    indent: str = "_INDENT"
    dedent: str = "_DEDENT"
    open_brackets: tuple[str, ...] = ("LPAR", "LSQB", "LBRACE")
    close_brackets: tuple[str, ...] = ("RPAR", "RSQB", "RBRACE")
    tab_len: int = 8


#: Lark's ``%import common`` terminals, rewritten without look-arounds or lazy repeats so that
#: every engine (and Python's ``re``) reads them alike.
COMMON_TERMINALS: dict[str, Expr] = {
    "DIGIT": Pattern("[0-9]"),
    "HEXDIGIT": Pattern("[a-fA-F0-9]"),
    "INT": Pattern("[0-9]+"),
    "SIGNED_INT": Pattern("[+-]?[0-9]+"),
    "DECIMAL": Pattern(r"[0-9]+\.[0-9]*|\.[0-9]+"),
    "FLOAT": Pattern(r"[0-9]+[eE][+-]?[0-9]+|([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"),
    "SIGNED_FLOAT": Pattern(
        r"[+-]?([0-9]+[eE][+-]?[0-9]+|([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)"),
    "NUMBER": Pattern(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?"),
    "SIGNED_NUMBER": Pattern(
        r"[+-]?([0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?)"),
    "ESCAPED_STRING": Pattern(r'"(\\[^\n]|[^"\\\n])*"'),
    "LCASE_LETTER": Pattern("[a-z]"),
    "UCASE_LETTER": Pattern("[A-Z]"),
    "LETTER": Pattern("[A-Za-z]"),
    "WORD": Pattern("[A-Za-z]+"),
    "CNAME": Pattern("[_A-Za-z][_A-Za-z0-9]*"),
    "WS_INLINE": Pattern("[ \\t]+"),
    "WS": Pattern("[ \\t\\f\\r\\n]+"),
    "CR": Pattern("\\r"),
    "LF": Pattern("\\n"),
    "NEWLINE": Pattern("(\\r?\\n)+"),
    "SH_COMMENT": Pattern("#[^\\n]*"),
    "CPP_COMMENT": Pattern("//[^\\n]*"),
    "C_COMMENT": Pattern("/\\*([^*]|\\*+[^*/])*\\*+/"),
    "SQL_COMMENT": Pattern("--[^\\n]*"),
}

def _char_class(chars: Iterable[str]) -> str:
    codes = sorted(ord(c) for c in set(chars))
    parts, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = (re.escape(chr(codes[i])).replace("-", "\\-"),
                  re.escape(chr(codes[j])).replace("-", "\\-"))
        parts.append(lo if i == j else f"{lo}{hi}" if j == i + 1 else f"{lo}-{hi}")
        i = j + 1
    return "[" + "".join(parts) + "]"


def identifier(reserved: Iterable[str] = (), ignore_case: bool = False, first: str = "A-Za-z_",
               rest: str = "A-Za-z0-9_") -> Pattern:
    """A pattern for identifiers (one character of class ``first``, then any of ``rest``;
    ASCII) that are not one of the ``reserved`` words. Without look-ahead (which engines'
    regexes lack) the exclusion is spelled out along the trie of the reserved words.

    >>> p = identifier(["if", "in"])
    >>> [bool(re.fullmatch(p.regex, w)) for w in ["if", "in", "i", "iff", "x", "_if"]]
    [False, False, True, True, True, True]
    """
    ascii_chars = [chr(i) for i in range(32, 127)]
    first_set = {c for c in ascii_chars if re.fullmatch(f"[{first}]", c)}
    rest_set = {c for c in ascii_chars if re.fullmatch(f"[{rest}]", c)}
    fold = (lambda w: w.lower()) if ignore_case else (lambda w: w)
    trie: dict = {}
    for word in reserved:
        if not word or word[0] not in first_set or any(c not in rest_set for c in word[1:]):
            continue  # not an identifier anyway
        here = trie
        for ch in fold(word):
            here = here.setdefault(ch, {})
        here[""] = {}  # end of a reserved word
    tail = _char_class(rest_set) + "*"

    def variants(ch: str) -> set[str]:
        return {ch.lower(), ch.upper()} if ignore_case else {ch}

    def alternatives(here: dict, allowed: set[str]) -> str:
        branches = []
        taken: set[str] = set()
        for ch in sorted(k for k in here if k):
            options = variants(ch) & allowed
            if not options:
                continue
            taken |= options
            head = re.escape(ch) if len(options) == 1 else _char_class(options)
            branches.append(head + node(here[ch]))
        others = allowed - taken
        if others:
            branches.append(_char_class(others) + tail)
        return "(?:" + "|".join(branches) + ")" if len(branches) > 1 else branches[0]

    def node(here: dict) -> str:
        inner = alternatives(here, rest_set)
        return f"{inner}?" if "" not in here else inner

    return Pattern(alternatives(trie, first_set) if trie else _char_class(first_set) + tail)


def _definitions(definitions: Mapping[str, Expr | str] | Iterable[Definition]) -> tuple:
    if isinstance(definitions, Mapping):
        return tuple(Definition(name, body) for name, body in definitions.items())
    out = tuple(definitions)
    for d in out:
        if not isinstance(d, Definition):
            raise TypeError(f"grammar definitions are Definition objects or a mapping "
                            f"name -> expression, got {d!r}")
    return out


@dataclass(frozen=True)
class Grammar:
    """A context-free grammar: a start rule, definitions, ignored lexemes, declared terminals.

    Attributes:
        start: the start rule.
        definitions: the rules and terminals (a mapping ``name -> expression`` is accepted).
        ignore: lexemes allowed (and dropped) between any two lexemes, e.g. white space.
        declared: terminals with no definition, produced by a post-lexer (``%declare``).
        indentation: the post-lexer that makes INDENT/DEDENT tokens, if any.
        allow_unreachable: accept definitions the start rule never reaches.

    Raises:
        GrammarDefinitionError: when a name is undefined or badly formed, defined twice,
            unreachable, unproductive (derives no finite string), a terminal refers to a rule
            or to itself, or the start rule is missing.
    """

    start: str
    definitions: tuple[Definition, ...]
    ignore: tuple[Expr, ...] = ()
    declared: tuple[str, ...] = ()
    indentation: Indentation | None = None
    allow_unreachable: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "definitions", _definitions(self.definitions))
        object.__setattr__(self, "ignore", tuple(_expr(e) for e in self.ignore))
        object.__setattr__(self, "declared", tuple(self.declared))
        self._validate()

    # ------------------------------------------------------------------ access

    @property
    def by_name(self) -> dict[str, Definition]:
        """Definitions by name."""
        return {d.name: d for d in self.definitions}

    def __getitem__(self, name: str) -> Expr:
        for d in self.definitions:
            if d.name == name:
                return d.body
        raise KeyError(f"no definition of {name!r} in the grammar")

    def __contains__(self, name: object) -> bool:
        return any(d.name == name for d in self.definitions)

    @property
    def rules(self) -> dict[str, Expr]:
        """Rule bodies by name, in definition order."""
        return {d.name: d.body for d in self.definitions if not d.is_terminal}

    @property
    def terminals(self) -> dict[str, Expr]:
        """Terminal bodies by name, in definition order."""
        return {d.name: d.body for d in self.definitions if d.is_terminal}

    def replace(self, **changes: Any) -> Grammar:
        """A copy with some fields changed (validated again).

        >>> r = Refs()
        >>> g = Grammar("a", {"a": r.b, "b": "x", "c": "y"}, allow_unreachable=True)
        >>> g.replace(start="c").start
        'c'
        """
        return replace(self, **changes)

    # -------------------------------------------------------------- validation

    def _fail(self, message: str, position: tuple[int, int] | None = None,
              symbol: str | None = None) -> None:
        raise GrammarDefinitionError(message + _at(position),
                                     *(position or (None, None)), symbol=symbol)

    def _validate(self) -> None:
        seen: dict[str, Definition] = {}
        for d in self.definitions:
            kind = "terminal" if d.is_terminal else "rule"
            pattern = _TERMINAL_NAME if d.is_terminal else _RULE_NAME
            if not pattern.match(d.name):
                self._fail(f"bad {kind} name {d.name!r}: rules are lower case "
                           "([_a-z][_a-z0-9]*), terminals upper case ([_A-Z][_A-Z0-9]*)",
                           d.position, d.name)
            if d.name in seen or d.name in self.declared:
                first = seen.get(d.name)
                where = _at(first.position) if first else " (declared)"
                self._fail(f"{d.name!r} is defined twice: first{where}, again", d.position,
                           d.name)
            seen[d.name] = d
        for name in self.declared:
            if not is_terminal_name(name) or not _TERMINAL_NAME.match(name):
                self._fail(f"only terminals can be declared, not {name!r}", symbol=name)
        if self.start not in seen:
            close = difflib.get_close_matches(self.start, [n for n in seen if
                                                           not is_terminal_name(n)], 1)
            rules = [n for n in seen if not is_terminal_name(n)]
            hint = (f"; did you mean {close[0]!r}?" if close else
                    f"; the rules are: {', '.join(rules)}" if rules else "")
            self._fail(f"the start rule {self.start!r} is not defined{hint}", symbol=self.start)
        if seen[self.start].is_terminal:
            self._fail(f"the start symbol {self.start!r} must be a rule (lower case), "
                       "not a terminal", seen[self.start].position, self.start)
        known = set(seen) | set(self.declared)
        for d in self.definitions:
            kind = "terminal" if d.is_terminal else "rule"
            for ref in d.body.refs():
                if ref.name not in known:
                    close = difflib.get_close_matches(ref.name, sorted(known), 1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    self._fail(f"{kind} {d.name!r} refers to undefined symbol {ref.name!r}"
                               f"{hint}", ref.position or d.position, d.name)
                if d.is_terminal and not is_terminal_name(ref.name):
                    self._fail(f"terminal {d.name!r} refers to rule {ref.name!r}; terminals "
                               "are regular and may refer only to terminals",
                               ref.position or d.position, d.name)
        for expr in self.ignore:
            for ref in expr.refs():
                if ref.name not in known or not is_terminal_name(ref.name):
                    self._fail(f"%ignore refers to {ref.name!r}, which is not a defined "
                               "terminal", ref.position, ref.name)
        self._check_terminal_cycles(seen)
        self._check_productive(seen)
        self._check_empty_lexemes()
        if self.indentation is not None:
            ind = self.indentation
            for name in (ind.indent, ind.dedent):
                if name not in self.declared:
                    self._fail(f"indentation token {name!r} must be declared", symbol=name)
            for name in (ind.newline, *ind.open_brackets, *ind.close_brackets):
                if name not in seen or not seen[name].is_terminal:
                    self._fail(f"indentation needs terminal {name!r}, which is not defined",
                               symbol=name)
        if not self.allow_unreachable:
            unreachable = [d for d in self.definitions if d.name not in self.reachable()]
            if unreachable:
                d = unreachable[0]
                names = ", ".join(repr(u.name) for u in unreachable)
                self._fail(f"unreachable from the start rule {self.start!r}: {names}; remove "
                           "them or pass allow_unreachable=True", d.position, d.name)

    def _check_terminal_cycles(self, seen: Mapping[str, Definition]) -> None:
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2 or name not in seen:
                return
            if state.get(name) == 1:
                cycle = " -> ".join(path[path.index(name):] + [name])
                self._fail(f"terminal {name!r} is recursive ({cycle}); terminals are regular: "
                           "make it a rule (lower case)", seen[name].position, name)
            state[name] = 1
            for ref in seen[name].body.refs():
                if is_terminal_name(ref.name):
                    visit(ref.name, path + [name])
            state[name] = 2

        for d in self.definitions:
            if d.is_terminal:
                visit(d.name, [])

    def _check_empty_lexemes(self) -> None:
        for d in self.definitions:
            if d.is_terminal:
                if re.fullmatch(self.terminal_regex(d.name), ""):
                    self._fail(f"terminal {d.name!r} matches the empty string; a lexeme must "
                               "consume input (make it non-empty and use ? where it is used)",
                               d.position, d.name)
                continue
            for expr in d.body.walk():
                if isinstance(expr, Pattern) and expr.matches_empty:
                    self._fail(f"rule {d.name!r} uses pattern {expr}, which matches the empty "
                               "string; a lexeme must consume input (use ? or * around it)",
                               d.position, d.name)

    def _check_productive(self, seen: Mapping[str, Definition]) -> None:
        productive = set(self.declared)

        def ok(expr: Expr) -> bool:
            if isinstance(expr, (Literal, Pattern)):
                return True
            if isinstance(expr, Ref):
                return expr.name in productive
            if isinstance(expr, Seq):
                return all(ok(i) for i in expr.items)
            if isinstance(expr, Alt):
                return any(ok(o) for o in expr.options)
            assert isinstance(expr, Repeat)
            return expr.least == 0 or ok(expr.item)

        changed = True
        while changed:
            changed = False
            for d in self.definitions:
                if d.name not in productive and ok(d.body):
                    productive.add(d.name)
                    changed = True
        for d in self.definitions:
            if d.name not in productive:
                self._fail(f"{'terminal' if d.is_terminal else 'rule'} {d.name!r} derives no "
                           "finite string: every alternative needs a symbol that never ends",
                           d.position, d.name)

    def reachable(self) -> set[str]:
        """Names reachable from the start rule and the ignored lexemes.

        >>> r = Refs()
        >>> sorted(Grammar("a", {"a": r.B, "B": "x", "c": "y"},
        ...                allow_unreachable=True).reachable())
        ['B', 'a']
        """
        todo = [self.start] + [ref.name for e in self.ignore for ref in e.refs()]
        if self.indentation is not None:
            ind = self.indentation
            todo += [ind.newline, *ind.open_brackets, *ind.close_brackets]
        defs = {d.name: d for d in self.definitions}
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in defs:
                todo.extend(ref.name for ref in defs[name].body.refs())
        return seen & set(defs)

    # ------------------------------------------------------------ rules as boxes

    def productions(self, terminals: bool = False) -> tuple[cfg.Rule, ...]:
        """Every rule alternative as a discopy context-free rule (a box
        ``symbols read -> symbol defined``), EBNF operators desugared into auxiliary rules
        named ``<rule>__<k>`` (``x*`` becomes ``A: | A x``, ``x?`` becomes ``A: | x``).

        Args:
            terminals: also give the productions of the lexical (terminal) definitions.

        >>> r = Refs()
        >>> g = Grammar("list", {"list": "[" + r.item.star() + "]", "item": Pattern("[a-z]")})
        >>> for box in g.productions():
        ...     print(box.cod, "<-", box.dom)
        list <- "[" @ list__1 @ "]"
        list__1 <- Ty()
        list__1 <- list__1 @ item
        item <- /[a-z]/
        """
        out: list[cfg.Rule] = []
        taken = {d.name for d in self.definitions}
        for d in self.definitions:
            if d.is_terminal and not terminals:
                continue
            out.extend(_desugar(d.name, d.body, taken))
        return tuple(out)

    def symbol_of(self, expr: Expr) -> Ty:
        """The wire type of a leaf: its name for a reference, its text for a literal or
        pattern.

        >>> Grammar("a", {"a": "x"}).symbol_of(Literal("x"))
        monoidal.Ty(cat.Ob('"x"'))
        """
        return symbol_type(expr)

    # ------------------------------------------------------------- terminals

    def terminal_regex(self, name_or_expr: str | Expr) -> str:
        """A Python regular expression for a terminal (or any rule-free expression).

        >>> r = Refs()
        >>> g = Grammar("a", {"a": r.INT, "INT": r.DIGIT.plus(), "DIGIT": Pattern("[0-9]")})
        >>> g.terminal_regex("INT")
        '(?:(?:[0-9]))+'
        """
        expr = self[name_or_expr] if isinstance(name_or_expr, str) else name_or_expr
        return _to_regex(expr, self.terminals, set())

    # ------------------------------------------------------------- derivations

    def check(self, derivation: cfg.Tree) -> bool:
        """Whether ``derivation`` is licensed by this grammar: every node's children match
        its rule's body and every word matches its lexeme. Raises :class:`DerivationError`
        naming the first node that does not, else returns True. The derivation must be
        rooted at the start rule.
        """
        if _name(derivation.root.cod) != self.start:
            raise DerivationError(f"the derivation derives {_name(derivation.root.cod)!r}, "
                                  f"not the start rule {self.start!r}")
        self._check_node(derivation)
        return True

    def _check_node(self, tree: cfg.Tree) -> None:
        name = _name(tree.root.cod)
        branches = list(tree.branches) if not isinstance(tree, cfg.Rule) else []
        if isinstance(tree.root, cfg.Word) and not branches:
            return self._check_word(tree.root)
        defs = self.by_name
        if name not in defs or defs[name].is_terminal:
            raise DerivationError(f"node {name!r} is not a rule of the grammar")
        symbols = [_name(b.root.cod) for b in branches]
        words = [b.root.name if isinstance(b.root, cfg.Word) and not _branches(b) else None
                 for b in branches]
        if not _matches(defs[name].body, symbols, words):
            raise DerivationError(f"node {name!r} has children {' '.join(symbols) or '()'}, "
                                  f"which do not match its rule: {name}: {defs[name].body}")
        for branch in branches:
            self._check_node(branch)

    def _check_word(self, word: cfg.Word) -> None:
        symbol = _name(word.cod)
        if symbol in self.declared:
            return
        if symbol in self.terminals:
            regex = self.terminal_regex(symbol)
        else:
            regex = _leaf_regex(symbol)
            if regex is None:
                raise DerivationError(f"word {word.name!r} has type {symbol!r}, which is "
                                      "neither a terminal of the grammar nor a literal or "
                                      "pattern")
        if not re.fullmatch(regex, word.name):
            raise DerivationError(f"word {word.name!r} does not match its lexeme {symbol}")


def _name(ty: Ty) -> str:
    return ty.inside[0].name if len(ty) == 1 else str(ty)


def _branches(tree: cfg.Tree) -> tuple:
    return () if isinstance(tree, cfg.Rule) else tuple(tree.branches)


def symbol_type(expr: Expr) -> Ty:
    """The wire type of a leaf expression (see :meth:`Grammar.symbol_of`).

    >>> symbol_type(Ref("expr")), symbol_type(Pattern("[0-9]+"))
    (monoidal.Ty(cat.Ob('expr')), monoidal.Ty(cat.Ob('/[0-9]+/')))
    """
    if not isinstance(expr, _LEAVES):
        raise TypeError(f"only literals, patterns and references are wire types, not {expr}")
    return Ty(str(expr))


def _leaf_regex(symbol: str) -> str | None:
    """The regex of an anonymous leaf type written as ``"text"[i]`` or ``/re/flags``."""
    if len(symbol) >= 2 and symbol[0] == '"':
        ignore_case = symbol.endswith('"i')
        body = symbol[1:-2] if ignore_case else symbol[1:-1]
        try:
            text = json.loads('"' + re.sub(r"\\x([0-9a-fA-F]{2})", r"\\u00\1", body) + '"')
        except ValueError:
            return None
        return ("(?i:" if ignore_case else "(?:") + re.escape(text) + ")"
    match = re.fullmatch(r"/(.*)/([imsux]*)", symbol, re.S)
    if match:
        regex = match.group(1).replace("\\/", "/")
        return Pattern(regex, match.group(2)).python_regex()
    return None


def _to_regex(expr: Expr, terminals: Mapping[str, Expr], stack: set[str]) -> str:
    if isinstance(expr, Literal):
        return ("(?i:" if expr.ignore_case else "(?:") + re.escape(expr.text) + ")"
    if isinstance(expr, Pattern):
        return "(?:" + expr.python_regex() + ")"
    if isinstance(expr, Ref):
        if expr.name not in terminals or expr.name in stack:
            raise GrammarDefinitionError(f"{expr.name!r} is not a (non-recursive) terminal")
        return _to_regex(terminals[expr.name], terminals, stack | {expr.name})
    if isinstance(expr, Seq):
        return "".join(_to_regex(i, terminals, stack) for i in expr.items)
    if isinstance(expr, Alt):
        return "(?:" + "|".join(_to_regex(o, terminals, stack) for o in expr.options) + ")"
    assert isinstance(expr, Repeat)
    inner = "(?:" + _to_regex(expr.item, terminals, stack) + ")"
    return inner + expr.operator()


def _desugar(lhs: str, body: Expr, taken: set[str]) -> list[cfg.Rule]:
    out: list[cfg.Rule] = []
    counter = [0]

    def fresh() -> str:
        while True:
            counter[0] += 1
            name = f"{lhs}__{counter[0]}"
            if name not in taken:
                taken.add(name)
                return name

    def symbol(expr: Expr, pending: list) -> Ty:
        if isinstance(expr, _LEAVES):
            return symbol_type(expr)
        aux = fresh()
        pending.append((aux, expr))
        return Ty(aux)

    def alternatives(name: str, expr: Expr, pending: list) -> None:
        if isinstance(expr, Repeat):
            item = symbol(expr.item, pending)
            if expr.most is None:
                out.append(cfg.Rule(Ty().tensor(*[item] * expr.least), Ty(name), name=name))
                out.append(cfg.Rule(Ty(name) @ item, Ty(name), name=name))
            else:
                for count in range(expr.least, expr.most + 1):
                    out.append(cfg.Rule(Ty().tensor(*[item] * count), Ty(name), name=name))
            return
        options = expr.options if isinstance(expr, Alt) else (expr,)
        for option in options:
            items = option.items if isinstance(option, Seq) else (option,)
            dom = Ty().tensor(*[symbol(i, pending) for i in items])
            out.append(cfg.Rule(dom, Ty(name), name=name))

    pending: list[tuple[str, Expr]] = []
    alternatives(lhs, body, pending)
    while pending:
        name, expr = pending.pop(0)
        alternatives(name, expr, pending)
    return out


def _matches(body: Expr, symbols: Sequence[str], words: Sequence[str | None]) -> bool:
    """Whether the children (their symbol names; words' texts where they are words) spell a
    string of ``body``'s language over symbols (a backtracking matcher over end positions)."""

    def ends(expr: Expr, i: int) -> set[int]:
        if isinstance(expr, _LEAVES):
            if i >= len(symbols):
                return set()
            if symbols[i] == str(expr):
                return {i + 1}
            if isinstance(expr, Literal) and words[i] is not None:
                same = (words[i].lower() == expr.text.lower() if expr.ignore_case
                        else words[i] == expr.text)
                return {i + 1} if same else set()
            return set()
        if isinstance(expr, Seq):
            positions = {i}
            for item in expr.items:
                positions = {e for p in positions for e in ends(item, p)}
            return positions
        if isinstance(expr, Alt):
            return {e for o in expr.options for e in ends(o, i)}
        assert isinstance(expr, Repeat)
        result = {i} if expr.least == 0 else set()
        frontier, count = {i}, 0
        while frontier and (expr.most is None or count < expr.most):
            count += 1
            frontier = {e for p in frontier for e in ends(expr.item, p) if e > p}
            if count >= expr.least:
                result |= frontier
        return result

    return len(symbols) in ends(body, 0)


# ------------------------------------------------------------------------------- derivations


def leaf(text: str, symbol: str | Expr) -> cfg.Word:
    """A word of a derivation: the text of one lexeme and its type (a terminal's name, or a
    literal/pattern).

    >>> leaf("+", Literal("+")).cod
    monoidal.Ty(cat.Ob('"+"'))
    """
    ty = symbol_type(symbol) if isinstance(symbol, Expr) else Ty(symbol)
    return cfg.Word(text, ty)


def node(name: str, *children: cfg.Tree) -> cfg.Tree:
    """A derivation node: rule ``name`` applied to its children (nodes or leaves).

    >>> print(node("pair", leaf("a", "KEY"), leaf(":", Literal(":"))))
    pair(a, :)
    """
    for child in children:
        if not isinstance(child, cfg.Tree):
            raise TypeError(f"a derivation's children are nodes or leaves, got {child!r}")
    dom = Ty().tensor(*[child.cod for child in children])
    rule = cfg.Rule(dom, Ty(name), name=name)
    return rule(*children) if children else rule


def derivation_leaves(tree: cfg.Tree) -> list[cfg.Word]:
    """The words of a derivation, left to right.

    >>> [w.name for w in derivation_leaves(node("s", leaf("a", "A"), node("t", leaf("b", "B"))))]
    ['a', 'b']
    """
    if isinstance(tree.root, cfg.Word) and not _branches(tree):
        return [tree.root]
    return [w for branch in _branches(tree) for w in derivation_leaves(branch)]


def derivation_text(tree: cfg.Tree, separator: str = "") -> str:
    """The text a derivation spells (ignored lexemes such as white space are not in it).

    >>> derivation_text(node("s", leaf("a", "A"), leaf("b", "B")), " ")
    'a b'
    """
    return separator.join(w.name for w in derivation_leaves(tree))


def derivation_diagram(tree: cfg.Tree) -> Diagram:
    """The derivation as a monoidal diagram ``Ty() -> start``: words on top, rules below.

    >>> d = derivation_diagram(node("s", leaf("a", "A")))
    >>> d.dom, d.cod
    (monoidal.Ty(), monoidal.Ty(cat.Ob('s')))
    """
    return tree.to_diagram()
