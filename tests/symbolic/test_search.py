"""The purely symbolic baseline (diagrammar.symbolic.search): blocks and whole programs are
found and proved equivalent, time limits hold, bad input is refused."""

from __future__ import annotations

import random
import time

import pytest

from diagrammar.functors.program_corpus import make_pair, pair_functions
from diagrammar.functors.programs import Run, parse_three_address, parse_two_address
from diagrammar.symbolic.equivalence import Program, bounded_equivalence
from diagrammar.symbolic.search import (
    ProgramSearchResult,
    SearchResult,
    _fits_hole,
    _solve,
    search_block,
    search_program,
)


def _equivalent(block: str, found: str, inputs, outputs, width: int = 32) -> bool:
    """The found two-address block against the source block: z3 on all inputs, and a run
    on random inputs through the two-address reader (an independent semantics)."""
    header = f".width {width}\n.in {', '.join(inputs)}\n"
    run = Run()(parse_two_address(f"{header}{found}\n.out {', '.join(outputs)}"))
    reference = Program.parse(block, inputs, outputs)
    source = Run()(parse_three_address(f"{header}{block}\n.out {', '.join(outputs)}"))
    rng = random.Random(1)
    for _ in range(200):
        values = [rng.getrandbits(width) for _ in inputs]
        if run(*values) != source(*values):
            return False
    target = Program.parse("\n".join(_as_three_address(line) for line in found.splitlines()),
                           inputs, outputs)
    return bounded_equivalence(target, reference, width=width, timeout=10).status == "pass"


def _as_three_address(line: str) -> str:
    """A filled two-address line as three-address (``op rd, rs`` is ``op rd, rd, rs``)."""
    op, _, rest = line.partition(" ")
    operands = [item.strip() for item in rest.split(",")]
    if op in ("neg", "not"):
        return f"{op} {operands[0]}, {operands[0]}"
    if op == "mov":
        return f"mov {operands[0]}, {operands[1]}"
    if op == "li":
        return f"mov {operands[0]}, {operands[1]}"
    if op == "lui":
        return f"mov {operands[0]}, {int(operands[1]) << 12}"
    if op == "addi":
        return f"add {operands[0]}, {operands[0]}, {operands[1]}"
    if op == "shli":
        return f"shl {operands[0]}, {operands[0]}, {operands[1]}"
    return f"{op} {operands[0]}, {operands[0]}, {operands[1]}"


@pytest.mark.parametrize("block, inputs, outputs", [
    ("mul r1, r1, r0", ["r1", "r0"], ["r1"]),
    ("add r1, r0, 5", ["r0"], ["r1"]),                       # an immediate
    ("sub r2, r0, 100", ["r0"], ["r2"]),                     # addi with a negative value
    ("xor r1, r0, 3000", ["r0"], ["r1"]),                    # lui; addi
    ("add r1, r1, r1\nshl r3, r2, 4", ["r1", "r2"], ["r1", "r3"]),
    ("mul r1, r0, r0\nsub r2, r0, r1", ["r0"], ["r2"]),
])
def test_small_blocks_are_found_and_equivalent(block, inputs, outputs):
    result = search_block(block, inputs, outputs, timeout=20)
    assert isinstance(result, SearchResult)
    assert result.status == "found", result
    assert result.length == len(result.text.splitlines()) >= 1
    assert result.skeletons >= 1 and result.fills >= 1
    assert _equivalent(block, result.text, inputs, outputs)


def test_a_block_that_needs_a_scratch_register():
    # r1 = r0 - r1, in place: with only sub, mov and immediates, and r0 live on, the
    # difference must be built outside r1
    block, inputs, outputs = "sub r1, r0, r1", ["r0", "r1"], ["r1"]
    result = search_block(block, inputs, outputs, timeout=20, scratch=["r9"])
    assert result.status == "found", result
    assert "r9" in result.text and "mov r0" not in result.text
    assert _equivalent(block, result.text, inputs, outputs)
    without = search_block(block, inputs, outputs, timeout=20, scratch=0,
                           max_length=3)
    assert without.status == "not-found", without


def test_the_shortest_program_is_found_first():
    result = search_block("add r0, r0, 1\nadd r0, r0, 1", ["r0"], ["r0"], timeout=10)
    assert result.status == "found" and result.text == "addi r0, 2"


def test_width_other_than_32():
    block = "mul r1, r0, 6\nadd r1, r1, 1"
    result = search_block(block, ["r0"], ["r1"], width=8, timeout=20)
    assert result.status == "found", result
    target = Program.parse("\n".join(_as_three_address(line)
                                     for line in result.text.splitlines()), ["r0"], ["r1"])
    reference = Program.parse(block, ["r0"], ["r1"])
    assert bounded_equivalence(target, reference, width=8).status == "pass"


