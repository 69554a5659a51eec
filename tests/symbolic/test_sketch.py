"""Sketches and their solver (diagrammar.symbolic.sketch): constants split over lui/addi,
impossible sketches, time limits, parse errors, and guesses with wrong immediates."""

from __future__ import annotations

import random
import re

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.symbolic.equivalence import Program, bounded_equivalence
from diagrammar.symbolic.sketch import Sketch, SketchError, fill, holes_from_guess

LUI_ADDI = ".width 32\n.in r0\nlui r1, ?\naddi r1, ?\nadd r0, r1\n.out r0"


def _add_constant(constant: int) -> Program:
    return Program.parse(f"add r0, r0, {constant}", ["r0"], ["r0"])


def _value(text: str) -> int:
    """The 32-bit constant a lui/addi pair in ``text`` loads (the two-address semantics)."""
    parts = dict(line.split(" r1, ") for line in text.splitlines() if " r1, " in line)
    return ((int(parts["lui"]) << 12) + int(parts["addi"])) % (1 << 32)


@pytest.mark.parametrize("constant", [2047, 2048, 4095, 4096, -2048, -2049, 0, -1,
                                      0x7FFFFFFF, 0x80000000, 0xFFFFF800, 0x12345678])
def test_lui_addi_holes_load_constants_around_the_boundaries(constant):
    result = fill(Sketch.parse(LUI_ADDI), _add_constant(constant), width=32)
    assert result.status == "filled", result.reason
    assert _value(result.text) == constant % (1 << 32)
    assert -2048 <= result.values["h2"] <= 2047
    assert -(1 << 19) <= result.values["h1"] < (1 << 19)
    assert bounded_equivalence(result.program, _add_constant(constant)).status == "pass"


def test_lui_addi_holes_for_random_32_bit_constants():
    rng = random.Random(7)
    sketch = Sketch.parse(LUI_ADDI)
    for _ in range(12):
        constant = rng.getrandbits(32)
        result = fill(sketch, _add_constant(constant), width=32)
        assert result.status == "filled", (constant, result.reason)
        assert _value(result.text) == constant
        assert result.iterations >= 1 and result.seconds < 5


def test_three_address_reference_text_and_filled_text_keeps_comments():
    sketch = Sketch.parse(".in r0\nlui r1, ?   ; upper part\naddi r1, ?\nadd r0, r1\n.out r0")
    result = fill(sketch, _add_constant(100000), width=32)
    assert result.text.splitlines()[1] == "lui r1, 24   ; upper part"
    assert result.values == {"h1": 24, "h2": 1696}


def test_a_sketch_with_the_wrong_opcode_is_impossible():
    sketch = Sketch.parse(".in r0\nlui r1, ?\naddi r1, ?\nxor r0, r1\n.out r0")
    result = fill(sketch, _add_constant(100000), width=32)
    assert result.status == "impossible" and result.text is None
    assert "no hole values" in result.reason
    mul = Sketch.parse(".in r0\nli r1, ?\nmul r0, r1\n.out r0")
    assert fill(mul, _add_constant(5), width=32).status == "impossible"


def test_a_constant_out_of_reach_of_its_holes_is_impossible():
    # li reaches -2048..2047 only: 5000 needs lui
    sketch = Sketch.parse(".in r0\nli r1, ?\nadd r0, r1\n.out r0")
    assert fill(sketch, _add_constant(5000), width=32).status == "impossible"
    assert fill(sketch, _add_constant(-7), width=32).values == {"h1": -7}


def test_shift_holes_range_over_the_word():
    sketch = Sketch.parse(".in r0\nshli r0, ?\n.out r0")
    assert sketch.holes[0].range(16) == (0, 15)
    double = Program.parse("y = mul x, 8", ["x"], ["y"])
    assert fill(sketch, double, width=16).values == {"h1": 3}


def test_precondition_and_function_reference():
    sketch = Sketch.parse(".in r0\nli r1, ?\nudiv r0, r1\n.out r0")
    result = fill(sketch, lambda x: z3.LShR(x, 2), width=8)
    assert result.status == "filled" and result.values == {"h1": 4}
    # on inputs below 16, any mask with the low four bits set keeps x
    mask = Sketch.parse(".in r0\nli r1, ?\nand r0, r1\n.out r0")
    small = fill(mask, lambda x: x, width=16, precondition=lambda x: z3.ULT(x, 16))
    assert small.status == "filled" and small.values["h1"] & 15 == 15
    assert small.reason.endswith("satisfying the precondition")


def test_three_address_sketches_have_word_sized_holes():
    sketch = Sketch.parse(".in r0\nmul r1, r0, ?\nadd r1, r1, ?\n.out r1",
                          syntax="three-address")
    reference = Program.parse("t = add x, 3\nt = mul t, 5", ["x"], ["t"])
    result = fill(sketch, reference, width=32)
    assert result.status == "filled" and result.values == {"h1": 5, "h2": 15}


