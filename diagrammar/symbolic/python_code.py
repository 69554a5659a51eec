"""Python code a model wrote, checked without running it: :class:`PythonChecker`.

The code is parsed with :mod:`ast` and its scopes are read with :mod:`symtable` (both only
read the text; nothing is compiled to bytecode or executed). The checker fails it, naming the
line, when it

- does not parse (or is too long or too deeply nested to parse safely);
- imports a module outside ``allowed_modules`` (or uses a relative or ``*`` import);
- reads a dunder attribute such as ``__class__`` or ``__globals__``, a frame or code
  attribute (``f_globals``, ``gi_frame``...), a private attribute of an imported module, or
  writes such a name in a string (``getattr(x, "__class__")``, ``"{0.__class__}"``);
- uses ``eval``, ``exec``, ``compile``, ``open``, ``__import__`` and the like;
- uses a name that does not resolve: not a builtin, not defined in the text, not in
  ``context``.

These are static checks: they make a sandbox's refusal predictable and catch hallucinated
names early; they are not themselves a sandbox.

>>> checker = PythonChecker()
>>> checker.check("import math\\nprint(math.sqrt(2))").status
'pass'
>>> checker.check("import os\\nos.system('ls')").reason
'line 1: import of os is not allowed'
>>> print(*checker.check("().__class__.__bases__[0].__subclasses__()").reason.split("; "),
...       sep="\\n")
line 1: access to __subclasses__ is not allowed
line 1: access to __bases__ is not allowed
line 1: access to __class__ is not allowed
>>> checker.check("y = undefined_helper(3)").reason
'line 1: undefined_helper is not defined'
>>> PythonChecker(context={"undefined_helper"}).check("y = undefined_helper(3)").status
'pass'
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
import warnings
from collections.abc import Iterable
from typing import Literal

from diagrammar.symbolic.limits import Limits
from diagrammar.symbolic.verdict import BaseChecker, Checkpoint, Verdict

SAFE_MODULES: frozenset[str] = frozenset({
    "math", "cmath", "itertools", "functools", "collections", "heapq", "bisect", "re",
    "string", "fractions", "decimal", "statistics", "operator", "typing", "dataclasses",
    "enum", "random", "datetime", "json", "copy", "numbers", "abc", "array", "textwrap",
    "unicodedata", "difflib", "calendar", "__future__",
})
"""Modules of pure computation that model code may import by default."""

FORBIDDEN_NAMES: frozenset[str] = frozenset({
    "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars",
    "breakpoint", "input", "exit", "quit", "help", "memoryview", "__builtins__", "__loader__",
    "__spec__",
})
"""Builtins that reach the interpreter, the file system or the user; never allowed."""

FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset({
    "__class__", "__bases__", "__base__", "__mro__", "__subclasses__", "__globals__",
    "__builtins__", "__code__", "__dict__", "__getattribute__", "__getattr__", "__setattr__",
    "__delattr__", "__import__", "__loader__", "__spec__", "__reduce__", "__reduce_ex__",
    "__func__", "__self__", "__closure__", "__traceback__", "__module__", "__qualname__",
    "__defaults__", "__kwdefaults__", "__objclass__", "__wrapped__", "__call__", "__new__",
    "__del__", "__getstate__", "__setstate__",
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "gi_frame", "gi_code",
    "cr_frame", "cr_code", "ag_frame", "ag_code", "tb_frame", "tb_next", "co_code", "mro",
})
"""Attributes that lead from an object to the interpreter's internals (the usual sandbox
escapes); any other dunder attribute is refused too unless listed in ``allowed_dunders``."""

PYTHON_LIMITS = Limits(max_chars=100_000, max_depth=100, max_nodes=200_000)
"""Default limits on code: longer than expressions, the same nesting."""

ALLOWED_DUNDERS: frozenset[str] = frozenset({"__init__", "__name__", "__doc__", "__main__"})
_DANGEROUS_WORDS = "|".join(sorted(FORBIDDEN_ATTRIBUTES | {"__import__", "__builtins__"},
                                   key=len, reverse=True))
_DANGEROUS_TEXT = re.compile(rf"(?<![A-Za-z0-9_])({_DANGEROUS_WORDS})(?![A-Za-z0-9_])")
_ATTRIBUTE_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
_MAX_PROBLEMS = 5


class PythonChecker(BaseChecker):
    """Checks Python code statically (``mode="exec"`` for statements, ``"eval"`` for one
    expression). ``allowed_modules`` are importable (top-level names: allowing ``os`` allows
    ``os.path``); ``context`` adds known names (an API the code may call);
    ``allowed_dunders`` are dunder attributes that may be read."""

    name = "python"

    def __init__(self, *, allowed_modules: Iterable[str] = SAFE_MODULES,
                 context: Iterable[str] = (), allowed_dunders: Iterable[str] = ALLOWED_DUNDERS,
                 mode: Literal["exec", "eval"] = "exec",
                 limits: Limits = PYTHON_LIMITS,
                 checkpoint: Checkpoint | None = None):
        if mode not in ("exec", "eval"):
            raise ValueError(f"mode is 'exec' or 'eval', not {mode!r}")
        self.allowed_modules = frozenset(allowed_modules)
        self.context = frozenset(context)
        self.allowed_dunders = frozenset(allowed_dunders) - FORBIDDEN_ATTRIBUTES
        self.mode, self.limits = mode, limits
        self.checkpoint = checkpoint or ("statement" if mode == "exec" else "expression")
        self.known = ((frozenset(dir(builtins)) - FORBIDDEN_NAMES) | {"__name__", "__doc__"}
                      | self.context)

    def _check(self, text: str) -> Verdict:
        reason = self.limits.check_text(text, quotes="\"'")
        if reason:
            return Verdict("fail", reason)
        try:
            with warnings.catch_warnings():  # SyntaxWarnings about the model's code
                warnings.simplefilter("ignore")
                tree = ast.parse(text, "<model>", self.mode)
        except SyntaxError as error:
            where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
            return Verdict("fail", f"syntax error at {where}: {error.msg}",
                           detail={"line": error.lineno, "column": error.offset})
        except (ValueError, MemoryError, RecursionError) as error:
            return Verdict("fail", "the code is too large or too deep to parse "
                           f"({type(error).__name__})")
        reason = self.limits.check_tree(tree)
        if reason:
            return Verdict("fail", reason.replace("expression", "code"))
        problems: list[tuple[int, str]] = []
        modules = self._structure(tree, problems)
        if not problems:
            try:
                problems.extend(self._unresolved(text, tree))
            except SyntaxError as error:
                problems.append((error.lineno or 0, error.msg))
            except (RecursionError, MemoryError):
                return Verdict("fail", "the code is too deep to analyse")
        if problems:
            problems.sort(key=lambda problem: problem[0])
            shown = [f"line {line}: {message}" for line, message in problems[:_MAX_PROBLEMS]]
            more = len(problems) - _MAX_PROBLEMS
            reason = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
            return Verdict("fail", reason,
                           detail={"problems": shown + [f"{more} more"] * (more > 0)})
        return Verdict("pass", "parses; names resolve; nothing forbidden",
                       detail={"imports": sorted(modules)})

    def _structure(self, tree: ast.AST, problems: list[tuple[int, str]]) -> set[str]:
        """Imports, forbidden names and attributes, dangerous strings; the modules imported."""
        modules: set[str] = set()
        module_aliases: set[str] = set()
        reported: set[int] = set()  # string constants already reported as attribute names
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    if top not in self.allowed_modules:
                        problems.append((line, f"import of {alias.name} is not allowed"))
                    modules.add(top)
                    module_aliases.add(alias.asname or top)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    problems.append((line, "relative imports are not allowed"))
                    continue
                top = (node.module or "").split(".")[0]
                if top not in self.allowed_modules:
                    problems.append((line, f"import from {node.module} is not allowed"))
                if any(alias.name == "*" for alias in node.names):
                    problems.append((line, f"'from {node.module} import *' hides which names "
                                           "exist"))
                modules.add(top)
            elif isinstance(node, ast.Attribute):
                if self._forbidden_attribute(node.attr):
                    problems.append((line, f"access to {node.attr} is not allowed"))
                elif (node.attr.startswith("_") and isinstance(node.value, ast.Name)
                      and node.value.id in module_aliases):
                    problems.append((line, f"{node.value.id}.{node.attr} is private to the module"))
            elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
                problems.append((line, f"{node.id} is not allowed"))
            elif (isinstance(node, ast.Name) and node.id.startswith("__")
                  and node.id not in self.known):
                problems.append((line, f"the name {node.id} is not allowed"))
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in reported):
                found = _DANGEROUS_TEXT.search(node.value)
                if found:
                    problems.append((line, f"a string names {found.group(1)}"))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in _ATTRIBUTE_CALLS and len(node.args) >= 2):
                attribute = node.args[1]
                if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
                    problems.append((line, f"{node.func.id} with a computed attribute name"))
                elif self._forbidden_attribute(attribute.value):
                    reported.add(id(attribute))
                    problems.append((line, f"{node.func.id} of {attribute.value} is not allowed"))
        return modules

    def _forbidden_attribute(self, attribute: str) -> bool:
        if attribute in FORBIDDEN_ATTRIBUTES:
            return True
        return (attribute.startswith("__") and attribute.endswith("__")
                and attribute not in self.allowed_dunders)

    def _unresolved(self, text: str, tree: ast.AST) -> list[tuple[int, str]]:
        """Names read somewhere that resolve to no definition: scopes from :mod:`symtable`."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            top = symtable.symtable(text, "<model>", self.mode)
        defined = set()
        tables = [top]
        needed: set[str] = set()
        while tables:
            table = tables.pop()
            tables.extend(table.get_children())
            for symbol in table.get_symbols():
                name = symbol.get_name()
                if table is top:
                    if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace():
                        defined.add(name)
                elif symbol.is_declared_global() and symbol.is_assigned():
                    defined.add(name)
                if symbol.is_referenced() and (symbol.is_global() or table is top):
                    needed.add(name)
        missing = needed - defined - self.known
        if not missing:
            return []
        first: dict[str, tuple[bool, int]] = {}
        for node in ast.walk(tree):  # the first line that reads the name (or else uses it)
            if isinstance(node, ast.Name) and node.id in missing:
                use = (not isinstance(node.ctx, ast.Load), node.lineno)
                first[node.id] = min(first.get(node.id, use), use)
        return [(first.get(name, (True, 0))[1], f"{name} is not defined")
                for name in sorted(missing)]
