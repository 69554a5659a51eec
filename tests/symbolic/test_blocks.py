"""Block-wise sketch filling (diagrammar.symbolic.blocks) on the Guess & Sketch corpus:
block interfaces, guesses whose immediates were corrupted are repaired, correct guesses are
left unchanged, wrong opcodes are impossible, unreadable or dead blocks are reported."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.functors.program_corpus import TEST, make_corpus
from diagrammar.functors.programs import Run, parse_three_address, parse_two_address
from diagrammar.symbolic.blocks import fill_blocks, interfaces, split_blocks

CORPUS = make_corpus(20, seed=5, **TEST)
FIELDS = {"li": (-2048, 2047), "addi": (-2048, 2047), "lui": (-(1 << 19), (1 << 19) - 1),
          "shli": (0, 31)}


def _immediate_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if line.split(" ")[0] in FIELDS]


def _corrupt(text: str, lines: list[int], rng: random.Random) -> str:
    result = text.splitlines()
    for n in lines:
        op, rest = result[n - 1].split(" ", 1)
        register, value = rest.split(", ")
        new = int(value)
        while new == int(value):
            new = rng.randint(*FIELDS[op])
        result[n - 1] = f"{op} {register}, {new}"
    return "\n".join(result)


def _agree(source: str, target: str, inputs: int, rng: random.Random) -> bool:
    f, g = Run()(parse_three_address(source)), Run()(parse_two_address(target))
    for _ in range(4):
        xs = [rng.getrandbits(32) for _ in range(inputs)]
        if f(*xs) != g(*xs):
            return False
    return True


def _distinct(line: str, previous: str) -> bool:
    a, b = line.split(" ", 1)[1].split(", ")
    return a != b and previous != f"mov {a}, {b}"


def test_interfaces_are_the_registers_live_across_each_block():
    source = ".width 32\n.in r0, r1\nadd r2, r0, r1\nmul r0, r0, 3\nsub r3, r2, r0\n.out r3"
    blocks = [((3, 4), (0, 0)), ((5, 5), (0, 0))]
    assert interfaces(source, blocks) == [(("r0", "r1"), ("r2", "r0")), (("r2", "r0"), ("r3",))]
    assert split_blocks(source, [(3, 4)]) == ["add r2, r0, r1\nmul r0, r0, 3"]


def test_correct_guesses_are_left_unchanged_even_where_unsure():
    for pair in CORPUS[:6]:
        everything = list(range(1, len(pair.target.splitlines()) + 1))
        for unsure in ([], everything):
            result = fill_blocks(pair.target, pair.source, unsure, pair.blocks)
            assert result.status == "filled", [b.reason for b in result.blocks]
            assert result.text == pair.target
            assert {b.status for b in result.blocks} == {"verified"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(CORPUS) - 1), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_corrupted_immediates_are_repaired(index, seed, data):
    pair, rng = CORPUS[index], random.Random(seed)
    candidates = _immediate_lines(pair.target)
    if not candidates:
        return
    corrupted = data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4,
                                   unique=True))
    extra = data.draw(st.lists(st.integers(1, len(pair.target.splitlines())), max_size=3))
    guess = _corrupt(pair.target, corrupted, rng)
    result = fill_blocks(guess, pair.source, corrupted + extra, pair.blocks)
    assert result.status == "filled", [(b.status, b.reason) for b in result.blocks]
    assert _agree(pair.source, result.text, len(pair.inputs), rng)
    assert result.seconds < 10


def test_a_wrong_opcode_is_impossible_even_with_unsure_immediates():
    source = ".width 32\n.in r0, r1\nadd r2, r0, 3000\nmul r2, r2, r1\n.out r2"
    guess = (".width 32\n.in r0, r1\nmov r2, r0\nlui r9, 7\naddi r9, 5\nadd r2, r9\n"
             "add r2, r1\n.out r2")  # add r2, r1 should be mul r2, r1
    result = fill_blocks(guess, source, [4, 5], [((3, 4), (3, 7))])
    assert result.status == "impossible"
    assert result.text == guess  # an impossible block is left as guessed
    # in corpus programs: a binary opcode swapped on a confident line
    swaps = {"add": "mul", "mul": "add", "xor": "add", "or": "mul", "and": "add",
             "sub": "xor"}
    tried = 0
    for pair in CORPUS[:12]:
        lines = pair.target.splitlines()
        # rA, rB: two different values, rB not a constant the holes choose (a swapped
        # opcode can be equivalent with other constants: (x | k1) | k2 == (x * 1) | k3)
        loaded = {lines[m - 1].split(" ")[1].rstrip(",") for m in _immediate_lines(pair.target)}
        n = next((n for n, line in enumerate(lines, 1)
                  if line.split(" ")[0] in swaps and _distinct(line, lines[n - 2])
                  and line.split(", ")[-1] not in loaded), None)
        if n is None:
            continue
        tried += 1
        op, rest = lines[n - 1].split(" ", 1)
        lines[n - 1] = f"{swaps[op]} {rest}"
        result = fill_blocks("\n".join(lines), pair.source, _immediate_lines(pair.target),
                             pair.blocks)
        block = next(b for b in result.blocks if b.target[0] <= n <= b.target[1])
        assert block.status == "impossible", (pair.target, n, block.reason)
        assert result.status == "impossible"
    assert tried >= 6


def test_unreadable_and_dead_blocks_are_reported():
    source = ".width 32\n.in r0\nadd r1, r0, 5\nadd r0, r0, 1\n.out r0"
    guess = ".width 32\n.in r0\nmov r1, r7\naddi r1, 5\naddi r0, 1\n.out r0"
    result = fill_blocks(guess, source, [], [((3, 3), (3, 4)), ((4, 4), (5, 5))])
    assert [b.status for b in result.blocks] == ["dead", "verified"]
    bad = ".width 32\n.in r0\naddi r0, 5000\n.out r0"
    result = fill_blocks(bad, ".width 32\n.in r0\nadd r0, r0, 5\n.out r0", [],
                         [((3, 3), (3, 3))])
    assert result.status == "invalid"
    assert "12-bit" in result.blocks[0].reason


@pytest.mark.parametrize("width", [8, 16])
def test_narrow_words(width):
    source = f".width {width}\n.in r0\nmul r0, r0, 77\nadd r0, r0, 1000\n.out r0"
    guess = f".width {width}\n.in r0\nli r9, 70\nmul r0, r9\naddi r0, 900\n.out r0"
    result = fill_blocks(guess, source, [3, 5], [((3, 3), (3, 4)), ((4, 4), (5, 5))])
    assert result.status == "filled"
    assert _agree(source, result.text, 1, random.Random(0))
