"""Functors on program diagrams: execution, z3 semantics, two assembly syntaxes, pictures.

The functor laws are checked on random programs (hypothesis): ``F(f >> g)`` is ``F(g)``
after ``F(f)`` and ``F(f @ g)`` is ``F(f)`` beside ``F(g)``, for Python execution and for z3
terms (proved with a solver). Both assembly syntaxes round-trip to programs that mean the
same, by execution on random inputs and by a z3 proof at small widths.
"""

from __future__ import annotations

import itertools
import random

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar.diagrams.programs import (
    OPERATIONS,
    Const,
    Operation,
    ProgramDiagram,
    ProgramError,
    from_instructions,
    program,
    unroll,
)
from diagrammar.functors.programs import (
    PYTHON_OPERATIONS,
    DrawProgram,
    Run,
    ToThreeAddress,
    ToTwoAddress,
    ToZ3,
    equivalence,
    load_immediate,
    parse_three_address,
    parse_two_address,
    three_address_program,
)
from diagrammar.symbolic.equivalence import THREE_ADDRESS, bounded_equivalence

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Division and remainder are slow to bit-blast; the z3 proofs use the other operations.
FAST_OPS = sorted(op for op in OPERATIONS if op not in ("udiv", "urem", "sdiv", "srem"))
CONSTANTS = st.one_of(st.integers(-8, 8), st.integers(0, 1 << 40),
                      st.sampled_from([2047, 2048, 4095, 4096, -2048, -2049, 1 << 31]))


@st.composite
def programs(draw, inputs: int, width: int, ops=tuple(FAST_OPS), max_length: int = 6):
    """A random straight-line program with ``inputs`` inputs."""
    names = [f"x{i}" for i in range(inputs)]
    instructions = []
    for line in range(draw(st.integers(0, max_length))):
        op = draw(st.sampled_from(ops))
        args = tuple(draw(st.sampled_from(names)) if names and draw(st.integers(0, 3))
                     else draw(CONSTANTS) for _ in range(OPERATIONS[op]))
        dest = draw(st.sampled_from(names)) if names and draw(st.booleans()) else f"t{line}"
        instructions.append((dest, op, args))
        names = sorted({*names, dest})
    if not names:
        instructions.append(("t", "mov", (draw(CONSTANTS),)))
        names = ["t"]
    outputs = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    return from_instructions(instructions, [f"x{i}" for i in range(inputs)], outputs, width)


@st.composite
def composable(draw, width: int, ops=tuple(FAST_OPS)):
    f = draw(programs(draw(st.integers(0, 3)), width, ops))
    g = draw(programs(len(f.cod), width, ops))
    return f, g


