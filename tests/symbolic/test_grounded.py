"""The grounded symbol system: trees, the arity-constrained transition system, abduction."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.symbolic.grounded import (
    CONTRADICTION_COST,
    UNKNOWN_COST,
    Configuration,
    Tree,
    TreeError,
    abduce,
    fixed_values,
    oracle,
    values,
)
from diagrammar.symbolic.list_programs import ListProgram

X, Y = ("var", 0), ("var", 1)
PROGRAMS = {
    "walk": ListProgram(("const", ("WALK",)), 0),
    "jump": ListProgram(("const", ("JUMP",)), 0),
    "left": ListProgram(("concat", ("const", ("LTURN",)), X), 1),
    "opposite": ListProgram(("concat", ("first", X), X), 1),
    "twice": ListProgram(("concat", X, X), 1),
    "and": ListProgram(("concat", X, Y), 2),
}


def test_tree_checks_its_heads():
    with pytest.raises(TreeError, match="one root"):
        Tree(("a", "b"), (-1, -1))
    with pytest.raises(TreeError, match="cycle"):
        Tree(("a", "b", "c"), (-1, 2, 1))
    with pytest.raises(TreeError, match="one head per symbol"):
        Tree(("a",), (-1, 0))
    tree = Tree(("walk", "and", "jump", "twice"), (1, -1, 3, 1))
    assert str(tree) == "and(walk, twice(jump))"
    assert tree.nested() == ("and", ("walk",), ("twice", ("jump",)))


def test_values_bottom_up_with_missing_programs():
    tree = Tree(("walk", "and", "jump", "twice"), (1, -1, 3, 1))
    assert values(tree, PROGRAMS)[tree.root] == ("WALK", "JUMP", "JUMP")
    missing = dict(PROGRAMS, twice=None)
    assert values(tree, missing) == (("WALK",), None, ("JUMP",), None)
    # a program whose arity differs from the node's children gives no value
    wrong = Tree(("twice", "walk"), (-1, 0))
    assert values(wrong, PROGRAMS)[0] == ("WALK", "WALK")
    assert values(Tree(("walk", "jump"), (-1, 0)), PROGRAMS)[0] is None


def test_arity_constraint_in_the_transition_system():
    state = Configuration.start([0, 1, None])  # walk, left, (unknown)
    assert state.valid() == ["shift"]
    state.apply("shift")
    state.apply("shift")
    # left (arity 1) may take walk; walk (arity 0) may not take left; swap needs s1 < s0
    assert state.valid() == ["shift", "left", "swap"]
    state.apply("left")
    assert state.heads[0] == 1 and not state.room(1) and state.complete(1)
    state.apply("shift")
    # "left" is full, so it cannot take the unknown symbol; the unknown may take "left"
    assert state.valid() == ["left", "swap"]
    state.apply("left")
    assert state.final


@st.composite
def trees(draw):
    n = draw(st.integers(1, 7))
    order = draw(st.permutations(range(n)))
    heads = [-1] * n
    for position, node in enumerate(order[1:], start=1):
        heads[node] = order[draw(st.integers(0, position - 1))]
    return Tree(tuple(f"s{i}" for i in range(n)), tuple(heads))


@given(trees())
@settings(max_examples=200, deadline=None)
def test_the_oracle_builds_every_tree_projective_or_not(tree):
    state = Configuration.start([len(tree.children(i)) for i in range(len(tree.symbols))])
    for move in oracle(tree):
        assert move in state.valid()
        state.apply(move)
    assert state.final and tuple(state.heads) == tree.heads


def test_non_projective_tree_needs_a_swap():
    assert "swap" in oracle(Tree(("jump", "opposite", "left"), (2, -1, 1)))
    assert "swap" not in oracle(Tree(("jump", "left", "opposite"), (1, 2, -1)))


def test_abduction_right_tree_needs_no_fix():
    tree = Tree(("jump", "twice"), (1, -1))
    assert abduce(tree, ("JUMP", "JUMP"), PROGRAMS).kind == "none"


def test_abduction_descends_to_the_unknown_symbol():
    # and(twice(walk), left(jump)) should be WALK WALK LTURN LTURN JUMP: with "left"
    # unknown, the root passes the target's tail down to it.
    tree = Tree(("walk", "twice", "and", "jump", "left"), (1, 2, -1, 4, 2))
    programs = dict(PROGRAMS, left=None)
    target = ("WALK", "WALK", "LTURN", "LTURN", "JUMP")
    fix = abduce(tree, target, programs)
    assert (fix.node, fix.value, fix.kind, fix.cost) == (
        4, ("LTURN", "LTURN", "JUMP"), "unknown", UNKNOWN_COST)
    assert fixed_values(tree, programs, fix)[2] == target


def test_abduction_contradicts_a_program_only_as_a_last_resort():
    tree = Tree(("jump", "twice"), (1, -1))
    fix = abduce(tree, ("JUMP", "JUMP", "JUMP"), PROGRAMS)
    assert (fix.node, fix.kind, fix.cost) == (1, "contradiction", CONTRADICTION_COST)
    # a fix below a known program is preferred when it is cheaper: twice(look) with "look"
    # unknown gets its value from the target through "twice"
    programs = dict(PROGRAMS, look=None)
    tree = Tree(("look", "twice"), (1, -1))
    fix = abduce(tree, ("LOOK", "LOOK"), programs)
    assert (fix.node, fix.value, fix.kind) == (0, ("LOOK",), "unknown")
    assert fixed_values(tree, programs, fix) == (("LOOK",), ("LOOK", "LOOK"))


def test_abduction_gives_up_past_its_budget():
    tree = Tree(("jump", "twice"), (1, -1))
    assert abduce(tree, ("RUN",), PROGRAMS, budget=0) is None
