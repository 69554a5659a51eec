"""Verdicts and the checker base: statuses are validated, time is measured, exceptions in a
checker become ``unknown`` rather than crashes."""

from __future__ import annotations

import pytest

from diagrammar.symbolic import (
    BaseChecker,
    Checker,
    ConstraintChecker,
    EquationChecker,
    EquivalenceChecker,
    ExpressionChecker,
    Program,
    PythonChecker,
    SQLChecker,
    Verdict,
)
from diagrammar.symbolic.verdict import CHECKPOINTS


def test_verdict_statuses():
    assert Verdict("pass", "").passed and Verdict("pass", "")
    assert Verdict("fail", "x").failed and not Verdict("fail", "x")
    assert Verdict("unknown", "x").unknown and not Verdict("unknown", "x")
    with pytest.raises(ValueError, match="status"):
        Verdict("ok", "")


def test_base_checker_turns_exceptions_into_unknown():
    class Broken(BaseChecker):
        name = "broken"

        def _check(self, text):
            raise ZeroDivisionError("boom")

    verdict = Broken().check("x")
    assert verdict.status == "unknown"
    assert "ZeroDivisionError: boom" in verdict.reason
    assert verdict.seconds >= 0


def test_base_checker_refuses_non_text():
    assert PythonChecker().check(b"x = 1").status == "fail"


def test_every_checker_follows_the_protocol(database):
    checkers = [EquationChecker(), ExpressionChecker("x"), ConstraintChecker(["x > 0"]),
                EquivalenceChecker(Program.parse("y = mov x", ["x"], ["y"]), ["x"], ["y"]),
                PythonChecker(), SQLChecker(database)]
    for checker in checkers:
        assert isinstance(checker, Checker)
        assert checker.checkpoint in CHECKPOINTS
        assert isinstance(checker.name, str) and checker.name
        assert isinstance(checker.check(""), Verdict)