def words(count: int, width: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    edges = [0, 1, (1 << width) - 1, 1 << (width - 1)]
    return [[rng.choice(edges) if rng.random() < 0.3 else rng.getrandbits(width)
             for _ in range(count)] for _ in range(8)]


def prove(terms_a: list, terms_b: list, timeout_ms: int = 5000) -> z3.CheckSatResult:
    assert len(terms_a) == len(terms_b)
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(z3.Or([a != b for a, b in zip(terms_a, terms_b)] or [z3.BoolVal(False)]))
    return solver.check()


# --- the functor laws --------------------------------------------------------------------

@SETTINGS
@given(pair=composable(8, tuple(OPERATIONS)), seed=st.integers(0, 1 << 16))
def test_run_preserves_composition_and_tensor(pair, seed):
    f, g = pair
    run_f, run_g = Run()(f), Run()(g)
    for xs in words(len(f.dom), 8, seed):
        assert Run()(f >> g)(*xs) == run_g(*run_f(*xs))
    h = g  # any second program beside f
    for xs, ys in zip(words(len(f.dom), 8, seed), words(len(h.dom), 8, seed + 1)):
        assert Run()(f @ h)(*xs, *ys) == run_f(*xs) + Run()(h)(*ys)


@SETTINGS
@given(pair=composable(8))
def test_z3_preserves_composition_and_tensor(pair):
    f, g = pair
    xs = [z3.BitVec(f"x{i}", 8) for i in range(len(f.dom))]
    ys = [z3.BitVec(f"y{i}", 8) for i in range(len(g.dom))]
    assert prove(ToZ3()(f >> g)(*xs), ToZ3()(g)(*ToZ3()(f)(*xs))) == z3.unsat
    assert prove(ToZ3()(f @ g)(*xs, *ys), ToZ3()(f)(*xs) + ToZ3()(g)(*ys)) == z3.unsat


def test_identities_and_swaps_map_to_identities_and_swaps():
    ty = Operation("add", 8).cod
    assert Run()(ProgramDiagram.id(ty @ ty))(3, 4) == (3, 4)
    assert Run()(ProgramDiagram.swap(ty, ty))(3, 4) == (4, 3)
    assert Run()(ProgramDiagram.id())() == ()


# --- execution agrees with the z3 semantics ----------------------------------------------

@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_python_operations_match_the_z3_table_exhaustively(op):
    width, arity = 3, OPERATIONS[op]
    smt = THREE_ADDRESS.operations[op][1]
    for args in itertools.product(range(1 << width), repeat=arity):
        expected = z3.simplify(smt(*(z3.BitVecVal(a, width) for a in args))).as_long()
        assert PYTHON_OPERATIONS[op](width, (1 << width) - 1, *args) == expected, (op, args)


@SETTINGS
@given(f=st.integers(1, 3).flatmap(lambda n: programs(n, 16, tuple(OPERATIONS))),
       seed=st.integers(0, 1 << 16))
def test_run_agrees_with_z3_on_concrete_inputs(f, seed):
    for xs in words(len(f.dom), 16, seed)[:3]:
        terms = ToZ3()(f)(*(z3.BitVecVal(x, 16) for x in xs))
        assert Run()(f)(*xs) == tuple(z3.simplify(t).as_long() for t in terms)


# --- the two assembly syntaxes -----------------------------------------------------------

@SETTINGS
@given(f=st.integers(0, 3).flatmap(lambda n: programs(n, 32, tuple(OPERATIONS), 8)),
       seed=st.integers(0, 1 << 16))
def test_both_syntaxes_round_trip_by_execution(f, seed):
    three, two = ToThreeAddress()(f), ToTwoAddress()(f)
    back_three, back_two = parse_three_address(three), parse_two_address(two)
    assert back_three.dom == back_two.dom == f.dom and back_three.cod == back_two.cod == f.cod
    for xs in words(len(f.dom), 32, seed):
        expected = Run()(f)(*xs)
        assert Run()(back_three)(*xs) == expected, three
        assert Run()(back_two)(*xs) == expected, two
    # the text of what was read back means the same again (registers may differ)
    again = parse_two_address(ToTwoAddress()(back_three))
    assert Run()(again)(*words(len(f.dom), 32, seed)[0]) == Run()(f)(*words(len(f.dom), 32,
                                                                            seed)[0])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=st.integers(1, 2).flatmap(lambda n: programs(n, 6, tuple(FAST_OPS), 5)))
def test_both_syntaxes_mean_the_same_proved_by_z3(f):
    back_three = parse_three_address(ToThreeAddress()(f))
    back_two = parse_two_address(ToTwoAddress()(f))
    assert equivalence(f, back_three, timeout=5).status == "pass"
    assert equivalence(back_three, back_two, timeout=5).status == "pass"
    # and the three-address text is a symbolic Program of the THREE_ADDRESS ISA
    symbolic = three_address_program(ToThreeAddress()(f))
    fz = ToZ3()(f)
    assert bounded_equivalence(symbolic, lambda *xs: fz(*xs), width=6, timeout=5).status == \
        "pass"


def test_equivalence_finds_counterexamples():
    double = program("y = x + x", ["x"], ["y"], 8)
    square = program("y = x * x", ["x"], ["y"], 8)
    shift = program("y = x << 1", ["x"], ["y"], 8)
    assert equivalence(double, shift).status == "pass"
    verdict = equivalence(double, square)
    assert verdict.status == "fail" and "outputs differ" in verdict.reason
    assert equivalence(double, program("y = x", ["x"], ["y"], 16)).status == "fail"
    assert equivalence(Const(3, 8), Const(3, 8)).status == "pass"


def _evaluate_two_address_loads(lines: list[str], width: int) -> int:
    """An obviously-correct reading of li/lui/addi/shli into one register (reference)."""
    value = 0
    for line in lines:
        op, _, rest = line.partition(" ")
        k = int(rest.split(",")[1])
        assert -2048 <= k < 2048 or (op == "lui" and -(1 << 19) <= k < 1 << 19), line
        if op == "li":
            value = k
        elif op == "lui":
            value = k << 12
        elif op == "addi":
            value += k
        else:
            assert op == "shli" and k >= 0, line
            value <<= k
    return value % (1 << width)


def test_immediate_split_for_every_12_bit_constant_and_beyond():
    for k in range(4096):
        lines = load_immediate("r0", k, 32)
        assert _evaluate_two_address_loads(lines, 32) == k
        assert [line.split()[0] for line in lines] == (
            ["li"] if k < 2048 else ["lui", "addi"] if k % 4096 else ["lui"])
    rng = random.Random(0)
    beyond = [4096, 4097, 65535, 1 << 31, (1 << 31) - 1, (1 << 32) - 1, 0x7FFFF800, 0x7FFFFFFF,
              *(rng.getrandbits(32) for _ in range(500))]
    for k in beyond:
        lines = load_immediate("r0", k, 32)
        assert len(lines) <= 2 and _evaluate_two_address_loads(lines, 32) == k
    for width in (8, 12, 13, 48, 64):
        randoms = [rng.getrandbits(width) for _ in range(200)]
        for k in [(1 << width) - 1, 1 << (width - 1), *randoms]:
            assert _evaluate_two_address_loads(load_immediate("r0", k, width), width) == k


