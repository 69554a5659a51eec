"""The safe expression parser: what it accepts, what it refuses (with reasons), that text
written back parses to the same tree, and that random text only ever yields a tree or an
``ExpressionError``, quickly."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.symbolic.expression import (
    LOGIC,
    ExpressionError,
    Grammar,
    normalise,
    parse_equation,
    parse_expression,
    parse_number,
    to_text,
)


@pytest.mark.parametrize("text, written", [
    ("2x^2 + 3x - 1", "2*x**2 + 3*x - 1"),
    ("3(x+1)", "3*(x + 1)"),
    ("(a)(b)", "a*b"),
    ("a - (b - c)", "a - (b - c)"),
    ("(a ** b) ** c", "(a**b)**c"),
    ("a ** b ** c", "a**b**c"),
    ("-x**2", "-x**2"),
    ("(-2)**2", "(-2)**2"),
    ("2 × 3 ÷ 4 − 1", "2*3 / 4 - 1"),
    ("log(x, 2) + sqrt(pi)", "log(x, 2) + sqrt(pi)"),
    ("1_000 + 0x10 + 1.5e3", "1000 + 16 + 1.5e3"),
    ("7 // 2 % 3", "7 // 2 % 3"),
])
def test_accepts_and_writes_back(text, written):
    assert to_text(parse_expression(text)) == written
    assert parse_expression(written) == parse_expression(text)


@pytest.mark.parametrize("text, reason", [
    ("x.__class__", "attribute access (.__class__)"),
    ("__import__('os').system('ls')", "attribute access (.system) is not allowed"),
    ("__import__('os')", "unknown function __import__"),
    ("__builtins__", "the name __builtins__ is not allowed"),
    ("open('f')", "unknown function open"),
    ("[1, 2]", "a list is not allowed"),
    ("x[0]", "indexing is not allowed"),
    ("lambda: 1", "a lambda is not allowed"),
    ("(y := 2)", "assignment is not allowed"),
    ("'text'", "str literals are not allowed"),
    ("2j", "complex literals are not allowed"),
    ("x if y else z", "a conditional expression is not allowed"),
    ("sin(x, y)", "sin takes 1 argument, not 2"),
    ("sin(x=1)", "sin takes plain arguments only"),
    ("sin", "sin is a function"),
    ("x < y", "comparisons are not allowed here"),
    ("x and y", "and/or are not allowed here"),
    ("9**9**9**9", "the exponent of 9**9**9 is too large"),
    ("2**10000", "2**10000 is too large"),
    ("x**1000000", "is too large"),
    ("1" * 3000, "a number has about 3000 digits; the limit is 2000"),
    ("1e400000", "overflows"),
    ("(" * 200 + "x" + ")" * 200, "brackets nest 200 deep"),
    ("-" * 5000 + "1", "too large or too deep"),
    ("1+" * 150 + "1", "nests more than 100 deep"),
    ("1+" * 3000 + "1", "too large or too deep"),
    ("x" * 20_000, "20000 characters"),
    ("", "empty"),
    ("2 +", "not a valid expression"),
])
def test_refuses_with_a_reason(text, reason):
    with pytest.raises(ExpressionError, match=None) as caught:
        parse_expression(text)
    assert reason in str(caught.value)


def test_grammar_options():
    assert to_text(parse_expression("x < y <= 3 and not b", LOGIC)) == "x < y and y <= 3 and not b"
    with pytest.raises(ExpressionError, match="unknown name z"):
        parse_expression("x + z", Grammar(names=frozenset({"x"})))
    with pytest.raises(ExpressionError, match="unknown function sin"):
        parse_expression("sin(x)", Grammar(functions={}))
    assert normalise("2x", implicit_multiplication=False) == "2x"


def test_equations_split_at_top_level_equals():
    assert [to_text(side) for side in parse_equation("a = b == c")] == ["a", "b", "c"]
    with pytest.raises(ExpressionError, match="each side"):
        parse_equation("= 3")
    assert len(parse_equation("x + 1")) == 1


def test_numbers():
    assert parse_number("3/4").denominator == 4
    for bad in ("1e99999", "nan", "1/0", "0x10", "--1"):
        with pytest.raises(ExpressionError):
            parse_number(bad)


_atoms = st.sampled_from(["x", "y", "2", "3", "0.5", "pi", "7"])


def _combine(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "**", "%", "//"]), children)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"-{c}"),
        st.tuples(st.sampled_from(["sin", "sqrt", "exp", "abs"]), children)
        .map(lambda t: f"{t[0]}({t[1]})"),
    )


expressions = st.recursive(_atoms, _combine, max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(expressions)
def test_written_back_text_parses_to_the_same_tree(text):
    try:
        tree = parse_expression(text)
    except ExpressionError:
        return  # e.g. a power that is too large
    assert parse_expression(to_text(tree)) == tree


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300)
       | st.text(alphabet="()+-*/^x0123456789.e_ ,=<>[]{}'\"\\", max_size=300))
def test_random_text_gives_a_tree_or_a_reason_quickly(text):
    start = time.perf_counter()
    try:
        parse_expression(text, LOGIC)
    except ExpressionError as error:
        assert str(error)
    assert time.perf_counter() - start < 0.5
