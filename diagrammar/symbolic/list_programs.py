"""A small list language for the meaning of a symbol, and program induction over it.

NSR ("Neural-Symbolic Recursive Machine for Systematic Generalization") gives every symbol a
program: a function of its children's values. For SCAN the values are action sequences
(tuples of strings) and the language here has five constructs:

- ``x``, ``y``: the values of the first and second child (in sentence order);
- ``[]`` and ``[A]``: the empty sequence and a one-action sequence;
- ``a + b``: concatenation;
- ``first(a)``: the sequence holding ``a``'s first action (empty if ``a`` is).

:func:`induce` finds, by bottom-up enumeration with observational equivalence (programs
that read the same variables and agree on every example input are kept once), the smallest
program of a given arity that explains the most *groups* of examples. A group is one abduced
training sentence's alternative readings of a symbol; it is explained if any alternative is.
The paper induces programs with DreamCoder (enumeration guided by a learned recognition
model and a growing library); here the enumeration is exhaustive up to a size bound, without
the library (scaled down; SCAN's meanings are at most 7 constructs in this language).

>>> twice = induce([(((("WALK",),), ("WALK", "WALK")),), (((("RUN", "LTURN"),),
...                 ("RUN", "LTURN", "RUN", "LTURN")),)], arity=1)
>>> str(twice.program), twice.explained, twice.groups
('x + x', 2, 2)
>>> twice.program((("JUMP",),))
('JUMP', 'JUMP')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Value = tuple[str, ...]
#: A program as a nested tuple: ("var", i) | ("const", value) | ("concat", a, b) | ("first", a).
Expr = tuple
#: One example: the children's values and the node's value.
Example = tuple[tuple[Value, ...], Value]
#: A group: the alternative examples one sentence gives a symbol; any one explained counts.
Group = Sequence[Example]

VARIABLES = ("x", "y")


class ProgramError(ValueError):
    """A malformed program or an argument count that does not match its arity."""


def evaluate(expr: Expr, args: Sequence[Value]) -> Value:
    """The value of ``expr`` with its variables bound to ``args``."""
    kind = expr[0]
    if kind == "var":
        return args[expr[1]]
    if kind == "const":
        return expr[1]
    if kind == "concat":
        return evaluate(expr[1], args) + evaluate(expr[2], args)
    if kind == "first":
        return evaluate(expr[1], args)[:1]
    raise ProgramError(f"unknown construct {kind!r}")


def show(expr: Expr) -> str:
    """The program's text: ``x + [LTURN]``, ``first(x) + x``..."""
    kind = expr[0]
    if kind == "var":
        return VARIABLES[expr[1]]
    if kind == "const":
        return "[" + ", ".join(expr[1]) + "]"
    if kind == "concat":
        return f"{show(expr[1])} + {show(expr[2])}"
    if kind == "first":
        return f"first({show(expr[1])})"
    raise ProgramError(f"unknown construct {kind!r}")


def _size(expr: Expr) -> int:
    if expr[0] in ("var", "const"):
        return 1
    return 1 + sum(_size(part) for part in expr[1:])


def _variables(expr: Expr) -> frozenset[int]:
    if expr[0] == "var":
        return frozenset({expr[1]})
    if expr[0] == "const":
        return frozenset()
    return frozenset().union(*(_variables(part) for part in expr[1:]))


@dataclass(frozen=True)
class ListProgram:
    """A symbol's meaning: an expression of the list language over ``arity`` arguments.

    >>> left = ListProgram(("concat", ("const", ("LTURN",)), ("var", 0)), arity=1)
    >>> str(left), left((("WALK",),))
    ('[LTURN] + x', ('LTURN', 'WALK'))
    """

    expr: Expr
    arity: int

    def __call__(self, args: Sequence[Value]) -> Value:
        if len(args) != self.arity:
            raise ProgramError(f"{self} takes {self.arity} arguments, got {len(args)}")
        return evaluate(self.expr, args)

    def __str__(self) -> str:
        return show(self.expr)

    @property
    def size(self) -> int:
        """The number of constructs in the expression."""
        return _size(self.expr)


