"""The purely symbolic baseline of the Guess & Sketch comparison: enumerative synthesis of
two-address code from three-address code, with **no model guess**.

Guess & Sketch (:mod:`diagrammar.symbolic.blocks`) lets a language model guess the target
program and hands only the unsure immediates to the solver. This module answers the control
question "what does a solver alone achieve in the same time?": :func:`search_block` finds a
two-address block equivalent to a three-address block by enumerating candidate programs
("skeletons") by increasing length (iterative deepening); each immediate operand is a hole
``?`` filled by :func:`~diagrammar.symbolic.sketch.fill` (z3 CEGIS), which also proves the
candidate equivalent on every ``width``-bit input. It knows the target ISA and nothing of
how the corpus compiles a line (it never calls
:func:`~diagrammar.functors.program_corpus.compile_line`).

Vocabulary: the two-address forms of the operations the source block uses (``op rd, rs``,
``neg rd``, ``not rd``; ``shl`` by a constant as ``shli rd, ?``), plus ``mov rd, rs`` and
the immediate loads ``li rd, ?``, ``lui rd, ?``, ``addi rd, ?`` that any block may need: a
spec-derived restriction, standard in enumerative synthesis (``operations=`` widens it).
Destinations are the block's outputs (and any ``registers=``) and ``scratch`` registers; a
register live after the block but not an output is never written.

Pruning, by increasing cost:

- **structure**: no read of an uninitialised register (scratch, outputs that are not
  inputs); no write whose value is never read (overwritten unread, or a scratch register
  left unread at the end); no instruction that leaves its register unchanged (on the
  test inputs below); of two adjacent independent instructions only one order
  (canonical); constants are loaded as ``li`` or ``lui; addi`` only (no other instruction
  may act on a freshly loaded, unread constant: at ``width <= 32`` ``lui; addi`` loads
  every word in two instructions);
- **concrete filter**: every prefix is run on a few random inputs, with hole-dependent
  values kept as small symbolic terms; outputs still wrong (concretely, or a hole-only
  constant where the source's output varies) must be at most the instructions left;
  prefixes reaching a state already seen at the same or a smaller depth are cut
  (observational equivalence on those inputs);
- **cheap hole checks**: a complete skeleton whose outputs depend on holes is first solved
  concretely where its terms invert simply (``add``, ``sub``, ``xor``, ``neg``, ``not``
  exactly; ``mul``, ``shl``, ``and``, ``or`` by their few preimages or bit by bit): the
  hole values that fit the first test input, then a check on all of them and of the
  holes' ranges; other terms go to z3 on three test inputs (results cached by the
  outputs' terms). Only then does :func:`~diagrammar.symbolic.sketch.fill`'s full CEGIS
  run; it is the final judge.

The test inputs make the concrete filter and the state cache heuristic only up to a
collision on all of them (random ``width``-bit words; vanishingly rare at 32 bits); a
program reported ``found`` is always proved equivalent by z3.

>>> result = search_block("add r1, r0, 5", ["r0"], ["r1"], timeout=10)
>>> result.status
'found'
>>> print(result.text)
mov r1, r0
addi r1, 5

:func:`search_program` searches every block of a whole program, sharing one time budget.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import z3

from diagrammar.symbolic.blocks import interfaces, split_blocks
from diagrammar.symbolic.equivalence import THREE_ADDRESS, Program, ProgramError
from diagrammar.symbolic.sketch import Sketch, SketchError, fill
from diagrammar.symbolic.words import PYTHON_OPERATIONS

SearchStatus = Literal["found", "not-found", "timeout"]

#: Binary operations a two-address ``op rd, rs`` may use (those of the source block are
#: the default vocabulary).
BINARY_OPERATIONS = ("add", "sub", "mul", "and", "or", "xor", "shl", "lshr", "ashr",
                     "udiv", "urem", "sdiv", "srem", "eq", "ne", "ult", "ule", "slt", "sle")
_IMMEDIATE = ("li", "lui", "addi", "shli")
_HEADER = re.compile(r"\s*\.(width|in|out)\b")
_TESTS = 8
_QUICK = 3


class _Timeout(Exception):
    pass


@dataclass(frozen=True)
class SearchResult:
    """:func:`search_block`'s answer: ``status`` (``"found"``: ``text`` is proved
    equivalent; ``"not-found"``: no program of at most ``max_length`` instructions;
    ``"timeout"``), the two-address ``text`` (no header), its ``length``, the ``seconds``
    spent, the number of complete ``skeletons`` tried, of cheap z3 checks (``quick_checks``)
    and of CEGIS calls (``fills``), the ``depth`` (length) reached and a ``reason``."""

    status: SearchStatus
    text: str | None
    length: int
    seconds: float
    skeletons: int
    quick_checks: int
    fills: int
    depth: int
    reason: str


@dataclass(frozen=True)
class ProgramSearchResult:
    """:func:`search_program`'s answer: ``status`` (``"found"`` when every block was
    found; else ``"timeout"`` when some block ran out of time, else ``"not-found"``), the
    whole two-address ``text`` with the source's header and ``.out`` line (``None`` unless
    found), each block's :class:`SearchResult` (``None`` for a dead block, emitted empty),
    the ``seconds`` spent and the number of blocks ``found`` (dead ones included)."""

    status: SearchStatus
    text: str | None
    blocks: tuple[SearchResult | None, ...]
    seconds: float
    found: int


@dataclass(frozen=True)
class _Instr:
    key: int
    op: str  # a binary operation, "mov", "neg", "not", or an immediate op
    dest: int
    source: int | None  # the second register (binary ops, mov)
    reads: frozenset[int]

    def text(self, names: Sequence[str]) -> str:
        if self.op in _IMMEDIATE:
            return f"{self.op} {names[self.dest]}, ?"
        if self.op in ("neg", "not"):
            return f"{self.op} {names[self.dest]}"
        return f"{self.op} {names[self.dest]}, {names[self.source]}"


@dataclass
class _Stats:
    skeletons: int = 0
    quick_checks: int = 0
    fills: int = 0
    nodes: int = 0
    cache: dict = field(default_factory=dict)


def _is_term(value) -> bool:
    return type(value) is tuple and type(value[0]) is str


def _constant(value) -> bool:
    """Whether a value is the same on every test input (a hole-only term is)."""
    if value is None:
        return False
    if not _is_term(value):
        return all(v == value[0] for v in value)
    if value[0] == "?":
        return True
    return value[1]


def _node(op: str, *args) -> tuple:
    """A hole-dependent value: ``(op, constant, *args)``, where ``constant`` says whether
    it is the same on every test input (hole leaves are ``("?", kind, number)``)."""
    return (op, all(_constant(arg) for arg in args), *args)


def _vocabulary(program: Program, operations: Sequence[str] | None) -> list[str]:
    if operations is None:
        used = {op for _, op, _ in program.instructions}
        operations = [op for op in (*BINARY_OPERATIONS, "neg", "not") if op in used]
        if "shl" in used:
            shifts = [args for _, op, args in program.instructions if op == "shl"]
            if all(isinstance(args[1], int) for args in shifts):
                operations.remove("shl")
            operations.append("shli")
        operations += ["mov", "li", "lui", "addi"]
    known = {*BINARY_OPERATIONS, "neg", "not", "mov", *_IMMEDIATE}
    unknown = sorted(set(operations) - known)
    if unknown:
        raise ValueError(f"the two-address ISA has no operations {unknown}")
    return list(dict.fromkeys(operations))


def _instructions(operations: Sequence[str], writable: Sequence[int],
                  count: int) -> list[_Instr]:
    result: list[_Instr] = []
    for op in operations:
        for dest in writable:
            if op in ("li", "lui"):
                result.append(_Instr(len(result), op, dest, None, frozenset()))
            elif op in ("addi", "shli", "neg", "not"):
                result.append(_Instr(len(result), op, dest, None, frozenset({dest})))
            else:
                for source in range(count):
                    if op == "mov" and source == dest:
                        continue
                    reads = {source} if op == "mov" else {dest, source}
                    result.append(_Instr(len(result), op, dest, source, frozenset(reads)))
    return result


def _independent(a: _Instr, b: _Instr) -> bool:
    return a.dest != b.dest and a.dest not in b.reads and b.dest not in a.reads


def search_block(source_block: str, inputs: Sequence[str], outputs: Sequence[str], *,
                 width: int = 32, timeout: float = 10.0,
                 registers: Sequence[str] | None = None, scratch: int | Sequence[str] = 1,
                 max_length: int = 8, min_length: int = 1,
                 operations: Sequence[str] | None = None, seed: int = 0) -> SearchResult:
    """A two-address program equal to the three-address ``source_block`` (instruction
    lines, no header) from ``inputs`` to ``outputs`` on every ``width``-bit input, by
    iterative deepening from ``min_length`` (lengths below it are skipped: a caller that
    knows them exhausted) up to ``max_length`` instructions within ``timeout`` seconds.

    Destinations are the outputs, any further ``registers`` given (none by default: any
    other register may be live after the block) and the ``scratch`` registers (a count of
    fresh ones named ``s0``, ``s1``, ..., or their names); ``operations`` replaces the
    vocabulary (module docstring). A
    source block that cannot be read raises :class:`ValueError`; solver failures are never
    raised (a candidate z3 cannot decide is skipped).

    >>> result = search_block("mul r1, r0, r0\\nsub r2, r0, r1", ["r0"], ["r2"], timeout=10)
    >>> result.status, result.text.splitlines()  # r0 - r0 * r0 == (1 - r0) * r0
    ('found', ['li r2, 1', 'sub r2, r0', 'mul r2, r0'])
    >>> search_block("add r1, r0", ["r0"], ["r1"])
    Traceback (most recent call last):
    ...
    ValueError: the source block: instruction 1 (r1 = add r0): add takes 2 operands, not 1
    """
    start = time.perf_counter()
    end = time.monotonic() + max(0.0, timeout)
    try:
        reference = Program.parse(source_block, inputs, outputs)
    except ProgramError as error:
        raise ValueError(f"the source block: {error}") from None
    if not 1 <= width <= 512:
        raise ValueError(f"a width of {width} bits is outside 1..512")
    if not outputs:
        raise ValueError("the block has no outputs")
    if min_length < 1:
        raise ValueError(f"min_length is at least 1, not {min_length}")
    vocabulary = _vocabulary(reference, operations)
    used = {*inputs, *outputs, *(d for d, _, _ in reference.instructions),
            *(a for _, _, args in reference.instructions for a in args if isinstance(a, str))}
    if isinstance(scratch, int):
        scratch_names = [f"s{i}" for i in range(10 * scratch + len(used))
                         if f"s{i}" not in used][:scratch]
    else:
        scratch_names = list(scratch)
        clash = sorted(set(scratch_names) & used)
        if clash:
            raise ValueError(f"the scratch registers {clash} are used by the block")
    writable_names = list(dict.fromkeys([*outputs, *(registers or ()), *scratch_names]))
    names = list(dict.fromkeys([*inputs, *outputs, *writable_names]))
    index = {name: i for i, name in enumerate(names)}
    writable = [index[name] for name in writable_names]
    output_ids = [index[name] for name in outputs]
    must_read = [i for i in writable if names[i] not in outputs]
    instrs = _instructions(vocabulary, writable, len(names))

    mask = (1 << width) - 1
    rng = random.Random(seed)
    tests = [tuple(rng.getrandbits(width) for _ in inputs) for _ in range(_TESTS)]
    expected = _run_reference(reference, tests, width)
    initial: list = [None] * len(names)
    for i, name in enumerate(inputs):
        initial[index[name]] = tuple(t[i] for t in tests)
    target = [expected[k] for k in range(len(outputs))]
    target_constant = [_constant(v) for v in target]
    stats = _Stats()
    small = width <= 32
    context = z3.Context()
    solver = z3.Solver(ctx=context)
    found: list[str] = []
    constants: dict[int, z3.BitVecRef] = {}

    def result(status: SearchStatus, reason: str, depth: int,
               text: str | None = None) -> SearchResult:
        length = len(text.splitlines()) if text else 0
        return SearchResult(status, text, length, time.perf_counter() - start,
                            stats.skeletons, stats.quick_checks, stats.fills, depth, reason)

    position = {i: k for k, i in enumerate(output_ids)}

    def wrong_one(k: int, value) -> int:
        """1 if output ``k`` holding ``value`` is certainly wrong, else 0."""
        if value is None:
            return 1
        if _is_term(value):
            return int(_constant(value) and not target_constant[k])
        return int(value != target[k])

    def fresh_lui(value) -> bool:
        return _is_term(value) and value[0] == "?" and value[1] == "lui"

    def apply(instr: _Instr, values: list, holes: int):
        op = instr.op
        current = values[instr.dest]
        if op in ("li", "lui"):
            return ("?", op, holes)
        if op == "addi" and small and fresh_lui(current):
            return ("?", "word", current[2])  # lui; addi: any word
        if op in ("addi", "shli"):
            return _node("shl" if op == "shli" else "add", current, ("?", op, holes))
        if op in ("neg", "not"):
            if _is_term(current):
                return _node(op, current)
            function = PYTHON_OPERATIONS[op]
            return tuple(function(width, mask, a) for a in current)
        other = values[instr.source]
        if op == "mov":
            return other
        if _is_term(current) or _is_term(other):
            return _node(op, current, other)
        function = PYTHON_OPERATIONS[op]
        return tuple(function(width, mask, a, b) for a, b in zip(current, other))

    def complete(program: list[_Instr], values: list, holes: int, depth: int) -> str | None:
        stats.skeletons += 1
        symbolic = [k for k, i in enumerate(output_ids) if _is_term(values[i])]
        if symbolic:
            key = tuple(values[output_ids[k]] for k in symbolic)
            verdict = stats.cache.get(key)
            if verdict is None:
                terms = [values[output_ids[k]] for k in symbolic]
                verdict = _solve(terms, [target[k] for k in symbolic], width, {})
                if verdict is None:
                    verdict = quick(symbolic, values)
                stats.cache[key] = verdict
            if not verdict:
                return None
        text = "\n".join(instr.text(names) for instr in program)
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise _Timeout
        stats.fills += 1
        try:
            sketch = Sketch.parse(text, list(inputs), list(outputs))
            answer = fill(sketch, reference, width=width, timeout=remaining)
        except (SketchError, z3.Z3Exception, ValueError):
            return None
        if answer.status == "filled":
            return answer.text
        return None

    def quick(symbolic: list[int], values: list) -> bool:
        """Whether hole values exist that give the right outputs on a few test inputs."""
        stats.quick_checks += 1
        holes: dict[int, z3.BitVecRef] = {}

        def word(term, j):
            if not _is_term(term):
                number = term[j]
                if number not in constants:
                    constants[number] = z3.BitVecVal(number, width, context)
                return constants[number]
            if term[0] == "?":
                _, op, number = term
                if number not in holes and op == "word":
                    holes[number] = z3.BitVec(f"h{number}", width, context)
                if number not in holes:
                    bits = 20 if op == "lui" else 12
                    variable = z3.BitVec(f"h{number}", bits, context)
                    value = (z3.SignExt(width - bits, variable) if bits < width
                             else z3.Extract(width - 1, 0, variable))
                    if op == "lui":
                        value = value << 12
                    if op == "shli":
                        solver.add(z3.ULE(variable, min(width - 1, 2047)))
                    holes[number] = value
                return holes[number]
            function = THREE_ADDRESS.operations[term[0]][1]
            return function(*[word(arg, j) for arg in term[2:]])

        solver.push()
        try:
            for j in range(min(_QUICK, len(tests))):
                for k in symbolic:
                    solver.add(word(values[output_ids[k]], j)
                               == word(target[k], j))
            solver.set("timeout", max(1, int(min(0.5, end - time.monotonic()) * 1000)))
            answer = solver.check()
        except z3.Z3Exception:
            return False
        finally:
            solver.pop()
        return answer != z3.unsat

    def dfs(program: list[_Instr], values: list, pending: list[bool], fresh: list,
            holes: int, errors: int, length: int, seen: dict) -> None:
        stats.nodes += 1
        if time.monotonic() >= end:
            raise _Timeout
        depth = len(program)
        left = length - depth
        if left == 0:
            if any(pending[i] for i in must_read):
                return
            answer = complete(program, values, holes, depth)
            if answer is not None:
                found.append(answer)
            return
        last = program[-1] if program else None
        for instr in instrs:
            dest = instr.dest
            if any(values[r] is None for r in instr.reads):
                continue
            if pending[dest] and dest not in instr.reads:
                continue  # the value written before is never read
            if last is not None and instr.key < last.key and _independent(last, instr):
                continue
            op = instr.op
            if small and fresh[dest] is not None and op in ("addi", "shli", "neg", "not") \
                    and not (op == "addi" and fresh[dest] == "lui"):
                continue  # a constant longer than lui; addi
            new = apply(instr, values, holes)
            if new == values[dest]:
                continue
            values2 = list(values)
            values2[dest] = new
            errors2 = errors
            if dest in position:
                k = position[dest]
                errors2 += wrong_one(k, new) - wrong_one(k, values[dest])
            if errors2 > left - 1:
                continue
            pending2 = list(pending)
            fresh2 = list(fresh)
            for r in instr.reads:
                pending2[r] = False
                if r != dest:
                    fresh2[r] = None
            pending2[dest] = True
            if op in ("li", "lui"):
                fresh2[dest] = op
            elif op == "addi" and fresh[dest] == "lui":
                fresh2[dest] = "luiaddi"
            else:
                fresh2[dest] = None
            key = (tuple(values2), tuple(pending2), tuple(fresh2))
            if seen.get(key, length + 1) <= depth + 1:
                continue
            seen[key] = depth + 1
            holes2 = holes + (op in _IMMEDIATE)
            program.append(instr)
            dfs(program, values2, pending2, fresh2, holes2, errors2, length, seen)
            program.pop()
            if found:
                return

    depth = 0
    try:
        for length in range(min_length, max_length + 1):
            depth = length
            dfs([], list(initial), [False] * len(names), [None] * len(names), 0,
                sum(wrong_one(k, initial[i]) for k, i in enumerate(output_ids)), length, {})
            if found:
                return result("found", f"a {length}-instruction program, proved equivalent",
                              length, found[0])
    except _Timeout:
        return result("timeout", f"ran past the {timeout:g} s limit while searching "
                      f"length {depth}", depth)
    return result("not-found", f"no program of at most {max_length} instructions",
                  max_length)


def _holes(term, found: list) -> list:
    """The hole leaves of a term (with repeats)."""
    if _is_term(term):
        if term[0] == "?":
            found.append(term)
        else:
            for arg in term[2:]:
                _holes(arg, found)
    return found


def _evaluate(term, j: int, width: int, values: dict) -> int:
    if not _is_term(term):
        return term[j]
    if term[0] == "?":
        return values[term[2]]
    mask = (1 << width) - 1
    return PYTHON_OPERATIONS[term[0]](width, mask, *[_evaluate(arg, j, width, values)
                                                     for arg in term[2:]])


def _fits_hole(kind: str, value: int, width: int) -> bool:
    """Whether a hole of ``kind`` can give the word ``value``."""
    mask = (1 << width) - 1
    signed = value - (1 << width) if value >> (width - 1) else value
    if kind == "word":
        return True
    if kind in ("li", "addi"):
        return -2048 <= signed <= 2047 or (width <= 12)
    if kind == "shli":
        return value <= min(width - 1, 2047)
    # lui: k << 12 for a 20-bit signed k
    return any(((k << 12) & mask) == value for k in
               ({(signed >> 12)} if signed >> 12 in range(-(1 << 19), 1 << 19) else set())
               | ({0} if width <= 12 else set()))


_MAX_BRANCH = 16


def _invert(term, target: tuple[int, ...], width: int, values: dict,
            hole) -> list[int] | None:
    """The values of ``hole`` (the one unknown leaf of ``term``) that make ``term`` equal
    ``target`` on the first ``len(target)`` test inputs (necessary conditions: the caller
    checks the candidates on all inputs); ``None`` when the inversion is not simple. Exact
    inverses (add, sub, xor, neg, not) keep every input; mul and shl (several preimages)
    keep the first only; and/or are solved bit by bit when the hole is their operand."""
    mask = (1 << width) - 1
    if term is hole:
        return [target[0]] if all(t == target[0] for t in target) else []
    op = term[0]
    if op in ("neg", "not"):
        flip = tuple((-t if op == "neg" else ~t) & mask for t in target)
        return _invert(term[2], flip, width, values, hole)
    left, right = term[2], term[3]
    on_left = _is_term(left) and any(h is hole for h in _holes(left, []))
    known, unknown = (right, left) if on_left else (left, right)
    cs = tuple(_evaluate(known, j, width, values) for j in range(len(target)))
    if op == "add":
        return _invert(unknown, tuple((t - c) & mask for t, c in zip(target, cs)), width,
                       values, hole)
    if op == "xor":
        return _invert(unknown, tuple(t ^ c for t, c in zip(target, cs)), width, values,
                       hole)
    if op == "sub":
        return _invert(unknown, tuple((t + c if on_left else c - t) & mask
                                      for t, c in zip(target, cs)), width, values, hole)
    if op in ("and", "or") and unknown is not hole:
        forced = [(t if op == "and" else ~t & mask) & ~(c if op == "and" else ~c & mask)
                  & mask for t, c in zip(target, cs)]
        return [] if any(forced) else None  # a bit the constant operand forces is wrong
    if op in ("and", "or"):
        ones = zeros = 0
        for t, c in zip(target, cs):
            decided = c if op == "and" else ~c & mask  # the bits X decides
            if (t if op == "and" else ~t & mask) & ~decided & mask:
                return []  # a bit the constant operand forces is wrong
            ones |= t & decided
            zeros |= ~t & decided & mask
        if ones & zeros:
            return []
        free = ~(ones | zeros) & mask
        return [ones, ones | (free & ~0x7FF & mask)]  # either sign of a short immediate
    t, c = target[0], cs[0]
    candidates: list[int] = []
    if op == "mul" and c:
        zeros = (c & -c).bit_length() - 1
        if zeros > 4:
            return None
        if t & ((1 << zeros) - 1):
            return []
        modulus = 1 << (width - zeros)
        base = (t >> zeros) * pow(c >> zeros, -1, modulus) % modulus if modulus > 1 else 0
        candidates = [base + k * modulus for k in range(1 << zeros)]
    elif op == "shl" and on_left and c < width:
        if c > 4:
            return None
        if t & ((1 << c) - 1):
            return []
        modulus = 1 << (width - c)
        candidates = [(t >> c) + k * modulus for k in range(1 << c)]
    elif op == "shl" and not on_left and unknown is hole:
        return [s for s in range(min(width, 2048))
                if PYTHON_OPERATIONS["shl"](width, mask, c, s) == t]
    else:
        return None
    result: list[int] = []
    for candidate in candidates:
        inner = _invert(unknown, (candidate,), width, values, hole)
        if inner is None:
            return None
        result.extend(inner)
    return result


def _solve(terms: list, targets: list, width: int, values: dict) -> bool | None:
    """Whether hole values make every term equal its target on every test input, found by
    inverting one term at a time on the first input and checking on all; ``None`` when the
    terms are beyond these simple inversions (the caller asks z3)."""
    pending = [(t, g) for t, g in zip(terms, targets)
               if any(h[2] not in values for h in _holes(t, []))]
    if not pending:
        return all(_evaluate(t, j, width, values) == g[j]
                   for t, g in zip(terms, targets) for j in range(len(g)))
    for term, goal in pending:
        unknown = [h for h in _holes(term, []) if h[2] not in values]
        if len(unknown) != 1:
            continue
        hole = unknown[0]
        try:
            candidates = _invert(term, goal, width, values, hole)
        except (KeyError, ValueError):
            candidates = None
        if candidates is None or len(candidates) > _MAX_BRANCH * 4:
            continue
        undecided = False
        for value in dict.fromkeys(candidates):
            if not _fits_hole(hole[1], value, width):
                continue
            answer = _solve(terms, targets, width, {**values, hole[2]: value})
            if answer:
                return True
            undecided |= answer is None
        return None if undecided else False
    return None


def _run_reference(reference: Program, tests: list[tuple[int, ...]],
                   width: int) -> list[tuple[int, ...]]:
    """The reference's outputs on each test input, as one tuple per output."""
    mask = (1 << width) - 1
    columns: dict[str, tuple[int, ...]] = {
        name: tuple(t[i] for t in tests) for i, name in enumerate(reference.inputs)}
    for dest, op, args in reference.instructions:
        operands = [columns[a] if isinstance(a, str) else (a & mask,) * len(tests)
                    for a in args]
        function = PYTHON_OPERATIONS[op]
        columns[dest] = tuple(function(width, mask, *row) for row in zip(*operands))
    return [columns[name] for name in reference.outputs]


