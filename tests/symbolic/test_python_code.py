"""Python code checked statically: syntax errors with positions, imports, dunder and frame
attributes, forbidden builtins, names that do not resolve (with scopes), and fuzzing."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.symbolic import PythonChecker


@pytest.fixture(scope="module")
def checker():
    return PythonChecker()


GOOD = [
    "import math\nprint(math.sqrt(2))",
    "from collections import Counter\nc = Counter('abc')",
    "def f(n):\n    return g(n) + 1\n\ndef g(n):\n    return n * 2\n\nprint(f(3))",
    "class A:\n    size = 3\n    def __init__(self):\n        super().__init__()\n"
    "        self.n = self.size\n",
    "def outer():\n    v = 1\n    def inner():\n        return v\n    return inner",
    "x = [k * k for k in range(5) if k]\ny = {a: b for a, b in zip('ab', 'cd')}",
    "try:\n    pass\nexcept ValueError as error:\n    print(error)",
    "def h():\n    global z\n    z = 2\nh()\nprint(z)",
    "if __name__ == '__main__':\n    print(__name__)",
    "total = sum(map(len, ['a', 'bb']))\nassert total == 3",
    "match [1, 2]:\n    case [a, b]:\n        print(a + b)",
    "async def go():\n    await other()\nasync def other():\n    return 1",
    "with open_thing() as f:\n    pass\ndef open_thing():\n    return None",
]


@pytest.mark.parametrize("code", GOOD)
def test_good_code_passes(checker, code):
    verdict = checker.check(code)
    assert verdict.status == "pass", verdict.reason


@pytest.mark.parametrize("code, reason", [
    ("def f(:\n    pass", "syntax error at line 1, column 7"),
    ("x = (1,\ny = 2", "syntax error at line 1"),
    ("import os", "line 1: import of os is not allowed"),
    ("import os.path as p", "import of os.path is not allowed"),
    ("from subprocess import run", "import from subprocess is not allowed"),
    ("from . import sibling", "relative imports are not allowed"),
    ("from math import *", "hides which names exist"),
    ("import random\nrandom._os.system('ls')", "line 2: random._os is private to the module"),
    ("().__class__.__bases__[0].__subclasses__()", "access to __subclasses__ is not allowed"),
    ("f = lambda: 0\nf.__globals__", "access to __globals__"),
    ("x = 1\nx.__dict__", "access to __dict__"),
    ("x = 1\nx.__len__()", "access to __len__ is not allowed"),
    ("def g():\n    yield\ng().gi_frame.f_globals", "access to f_globals"),
    ("x = 1\ngetattr(x, '__class__')", "getattr of __class__ is not allowed"),
    ("x, n = 1, 'a'\ngetattr(x, n)", "getattr with a computed attribute name"),
    ("'{0.__class__}'.format(1)", "a string names __class__"),
    ("eval('1')", "eval is not allowed"),
    ("e = exec", "exec is not allowed"),
    ("open('/etc/passwd')", "open is not allowed"),
    ("__import__('os')", "__import__ is not allowed"),
    ("print(__builtins__)", "__builtins__ is not allowed"),
    ("compile('1', 'f', 'eval')", "compile is not allowed"),
    ("breakpoint()", "breakpoint is not allowed"),
    ("y = undefined_helper(3)", "line 1: undefined_helper is not defined"),
    ("def f():\n    return missing + 1", "line 2: missing is not defined"),
    ("def f():\n    local = 1\ndef g():\n    return local", "line 4: local is not defined"),
    ("class A:\n    def m(self):\n        return size\n    size = 3", "size is not defined"),
    ("nonlocal x", "nonlocal declaration not allowed at module level"),
    ("(" * 200, "brackets nest 200 deep"),
    ("x = 1\n" * 30_000, "characters; the limit is 100000"),
])
def test_bad_code_fails_with_a_reason(checker, code, reason):
    verdict = checker.check(code)
    assert verdict.status == "fail"
    assert reason in verdict.reason, verdict.reason


def test_options():
    assert PythonChecker(allowed_modules={"os"}).check("import os.path").status == "pass"
    assert PythonChecker(context={"tool"}).check("tool(1)").status == "pass"
    assert PythonChecker(allowed_dunders={"__len__"}).check("[].__len__()").status == "pass"
    assert PythonChecker(allowed_dunders={"__class__"}).check("x = 1\nx.__class__").failed
    expression = PythonChecker(mode="eval")
    assert expression.checkpoint == "expression"
    assert expression.check("len([1, 2]) + 1").status == "pass"
    assert expression.check("x = 1").status == "fail"
    many = "\n".join(f"v{i} = u{i}" for i in range(8))
    reason = PythonChecker().check(many).reason
    assert reason.count("is not defined") == 5 and reason.endswith("and 3 more")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400) | st.lists(st.sampled_from(
    ["import os", "x = 1", "def f(a):", "    return a", "print(x)", "x.__class__", "eval(x)",
     "for i in range(3):", "    y = i", "class C:", "    pass", "(", ")", "lambda q: q",
     "from math import sqrt", "sqrt(2)", "open('f')", "'__globals__'"]), max_size=12)
    .map("\n".join))
def test_random_code_gets_a_verdict_quickly(code):
    start = time.perf_counter()
    verdict = PythonChecker().check(code)
    assert verdict.status in ("pass", "fail")
    assert verdict.reason
    assert time.perf_counter() - start < 1
