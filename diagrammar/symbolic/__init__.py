"""Symbolic checkers: what a model wrote, checked by sympy, z3, Python's parser and SQLite.

A checker takes one piece of output text at a checkpoint (the end of a line, a statement, an
expression, an SQL query or a JSON value) and returns a :class:`Verdict`: ``pass``, ``fail``
or ``unknown``, with a reason. Model text is never evaluated: it is parsed (``ast``,
``sqlglot``), validated, and only then handed to a solver with a time limit, or to a
read-only SQLite engine. Solver errors and timeouts are ``unknown``, never a crash.

The modules, each one concept:

- ``verdict``: :class:`Verdict`, the :class:`Checker` protocol and :class:`BaseChecker`;
- ``limits``: :class:`Limits` on text size and nesting, :class:`Deadline`, and the
  :class:`Worker` process that bounds calls which cannot be interrupted (sympy);
- ``expression``: the safe parser from arithmetic text to a validated :class:`Node` tree;
- ``arithmetic`` (sympy): :class:`EquationChecker`, :class:`ExpressionChecker`;
- ``constraints`` (z3): :class:`ConstraintChecker` over the values a model produced;
- ``equivalence`` (z3): :class:`Program`, :class:`ISA`, :func:`bounded_equivalence` and
  :class:`EquivalenceChecker` for small straight-line programs over bitvectors;
- ``sketch`` (z3): :class:`Sketch` (a target program with ``?`` holes), :func:`fill` (CEGIS
  for the hole values) and :func:`holes_from_guess`: the Sketch half of Guess & Sketch;
- ``python_code``: :class:`PythonChecker` (parses; names resolve; nothing forbidden);
- ``sql`` (sqlglot, sqlite3): :class:`SQLChecker` (one SELECT, run read-only).

>>> from diagrammar.symbolic import EquationChecker, PythonChecker
>>> EquationChecker().check("3 * 7 = 21").status
'pass'
>>> PythonChecker().check("open('/etc/passwd')").reason
'line 1: open is not allowed'

This layer imports the standard library, sympy, z3 and sqlglot, and nothing else of
diagrammar; the ``Check`` box of a decoding pipeline binds a checker by name.
"""

from diagrammar.symbolic.arithmetic import EquationChecker, ExpressionChecker, to_sympy
from diagrammar.symbolic.constraints import ConstraintChecker, parse_values, to_z3
from diagrammar.symbolic.equivalence import (
    ISA,
    THREE_ADDRESS,
    EquivalenceChecker,
    Program,
    ProgramError,
    bounded_equivalence,
)
from diagrammar.symbolic.expression import (
    ExpressionError,
    Grammar,
    Node,
    parse_equation,
    parse_expression,
)
from diagrammar.symbolic.limits import (
    Deadline,
    Limits,
    TimeLimitExceeded,
    Worker,
    WorkerError,
    shared_worker,
)
from diagrammar.symbolic.python_code import PythonChecker
from diagrammar.symbolic.sketch import FillResult, Sketch, SketchError, fill, holes_from_guess
from diagrammar.symbolic.sql import SQLChecker
from diagrammar.symbolic.verdict import BaseChecker, Checker, Checkpoint, Verdict

__all__ = [
    "BaseChecker", "Checker", "Checkpoint", "ConstraintChecker", "Deadline", "EquationChecker",
    "EquivalenceChecker", "ExpressionChecker", "ExpressionError", "FillResult", "Grammar", "ISA",
    "Limits", "Node", "Program", "ProgramError", "PythonChecker", "SQLChecker", "Sketch",
    "SketchError", "THREE_ADDRESS", "TimeLimitExceeded", "Verdict", "Worker", "WorkerError",
    "bounded_equivalence", "fill", "holes_from_guess", "parse_equation", "parse_expression",
    "parse_values", "shared_worker", "to_sympy", "to_z3",
]
