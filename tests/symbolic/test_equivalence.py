"""Bounded equivalence of straight-line programs: parsing, validation, two ISAs, callables,
preconditions, timeouts; and the verdict against brute force over every 4-bit input."""

from __future__ import annotations

import itertools

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.symbolic import (
    ISA,
    THREE_ADDRESS,
    EquivalenceChecker,
    Program,
    ProgramError,
    bounded_equivalence,
)


def test_parse_both_orders_and_comments():
    text = """
    # a comment line
    t = add x, #1      ; an ARM-style immediate
    mul y, t, $0x2     // an AT&T-style one, assembly order
    y = y
    """
    program = Program.parse(text, ["x"], ["y"])
    assert program.instructions == (("t", "add", ("x", 1)), ("y", "mul", ("t", 2)),
                                    ("y", "mov", ("y",)))
    assert str(program).splitlines()[0] == "t = add x, 1"


@pytest.mark.parametrize("text, reason", [
    ("y = frob x", "has no operation 'frob'"),
    ("y = add x", "add takes 2 operands, not 1"),
    ("y = add x, q", "q is read before it is written"),
    ("", "the output y is never written"),
    ("y = add x, 1.5", "neither a register nor an immediate"),
    ("1y = mov x", "is not a register"),
    ("y = add x, " + "9" * 400, "neither a register nor an immediate"),
])
def test_bad_programs(text, reason):
    with pytest.raises(ProgramError, match=None) as caught:
        Program.parse(text, ["x"], ["y"])
    assert reason in str(caught.value)


def test_equivalent_and_counterexample():
    times8 = Program.parse("y = mul x, 8", ["x"], ["y"])
    shift3 = Program.parse("y = shl x, 3", ["x"], ["y"])
    assert bounded_equivalence(times8, shift3).reason == "equivalent on all 32-bit inputs"
    shift2 = Program.parse("y = shl x, 2", ["x"], ["y"])
    verdict = bounded_equivalence(times8, shift2, width=16)
    assert verdict.status == "fail"
    x = verdict.detail["inputs"]["x"]
    assert verdict.detail["outputs_a"] == [(x * 8) % 2**16]
    assert verdict.detail["outputs_b"] == [(x * 4) % 2**16]


def test_callables_preconditions_and_arity_mismatch():
    average = Program.parse("s = add a, b\ny = lshr s, 1", ["a", "b"], ["y"])
    reference = lambda a, b: z3.LShR(a + b, 1)  # noqa: E731
    assert bounded_equivalence(average, reference).status == "pass"
    # (a + b) / 2 without overflow: a/2 + b/2 + (a & b & 1) equals it everywhere.
    safe = Program.parse("p = lshr a, 1\nq = lshr b, 1\nc = and a, b\nc = and c, 1\n"
                         "y = add p, q\ny = add y, c", ["a", "b"], ["y"])
    wide = lambda a, b: z3.Extract(32, 1, z3.ZeroExt(1, a) + z3.ZeroExt(1, b))  # noqa: E731
    assert bounded_equivalence(safe, wide, inputs=2).status == "pass"
    assert bounded_equivalence(average, wide, inputs=2).status == "fail"
    small = lambda a, b: z3.And(z3.ULT(a, 2**30), z3.ULT(b, 2**30))  # noqa: E731
    assert bounded_equivalence(average, wide, precondition=small).status == "pass"
    one = Program.parse("y = mov x", ["x"], ["y"])
    assert "different numbers of inputs" in bounded_equivalence(one, average).reason
    with pytest.raises(ValueError, match="number of inputs"):
        bounded_equivalence(reference, wide)


def test_two_isas():
    # A toy x86-like ISA: two-operand forms where the destination is also a source, and
    # shift counts masked to 5 bits, as x86 does for 32-bit registers.
    x86 = ISA("x86-like", {
        "mov": (1, lambda a: a),
        "imul3": (2, lambda a, b: a * b),
        "shl": (2, lambda a, b: a << (b & 31)),
    })
    source = Program.parse("r = imul3 edi, 4", ["edi"], ["r"], isa=x86)
    target = EquivalenceChecker(source, ["w0"], ["w1"])  # the model writes three-address code
    assert target.check("w1 = shl w0, 2").status == "pass"
    assert target.check("w1 = shl w0, 3").status == "fail"
    masked = Program.parse("r = shl edi, 34", ["edi"], ["r"], isa=x86)
    assert bounded_equivalence(masked, Program.parse("r = shl x, 2", ["x"], ["r"])).passed
    assert THREE_ADDRESS.extend("more", {"inc": (1, lambda a: a + 1)}).operations["inc"][0] == 1


