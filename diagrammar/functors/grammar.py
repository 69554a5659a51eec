"""Functors from grammar diagrams to the texts engines read, to derivations and to pictures.

* :class:`ToLark` maps a :class:`~diagrammar.diagrams.grammar.Grammar` to Lark text, either for
  the ``lark`` package or in llguidance's Lark dialect (which refuses what it cannot do: terminal
  priorities, declared terminals such as INDENT/DEDENT, lazy repeats, look-arounds);
  :func:`to_spec` wraps that text in the :class:`GrammarSpec` the constraint engines read.
* :class:`ToGBNF` maps it to GBNF, the EBNF dialect of llama.cpp that xgrammar also reads
  (``Grammar.from_ebnf``): terminals become rules, patterns are translated to character
  classes and operators, ``%ignore`` becomes a ``ws`` rule before every lexeme.
* :func:`parse` reads a text (a model's output) with the ``lark`` package into a derivation:
  a :class:`discopy.grammar.cfg.Tree` of rule applications over the lexemes, which
  :meth:`Grammar.check` accepts and :class:`DrawGrammar` draws.

The expression syntax is a free algebra (literals, patterns, references under sequence,
alternatives and repetition); each functor is the unique algebra map fixed by what it does to
the generators, which is why the translations are written as one recursive function each.

>>> from diagrammar.diagrams.grammar import Grammar, Pattern, Refs
>>> r = Refs()
>>> g = Grammar("expr", {"expr": r.expr + "+" + r.NUMBER | r.NUMBER,
...                      "NUMBER": Pattern("[0-9]+")}, ignore=[Pattern(" +")])
>>> print(to_lark(g))
start: expr
expr: expr "+" NUMBER | NUMBER
NUMBER: /[0-9]+/
%ignore / +/
<BLANKLINE>
>>> print(to_gbnf(g))
root ::= expr ws
expr ::= expr ws "+" ws NUMBER | ws NUMBER
NUMBER ::= [0-9]+
ws ::= (" "+)*
<BLANKLINE>
>>> to_spec(g).format
'lark'
>>> print(parse(g, "1 + 2"))
expr(expr(1), +, 2)
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from discopy import monoidal
from discopy.grammar import cfg

from diagrammar.decoding.constraints.protocol import GrammarError, GrammarSpec
from diagrammar.diagrams.grammar import (
    COMMON_TERMINALS,
    Alt,
    Definition,
    Expr,
    Grammar,
    Literal,
    Pattern,
    Ref,
    Repeat,
    Seq,
    derivation_leaves,
    is_terminal_name,
    leaf,
    node,
)

try:  # Python's own regular-expression parser: the reference reading of a pattern.
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # Python 3.10
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

__all__ = [
    "DIALECTS",
    "GRAMMAR_COLOURS",
    "DrawGrammar",
    "TextParseError",
    "ToGBNF",
    "ToLark",
    "accepts",
    "parse",
    "regex_to_gbnf",
    "to_gbnf",
    "to_lark",
    "to_spec",
    "words",
]

#: The Lark dialects :class:`ToLark` writes.
DIALECTS = ("lark", "llguidance")


class TextParseError(ValueError):
    """A text that the grammar does not derive; ``line`` and ``column`` (1-based) point at the
    first character that cannot be read, ``expected`` lists what could come there."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 expected: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.line, self.column, self.expected = line, column, expected


# ------------------------------------------------------------------------------ regexes


def _regex_ops(regex: str, flags: str) -> tuple[list, int]:
    bits = 0
    for flag in flags:
        bits |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X, "u": 0}[flag]
    parsed = _sre_parse.parse(regex, bits)
    return list(parsed), parsed.state.flags


