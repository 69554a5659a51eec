"""Constraints over the values a model produced, checked with z3: :class:`ConstraintChecker`.

The model writes values (a JSON object, or ``name = value`` pairs); the checker reads them
with :func:`parse_values`, binds them to z3 variables and asks z3 whether the constraints
hold. Constraints are either text in the safe expression grammar of
:mod:`~diagrammar.symbolic.expression` (comparisons, ``and/or/not``, ``+ - * / // % **``,
``abs``, ``min``, ``max``) or Python functions of a dict of z3 variables. A violated constraint
is named in the reason (z3's unsat core); a solver timeout is ``unknown``.

>>> checker = ConstraintChecker(["x + y == 10", "x > y", "y >= 0"])
>>> checker.check('{"x": 7, "y": 3}').status
'pass'
>>> checker.check("x = 4, y = 6").reason
'violates x > y'
>>> checker.check('{"x": 10}').reason
'no value for y'

Each check builds its own z3 context, so checkers may run in several threads at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import z3

from diagrammar.symbolic.expression import (
    FUNCTIONS,
    ExpressionError,
    Grammar,
    Node,
    is_name,
    parse_expression,
    parse_number,
    to_text,
)
from diagrammar.symbolic.limits import DEFAULT_LIMITS, Deadline, Limits, watchdog
from diagrammar.symbolic.verdict import BaseChecker, Checkpoint, Verdict

Value = Fraction | bool
Constraint = str | Callable[[Mapping[str, z3.ExprRef]], z3.BoolRef]
SORTS = ("int", "real", "bool")

Z3_GRAMMAR = Grammar(functions={name: FUNCTIONS[name] for name in ("abs", "min", "max")},
                     constants=frozenset(), comparisons=True, logic=True)


def parse_values(text: str, limits: Limits = DEFAULT_LIMITS) -> dict[str, Value]:
    """The values a model wrote: a flat JSON object, or ``name = value`` (or ``name: value``)
    pairs separated by commas, semicolons or new lines. Numbers are read exactly.

    >>> parse_values('{"x": 2.5, "ok": true}')
    {'x': Fraction(5, 2), 'ok': True}
    >>> parse_values("x = -3; y: 1/2")
    {'x': Fraction(-3, 1), 'y': Fraction(1, 2)}
    """
    reason = limits.check_text(text, quotes="\"'")
    if reason:
        raise ExpressionError(reason)
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            raw = json.loads(stripped, parse_float=Fraction, parse_constant=_no_constant)
        except (ValueError, RecursionError) as error:
            raise ExpressionError(f"not a valid JSON object: {_first_line(error)}") from None
        if not isinstance(raw, dict):
            raise ExpressionError("the JSON value is not an object")
        values = {}
        for name, value in raw.items():
            if isinstance(value, bool):
                values[name] = value
            elif isinstance(value, int | Fraction):
                values[name] = Fraction(value)
            else:
                raise ExpressionError(f"the value of {name} is not a number or a boolean")
    else:
        values = {}
        for part in re.split(r"[,;\n]", stripped):
            if not part.strip():
                continue
            match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*[=:]\s*(.*?)\s*", part)
            if match is None:
                raise ExpressionError(f"expected 'name = value', got {part.strip()[:40]!r}")
            name, value = match.groups()
            if value.lower() in ("true", "false"):
                values[name] = value.lower() == "true"
            else:
                values[name] = parse_number(value, limits.max_digits)
    for name, value in values.items():
        if not is_name(name) or name.startswith("__"):
            raise ExpressionError(f"{name[:40]!r} is not a variable name")
        size = max(abs(value.numerator), value.denominator).bit_length() if isinstance(
            value, Fraction) else 0
        if size > 3.33 * limits.max_digits:
            raise ExpressionError(f"the value of {name} has more than {limits.max_digits} digits")
    if not values:
        raise ExpressionError("no values found")
    return values


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:120] if str(error) else type(error).__name__


def to_z3(node: Node, variables: Mapping[str, z3.ExprRef], ctx: z3.Context) -> z3.ExprRef:
    """The z3 term for a parsed :class:`Node` over ``variables`` (in ``ctx``). Division
    ``/`` is exact (real); ``//`` and ``%`` follow Python (floor) on integers.

    >>> from diagrammar.symbolic.expression import LOGIC
    >>> ctx = z3.Context()
    >>> x, y = z3.Int("x", ctx), z3.Real("y", ctx)
    >>> to_z3(parse_expression("2x + 1 > y / 2", LOGIC), {"x": x, "y": y}, ctx)
    ToReal(2*x + 1) > y/ToReal(2)
    """
    op, args = node.op, node.args
    if op == "number":
        value = Fraction(node.value)
        if value.denominator == 1:
            return z3.IntVal(value.numerator, ctx)
        return z3.Q(value.numerator, value.denominator, ctx)
    if op == "bool":
        return z3.BoolVal(node.value == "True", ctx)
    if op == "name":
        return variables[node.value]
    if op in ("constant", "call") and node.value not in ("abs", "min", "max"):
        raise ExpressionError(f"{node.value} is not supported in z3 constraints")
    terms = [to_z3(arg, variables, ctx) for arg in args]
    if op == "neg":
        return -terms[0]
    if op == "not":
        return z3.Not(terms[0], ctx)
    if op == "and":
        return z3.And(*terms)
    if op == "or":
        return z3.Or(*terms)
    if op == "call":
        if node.value == "abs":
            return z3.If(terms[0] >= 0, terms[0], -terms[0])
        best = terms[0]
        for term in terms[1:]:
            best = z3.If(term > best if node.value == "max" else term < best, term, best)
        return best
    left, right = terms
    if op == "add":
        return left + right
    if op == "sub":
        return left - right
    if op == "mul":
        return left * right
    if op == "div":
        return _real(left) / _real(right)
    if op in ("floordiv", "mod"):
        if z3.is_int(left) and z3.is_int(right):
            quotient = z3.If(right > 0, left / right, (-left) / (-right))
        else:
            quotient = z3.ToReal(z3.ToInt(_real(left) / _real(right)))
        return quotient if op == "floordiv" else left - right * quotient
    if op == "pow":
        exponent = args[1]
        if exponent.op == "number" and exponent.value.isdigit() and int(exponent.value) <= 64:
            result = z3.IntVal(1, ctx) if z3.is_int(left) else z3.RealVal(1, ctx)
            for _ in range(int(exponent.value)):
                result = result * left
            return result
        return left**right
    comparisons = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
                   "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
                   "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}
    return comparisons[op](left, right)


def _real(term: z3.ExprRef) -> z3.ExprRef:
    return z3.ToReal(term) if z3.is_int(term) else term


class ConstraintChecker(BaseChecker):
    """Checks that the values a model wrote satisfy ``constraints``.

    ``variables`` maps names to sorts (``"int"``, ``"real"``, ``"bool"``); a name not listed
    takes ``bool`` for a boolean value, ``real`` for a fractional one and ``int`` otherwise.
    With ``require_all`` (the default) every variable of the constraints needs a value;
    without it, missing ones are solved for (``pass`` means some completion satisfies all
    constraints). ``timeout`` bounds the solver in seconds."""

    name = "constraints"

    def __init__(self, constraints: Sequence[Constraint],
                 variables: Mapping[str, str] | None = None, *, require_all: bool = True,
                 timeout: float = 1.0, limits: Limits = DEFAULT_LIMITS,
                 checkpoint: Checkpoint = "json"):
        self.variables = dict(variables or {})
        for name, sort in self.variables.items():
            if sort not in SORTS:
                raise ValueError(f"the sort of {name} is one of {SORTS}, not {sort!r}")
        self.constraints: list[Node | Callable] = []
        self.labels: list[str] = []
        for index, constraint in enumerate(constraints):
            if isinstance(constraint, str):
                node = parse_expression(constraint, Z3_GRAMMAR, limits)
                self.constraints.append(node)
                self.labels.append(to_text(node))
            elif callable(constraint):
                self.constraints.append(constraint)
                self.labels.append(getattr(constraint, "__name__", f"constraint {index}"))
            else:
                kind = type(constraint).__name__
                raise TypeError(f"a constraint is text or a function, not {kind}")
        self.names = sorted(set().union(*(node.names() for node in self.constraints
                                          if isinstance(node, Node))) | set(self.variables))
        self.require_all, self.timeout, self.limits = require_all, timeout, limits
        self.checkpoint = checkpoint

    def _check(self, text: str) -> Verdict:
        try:
            values = parse_values(text, self.limits)
        except ExpressionError as error:
            return Verdict("fail", str(error))
        shown = {name: _show(value) for name, value in values.items()}
        if self.require_all:
            missing = [name for name in self.names if name not in values]
            if missing:
                return Verdict("fail", f"no value for {', '.join(missing)}",
                               detail={"values": shown})
        ctx = z3.Context()
        variables: dict[str, z3.ExprRef] = {}
        for name in sorted(set(self.names) | set(values)):
            sort = self.variables.get(name) or _sort_of(values.get(name))
            value = values.get(name)
            if value is not None and not _fits(value, sort):
                return Verdict("fail", f"{name} should be {'an' if sort == 'int' else 'a'} "
                               f"{_SORT_WORDS[sort]}, not {_show(value)}", detail={"values": shown})
            variables[name] = {"int": z3.Int, "real": z3.Real, "bool": z3.Bool}[sort](name, ctx)
        deadline = Deadline(self.timeout)
        solver = self._solver(ctx, deadline)
        bindings = [variables[name] == _literal(value, ctx) for name, value in values.items()]
        solver.add(*bindings)
        try:
            terms = [to_z3(constraint, variables, ctx) if isinstance(constraint, Node)
                     else constraint(variables) for constraint in self.constraints]
        except (z3.Z3Exception, ExpressionError, KeyError, TypeError) as error:
            return Verdict("unknown", f"could not build the constraints: {error}",
                           detail={"values": shown})
        for index, term in enumerate(terms):
            solver.assert_and_track(term, z3.Bool(f"constraint {index}", ctx))
        with watchdog(self.timeout, ctx.interrupt):
            answer = solver.check()
        if answer == z3.sat:
            count = len(self.constraints)
            reason = "the constraint holds" if count == 1 else f"all {count} constraints hold"
            return Verdict("pass", reason,
                           detail={"values": shown})
        if answer == z3.unsat:
            # Name every constraint that fails on its own (the unsat core names only enough
            # of them to contradict), falling back on the core for joint contradictions.
            violated = []
            for index, term in enumerate(terms):
                alone = self._solver(ctx, deadline)
                alone.add(*bindings, term)
                with watchdog(deadline.remaining(), ctx.interrupt):
                    alone_answer = alone.check()
                if alone_answer == z3.unsat:
                    violated.append(self.labels[index])
            if not violated:
                core = sorted(int(str(label).split()[-1]) for label in solver.unsat_core())
                violated = [self.labels[index] for index in core]
            return Verdict("fail", f"violates {'; '.join(violated) or 'the constraints'}",
                           detail={"values": shown, "violated": violated})
        reason = solver.reason_unknown()
        if reason in ("timeout", "canceled", "interrupted"):
            reason = f"z3 ran past the {self.timeout:g} s limit"
        return Verdict("unknown", f"z3 could not decide: {reason}", detail={"values": shown})


    def _solver(self, ctx: z3.Context, deadline: Deadline) -> z3.Solver:
        solver = z3.Solver(ctx=ctx)
        solver.set("timeout", max(1, int(deadline.remaining() * 1000)))
        return solver


_SORT_WORDS = {"int": "integer", "real": "number", "bool": "boolean"}


def _sort_of(value: Value | None) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Fraction) and value.denominator != 1:
        return "real"
    return "int"


def _fits(value: Value, sort: str) -> bool:
    if sort == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return sort == "real" or value.denominator == 1


def _literal(value: Value, ctx: z3.Context) -> z3.ExprRef:
    if isinstance(value, bool):
        return z3.BoolVal(value, ctx)
    if value.denominator == 1:
        return z3.IntVal(value.numerator, ctx)
    return z3.Q(value.numerator, value.denominator, ctx)


def _show(value: Value) -> str | bool:
    return value if isinstance(value, bool) else str(value)