def search_program(source_text: str, source_blocks: Sequence[tuple[int, int]], *,
                   timeout: float, width: int = 32, max_length: int = 8) -> ProgramSearchResult:
    """Search a two-address program for the whole three-address ``source_text`` (with its
    ``.width``/``.in``/``.out`` header), block by block: ``source_blocks`` are 1-based
    inclusive line ranges (the first elements of
    :attr:`~diagrammar.functors.program_corpus.ProgramPair.blocks`); each block's inputs
    and outputs come from :func:`~diagrammar.symbolic.blocks.interfaces`. Budget: block
    ``i`` of ``n`` gets the time left divided by the ``n - i`` blocks left, so time a
    block does not use passes on to the later ones; when all have been tried, the blocks
    that ran out of time are searched again, from the length they had reached, sharing the
    time still left in the same way, until none is left or every block is decided. One
    scratch register, fresh in the whole program (``r<max + 1>`` for ``r``-numbered
    registers), serves every block. A dead block (no outputs) is emitted empty; the search
    goes on after a block fails, so every block's result is reported (its counts and
    seconds summed over its passes). Blocks may be as fine as single lines (``[(i, i) for
    i in ...]``): statement by statement is a far easier search than block by block.

    >>> source = ".width 32\\n.in r0\\nadd r1, r0, 7\\nmul r1, r1, r0\\n.out r1"
    >>> result = search_program(source, [(3, 3), (4, 4)], timeout=20)
    >>> result.status
    'found'
    >>> print(result.text)
    .width 32
    .in r0
    mov r1, r0
    addi r1, 7
    mul r1, r0
    .out r1
    """
    start = time.perf_counter()
    end = time.monotonic() + max(0.0, timeout)
    lines = source_text.splitlines()
    ranges = [(int(first), int(last)) for first, last in source_blocks]
    for first, last in ranges:
        if not 1 <= first <= last <= len(lines):
            raise ValueError(f"the block ({first}, {last}) is not a line range of the "
                             f"source (1..{len(lines)})")
    header = [line for line in lines if _HEADER.match(line)]
    head = [line for line in header if not re.match(r"\s*\.out\b", line)]
    tail = [line for line in header if re.match(r"\s*\.out\b", line)]
    blocks = [(r, r) for r in ranges]
    texts = split_blocks(source_text, ranges)
    tokens = set(re.findall(r"[A-Za-z_%][A-Za-z_0-9.]*", source_text))
    numbers = [int(n) for n in re.findall(r"\br(\d+)\b", source_text)]
    scratch = next(name for name in [f"r{max(numbers, default=-1) + 1}",
                                     *(f"s{i}" for i in range(len(tokens) + 1))]
                   if name not in tokens)
    faces = interfaces(source_text, blocks)
    results: list[SearchResult | None] = [None] * len(texts)
    todo = [i for i, (_, outputs) in enumerate(faces) if outputs]
    while todo and (not any(results) or end - time.monotonic() > 0.01):
        for n, i in enumerate(todo):
            share = max(0.0, end - time.monotonic()) / (len(todo) - n)
            before = results[i]
            answer = search_block(texts[i], *faces[i], width=width, timeout=share,
                                  scratch=[scratch], max_length=max_length,
                                  min_length=before.depth if before else 1)
            if before is not None:
                answer = replace(answer, seconds=before.seconds + answer.seconds,
                                 skeletons=before.skeletons + answer.skeletons,
                                 quick_checks=before.quick_checks + answer.quick_checks,
                                 fills=before.fills + answer.fills)
            results[i] = answer
        todo = [i for i in todo if results[i].status == "timeout"]
    body = [line for r in results if r is not None and r.status == "found"
            for line in r.text.splitlines()]
    statuses = [r.status for r in results if r is not None]
    found = sum(1 for r in results if r is None or r.status == "found")
    if all(s == "found" for s in statuses):
        status: SearchStatus = "found"
        text = "\n".join([*head, *body, *tail])
    else:
        status = "timeout" if "timeout" in statuses else "not-found"
        text = None
    return ProgramSearchResult(status, text, tuple(results), time.perf_counter() - start,
                               found)


__all__ = ["BINARY_OPERATIONS", "ProgramSearchResult", "SearchResult", "SearchStatus",
           "search_block", "search_program"]
