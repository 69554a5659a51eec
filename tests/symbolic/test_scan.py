"""SCAN regenerated from its grammar (diagrammar.symbolic.scan): the command count, the
published split sizes and exact membership rules, the interpretation rules on the paper's
examples and as algebraic laws, and commands outside the grammar refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagrammar.symbolic.scan import (
    JUMP_COPIES,
    LENGTH_CUT,
    ScanError,
    commands,
    interpret,
    published_actions,
    split,
)

ALL = commands()
SENTENCES = [c for c in ALL if " and " not in c and " after " not in c]


def test_every_command_once_and_the_published_sizes():
    assert len(ALL) == len(set(ALL)) == 20_910 and len(SENTENCES) == 102
    train, test = split("length")
    assert (len(train), len(test)) == (16_990, 3_920)
    train, test = split("add-jump")
    assert (len(train), len(test)) == (14_670, 7_706)
    train, test = split("simple")
    assert (len(train), len(test)) == (16_728, 4_182)
    assert {c for c, _ in train} | {c for c, _ in test} == set(ALL)


def test_split_membership_rules():
    train, test = split("length")
    assert max(len(a) for _, a in train) == LENGTH_CUT
    assert min(len(a) for _, a in test) == 24 and max(len(a) for _, a in test) == 48
    train, test = split("add-jump")
    assert [c for c, _ in train if "jump" in c.split()] == ["jump"] * JUMP_COPIES
    assert all("jump" in c.split() and c != "jump" for c, _ in test)
    assert len({c for c, _ in train}) + len(test) == len(ALL)
    with pytest.raises(ValueError, match="unknown SCAN split"):
        split("mcd1")


@pytest.mark.parametrize("command, actions", [
    ("jump", "JUMP"),
    ("jump left", "LTURN JUMP"),
    ("turn left twice", "LTURN LTURN"),
    ("jump thrice", "JUMP JUMP JUMP"),
    ("walk opposite left", "LTURN LTURN WALK"),
    ("turn opposite right", "RTURN RTURN"),
    ("turn around left", "LTURN LTURN LTURN LTURN"),
    ("look around right", "RTURN LOOK RTURN LOOK RTURN LOOK RTURN LOOK"),
    ("jump and walk", "JUMP WALK"),
    ("jump after walk", "WALK JUMP"),
    ("run twice after jump opposite right",
     "RTURN RTURN JUMP RUN RUN"),
])
def test_the_interpretation_rules(command, actions):
    assert interpret(command) == tuple(actions.split())


def test_published_action_names():
    assert published_actions(interpret("jump left")) == "I_TURN_LEFT I_JUMP"


@given(st.sampled_from(SENTENCES), st.sampled_from(SENTENCES))
def test_conjunctions_concatenate(a, b):
    assert interpret(f"{a} and {b}") == interpret(a) + interpret(b)
    assert interpret(f"{a} after {b}") == interpret(b) + interpret(a)
    verb = a.removesuffix(" twice").removesuffix(" thrice")
    assert interpret(f"{verb} twice") == interpret(verb) * 2
    assert interpret(f"{verb} thrice") == interpret(verb) * 3


@pytest.mark.parametrize("bad", ["", "walk walk", "jump twice twice", "and",
                                 "turn", "jump around", "fly", "walk and", "left jump"])
def test_commands_outside_the_grammar_are_refused(bad):
    with pytest.raises(ScanError):
        interpret(bad)
