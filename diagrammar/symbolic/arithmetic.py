"""Arithmetic checked with sympy: :class:`EquationChecker` (an equation the model wrote holds)
and :class:`ExpressionChecker` (the model's expression equals a reference).

The text is parsed by :mod:`~diagrammar.symbolic.expression` (never ``sympify``), the sympy
objects are built from the validated tree, and all sympy work runs in a
:class:`~diagrammar.symbolic.limits.Worker` process with a time limit, because simplification
can run for ever. Deciding an equation ``a = b``:

1. evaluate ``a - b`` at a few seeded sample points (or exactly, when it has no variables): a
   clear difference is a ``fail`` with the counterexample;
2. otherwise ask sympy to prove ``a - b == 0`` (``simplify``, then ``equals``): ``pass``;
3. otherwise ``unknown`` (equal at the samples, not proven); timeouts are ``unknown`` too.

>>> EquationChecker().check("(x+1)^2 = x^2 + 2x + 1").reason
'holds identically'
>>> EquationChecker().check("(x+1)^2 = x^2 + 1").reason
'does not hold at x = 7/5: (x + 1)**2 = 5.76 but x**2 + 1 = 2.96'
>>> EquationChecker().check("2 + 2 = 5").reason
'does not hold: 2 + 2 = 4 but 5'
>>> EquationChecker(values={"x": 3}).check("x^2 - 1 = 8").status
'pass'
>>> ExpressionChecker("sqrt(8)").check("2 sqrt(2)").status
'pass'
>>> ExpressionChecker("1/3", tolerance=1e-3).check("0.3333").status
'pass'
>>> EquationChecker().check("9**9**9**9 = 1").reason
'the exponent of 9**9**9 is too large (about 9 digits) (column 4)'
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Literal

import sympy

from diagrammar.symbolic.expression import (
    ARITHMETIC,
    ExpressionError,
    Grammar,
    Node,
    parse_equation,
    parse_expression,
    to_text,
)
from diagrammar.symbolic.limits import (
    DEFAULT_LIMITS,
    Limits,
    TimeLimitExceeded,
    Worker,
    WorkerError,
    shared_worker,
)
from diagrammar.symbolic.verdict import BaseChecker, Checkpoint, Verdict

Domain = Literal["complex", "real", "positive"]

_FUNCTIONS = {
    "sqrt": sympy.sqrt, "cbrt": sympy.cbrt, "exp": sympy.exp, "ln": sympy.log,
    "log": sympy.log, "abs": sympy.Abs, "floor": sympy.floor, "ceil": sympy.ceiling,
    "sign": sympy.sign, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
    "cot": sympy.cot, "sec": sympy.sec, "csc": sympy.csc, "asin": sympy.asin,
    "acos": sympy.acos, "atan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh,
    "tanh": sympy.tanh, "asinh": sympy.asinh, "acosh": sympy.acosh, "atanh": sympy.atanh,
    "atan2": sympy.atan2, "min": sympy.Min, "max": sympy.Max,
}
_SAMPLES = (Fraction(7, 5), Fraction(3, 7), Fraction(-13, 11), Fraction(5, 3), Fraction(-2, 9),
            Fraction(17, 8), Fraction(11, 13), Fraction(-9, 4), Fraction(23, 10), Fraction(1, 6))
_NOISE = sympy.Float("1e-20", 30)


def to_sympy(node: Node, symbols: dict[str, sympy.Symbol] | None = None,
             domain: Domain = "complex") -> sympy.Expr:
    """The sympy expression for a parsed :class:`Node` (``symbols`` caches the variables).

    >>> to_sympy(parse_expression("2x^2 + 1/2"))
    2*x**2 + 1/2
    """
    symbols = {} if symbols is None else symbols
    op, args = node.op, node.args
    if op == "number":
        value = Fraction(node.value)
        return sympy.Rational(value.numerator, value.denominator)
    if op == "name":
        if node.value not in symbols:
            assumptions = {"real": {"real": True}, "positive": {"positive": True}}.get(domain, {})
            symbols[node.value] = sympy.Symbol(node.value, **assumptions)
        return symbols[node.value]
    if op == "constant":
        return sympy.pi if node.value == "pi" else sympy.E
    children = [to_sympy(arg, symbols, domain) for arg in args]
    if op == "neg":
        return -children[0]
    if op == "call":
        return _FUNCTIONS[node.value](*children)
    left, right = children
    if op == "add":
        return left + right
    if op == "sub":
        return left - right
    if op == "mul":
        return left * right
    if op == "div":
        return left / right
    if op == "pow":
        return left**right
    if op == "mod":
        return sympy.Mod(left, right)
    if op == "floordiv":
        return sympy.floor(left / right)
    raise ExpressionError(f"{op} has no arithmetic meaning")


def judge(sides: list[Node], values: Mapping[str, Node], domain: Domain = "complex",
          tolerance: float = 0.0, samples: int = 6, seed: int = 0) -> tuple[str, str, dict]:
    """Decide whether all ``sides`` are equal (after substituting ``values``); returns
    (status, reason, detail). Runs sympy without a time limit: call it in a worker."""
    symbols: dict[str, sympy.Symbol] = {}
    exprs = [to_sympy(side, symbols, domain) for side in sides]
    given = {symbols[name]: to_sympy(value) for name, value in values.items() if name in symbols}
    if given:
        exprs = [expr.subs(given) for expr in exprs]
    texts = [to_text(side) for side in sides]
    detail = {"sides": texts}
    if values:
        detail["values"] = {name: to_text(value) for name, value in values.items()}
    statuses = []
    for index in range(len(exprs) - 1):
        status, reason = _equal(exprs[index], exprs[index + 1], texts[index], texts[index + 1],
                                domain, tolerance, samples, seed + index)
        if status == "fail":
            return status, reason, detail
        statuses.append((status, reason))
    unknown = [reason for status, reason in statuses if status == "unknown"]
    if unknown:
        return "unknown", unknown[0], detail
    return "pass", statuses[0][1], detail


def _equal(a: sympy.Expr, b: sympy.Expr, a_text: str, b_text: str, domain: Domain,
           tolerance: float, samples: int, seed: int) -> tuple[str, str]:
    difference = a - b
    free = sorted(a.free_symbols | b.free_symbols, key=lambda symbol: symbol.name)
    holds = "holds identically" if free else "holds"
    if difference == 0:
        return "pass", holds
    if not free and difference.is_Rational and not tolerance:
        return "fail", _differ("", a_text, a, b_text, b)
    tried = 0
    for index in range(samples if free else 1):
        point = {symbol: _sample(seed + index + 3 * order, domain)
                 for order, symbol in enumerate(free)}
        try:
            value_a, value_b = (sympy.N(side.subs(point), 30) for side in (a, b))
            gap = abs(sympy.N(difference.subs(point), 30))
        except (ArithmeticError, ValueError, TypeError):
            continue
        if not all(_finite(value) for value in (value_a, value_b, gap)):
            continue
        tried += 1
        scale = max(1, abs(value_a), abs(value_b))
        if not free and tolerance and gap <= tolerance * scale:
            return "pass", f"holds within a relative tolerance of {tolerance:g}"
        if gap > max(_NOISE, sympy.Float(tolerance, 30)) * scale:
            where = ", ".join(f"{symbol} = {point[symbol]}" for symbol in free)
            return "fail", _differ(where, a_text, value_a, b_text, value_b)
    if sympy.simplify(difference) == 0:
        return "pass", holds
    decided = difference.equals(0)
    if decided is True:
        return "pass", holds
    if decided is False and not free:
        return "fail", _differ("", a_text, a, b_text, b)
    if tried:
        return "unknown", f"equal at {tried} sample points but not proven"
    return "unknown", "could not be evaluated or proven"


def _sample(index: int, domain: Domain) -> sympy.Rational:
    value = _SAMPLES[index % len(_SAMPLES)]
    if domain == "positive":
        value = abs(value)
    return sympy.Rational(value.numerator, value.denominator)


def _finite(value: sympy.Expr) -> bool:
    return bool(value.is_number) and value.is_finite is not False and not value.has(
        sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)


def _differ(where: str, a_text: str, a: sympy.Expr, b_text: str, b: sympy.Expr) -> str:
    """'does not hold at x = 1: x + 1 = 2 but 3' (values shown to as many digits as it takes
    to tell them apart, up to 20)."""
    for digits in (6, 10, 15, 20):
        a_value, b_value = _show(a, digits), _show(b, digits)
        if a_value != b_value:
            break
    at = f" at {where}" if where else ""
    left = a_text if a_value == a_text else f"{a_text} = {a_value}"
    right = b_text if b_value == b_text else f"{b_text} = {b_value}"
    return f"does not hold{at}: {left} but {right}"


def _show(value: sympy.Expr, digits: int = 6) -> str:
    if value.is_Integer or (value.is_Rational and len(str(value)) <= 20):
        text = str(value)
    else:
        try:
            text = str(sympy.N(value, digits))
        except (ArithmeticError, ValueError, TypeError):
            text = str(value)
        if "." in text and "e" not in text.lower() and "I" not in text:
            text = text.rstrip("0").rstrip(".")
    return text if len(text) <= 60 else text[:57] + "..."


class _SympyChecker(BaseChecker):
    checkpoint: Checkpoint = "line"

    def __init__(self, values: Mapping[str, int | float | str] | None, domain: Domain,
                 tolerance: float, timeout: float, limits: Limits, grammar: Grammar,
                 worker: Worker | None, samples: int, seed: int):
        if domain not in ("complex", "real", "positive"):
            raise ValueError(f"domain is 'complex', 'real' or 'positive', not {domain!r}")
        self.values = {name: parse_expression(str(value), grammar, limits)
                       for name, value in (values or {}).items()}
        self.domain, self.tolerance, self.timeout = domain, float(tolerance), timeout
        self.limits, self.grammar, self.samples, self.seed = limits, grammar, samples, seed
        self._worker = worker

    @property
    def worker(self) -> Worker:
        return self._worker or shared_worker(("sympy", "diagrammar.symbolic.arithmetic"))

    def _judge(self, sides: list[Node]) -> Verdict:
        try:
            status, reason, detail = self.worker.call(
                judge, sides, self.values, self.domain, self.tolerance, self.samples, self.seed,
                timeout=self.timeout)
        except TimeLimitExceeded:
            return Verdict("unknown", f"sympy ran past the {self.timeout:g} s limit",
                           detail={"sides": [to_text(side) for side in sides]})
        except WorkerError as error:
            return Verdict("unknown", f"sympy failed: {error}")
        return Verdict(status, reason, detail=detail)


class EquationChecker(_SympyChecker):
    """Checks that an equation the model wrote holds: ``lhs = rhs`` (or a chain ``a = b = c``)
    holds identically, or, with ``values``, for those values of its variables.

    ``domain`` gives the variables' assumptions (``"complex"``, ``"real"`` or ``"positive"``),
    ``tolerance`` a relative tolerance for equations without variables (0: exact; decimals
    are read as exact fractions), ``timeout`` the seconds sympy may take."""

    name = "equation"

    def __init__(self, values: Mapping[str, int | float | str] | None = None, *,
                 domain: Domain = "complex", tolerance: float = 0.0, timeout: float = 1.0,
                 limits: Limits = DEFAULT_LIMITS, grammar: Grammar = ARITHMETIC,
                 worker: Worker | None = None, samples: int = 6, seed: int = 0):
        super().__init__(values, domain, tolerance, timeout, limits, grammar, worker, samples,
                         seed)

    def _check(self, text: str) -> Verdict:
        try:
            sides = parse_equation(text, self.grammar, self.limits)
        except ExpressionError as error:
            return Verdict("fail", str(error))
        if len(sides) < 2:
            return Verdict("fail", "not an equation: no '='")
        return self._judge(sides)


class ExpressionChecker(_SympyChecker):
    """Checks that the model's expression equals a ``reference`` expression (identically, or
    for the given ``values``). A text such as ``"= 42"`` or ``"x = 2 + 40"`` is read as its
    last side. The options are :class:`EquationChecker`'s."""

    name = "expression"
    checkpoint: Checkpoint = "expression"

    def __init__(self, reference: str, values: Mapping[str, int | float | str] | None = None, *,
                 domain: Domain = "complex", tolerance: float = 0.0, timeout: float = 1.0,
                 limits: Limits = DEFAULT_LIMITS, grammar: Grammar = ARITHMETIC,
                 worker: Worker | None = None, samples: int = 6, seed: int = 0):
        super().__init__(values, domain, tolerance, timeout, limits, grammar, worker, samples,
                         seed)
        self.reference = parse_expression(reference, grammar, limits)

    def _check(self, text: str) -> Verdict:
        try:
            last = text.rsplit("=", 1)[-1] if _has_equals(text) else text
            expression = parse_expression(last, self.grammar, self.limits)
        except ExpressionError as error:
            return Verdict("fail", str(error))
        return self._judge([expression, self.reference])


def _has_equals(text: str) -> bool:
    stripped = text.replace("==", "").replace("<=", "").replace(">=", "").replace("!=", "")
    return "=" in stripped
