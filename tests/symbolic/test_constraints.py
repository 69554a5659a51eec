"""Constraints over a model's values, checked with z3: parsing the values, pass, fail naming
the violated constraints, missing values, sorts, unknown on a timeout; checked against direct
evaluation of random integer constraints by Python."""

from __future__ import annotations

import operator
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.symbolic import ConstraintChecker, ExpressionError, parse_values


def test_parse_values():
    assert parse_values('{"a": 1, "b": 2.5, "c": false}') == {
        "a": Fraction(1), "b": Fraction(5, 2), "c": False}
    assert parse_values("a = 1\nb: -3/4; c = True") == {
        "a": Fraction(1), "b": Fraction(-3, 4), "c": True}
    for bad, reason in [('{"a": "x"}', "not a number"), ('{"a": {"b": 1}}', "not a number"),
                        ("[1, 2]", "expected 'name = value'"), ('{"a": NaN}', "NaN"),
                        ("{", "not a valid JSON"), ("a = 1e99999", "digits"),
                        ('{"__class__": 1}', "not a variable name"), ("", "no values"),
                        ("[" * 1000, "nest"), ('{"a": ' + "9" * 5000 + "}", "JSON")]:
        with pytest.raises(ExpressionError, match=None) as caught:
            parse_values(bad)
        assert reason in str(caught.value), (bad, str(caught.value))


def test_pass_and_fail_with_the_violated_constraints():
    checker = ConstraintChecker(["x + y == 10", "x > y", "y >= 0", "x % 2 == 1"])
    assert checker.check('{"x": 7, "y": 3}').reason == "all 4 constraints hold"
    verdict = checker.check("x = 4, y = 6")
    assert verdict.status == "fail"
    assert verdict.detail["violated"] == ["x > y", "x % 2 == 1"]
    assert checker.check("x = 7").reason == "no value for y"
    assert checker.check("x = 7, y = 3, z = 100").status == "pass"  # extra values are ignored
    assert checker.check("nonsense").status == "fail"


def test_sorts():
    sorts = {"n": "int", "r": "real", "b": "bool"}
    checker = ConstraintChecker(["n >= 0", "r * 2 == 1", "b"], sorts)
    assert checker.check("n = 3, r = 0.5, b = true").status == "pass"
    assert checker.check("n = 2.5, r = 0.5, b = true").reason == "n should be an integer, not 5/2"
    assert checker.check("n = 1, r = 0.5, b = 1").reason == "b should be a boolean, not 1"
    with pytest.raises(ValueError, match="sort"):
        ConstraintChecker(["x > 0"], {"x": "float"})
    with pytest.raises(ExpressionError, match="sin is not supported|unknown function sin"):
        ConstraintChecker(["sin(x) > 0"])


def test_python_semantics_of_floor_division_and_modulo():
    checker = ConstraintChecker(["a // b == q", "a % b == r"])
    for a in (-7, 7):
        for b in (-2, 2):
            values = f"a = {a}, b = {b}, q = {a // b}, r = {a % b}"
            assert checker.check(values).status == "pass", values


def test_functions_and_solving_for_missing_values():
    checker = ConstraintChecker([lambda v: v["x"] * v["x"] == 49, "x < 0"], require_all=False)
    assert checker.check("y = 1").status == "pass"  # x = -7 exists
    assert checker.check("x = 7").reason == "violates x < 0"
    broken = ConstraintChecker([lambda v: v["nope"] > 0])
    assert broken.check("x = 1").status == "unknown"


def test_timeout_is_unknown():
    checker = ConstraintChecker(["x**3 + y**3 == z**3", "x > 0", "y > 0", "z > 0"],
                                require_all=False, timeout=0.2)
    verdict = checker.check("w = 1")
    assert verdict.status == "unknown"
    assert "0.2 s limit" in verdict.reason or "z3 could not decide" in verdict.reason


_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_COMPARE = {"<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
            ">": operator.gt, ">=": operator.ge}
_terms = st.sampled_from([("x", lambda v: v["x"]), ("y", lambda v: v["y"])]) | st.integers(
    -5, 5).map(lambda n: (str(n), lambda v, n=n: n))


def _arith(children):
    return st.tuples(children, st.sampled_from(sorted(_OPS)), children).map(
        lambda t: (f"({t[0][0]} {t[1]} {t[2][0]})",
                   lambda v, a=t[0][1], op=_OPS[t[1]], b=t[2][1]: op(a(v), b(v))))


_expressions = st.recursive(_terms, _arith, max_leaves=5)
_constraints = st.tuples(_expressions, st.sampled_from(sorted(_COMPARE)), _expressions).map(
    lambda t: (f"{t[0][0]} {t[1]} {t[2][0]}",
               lambda v, a=t[0][1], op=_COMPARE[t[1]], b=t[2][1]: op(a(v), b(v))))


@settings(max_examples=60, deadline=None)
@given(st.lists(_constraints, min_size=1, max_size=3), st.integers(-20, 20), st.integers(-20, 20))
def test_matches_python_evaluation(constraints, x, y):
    checker = ConstraintChecker([text for text, _ in constraints], {"x": "int", "y": "int"})
    values = {"x": x, "y": y}
    holds = all(function(values) for _, function in constraints)
    verdict = checker.check(f'{{"x": {x}, "y": {y}}}')
    assert verdict.status == ("pass" if holds else "fail"), verdict.reason
