"""A safe parser for the arithmetic a model writes: text → a small, validated :class:`Node`
tree that the sympy and z3 checkers build their own objects from.

Nothing here evaluates the text. Python's ``ast`` module parses it (parsing runs no code) and
only a whitelist of node kinds survives: numbers, names, ``+ - * / // % **`` and unary signs,
calls of a whitelist of functions, and, where asked for, comparisons and ``and/or/not``.
Before parsing, the text is measured against :class:`~diagrammar.symbolic.limits.Limits`;
after, the tree's depth and the size of every number it writes or implies are measured too, so
``9**9**9**9`` is refused at once instead of being computed.

>>> parse_expression("2x^2 + sin(x)/3")
Node(op='add', args=(Node(op='mul', ...), Node(op='div', ...)), value='')
>>> parse_expression("2x^2 + sin(x)/3").names()
{'x'}
>>> for text in ["9**9**9**9", "x.__class__"]:
...     try:
...         parse_expression(text)
...     except ExpressionError as error:
...         print(error)
the exponent of 9**9**9 is too large (about 9 digits) (column 4)
attribute access (.__class__) is not allowed (column 2)

The text is normalised first: ``^`` means power, ``×``/``·`` multiply, ``÷`` divides, ``−``
subtracts, and a number or closing bracket followed by a name or opening bracket multiplies
(``2x``, ``3(x+1)``, ``(a)(b)``).
"""

from __future__ import annotations

import ast
import io
import math
import re
import tokenize
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from diagrammar.symbolic.limits import DEFAULT_LIMITS, Limits

# Function name → (fewest, most) arguments.
FUNCTIONS: Mapping[str, tuple[int, int]] = {
    **{name: (1, 1) for name in (
        "sqrt", "cbrt", "exp", "ln", "abs", "floor", "ceil", "sign",
        "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan",
        "sinh", "cosh", "tanh", "asinh", "acosh", "atanh")},
    "log": (1, 2),
    "atan2": (2, 2),
    "min": (2, 16),
    "max": (2, 16),
}
CONSTANTS: frozenset[str] = frozenset({"pi", "e", "E"})

_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow",
           ast.Mod: "mod", ast.FloorDiv: "floordiv"}
_COMPARE = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt",
            ast.GtE: "ge"}
SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "mod": "%",
           "floordiv": "//", "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">",
           "ge": ">="}
_UNICODE = str.maketrans({"×": "*", "·": "*", "⋅": "*", "÷": "/", "−": "-", "–": "-",
                          "≤": "<=", "≥": ">=", "≠": "!=", "^": "**"})
