"""The issue's bad-input list, fuzzed across every checker: random text, deep nesting, huge
numbers, ``__class__`` chains, imports, ``ATTACH``, ``; DROP TABLE``, several statements and
writes each get a verdict with a reason, within 2 s, and nothing is executed: the canary
files these texts would create stay absent and the database stays byte-identical."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.symbolic import (
    ConstraintChecker,
    EquationChecker,
    EquivalenceChecker,
    ExpressionChecker,
    Program,
    PythonChecker,
    SQLChecker,
)


@pytest.fixture(scope="module")
def checkers(database):
    return [EquationChecker(), ExpressionChecker("x + 1"), ConstraintChecker(["x > 0"]),
            EquivalenceChecker(Program.parse("y = add x, 1", ["x"], ["y"]), ["x"], ["y"]),
            PythonChecker(), SQLChecker(database)]


def bad_inputs(canary: str) -> list[str]:
    return [
        f"__import__('os').system('touch {canary}')",
        f"open('{canary}', 'w').write('x')",
        f"import os; os.system('touch {canary}')",
        f"x = 1; (lambda: __import__('os').system('touch {canary}'))()",
        "().__class__.__bases__[0].__subclasses__()",
        "x.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__",
        "getattr(getattr(x, '__class__'), '__base__')",
        "9**9**9**9", "2**2**2**2**2**2**2", "10**10**10 = 1", "x = 9**9**9**9",
        "1" * 5000, "0x" + "f" * 5000, "1e999999", "factorial(10**10)",
        f"ATTACH DATABASE '{canary}' AS evil", f"SELECT 1; ATTACH '{canary}' AS evil",
        "SELECT * FROM fruit; DROP TABLE fruit", "; DROP TABLE fruit", "DROP TABLE fruit",
        "SELECT 1; SELECT 2", "DELETE FROM fruit", "UPDATE fruit SET price = 0",
        "INSERT INTO fruit VALUES ('x', 0, 0)", "PRAGMA writable_schema = ON",
        f"VACUUM INTO '{canary}'", "SELECT load_extension('/tmp/evil')",
        "import os", "from os import system", "exec('1')", "eval('2')",
        '{"x": ' + "[" * 5000 + "]" * 5000 + "}",
        "x = 1e5000", "\x00\x01\x02", "'" * 1000, "\\" * 100,
    ]


_nested = st.integers(50, 3000).map(lambda n: "(" * n + "1" + ")" * n)
_unary = st.integers(100, 3000).map(lambda n: "-" * n + "1")
_towers = st.integers(2, 9).map(lambda b: "**".join([str(b)] * 4))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_bad_input_gets_a_fast_verdict_and_nothing_runs(checkers, database, digest, sandbox, data):
    canary = sandbox / "canary"
    before = digest(database)
    known = bad_inputs(str(canary))
    text = data.draw(
        st.sampled_from(known) | st.text(max_size=200) | _nested | _unary | _towers
        | st.lists(st.sampled_from(known), min_size=2, max_size=4).map(
            lambda parts: data.draw(st.sampled_from(["\n", "; ", " = ", " + ", ""])).join(parts)))
    for checker in checkers:
        start = time.perf_counter()
        verdict = checker.check(text)
        elapsed = time.perf_counter() - start
        assert verdict.status in ("pass", "fail", "unknown")
        assert verdict.reason, (checker.name, text[:80])
        assert elapsed < 2, (checker.name, text[:80], elapsed)
    assert not canary.exists()
    assert digest(database) == before


# Statically valid Python (only running it would be a problem, and nothing runs it).
VALID_PYTHON = {"9**9**9**9", "2**2**2**2**2**2**2", "x = 9**9**9**9", "0x" + "f" * 5000,
                "1e999999", "x = 1e5000"}


def test_each_known_bad_input_is_refused(checkers, sandbox):
    """None of the list passes any checker (a ``pass`` would mean it was taken as valid)."""
    for text in bad_inputs(str(sandbox / "canary")):
        for checker in checkers:
            if checker.name == "python" and text in VALID_PYTHON:
                continue
            verdict = checker.check(text)
            assert verdict.status != "pass", (checker.name, text[:60], verdict.reason)