def test_checker_reports_and_timeouts():
    reference = Program.parse("s = add x, y\nr = mul s, s", ["x", "y"], ["r"])
    checker = EquivalenceChecker(reference, ["a", "b"], ["out"], width=64)
    assert checker.check("p = mul a, a\nq = mul b, b\nm = mul a, b\nm = shl m, 1\n"
                         "out = add p, q\nout = add out, m").status == "pass"
    assert checker.check("out = frob a").status == "fail"
    assert checker.check("x" * 30_000).status == "fail"
    # Factoring a 62-bit semiprime by bit-blasting: far beyond 50 ms.
    product = 2147483647 * 2147483629
    factor = Program.parse(f"p = mul a, b\nout = eq p, {product}", ["a", "b"], ["out"])
    hard = bounded_equivalence(factor, lambda a, b: z3.BitVecVal(0, 64, a.ctx), width=64,
                               precondition=lambda a, b: z3.And(z3.ULT(1, a), z3.ULT(a, 2**31),
                                                                 z3.ULT(1, b), z3.ULT(b, 2**31)),
                               timeout=0.05)
    assert hard.status == "unknown"
    assert "0.05 s limit" in hard.reason


# Brute force: run both programs in Python on every pair of 4-bit inputs.
WIDTH = 4
MASK = (1 << WIDTH) - 1
PYTHON = {
    "add": lambda a, b: (a + b) & MASK, "sub": lambda a, b: (a - b) & MASK,
    "mul": lambda a, b: (a * b) & MASK, "and": lambda a, b: a & b, "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b, "shl": lambda a, b: (a << b) & MASK if b < WIDTH else 0,
    "lshr": lambda a, b: a >> b if b < WIDTH else 0, "ult": lambda a, b: int(a < b),
    "eq": lambda a, b: int(a == b),
}


def _run(instructions, x, y):
    registers = {"x": x, "y": y}
    for dest, op, (a, b) in instructions:
        value = lambda arg: arg & MASK if isinstance(arg, int) else registers[arg]  # noqa: E731
        registers[dest] = PYTHON[op](value(a), value(b))
    return registers["out"]


@st.composite
def programs(draw):
    registers = ["x", "y"]
    instructions = []
    for index in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(sorted(PYTHON)))
        args = tuple(draw(st.sampled_from(registers) | st.integers(0, 5)) for _ in range(2))
        dest = "out" if index == 0 else draw(st.sampled_from(["out", "t"]))
        instructions.append((dest, op, args))
        registers = sorted(set(registers) | {dest})
    return tuple(instructions)


@settings(max_examples=60, deadline=None)
@given(programs(), programs())
def test_matches_brute_force(first, second):
    same = all(_run(first, x, y) == _run(second, x, y)
               for x, y in itertools.product(range(1 << WIDTH), repeat=2))
    a, b = (Program(program, ("x", "y"), ("out",)) for program in (first, second))
    verdict = bounded_equivalence(a, b, width=WIDTH)
    assert verdict.status == ("pass" if same else "fail"), verdict.reason
    if not same:
        x, y = verdict.detail["inputs"]["x"], verdict.detail["inputs"]["y"]
        assert _run(first, x, y) != _run(second, x, y)


def test_programs_without_inputs_are_compared_at_the_given_width():
    from diagrammar.symbolic.equivalence import THREE_ADDRESS, Program, bounded_equivalence

    five = Program.parse("r0 = add 2, 3", [], ["r0"], THREE_ADDRESS)
    six = Program.parse("r0 = add 3, 3", [], ["r0"], THREE_ADDRESS)
    assert bounded_equivalence(five, five, width=8).status == "pass"
    assert bounded_equivalence(five, six, width=8).status == "fail"