_KEYWORDS = frozenset({"and", "or", "not", "if", "else", "in", "is", "for", "lambda"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")


class ExpressionError(ValueError):
    """The text is not an expression this parser accepts; the message says why and where."""


@dataclass(frozen=True)
class Node:
    """One node of a parsed expression: ``op`` is ``"number"`` (``value`` holds the exact
    decimal text), ``"name"``, ``"constant"`` (``pi``, ``e``), ``"neg"``, a binary operator
    (``"add" "sub" "mul" "div" "floordiv" "mod" "pow"``), ``"call"`` (``value`` holds the
    function name), a comparison (``"eq" "ne" "lt" "le" "gt" "ge"``), ``"and" "or" "not"``,
    or ``"bool"`` (``value`` is ``"True"``/``"False"``). Plain data: picklable and cheap."""

    op: str
    args: tuple[Node, ...] = ()
    value: str = ""
    digits: int = field(default=1, compare=False, repr=False)
    constant: bool = field(default=True, compare=False, repr=False)

    def names(self) -> set[str]:
        """The variable names the expression uses."""
        return {node.value for node in self.walk() if node.op == "name"}

    def walk(self) -> Iterator[Node]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.args)

    def __str__(self) -> str:
        return to_text(self)


def to_text(node: Node) -> str:
    """The expression written back as text (fully bracketed where it matters).

    >>> to_text(parse_expression("2x^2 + 1"))
    '2*x**2 + 1'
    """
    op, args = node.op, node.args
    if op in ("number", "name", "constant", "bool"):
        return node.value
    if op == "neg":
        return f"-{_wrap(args[0], node)}"
    if op == "not":
        return f"not {_wrap(args[0], node)}"
    if op == "call":
        return f"{node.value}({', '.join(to_text(arg) for arg in args)})"
    if op in ("and", "or"):
        return f" {op} ".join(_wrap(arg, node) for arg in args)
    left, right = (_wrap(arg, node, side) for side, arg in enumerate(args))
    if op in ("mul", "pow"):
        return f"{left}{SYMBOLS[op]}{right}"
    return f"{left} {SYMBOLS[op]} {right}"


_PRECEDENCE = {"or": 1, "and": 2, "not": 3, **dict.fromkeys(_COMPARE.values(), 4), "add": 5,
               "sub": 5, "mul": 6, "div": 6, "floordiv": 6, "mod": 6, "neg": 7, "pow": 8}


def _wrap(child: Node, parent: Node, side: int = 0) -> str:
    text = to_text(child)
    mine, theirs = _PRECEDENCE.get(parent.op, 9), _PRECEDENCE.get(child.op, 9)
    if child.op == "number" and text.startswith("-"):
        theirs = _PRECEDENCE["neg"]
    tight = theirs < mine or (theirs == mine and (side == 1) != (parent.op == "pow")
                              and parent.op not in ("and", "or"))
    return f"({text})" if tight else text


@dataclass(frozen=True)
class Grammar:
    """What :func:`parse_expression` accepts beyond arithmetic: ``functions`` (name →
    (fewest, most) arguments), ``constants``, whether ``comparisons`` and ``logic``
    (``and/or/not``, ``True/False``) are allowed, whether ``implicit_multiplication`` applies,
    and an optional whitelist of variable ``names``."""

    functions: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(FUNCTIONS))
    constants: frozenset[str] = CONSTANTS
    comparisons: bool = False
    logic: bool = False
    implicit_multiplication: bool = True
    names: frozenset[str] | None = None


ARITHMETIC = Grammar()
LOGIC = Grammar(comparisons=True, logic=True)


def normalise(text: str, implicit_multiplication: bool = True) -> str:
    """Rewrite the usual ways of writing maths into Python's operators.

    >>> normalise("3x^2 − 2(x+1)")
    '3*x**2 - 2*(x+1)'
    """
    text = text.translate(_UNICODE)
    if implicit_multiplication:
        text = _insert_products(text)
    return text


def _insert_products(text: str) -> str:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return text  # the parser reports the problem with its position
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    inserts = []
    for before, after in zip(tokens, tokens[1:]):
        if before.end != after.start and before.end[0] != after.start[0]:
            continue
        left = before.type == tokenize.NUMBER or before.string == ")"
        right = (after.type == tokenize.NAME and after.string not in _KEYWORDS) or (
            after.string == "(" or (after.type == tokenize.NUMBER and before.string == ")"))
        numbers = before.type == tokenize.NUMBER and after.type == tokenize.NUMBER
        if left and right and not numbers:
            row, column = before.end
            inserts.append(starts[row - 1] + column)
    for offset in reversed(inserts):
        text = text[:offset] + "*" + text[offset:]
    return text


