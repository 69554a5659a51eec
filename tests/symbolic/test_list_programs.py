"""The list language and program induction over it."""

import pytest

from diagrammar.symbolic.list_programs import (
    Induction,
    ListProgram,
    ProgramError,
    evaluate,
    induce,
    show,
)

X, Y = ("var", 0), ("var", 1)


def one(args, value):
    """A group with a single reading."""
    return [(tuple(args), tuple(value))]


def test_evaluate_and_show():
    expr = ("concat", ("first", X), ("concat", ("const", ("LTURN",)), Y))
    assert evaluate(expr, [("A", "B"), ("C",)]) == ("A", "LTURN", "C")
    assert show(expr) == "first(x) + [LTURN] + y"
    assert evaluate(("first", ("const", ())), []) == ()
    with pytest.raises(ProgramError, match="unknown construct"):
        evaluate(("loop", X), [()])


def test_program_checks_its_arity():
    program = ListProgram(("concat", Y, X), arity=2)
    assert program([("A",), ("B",)]) == ("B", "A")
    assert program.size == 3
    with pytest.raises(ProgramError, match="takes 2 arguments, got 1"):
        program([("A",)])


@pytest.mark.parametrize("arity, groups, expected", [
    (0, [one([], ["WALK"])] * 2, "[WALK]"),
    (0, [one([], [])], "[]"),
    (1, [one([("WALK",)], ["LTURN", "WALK"]), one([("RUN", "RUN")], ["LTURN", "RUN", "RUN"])],
     "[LTURN] + x"),
    (1, [one([("LTURN", "JUMP")], ["LTURN", "LTURN", "JUMP"]),
         one([("RTURN", "WALK")], ["RTURN", "RTURN", "WALK"])], "first(x) + x"),
    (1, [one([("LTURN", "JUMP")], ["LTURN", "JUMP"] * 4), one([("RUN",)], ["RUN"] * 4)],
     "x + x + x + x"),
    (2, [one([("WALK",), ("RUN", "LTURN")], ["RUN", "LTURN", "WALK"]),
         one([("LOOK",), ("JUMP",)], ["JUMP", "LOOK"])], "y + x"),
])
def test_induce_finds_scan_meanings(arity, groups, expected):
    found = induce(groups, arity)
    assert str(found.program) == expected
    assert found.explained == found.groups == len(groups)
    assert found.fraction == 1.0


def test_a_group_is_explained_by_any_of_its_readings():
    # Each sentence offers two readings; only "first(x) + x" explains one in every group,
    # while "[LTURN] + x" explains both readings of the left-turn sentence only.
    groups = [
        [(( ("JUMP",),), ("LTURN", "JUMP")), ((("LTURN", "JUMP"),), ("LTURN", "LTURN", "JUMP"))],
        [((("JUMP",),), ("RTURN", "JUMP")), ((("RTURN", "JUMP"),), ("RTURN", "RTURN", "JUMP"))],
    ]
    found = induce(groups, 1)
    assert str(found.program) == "first(x) + x" and found.explained == 2


def test_induce_prefers_the_program_explaining_most_groups():
    groups = [one([("A",)], ["A", "A"])] * 3 + [one([("A",)], ["B"])]
    found = induce(groups, 1)
    assert str(found.program) == "x + x"
    assert (found.explained, found.groups) == (3, 4)


def test_programs_use_every_argument():
    # "x" alone explains the example, but an arity-2 program must read both values.
    found = induce([one([("A",), ()], ["A"])], 2)
    assert str(found.program) in ("x + y", "y + x")


def test_induce_without_examples_or_bad_arity():
    assert induce([], 1) == Induction(None, 0, 0)
    assert induce([one([("A",)], ["A"])], 2).program is None
    with pytest.raises(ProgramError, match="arity must be"):
        induce([], 3)


def test_nothing_within_the_size_bound():
    found = induce([one([("A",)], ["A"] * 9)], 1, max_size=3)
    assert found.explained == 0
