"""The layer rule (DESIGN.md section 2): ``diagrammar.symbolic`` imports the standard library,
sympy, z3 and sqlglot, and nothing else of diagrammar; and model text never reaches eval,
exec or sympify in its source."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import diagrammar.symbolic

FOLDER = Path(diagrammar.symbolic.__file__).parent
ALLOWED = {"sympy", "z3", "sqlglot", "diagrammar"}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_symbolic_imports_only_what_its_layer_allows():
    for path in sorted(FOLDER.glob("*.py")):
        for module in _imports(path):
            top = module.split(".")[0]
            assert top in sys.stdlib_module_names or top in ALLOWED, (path.name, module)
            if top == "diagrammar":
                assert module.startswith("diagrammar.symbolic"), (path.name, module)


def test_no_eval_exec_or_sympify_in_the_source():
    for path in sorted(FOLDER.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):  # (z3's model.eval evaluates a solver term)
                builtin = getattr(node.func, "id", "")
                name = builtin or getattr(node.func, "attr", "")
                where = (path.name, node.lineno)
                assert builtin not in {"eval", "exec", "compile", "__import__"}, where
                assert name not in {"sympify", "parse_expr", "S"}, where