def parse_expression(text: str, grammar: Grammar = ARITHMETIC,
                     limits: Limits = DEFAULT_LIMITS) -> Node:
    """Parse and validate one expression; raise :class:`ExpressionError` with the reason."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected text, got {type(text).__name__}")
    reason = limits.check_text(text)
    if reason:
        raise ExpressionError(reason)
    source = normalise(text, grammar.implicit_multiplication).strip()
    if not source:
        raise ExpressionError("the expression is empty")
    try:
        with warnings.catch_warnings():  # e.g. "'int' object is not callable" on "1(2)"
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        where = f" (column {error.offset})" if error.offset else ""
        raise ExpressionError(f"not a valid expression: {error.msg}{where}") from None
    except (ValueError, MemoryError, RecursionError) as error:
        raise ExpressionError("the expression is too large or too deep to parse "
                              f"({type(error).__name__})") from None
    reason = limits.check_tree(tree)
    if reason:
        raise ExpressionError(reason)
    return _Converter(source, grammar, limits).convert(tree.body)


def parse_equation(text: str, grammar: Grammar = ARITHMETIC,
                   limits: Limits = DEFAULT_LIMITS) -> list[Node]:
    """Split ``text`` at each top-level ``=`` (or ``==``) and parse the sides: ``a = b = c``
    gives three nodes. A text without ``=`` gives one.

    >>> [str(side) for side in parse_equation("(x+1)^2 = x^2 + 2x + 1")]
    ['(x + 1)**2', 'x**2 + 2*x + 1']
    """
    reason = limits.check_text(text) if isinstance(text, str) else "expected text"
    if reason:
        raise ExpressionError(reason)
    sides = re.split(r"(?<![<>!=])==?(?!=)", text)
    if any(not side.strip() for side in sides):
        raise ExpressionError("an equation needs an expression on each side of '='")
    return [parse_expression(side, grammar, limits) for side in sides]


class _Converter:
    def __init__(self, source: str, grammar: Grammar, limits: Limits):
        self.source, self.grammar, self.limits = source, grammar, limits

    def fail(self, message: str, node: ast.AST) -> ExpressionError:
        column = getattr(node, "col_offset", None)
        where = f" (column {column + 1})" if column is not None else ""
        return ExpressionError(f"{message}{where}")

    def convert(self, node: ast.AST) -> Node:
        method = getattr(self, f"_{type(node).__name__}", None)
        if isinstance(node, ast.Attribute):
            dot = node.end_col_offset - len(node.attr)
            raise ExpressionError(f"attribute access (.{_clip(node.attr)}) is not allowed "
                                  f"(column {dot})")
        if method is None:
            raise self.fail(_describe(node), node)
        result = method(node)
        if result.digits > self.limits.max_digits:
            raise self.fail(f"{_clip(str(result))} is too large (about {result.digits} digits; "
                            f"the limit is {self.limits.max_digits})", node)
        return result

    def _Constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool):
            if not self.grammar.logic:
                raise self.fail("True/False are not allowed here", node)
            return Node("bool", value=str(value))
        if isinstance(value, int):
            bits = abs(value).bit_length()
            digits = len(str(abs(value))) if bits < 10_000 else math.ceil(bits * math.log10(2))
            if digits > self.limits.max_digits:
                raise self.fail(f"a number has about {digits} digits; the limit is "
                                f"{self.limits.max_digits}", node)
            return Node("number", value=str(value), digits=digits)
        if isinstance(value, float):
            text = ast.get_source_segment(self.source, node) or repr(value)
            text = text.replace("_", "")
            if not math.isfinite(value):
                raise self.fail(f"the number {_clip(text)} overflows", node)
            exact = Fraction(text)
            digits = len(str(exact.numerator)) + len(str(exact.denominator)) - 1
            return Node("number", value=text, digits=digits)
        raise self.fail(f"{type(value).__name__} literals are not allowed", node)

    def _Name(self, node: ast.Name) -> Node:
        name = node.id
        if name.startswith("__"):
            raise self.fail(f"the name {name} is not allowed", node)
        if name in self.grammar.constants:
            return Node("constant", value=name)
        if name in ("True", "False") and self.grammar.logic:
            return Node("bool", value=name)
        if name in self.grammar.functions:
            raise self.fail(f"{name} is a function; call it with brackets", node)
        if self.grammar.names is not None and name not in self.grammar.names:
            raise self.fail(f"unknown name {name}", node)
        return Node("name", value=name, constant=False)

    def _UnaryOp(self, node: ast.UnaryOp) -> Node:
        operand = self.convert(node.operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.USub):
            if operand.op == "number" and not operand.value.startswith("-"):
                return Node("number", value="-" + operand.value, digits=operand.digits)
            return Node("neg", (operand,), digits=operand.digits, constant=operand.constant)
        if isinstance(node.op, ast.Not) and self.grammar.logic:
            return Node("not", (operand,))
        raise self.fail(f"the operator {type(node.op).__name__} is not allowed", node)

    def _BinOp(self, node: ast.BinOp) -> Node:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.fail(f"the operator {type(node.op).__name__} is not allowed", node)
        left, right = self.convert(node.left), self.convert(node.right)
        if op in ("add", "sub"):
            digits = max(left.digits, right.digits) + 1
        elif op == "pow":
            digits = self._power_digits(left, right, node)
        elif op == "mod":
            digits = right.digits
        else:
            digits = left.digits + right.digits
        return Node(op, (left, right), digits=digits, constant=left.constant and right.constant)

    def _power_digits(self, base: Node, exponent: Node, node: ast.AST) -> int:
        # An upper bound on the digits of base**exponent: digits(base) * |exponent|, where
        # |exponent| is exact for a literal and 10**digits otherwise. A symbolic exponent
        # cannot be bounded here: its size is left to the solver's time limit.
        if not exponent.constant:
            return base.digits + exponent.digits
        literal = exponent.op == "number" and not any(c in exponent.value for c in ".eE")
        if literal:
            bound = abs(int(exponent.value))
        elif exponent.digits > 6:
            raise self.fail(f"the exponent of {_clip(str(Node('pow', (base, exponent))))} is too "
                            f"large (about {exponent.digits} digits)", node)
        else:
            bound = 10 ** exponent.digits
        if base.op == "number" and base.value.lstrip("-") in ("0", "1"):
            return 1
        return max(1, base.digits * bound)

    def _Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            self.convert(node.func)  # names what is wrong with it (an attribute, say)
            raise self.fail("only named functions may be called", node)
        name = node.func.id
        arity = self.grammar.functions.get(name)
        if arity is None:
            raise self.fail(f"unknown function {name}", node)
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.fail(f"{name} takes plain arguments only", node)
        fewest, most = arity
        if not fewest <= len(node.args) <= most:
            count = f"{fewest}" if fewest == most else f"{fewest} to {most}"
            plural = "" if count == "1" else "s"
            raise self.fail(f"{name} takes {count} argument{plural}, not {len(node.args)}", node)
        args = tuple(self.convert(arg) for arg in node.args)
        return Node("call", args, value=name, digits=max(arg.digits for arg in args) + 1,
                    constant=all(arg.constant for arg in args))

    def _Compare(self, node: ast.Compare) -> Node:
        if not self.grammar.comparisons:
            raise self.fail("comparisons are not allowed here", node)
        terms = [self.convert(node.left)] + [self.convert(term) for term in node.comparators]
        parts = []
        for op, left, right in zip(node.ops, terms, terms[1:]):
            name = _COMPARE.get(type(op))
            if name is None:
                raise self.fail(f"the comparison {type(op).__name__} is not allowed", node)
            parts.append(Node(name, (left, right)))
        return parts[0] if len(parts) == 1 else Node("and", tuple(parts))

    def _BoolOp(self, node: ast.BoolOp) -> Node:
        if not self.grammar.logic:
            raise self.fail("and/or are not allowed here", node)
        op = "and" if isinstance(node.op, ast.And) else "or"
        return Node(op, tuple(self.convert(value) for value in node.values))


def _describe(node: ast.AST) -> str:
    kinds = {"Attribute": "attribute access", "Subscript": "indexing", "Lambda": "a lambda",
             "NamedExpr": "assignment", "Starred": "unpacking", "JoinedStr": "an f-string",
             "IfExp": "a conditional expression", "List": "a list", "Tuple": "a tuple",
             "Dict": "a dict", "Set": "a set", "ListComp": "a comprehension",
             "GeneratorExp": "a comprehension", "Await": "await", "Yield": "yield"}
    kind = type(node).__name__
    return f"{kinds.get(kind, kind)} is not allowed"


def _clip(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


def parse_number(text: str, max_digits: int = 2_000) -> Fraction:
    """An exact number from a decimal literal (``-3``, ``2.5``, ``1e-3``, ``3/4``) of at most
    ``max_digits`` digits (counting the exponent).

    >>> parse_number("-2.50")
    Fraction(-5, 2)
    """
    text = text.strip()
    match = re.fullmatch(r"[-+]?(\d[\d_]*\.?\d*|\.\d+)(?:[eE]([-+]?\d{1,9}))?(/[-+]?\d+)?", text)
    if match is None or len(text) > max_digits:
        raise ExpressionError(f"not a number: {_clip(text)}")
    if match.group(2) and abs(int(match.group(2))) + len(match.group(1)) > max_digits:
        raise ExpressionError(f"the number {_clip(text)} has more than {max_digits} digits")
    try:
        return Fraction(text.replace("_", ""))
    except ZeroDivisionError:
        raise ExpressionError(f"the number {_clip(text)} divides by zero") from None


def is_name(text: str) -> bool:
    return bool(_NAME.match(text))