@pytest.mark.parametrize("k", [0, 1, 2047, 2048, 2049, 4095, 4096, 100_000, (1 << 31) + 5,
                               (1 << 32) - 1, (1 << 32) - 2048, (1 << 32) - 2049])
def test_large_constants_through_the_two_address_text(k):
    f = program(f"y = x + {k}\nz = x * {k}\nreturn y, z, {k}", ["x"], width=32)
    text = ToTwoAddress()(f)
    assert all(-2048 <= int(line.split(",")[-1]) < 2048 for line in text.splitlines()
               if line.split()[0] in ("li", "addi", "shli"))
    assert Run()(parse_two_address(text))(12345) == Run()(f)(12345)
    assert Run()(parse_three_address(ToThreeAddress()(f)))(12345) == Run()(f)(12345)


def test_register_allocation_reuses_registers():
    f = unroll(program("x = x * 3 + 1", ["x"], ["x"], 32), 20)
    for text in (ToThreeAddress()(f), ToTwoAddress()(f)):
        registers = {word.strip(",") for line in text.splitlines() for word in line.split()
                     if word.strip(",").startswith("r")}
        assert registers <= {"r0", "r1"}, text
    assert Run()(parse_two_address(ToTwoAddress()(f)))(5) == Run()(f)(5)


def test_two_address_copies_a_value_that_is_still_needed():
    f = program("y = x - 1\nreturn y, x", ["x"], width=8)
    text = ToTwoAddress()(f)
    assert "mov r1, r0" in text and Run()(parse_two_address(text))(0) == (255, 0)


def test_select_in_both_syntaxes():
    f = program("return select(c, a, b), a if c == 0 else b", ["c", "a", "b"], width=8)
    for c, a, b in [(0, 1, 2), (5, 1, 2), (1, 7, 7)]:
        expected = Run()(f)(c, a, b)
        assert expected == (a if c else b, b if c else a)
        assert Run()(parse_two_address(ToTwoAddress()(f)))(c, a, b) == expected
        assert Run()(parse_three_address(ToThreeAddress()(f)))(c, a, b) == expected


# --- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    (".in r0\nadd r1, r0, r0\n.out r1", "no .width line"),
    (".width 8\n.in r0\nadd r1, r0, r9\n.out r1", "r9 is read before it is written"),
    (".width 8\n.in r0\nfrob r1, r0, r0\n.out r1", "has no operation 'frob'"),
    (".width 8\n.in r0, x\n.out r0", "'x' is not a register"),
    (".width 8\n.in r0\n.org 3\n.out r0", "line 3: unknown directive '.org'"),
])
def test_three_address_errors(text, message):
    with pytest.raises(ProgramError, match=message):
        parse_three_address(text)


@pytest.mark.parametrize("text, message", [
    (".width 32\n.in r0\nli r0, 2048\n.out r0", "line 3: li takes a 12-bit signed immediate "
                                                r"\(-2048..2047\), not 2048"),
    (".width 32\n.in r0\nlui r0, 524288\n.out r0", "20-bit signed immediate"),
    (".width 32\n.in r0\nadd r0, 5\n.out r0", "add expects a register as operand 2, not '5'"),
    (".width 32\n.in r0\nadd r1, r0, r0\n.out r1", "add takes 2 operands, not 3"),
    (".width 32\n.in r0\nlw r0, 8(r1)\n.out r0", "has no instruction 'lw'"),
    (".width 32\n.in r0\naddi r0, r1\n.out r0", "expects an immediate as operand 2"),
    (".width 32\n.in r0\nadd r0, r1\n.out r0", "r1 is read before it is written"),
])
def test_two_address_errors(text, message):
    with pytest.raises(ProgramError, match=message):
        parse_two_address(text)


def test_functor_input_errors():
    f = program("y = x + 1", ["x"], ["y"], 8)
    with pytest.raises(ProgramError, match="takes 1 input, not 2"):
        Run()(f)(1, 2)
    with pytest.raises(ProgramError, match="input 0 must be a 8-bit z3 bitvector"):
        ToZ3()(f)(z3.BitVec("x", 16))
    mixed = f @ program("y = x + 1", ["x"], ["y"], 16)
    with pytest.raises(ProgramError, match="one word width"):
        ToThreeAddress()(mixed)
    assert Run()(mixed)(255, 65535) == (0, 0)


def test_draw_writes_a_png(tmp_path):
    f = program("t = x * y + 5000\nreturn t, x", ["x", "y"], width=8)
    data = DrawProgram()(f, tmp_path / "p.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 3000
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DrawProgram()(f, tmp_path / "missing" / "p.png")