def test_the_timeout_is_respected():
    hard = "\n".join(["mul r1, r0, 3001", "xor r2, r1, 2999", "sub r3, r2, r0",
                      "and r4, r3, 1234", "or r5, r4, 4000", "mul r5, r5, r1"])
    for limit in (0.2, 1.0):
        began = time.perf_counter()
        result = search_block(hard, ["r0"], ["r5"], timeout=limit)
        elapsed = time.perf_counter() - began
        assert result.status == "timeout", result
        assert elapsed < limit + 0.5 and result.seconds < limit + 0.5
        assert result.text is None and "limit" in result.reason


def test_not_found_when_the_space_is_exhausted():
    result = search_block("mul r1, r0, r0\nmul r1, r1, r1", ["r0"], ["r1"], timeout=20,
                          max_length=1)
    assert result.status == "not-found" and result.depth == 1


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_search_program_on_corpus_pairs(seed):
    pair = make_pair(random.Random(seed), lengths=(2, 3), constants=(0, 99))
    result = search_program(pair.source, [s for s, _ in pair.blocks], timeout=30)
    assert isinstance(result, ProgramSearchResult)
    assert result.status == "found", result
    assert result.found == len(pair.blocks) == len(result.blocks)
    lines = result.text.splitlines()
    assert lines[:2] == pair.source.splitlines()[:2]
    assert lines[-1] == pair.source.splitlines()[-1]
    found = Run()(parse_two_address(result.text))
    source = pair_functions(pair)[0]
    rng = random.Random(seed)
    for _ in range(100):
        values = [rng.getrandbits(32) for _ in pair.inputs]
        assert found(*values) == source(*values)


def test_search_program_dead_blocks_and_shared_budget():
    source = ".width 32\n.in r0\nadd r1, r0, 1\nmul r2, r0, r0\n.out r2"
    result = search_program(source, [(3, 3), (4, 4)], timeout=10)
    assert result.status == "found" and result.blocks[0] is None
    assert result.text == ".width 32\n.in r0\nmov r2, r0\nmul r2, r0\n.out r2"
    began = time.perf_counter()
    hard = ".width 32\n.in r0\nmul r1, r0, 3001\nxor r1, r1, 2999\nand r1, r1, 1234\n" \
           "or r1, r1, 4000\nmul r1, r1, r0\nadd r2, r1, 1\n.out r2"
    result = search_program(hard, [(3, 7), (8, 8)], timeout=1.0)
    assert time.perf_counter() - began < 1.5
    assert result.status == "timeout" and result.text is None
    assert result.blocks[0].status == "timeout" and result.blocks[1].status == "found"
    # the time the easy block left is spent on the hard one, not left idle
    assert result.seconds > 0.9 and result.blocks[0].seconds > 0.9


@pytest.mark.parametrize("block", [
    "add r1, r0",            # too few operands
    "frob r1, r0, r0",       # no such operation
    "add r1, r0, r7",        # r7 is read but never written
    "add r1, r0, @",         # not a register or immediate
])
def test_malformed_blocks_are_refused(block):
    began = time.perf_counter()
    with pytest.raises(ValueError):
        search_block(block, ["r0"], ["r1"], timeout=5)
    assert time.perf_counter() - began < 1


def test_other_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        search_block("add r1, r0, 1", ["r0"], ["r2"])         # r2 never written
    with pytest.raises(ValueError):
        search_block("add r1, r0, 1", ["r0"], ["r1"], operations=["frob"])
    with pytest.raises(ValueError):
        search_block("add r1, r0, 1", ["r0"], ["r1"], scratch=["r0"])
    with pytest.raises(ValueError):
        search_block("add r1, r0, 1", ["r0"], ["r1"], width=0)
    with pytest.raises(ValueError):
        search_program(".in r0\nadd r1, r0, 1\n.out r1", [(2, 9)], timeout=1)


def test_the_concrete_hole_solver_is_sound():
    # r = x + h on inputs 1, 2: h = 4 works, and a target off by one on one input has none
    x = (1, 2)
    hole = ("?", "addi", 0)
    term = ("add", False, x, hole)  # (op, constant on every input, *operands)
    assert _solve([term], [(5, 6)], 32, {}) is True
    assert _solve([term], [(5, 7)], 32, {}) is False
    assert _solve([term], [(5000, 5001)], 32, {}) is False  # 4999 does not fit addi
    assert _solve([("or", False, x, ("?", "li", 0))], [(3, 5)], 32, {}) is False
    assert _solve([("or", False, x, ("?", "li", 0))], [(7, 6)], 32, {}) is True
    assert _fits_hole("lui", 5 << 12, 32) and not _fits_hole("lui", 5, 32)
    assert _fits_hole("li", (1 << 32) - 1, 32) and not _fits_hole("li", 4096, 32)