def _unsupported_regex_features(regex: str, flags: str = "") -> list[str]:
    """Features of a Python pattern that engines' regex dialects do not read."""
    found: list[str] = []

    def walk(ops: Iterable) -> None:
        for op, av in ops:
            if op in (_sre.ASSERT, _sre.ASSERT_NOT):
                found.append("look-around")
            elif op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
                found.append("back-reference")
            elif op == _sre.MIN_REPEAT:
                found.append("lazy repeat")
            elif op.name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP"):
                found.append("possessive/atomic group")
            if op == _sre.BRANCH:
                for branch in av[1]:
                    walk(branch)
            elif op == _sre.SUBPATTERN:
                walk(av[-1])
            elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) or op.name == "POSSESSIVE_REPEAT":
                walk(av[2])
            elif op.name == "ATOMIC_GROUP":
                walk(av)

    walk(_regex_ops(regex, flags)[0])
    return sorted(set(found))


_MAX_CODE = 0x10FFFF
_CATEGORY_RANGES = {
    "CATEGORY_DIGIT": [(0x30, 0x39)],
    "CATEGORY_WORD": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "CATEGORY_SPACE": [(0x09, 0x0D), (0x20, 0x20)],
}


def _normalise(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in _normalise(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= _MAX_CODE:
        out.append((start, _MAX_CODE))
    return out


def _fold_case(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    extra = []
    for lo, hi in ranges:
        for base, other in ((0x41, 0x61), (0x61, 0x41)):  # ASCII letters only
            a, b = max(lo, base), min(hi, base + 25)
            if a <= b:
                extra.append((a - base + other, b - base + other))
    return _normalise(ranges + extra)


def _class_char(code: int) -> str:
    ch = chr(code)
    if ch in "\\]-^[":
        return "\\" + ch
    return _gbnf_char(code)


def _gbnf_char(code: int) -> str:
    ch = chr(code)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02X}"
    if 0xD800 <= code <= 0xDFFF or code > 0xFFFF or not ch.isprintable():
        return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"
    return ch


def _gbnf_class(ranges: list[tuple[int, int]]) -> str:
    ranges = _normalise(ranges)
    inverse = _complement(ranges)
    open_ended = bool(ranges) and ranges[-1][1] == _MAX_CODE
    negate = bool(inverse) and (len(inverse) < len(ranges)
                                or (len(inverse) == len(ranges) and open_ended))
    shown = inverse if negate else ranges
    if not shown:
        raise GrammarError("a character class that matches nothing cannot be written in GBNF")
    body = "".join(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}"
                   for lo, hi in shown)
    return f"[{'^' if negate else ''}{body}]"


def _gbnf_literal(text: str) -> str:
    return '"' + "".join('\\"' if c == '"' else "\\\\" if c == "\\" else _gbnf_char(ord(c))
                         for c in text) + '"'


def regex_to_gbnf(regex: str, flags: str = "") -> str:
    """A GBNF expression with the language of a Python regular expression.

    Character classes become GBNF classes (``\\d``, ``\\w``, ``\\s`` are read as ASCII), ``.``
    is ``[^\\n]`` (any character under the ``s`` flag), lazy repeats are read as greedy ones
    (same language). Anchors are allowed only at the very ends; look-arounds,
    back-references and word boundaries cannot be written in a context-free grammar and raise
    :class:`GrammarError` naming them.

    >>> regex_to_gbnf(r"-?(0|[1-9][0-9]*)(\\.[0-9]+)?")
    '"-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)?'
    >>> regex_to_gbnf("(?=a)b")
    Traceback (most recent call last):
    ...
    diagrammar.decoding.constraints.protocol.GrammarError: pattern /(?=a)b/ uses a \
look-around, which a context-free grammar cannot express
    """
    try:
        ops, bits = _regex_ops(regex, flags)
    except re.error as error:
        raise GrammarError(f"invalid pattern /{regex}/ at position {error.pos}: "
                           f"{error.msg}") from None

    def fail(feature: str) -> None:
        raise GrammarError(f"pattern /{regex}/ uses {feature}, which a context-free grammar "
                           "cannot express")

    def char_ranges(op, av, ignore_case: bool) -> list[tuple[int, int]]:
        if op == _sre.LITERAL:
            ranges = [(av, av)]
        elif op == _sre.NOT_LITERAL:
            ranges = _complement(_fold_case([(av, av)]) if ignore_case else [(av, av)])
            return ranges
        elif op == _sre.ANY:
            return [(0, _MAX_CODE)] if bits_now[0] & re.S else _complement([(10, 10)])
        else:  # IN
            ranges, negate = [], False
            for item_op, item_av in av:
                if item_op == _sre.NEGATE:
                    negate = True
                elif item_op == _sre.LITERAL:
                    ranges.append((item_av, item_av))
                elif item_op == _sre.RANGE:
                    ranges.append(item_av)
                elif item_op == _sre.CATEGORY:
                    name = item_av.name
                    if name.replace("_NOT", "") not in _CATEGORY_RANGES:
                        fail(f"the character category {name}")
                    base = _CATEGORY_RANGES[name.replace("_NOT", "")]
                    ranges.extend(_complement(base) if "_NOT_" in name else base)
                else:
                    fail(f"the class item {item_op.name}")
            ranges = _fold_case(ranges) if ignore_case else _normalise(ranges)
            return _complement(ranges) if negate else ranges
        return _fold_case(ranges) if ignore_case else ranges

    bits_now = [bits]

    def seq(ops: list, outer: bool) -> str:
        parts: list[str] = []
        text: list[str] = []
        ignore_case = bool(bits_now[0] & re.I)

        def flush() -> None:
            if text:
                parts.append(_gbnf_literal("".join(text)))
                text.clear()

        for index, (op, av) in enumerate(ops):
            if op == _sre.LITERAL and not (ignore_case and chr(av).lower() != chr(av).upper()):
                text.append(chr(av))
                continue
            flush()
            if op in (_sre.LITERAL, _sre.NOT_LITERAL, _sre.ANY, _sre.IN):
                parts.append(_gbnf_class(char_ranges(op, av, ignore_case)))
            elif op == _sre.BRANCH:
                parts.append("(" + " | ".join(seq(list(b), False) or '""' for b in av[1]) + ")")
            elif op == _sre.SUBPATTERN:
                saved = bits_now[0]
                bits_now[0] = (bits_now[0] | av[1]) & ~av[2]
                inner = seq(list(av[3]), False) or '""'
                bits_now[0] = saved
                parts.append(_group(inner))
            elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
                least, most, sub = av
                inner = _group(seq(list(sub), False) or '""', repeated=True)
                most = None if most == _sre.MAXREPEAT else most
                parts.append(inner + Repeat(Seq(()), least, most).operator()
                             if (least, most) != (0, 0) else '""')
            elif op == _sre.AT:
                at_start = outer and index == 0 and av.name in ("AT_BEGINNING",
                                                                "AT_BEGINNING_STRING")
                at_end = outer and index == len(ops) - 1 and av.name in ("AT_END",
                                                                         "AT_END_STRING")
                if not (at_start or at_end):
                    fail("an anchor or word boundary inside the pattern")
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                fail("a look-around")
            elif op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
                fail("a back-reference")
            else:
                fail(f"the regex operation {op.name}")
        flush()
        return " ".join(parts)

    return seq(ops, True) or '""'


def _group(text: str, repeated: bool = False) -> str:
    """``text`` in parentheses unless it is one atom (or already wrapped)."""
    if _wrapped(text) or (_atomic(text) and not (repeated and text[-1] in "?*+}")):
        return text
    return f"({text})"


def _atomic(text: str) -> bool:
    return _balanced(text, spaces=True)


def _balanced(text: str, spaces: bool = False) -> bool:
    """Whether parentheses balance (with ``spaces``: and no white space at depth 0)."""
    depth, quoted, escaped, in_class = 0, False, False, False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif in_class:
            in_class = ch != "]"
        elif ch == '"':
            quoted = True
        elif ch == "[":
            in_class = True
        elif spaces and depth == 0 and ch in " |":
            return False
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


# ------------------------------------------------------------------------------ naming


def _rename(grammar: Grammar, names: Mapping[str, str]) -> tuple[list[Definition],
                                                                 list[Expr]]:
    """Definitions and ignore expressions with every name mapped (no validation)."""

    def ren(expr: Expr) -> Expr:
        return expr.map_leaves(lambda x: Ref(names.get(x.name, x.name), x.position)
                               if isinstance(x, Ref) else x)

    defs = [Definition(names.get(d.name, d.name), ren(d.body), d.priority, d.origin,
                       d.position) for d in grammar.definitions]
    return defs, [ren(e) for e in grammar.ignore]


# ------------------------------------------------------------------------------ Lark


class ToLark:
    """The functor Grammar -> Lark text.

    Args:
        dialect: ``"lark"`` (the ``lark`` package) or ``"llguidance"`` (llguidance's Lark,
            read by the constraint engines). The llguidance dialect raises
            :class:`GrammarError` for what llguidance does not support (terminal/rule
            priorities, ``%declare`` and indentation, lazy repeats, look-arounds,
            back-references) instead of dropping it.
        imports: write definitions imported from Lark's common library as
            ``%import common.NAME`` (both dialects know them) rather than spelled out.

    The start rule is always called ``start`` in the text (both readers start there): when the
    grammar's start rule has another name, ``start: <name>`` is added; another rule that
    happens to be called ``start`` is renamed.
    """

    def __init__(self, dialect: str = "llguidance", imports: bool = True) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown Lark dialect {dialect!r}; known: {', '.join(DIALECTS)}")
        self.dialect, self.imports = dialect, imports

    def expr(self, expr: Expr, parent: type | None = None) -> str:
        """The Lark text of one expression (parenthesised as ``parent`` needs)."""
        if isinstance(expr, (Literal, Ref)):
            return str(expr)
        if isinstance(expr, Pattern):
            if self.dialect == "llguidance":
                bad = _unsupported_regex_features(expr.regex, expr.flags)
                if bad:
                    raise GrammarError(f"llguidance cannot read pattern {expr}: it uses "
                                       f"{', '.join(bad)}")
            return str(expr)
        if isinstance(expr, Seq):
            if not expr.items:
                return "()" if parent is not None else ""
            text = " ".join(self.expr(item, Seq) for item in expr.items)
            return f"({text})" if parent is Repeat and len(expr.items) > 1 else text
        if isinstance(expr, Alt):
            empty = [o for o in expr.options if isinstance(o, Seq) and not o.items]
            if empty and parent is not None:
                rest = [o for o in expr.options if o not in empty]
                return self.expr(Repeat(Alt(tuple(rest)) if len(rest) > 1 else rest[0], 0, 1),
                                 parent)
            text = " | ".join(self.expr(o, Alt) for o in expr.options)
            return f"({text})" if parent is not None else text
        assert isinstance(expr, Repeat)
        inner = self.expr(expr.item, Repeat)
        if isinstance(expr.item, Repeat):
            inner = f"({inner})"
        op = expr.operator()
        if op in "?*+" or self.dialect == "llguidance":
            return inner + op
        if expr.most is None:  # x{m,}: Lark has no open range
            return f"{inner} ~ {expr.least} {inner}*"
        if expr.most == expr.least:
            return f"{inner} ~ {expr.least}"
        return f"{inner} ~ {expr.least}..{expr.most}"

    def __call__(self, grammar: Grammar) -> str:
        return self.text(grammar)

    def text(self, grammar: Grammar, names: Mapping[str, str] | None = None) -> str:
        """The grammar's Lark text (``names`` renames symbols first)."""
        if self.dialect == "llguidance":
            if grammar.declared or grammar.indentation is not None:
                raise GrammarError(
                    "llguidance cannot read declared terminals "
                    f"({', '.join(grammar.declared)}): they come from a post-lexer (here "
                    "Python-style INDENT/DEDENT), which llguidance does not have; use a "
                    "grammar that spells indentation out (e.g. builtin 'python_unrolled')")
            prioritised = [d.name for d in grammar.definitions if d.priority is not None]
            if prioritised:
                raise GrammarError("llguidance does not support priorities (on "
                                   f"{', '.join(prioritised)}); remove them")
        renames = dict(names or {})
        start = renames.get(grammar.start, grammar.start)
        if start != "start" and "start" in grammar and "start" not in renames:
            taken = {d.name for d in grammar.definitions}
            fresh = next(f"start_{k}" for k in range(1, 10**6) if f"start_{k}" not in taken)
            renames["start"] = fresh
        defs, ignore = _rename(grammar, renames) if renames else (list(grammar.definitions),
                                                                  list(grammar.ignore))
        lines = [] if start == "start" else [f"start: {start}"]
        common = []
        for d in defs:
            if self.imports and d.origin == "common" and d.name in COMMON_TERMINALS:
                common.append(d.name)
                continue
            priority = "" if d.priority is None else f".{d.priority}"
            lines.append(f"{d.name}{priority}: {self.expr(d.body)}".rstrip())
        if common:
            lines.append(f"%import common ({', '.join(common)})" if len(common) > 1
                         else f"%import common.{common[0]}")
        lines += [f"%ignore {self.expr(e)}" for e in ignore]
        if grammar.declared:
            lines.append("%declare " + " ".join(renames.get(n, n) for n in grammar.declared))
        return "\n".join(lines) + "\n"


def to_lark(grammar: Grammar, dialect: str = "llguidance") -> str:
    """The grammar in Lark text (see :class:`ToLark`)."""
    return ToLark(dialect)(grammar)


def to_spec(grammar: Grammar, name: str | None = None) -> GrammarSpec:
    """The :class:`GrammarSpec` (``"lark"``, llguidance dialect) the engines compile.

    >>> from diagrammar.diagrams.grammar import Grammar
    >>> to_spec(Grammar("a", {"a": "yes"}), name="yes").source
    'start: a\\na: "yes"\\n'
    """
    return GrammarSpec("lark", ToLark("llguidance")(grammar), name or grammar.start)


# ------------------------------------------------------------------------------ GBNF


def _gbnf_names(grammar: Grammar) -> dict[str, str]:
    names: dict[str, str] = {}
    taken = {"root"}
    for d in grammar.definitions:
        base = re.sub(r"_+", "-", d.name).strip("-") or "x"
        candidate, k = base, 1
        while candidate in taken:
            k += 1
            candidate = f"{base}-{k}"
        taken.add(candidate)
        names[d.name] = candidate
    ws = "ws"
    k = 1
    while ws in taken:
        k += 1
        ws = f"ws-{k}"
    names[" ws"] = ws
    return names


class ToGBNF:
    """The functor Grammar -> GBNF text (llama.cpp's grammar format; xgrammar reads it as
    EBNF with ``root`` as the start rule).

    GBNF has no lexer, so terminals become ordinary rules; ``%ignore`` lexemes become a rule
    ``ws ::= (ignored | ...)*`` placed before every lexeme of every rule and at the end.
    Names are written with dashes (``_`` is not a GBNF name character). Declared terminals
    (INDENT/DEDENT) cannot be expressed and raise :class:`GrammarError`.
    """

    def expr(self, expr: Expr, names: Mapping[str, str], ws: str | None,
             parent: type | None = None) -> str:
        """The GBNF text of one expression; ``ws`` (a rule name) goes before each lexeme."""
        if isinstance(expr, (Literal, Pattern)) or (isinstance(expr, Ref)
                                                     and is_terminal_name(expr.name)):
            text = self._leaf(expr, names)
            if ws is None:
                return text
            return f"{ws} {text}" if parent is not Repeat else f"({ws} {text})"
        if isinstance(expr, Ref):
            return names[expr.name]
        if isinstance(expr, Seq):
            if not expr.items:
                return '""'
            text = " ".join(self.expr(i, names, ws, Seq) for i in expr.items)
            return f"({text})" if parent is Repeat and (len(expr.items) > 1 or ws) else text
        if isinstance(expr, Alt):
            text = " | ".join(self.expr(o, names, ws, Alt) for o in expr.options)
            return f"({text})" if parent is not None else text
        assert isinstance(expr, Repeat)
        return _group(self.expr(expr.item, names, ws, Repeat), repeated=True) + expr.operator()

    def _leaf(self, expr: Expr, names: Mapping[str, str]) -> str:
        if isinstance(expr, Ref):
            return names[expr.name]
        if isinstance(expr, Literal):
            if not expr.ignore_case:
                return _gbnf_literal(expr.text)
            return _group(regex_to_gbnf(re.escape(expr.text), "i"))
        assert isinstance(expr, Pattern)
        return _group(regex_to_gbnf(expr.regex, expr.flags))

    def __call__(self, grammar: Grammar) -> str:
        if grammar.declared or grammar.indentation is not None:
            raise GrammarError(
                f"GBNF cannot express declared terminals ({', '.join(grammar.declared)}): "
                "they come from a post-lexer (Python-style INDENT/DEDENT); use a grammar that "
                "spells indentation out (e.g. builtin 'python_unrolled')")
        names = _gbnf_names(grammar)
        ws = names[" ws"] if grammar.ignore else None
        lines = [f"root ::= {names[grammar.start]}" + (f" {ws}" if ws else "")]
        for d in grammar.definitions:
            body_ws = None if d.is_terminal else ws
            lines.append(f"{names[d.name]} ::= {self.expr(d.body, names, body_ws)}")
        if ws:
            ignored = " | ".join(self.expr(e, names, None, Alt) for e in grammar.ignore)
            lines.append(f"{ws} ::= ({ignored})*")
        return "\n".join(lines) + "\n"


def _wrapped(text: str) -> bool:
    return text.startswith("(") and text.endswith(")") and _balanced(text[1:-1])


def to_gbnf(grammar: Grammar) -> str:
    """The grammar in GBNF / xgrammar EBNF (see :class:`ToGBNF`)."""
    return ToGBNF()(grammar)


# ------------------------------------------------------------------------- parsing


class _Parser:
    """A ``lark`` parser for one grammar, with the names it used mapped back."""

    def __init__(self, grammar: Grammar) -> None:
        import lark

        self.grammar = grammar
        taken = {d.name for d in grammar.definitions} | set(grammar.declared)
        # Rules get names lark never inlines; anonymous lexemes get names of their own so
        # that each word of the derivation knows which literal or pattern it matched.
        self.rules = {}
        for k, d in enumerate(grammar.definitions):
            if not d.is_terminal:
                self.rules[d.name] = f"r{k}_{d.name.lstrip('_')}"
        self.lexemes: dict[Expr, str] = {}

        def name_leaf(expr: Expr) -> Expr:
            if isinstance(expr, (Literal, Pattern)):
                if expr not in self.lexemes:
                    k = len(self.lexemes)
                    while f"DGLEX{k}" in taken:
                        k += 1
                    self.lexemes[expr] = f"DGLEX{k}"
                    taken.add(f"DGLEX{k}")
                return Ref(self.lexemes[expr])
            if isinstance(expr, Ref) and expr.name in self.rules:
                return Ref(self.rules[expr.name])
            return expr

        lines = []
        for d in grammar.definitions:
            if d.is_terminal:
                priority = "" if d.priority is None else f".{d.priority}"
                body = ToLark("lark").expr(d.body)
                lines.append(f"{d.name}{priority}: {body}")
            else:
                priority = "" if d.priority is None else f".{d.priority}"
                body = ToLark("lark").expr(d.body.map_leaves(name_leaf))
                lines.append(f"{self.rules[d.name]}{priority}: {body}".rstrip())
        for expr, name in self.lexemes.items():
            lines.append(f"{name}: {ToLark('lark').expr(expr)}")
        lines += [f"%ignore {ToLark('lark').expr(e)}" for e in grammar.ignore]
        if grammar.declared:
            lines.append("%declare " + " ".join(grammar.declared))
        self.text = "\n".join(lines) + "\n"
        self.symbols = {v: k for k, v in self.rules.items()}
        self.symbols.update({v: str(k) for k, v in self.lexemes.items()})
        options = dict(start=self.rules[grammar.start], keep_all_tokens=True,
                       maybe_placeholders=False, propagate_positions=False)
        self.indenter = None
        if grammar.indentation is not None:
            self.indenter = _indenter(grammar.indentation)
            options.update(parser="lalr", lexer="basic", postlex=self.indenter)
        else:
            options.update(parser="earley", lexer="dynamic")
        try:
            self.lark = lark.Lark(self.text, **options)
        except lark.exceptions.LarkError as error:
            raise GrammarError(f"lark cannot build a parser for grammar {grammar.start!r}: "
                               f"{error}") from None

    def shown(self, name: str) -> str:
        return self.symbols.get(name, name)

    def derivation(self, tree) -> cfg.Tree:
        import lark

        declared = set(self.grammar.declared)
        if isinstance(tree, lark.Token):
            text = "" if tree.type in declared else str(tree)
            return leaf(text, self.shown(tree.type))
        return node(self.symbols[tree.data], *[self.derivation(c) for c in tree.children])


def _indenter(spec):
    from lark.indenter import Indenter

    class _Indenter(Indenter):
        """Lark's indentation post-lexer, remembering the line it is on for messages."""

        line = 0

        def handle_NL(self, token):  # noqa: N802 - lark's name
            self.line = token.line + token.count("\n")
            yield from super().handle_NL(token)

        NL_type = spec.newline
        OPEN_PAREN_types = list(spec.open_brackets)
        CLOSE_PAREN_types = list(spec.close_brackets)
        INDENT_type = spec.indent
        DEDENT_type = spec.dedent
        tab_len = spec.tab_len

    return _Indenter()


@functools.lru_cache(maxsize=32)
def _parser(grammar: Grammar) -> _Parser:
    return _Parser(grammar)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def parse(grammar: Grammar, text: str) -> cfg.Tree:
    """The derivation of ``text`` (e.g. a model's output) in ``grammar``, read by ``lark``
    (Earley with a dynamic lexer, as llguidance reads Lark; LALR with an indentation
    post-lexer for grammars with :class:`~diagrammar.diagrams.grammar.Indentation`).

    Words of anonymous literals and patterns have the literal or pattern as their type, so the
    derivation passes :meth:`Grammar.check`. INDENT/DEDENT words have empty text.

    Raises:
        TextParseError: the text is not in the grammar's language (line, column, expected).
        GrammarError: ``lark`` cannot build a parser (e.g. an indentation grammar that is not
            LALR(1)).
    """
    import lark

    parser = _parser(grammar)
    try:
        tree = parser.lark.parse(text)
    except lark.exceptions.UnexpectedInput as error:
        raise _text_error(parser, text, error) from None
    except lark.exceptions.LarkError as error:  # e.g. an indentation post-lexer's DedentError
        line = parser.indenter.line if parser.indenter is not None else None
        where = f" at line {line}" if line else ""
        raise TextParseError(f"text does not match grammar {grammar.start!r}{where}: {error}",
                             line) from None
    return parser.derivation(tree)


def _text_error(parser: _Parser, text: str, error) -> TextParseError:
    """A lark ``UnexpectedInput`` as a message in the grammar's own names."""
    import lark

    names = getattr(error, "expected", None) or getattr(error, "allowed", None) or ()
    expected = tuple(sorted({parser.shown(n) for n in names}))
    token = getattr(error, "token", None)
    if (isinstance(error, lark.exceptions.UnexpectedEOF) or error.line in (-1, None)
            or getattr(token, "type", None) == "$END"):
        (line, column), found, context = _position(text, len(text)), "the end of the text", ""
    else:
        line, column = error.line, error.column
        offset = getattr(error, "pos_in_stream", None)
        found = repr(text[offset:offset + 12] if offset is not None else str(token))
        context = "\n" + error.get_context(text).rstrip()
    shown = ", ".join(expected[:12]) + (", ..." if len(expected) > 12 else "")
    message = (f"text does not match grammar {parser.grammar.start!r} at line {line}, column "
               f"{column}: unexpected {found}" + (f"; expected one of: {shown}" if shown else "")
               + context)
    return TextParseError(message, line, column, expected)


def accepts(grammar: Grammar, text: str) -> bool:
    """Whether ``grammar`` derives ``text`` (see :func:`parse`).

    >>> from diagrammar.diagrams.grammar import Grammar, Pattern
    >>> g = Grammar("n", {"n": Pattern("[0-9]+")})
    >>> accepts(g, "42"), accepts(g, "4a")
    (True, False)
    """
    try:
        parse(grammar, text)
    except TextParseError:
        return False
    return True


# ------------------------------------------------------------------------- drawing


#: Colours of derivation boxes: rules, words, and words of ignored/declared tokens.
GRAMMAR_COLOURS = {"rule": "#9ecae1", "word": "#fdd0a2", "empty": "#eeeeee"}


class DrawGrammar:
    """The functor to pictures: a derivation (or the productions of a grammar) becomes a PNG.

    Words are drawn as boxes at the top with their text (shortened, ``$`` escaped so
    matplotlib does not read it as mathematics); rules as boxes below, wires typed by symbols.
    """

    def __init__(self, colours: Mapping[str, str] | None = None, max_label: int = 24) -> None:
        self.colours = {**GRAMMAR_COLOURS, **(colours or {})}
        self.max_label = max_label

    def label(self, text: str) -> str:
        """A drawable label for ``text``."""
        shown = text if text.strip() and text.isprintable() else repr(text)
        if len(shown) > self.max_label:
            shown = shown[: self.max_label - 1] + "…"
        return shown.replace("$", r"\$")

    def picture(self, tree: cfg.Tree) -> monoidal.Diagram:
        """The derivation as a monoidal diagram of coloured drawing boxes."""
        if isinstance(tree.root, cfg.Word) and not _branches(tree):
            kind = "word" if tree.root.name else "empty"
            return monoidal.Box(self.label(tree.root.name), monoidal.Ty(), tree.root.cod,
                                color=_colour_name(self.colours[kind]))
        inputs = monoidal.Id(monoidal.Ty()).tensor(*[self.picture(b) for b in _branches(tree)])
        box = monoidal.Box(self.label(tree.root.name), tree.root.dom, tree.root.cod,
                           color=_colour_name(self.colours["rule"]))
        return inputs >> box

    def draw(self, diagram: monoidal.Diagram, path: str | os.PathLike,
             figsize: tuple[float, float] | None = None) -> Path:
        """Draws any monoidal diagram to ``path`` (PNG)."""
        from diagrammar.functors.draw import _lent_colours

        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
        colours = {_colour_name(c): c for c in self.colours.values()}
        with _lent_colours(colours):
            diagram.draw(path=str(path), figsize=figsize or (8.0, 6.0),
                         fontsize=9, fontsize_types=7, margins=(0.05, 0.05), show=False)
        return path

    def __call__(self, tree: cfg.Tree, path: str | os.PathLike,
                 figsize: tuple[float, float] | None = None) -> Path:
        """Draws a derivation to ``path`` (PNG) and returns the path."""
        picture = self.picture(tree)
        width = max(4.0, 1.1 * len(derivation_leaves(tree)))
        height = max(3.0, 0.6 * (len(picture.inside) + 1))
        return self.draw(picture, path, figsize or (min(width, 80), min(height, 80)))

    def grammar(self, grammar: Grammar, path: str | os.PathLike,
                names: Iterable[str] | None = None,
                figsize: tuple[float, float] | None = None) -> Path:
        """Draws the grammar's productions (of the rules ``names``, default all) side by side
        in one layer: one box per rule alternative, auxiliary rules named ``<rule>__<k>``."""
        wanted = None if names is None else set(names)
        boxes = [monoidal.Box(self.label(p.name), p.dom, p.cod,
                              color=_colour_name(self.colours["rule"]))
                 for p in grammar.productions()
                 if wanted is None or p.name.split("__")[0] in wanted]
        if not boxes:
            raise ValueError(f"no rules named {sorted(wanted or ())} in the grammar")
        diagram = monoidal.Id(monoidal.Ty()).tensor(*boxes).foliation()
        wires = sum(max(len(b.dom), 1) for b in boxes)
        return self.draw(diagram, path, figsize or (min(max(4.0, 0.9 * wires), 80), 2.5))


def _colour_name(colour: str) -> str:
    return "diagrammar" + colour


def _branches(tree: cfg.Tree) -> tuple:
    return () if isinstance(tree, cfg.Rule) else tuple(tree.branches)


def words(tree: cfg.Tree) -> list[str]:
    """The texts of a derivation's words, left to right (a shorthand for tests and users).

    >>> from diagrammar.diagrams.grammar import Grammar, Pattern
    >>> words(parse(Grammar("n", {"n": Pattern("[0-9]+")}), "42"))
    ['42']
    """
    return [w.name for w in derivation_leaves(tree)]