@dataclass(frozen=True)
class Induction:
    """The best program found, how many groups it explains, out of how many."""

    program: ListProgram | None
    explained: int
    groups: int

    @property
    def fraction(self) -> float:
        """The share of groups explained (0 with no groups)."""
        return self.explained / self.groups if self.groups else 0.0


def induce(groups: Sequence[Group], arity: int, *, max_size: int = 7,
           constants: Iterable[str] | None = None, max_length: int | None = None
           ) -> Induction:
    """The smallest program of ``arity`` arguments (using each of them) that explains the
    most groups, by exhaustive bottom-up enumeration up to ``max_size`` constructs.

    ``constants`` are the actions a ``[A]`` may hold (default: those in the examples'
    values). Candidate values longer than ``max_length`` (default: twice the longest
    example value) are pruned. Stops early when a program explains every group.
    """
    if arity not in (0, 1, 2):
        raise ProgramError(f"arity must be 0, 1 or 2, not {arity}")
    examples: list[Example] = []
    owners: list[int] = []
    for index, group in enumerate(groups):
        for args, value in group:
            if len(args) == arity:
                examples.append((tuple(args), tuple(value)))
                owners.append(index)
    if not examples:
        return Induction(None, 0, len(groups))
    if constants is None:
        constants = sorted({action for _, value in examples for action in value})
    limit = max_length if max_length is not None else 2 * max(
        max(len(value) for _, value in examples), 1)
    targets = [value for _, value in examples]
    best: tuple[int, int, Expr] | None = None  # (explained, -size, expr)

    def consider(expr: Expr, outputs: tuple[Value, ...], size: int) -> bool:
        nonlocal best
        if len(_variables(expr)) != arity:
            return False
        explained = len({owners[i] for i, out in enumerate(outputs) if out == targets[i]})
        if best is None or (explained, -size) > best[:2]:
            best = (explained, -size, expr)
        return explained == len(groups)

    levels: list[list[tuple[Expr, tuple[Value, ...]]]] = [[]]
    # observational equivalence: one program per output vector and set of variables read
    seen: set[tuple[tuple[Value, ...], frozenset[int]]] = set()
    leaves: list[Expr] = [("var", i) for i in range(arity)]
    leaves += [("const", ())] + [("const", (action,)) for action in constants]
    level = []
    for expr in leaves:
        outputs = tuple(evaluate(expr, args) for args, _ in examples)
        key = (outputs, _variables(expr))
        if key in seen:
            continue
        seen.add(key)
        level.append((expr, outputs))
        if consider(expr, outputs, 1):
            return _result(best, arity, len(groups))
    levels.append(level)
    for size in range(2, max_size + 1):
        level = []
        candidates: list[tuple[Expr, tuple[Value, ...]]] = []
        for expr, outputs in levels[size - 1]:
            candidates.append((("first", expr), tuple(out[:1] for out in outputs)))
        for left_size in range(1, size - 1):
            right_size = size - 1 - left_size
            for left, left_out in levels[left_size]:
                for right, right_out in levels[right_size]:
                    outputs = tuple(a + b for a, b in zip(left_out, right_out))
                    candidates.append((("concat", left, right), outputs))
        for expr, outputs in candidates:
            key = (outputs, _variables(expr))
            if key in seen or any(len(out) > limit for out in outputs):
                continue
            seen.add(key)
            level.append((expr, outputs))
            if consider(expr, outputs, size):
                return _result(best, arity, len(groups))
        levels.append(level)
    return _result(best, arity, len(groups))


def _result(best: tuple[int, int, Expr] | None, arity: int, groups: int) -> Induction:
    if best is None:
        return Induction(None, 0, groups)
    return Induction(ListProgram(best[2], arity), best[0], groups)