def test_timeouts_return_unknown():
    assert fill(Sketch.parse(LUI_ADDI), _add_constant(9), timeout=0).status == "unknown"
    # (x & y) * z + (x | y) * z, times (x ^ y) + ((x & y) << ?): hard to verify at 64 bits
    sketch = Sketch.parse(
        ".in r0, r1, r2\nmov r3, r0\nand r3, r1\nmul r3, r2\nmov r4, r0\nor r4, r1\n"
        "mul r4, r2\nadd r3, r4\nmov r5, r0\nxor r5, r1\nmov r6, r0\nand r6, r1\n"
        "shli r6, ?\nadd r5, r6\nmul r3, r5\n.out r3")
    reference = Program.parse("s = add x, y\nt = mul s, z\nt = mul t, s", ["x", "y", "z"],
                              ["t"])
    result = fill(sketch, reference, width=64, timeout=0.3)
    assert result.status == "unknown" and result.seconds < 3


def test_iteration_bound_returns_unknown():
    result = fill(Sketch.parse(LUI_ADDI), _add_constant(0x12345678), max_iterations=0)
    assert result.status == "unknown" and "0 iterations" in result.reason


@pytest.mark.parametrize("text, message", [
    ("add r0, ?", "expects a register as operand 2, not '?'"),
    ("lui ?, 3", "expects a register as operand 1"),
    ("addi r0, 4096", "12-bit signed immediate (-2048..2047), not 4096"),
    ("lui r0, 524288", "20-bit signed immediate"),
    ("frob r0, r1", "has no instruction 'frob'"),
    ("addi r0", "addi takes 2 operands, not 1"),
    ("li r0, ??", "expects an immediate or ? as operand 2"),
    ("add r0, r9", "line 1 (add r0, r9): r9 is read before it is written"),
    (".width 0", ".width takes one number in 1..512"),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(SketchError, match=".*" + re.escape(message)):
        Sketch.parse(text, ["r0"], ["r0"])


def test_holes_from_guess_keeps_opcodes_and_registers():
    guess = ".in r0\nli r1, 7   ; unsure\nmul r0, r1\naddi r0, 4096\n.out r0"
    sketch = holes_from_guess(guess, [2, 3, 4])
    assert sketch.text == ".in r0\nli r1, ? ; unsure\nmul r0, r1\naddi r0, ?\n.out r0"
    three = holes_from_guess("add r1, r0, 5\nsub r1, r1, r0", [1], syntax="three-address",
                             inputs=["r0"], outputs=["r1"])
    assert three.text.splitlines()[0] == "add r1, r0, ?"
    with pytest.raises(SketchError, match="line 9 is not a line"):
        holes_from_guess(guess, [9])


# --- guesses with wrong immediates, filled back --------------------------------------------

_BINARY = ["add", "sub", "xor", "and", "or", "mul"]


@st.composite
def _programs(draw):
    """A small two-address program over r0 (input) and r1..r3, and the indices of the
    instructions that carry an immediate."""
    lines, written, immediates = [], ["r0"], []
    for _ in range(draw(st.integers(2, 6))):
        kind = draw(st.sampled_from(["li", "lui", "addi", "shli", "binary"]))
        dest = draw(st.sampled_from(["r0", "r1", "r2", "r3"]))
        if kind in ("addi", "shli", "binary") and dest not in written:
            kind = "li"
        if kind == "binary":
            lines.append(f"{draw(st.sampled_from(_BINARY))} {dest}, "
                         f"{draw(st.sampled_from(written))}")
        else:
            value = draw({"li": st.integers(-2048, 2047), "addi": st.integers(-2048, 2047),
                          "lui": st.integers(-(1 << 19), (1 << 19) - 1),
                          "shli": st.integers(0, 31)}[kind])
            immediates.append(len(lines))
            lines.append(f"{kind} {dest}, {value}")
        written.append(dest) if dest not in written else None
    output = lines[-1].split()[1].rstrip(",")
    return lines, immediates, output


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_programs(), st.data())
def test_wrong_immediates_in_a_guess_are_filled_back(program, data):
    lines, immediates, output = program
    truth = Sketch.parse("\n".join(lines), ["r0"], [output]).program([])
    if not immediates:
        return
    wrong = data.draw(st.lists(st.sampled_from(immediates), min_size=1, max_size=3,
                               unique=True))
    guess = list(lines)
    for index in wrong:
        op, value = guess[index].rsplit(" ", 1)
        bits = 20 if op.startswith("lui") else 12
        guess[index] = f"{op} {(int(value) + 1 + index) % (1 << (bits - 1))}"
    sketch = holes_from_guess("\n".join(guess), [i + 1 for i in wrong], inputs=["r0"],
                              outputs=[output])
    assert len(sketch.holes) == len(wrong)
    result = fill(sketch, truth, width=32, timeout=10)
    assert result.status == "filled", (lines, guess, result.reason)
    assert bounded_equivalence(result.program, truth, width=32).status == "pass"
