"""Sketches and their solver: the "Sketch" half of Guess & Sketch (Lee et al., 2023).

A language model guesses a target assembly program; the lines it is unsure of become a
:class:`Sketch`, where immediate operands are *holes* (``?``); opcodes and destination
registers stay as guessed. :func:`fill` then searches for hole values that make the target
equal to the reference (source) program on every ``width``-bit input: an exists-forall
problem, solved by CEGIS (counterexample-guided inductive synthesis): z3 picks hole values
that agree with the reference on a finite set of inputs, :func:`bounded_equivalence` checks
them on all inputs, and a counterexample joins the set. No values even on the finite set:
``impossible``; the time limit or the iteration bound reached first: ``unknown``.

Two syntaxes, those of :mod:`diagrammar.functors.programs`, with an optional header
(``.width 32``, ``.in r0``, ``.out r0``):

- ``"two-address"``: ``op rd, rs`` means ``rd = rd op rs``; ``neg rd``, ``not rd``,
  ``mov rd, rs``, ``cmovz rd, rc, rs`` (``rd = rs`` where ``rc == 0``); immediates in
  ``li rd, k`` and ``addi rd, k`` (12-bit signed), ``lui rd, k`` (``k << 12``, ``k`` 20-bit
  signed) and ``shli rd, k`` (a hole there ranges over the shifts ``0 .. width - 1``);
- ``"three-address"``: ``op rd, a, b`` with :data:`THREE_ADDRESS` operations, where an
  operand is a register or an immediate of any size (a hole there is any word).

>>> sketch = Sketch.parse(".in r0\\nlui r1, ?\\naddi r1, ?\\nadd r0, r1\\n.out r0")
>>> [(hole.name, hole.op, hole.range(32)) for hole in sketch.holes]
[('h1', 'lui', (-524288, 524287)), ('h2', 'addi', (-2048, 2047))]
>>> reference = Program.parse("add r0, r0, 100000", ["r0"], ["r0"])
>>> result = fill(sketch, reference, width=32)
>>> result.status, result.values
('filled', {'h1': 24, 'h2': 1696})
>>> print(result.text)
.in r0
lui r1, 24
addi r1, 1696
add r0, r1
.out r0

:func:`holes_from_guess` makes the sketch from a guess and its low-confidence lines:

>>> guess = ".in r0\\nlui r1, 25\\naddi r1, 1696\\nadd r0, r1\\n.out r0"
>>> print(holes_from_guess(guess, [2]).text)
.in r0
lui r1, ?
addi r1, 1696
add r0, r1
.out r0
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import z3

from diagrammar.symbolic.directives import read_directive
from diagrammar.symbolic.equivalence import (
    PROGRAM_LIMITS,
    THREE_ADDRESS,
    Function,
    Program,
    ProgramError,
    bounded_equivalence,
)
from diagrammar.symbolic.limits import Deadline, Limits, watchdog

Syntax = Literal["two-address", "three-address"]
Status = Literal["filled", "impossible", "unknown"]

IMMEDIATE_BITS = 12
UPPER_BITS = 20
_IMMEDIATE_OPS = {"li": IMMEDIATE_BITS, "addi": IMMEDIATE_BITS, "shli": IMMEDIATE_BITS,
                  "lui": UPPER_BITS}
_REGISTER = re.compile(r"[A-Za-z_%][A-Za-z_0-9.]*\Z")
_NUMBER = re.compile(r"[#$]?[-+]?(0[xX][0-9a-fA-F]{1,128}|0[bB][01]{1,512}|\d{1,155})\Z")
_COMMENT = re.compile(r";|//|#(?![-+0-9])")


class SketchError(ProgramError):
    """A sketch (or guess) that cannot be read: the message names the line."""


@dataclass(frozen=True)
class Hole:
    """One unknown operand: ``name`` (``h1``, ``h2``, ... in text order), the text ``line``
    (1-based) and ``op`` it sits in, and the ``bits`` of its field (``None``: a whole word).
    """

    name: str
    line: int
    op: str
    bits: int | None

    def range(self, width: int) -> tuple[int, int]:
        """The values the hole may take (signed) in a ``width``-bit word."""
        if self.op == "shli":
            return 0, min(width - 1, (1 << (IMMEDIATE_BITS - 1)) - 1)
        bits = self.bits or width
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class _Slot:
    """Where a hole's value enters an instruction (shifted left by ``shift``: ``lui``)."""

    index: int
    shift: int = 0


@dataclass(frozen=True)
class Sketch:
    """A target program with holes, read by :meth:`parse`. ``instructions`` are
    three-address ``(dest, op, args)`` (the two-address syntax lowered as
    :func:`~diagrammar.functors.programs.parse_two_address` does) where an argument may be
    a hole's slot; ``lines`` is the text, kept to write the filled program."""

    lines: tuple[str, ...]
    instructions: tuple[tuple[str, str, tuple], ...]
    holes: tuple[Hole, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    syntax: Syntax = "two-address"
    width: int | None = None
    _line_holes: tuple[tuple[int, tuple[int, ...]], ...] = field(default=(), repr=False)
    _numbers: tuple[int, ...] = field(default=(), repr=False)

    @classmethod
    def parse(cls, text: str, inputs: Sequence[str] | None = None,
              outputs: Sequence[str] | None = None, *, syntax: Syntax = "two-address",
              limits: Limits = PROGRAM_LIMITS) -> Sketch:
        """Read a sketch: one instruction a line, ``?`` for a hole; ``inputs`` and
        ``outputs`` default to the ``.in`` and ``.out`` lines.

        >>> Sketch.parse("li r1, ?\\nmul r0, r1", ["r0"], ["r0"]).holes[0].range(32)
        (-2048, 2047)
        >>> Sketch.parse("add r0, ?", ["r0"], ["r0"])
        Traceback (most recent call last):
        ...
        diagrammar.symbolic.sketch.SketchError: line 1: add expects a register as operand 2, \
not '?' (holes stand for immediates: li, lui, addi, shli)
        """
        if syntax not in ("two-address", "three-address"):
            raise ValueError(f"the syntax is 'two-address' or 'three-address', not {syntax!r}")
        reason = limits.check_text(text)
        if reason:
            raise SketchError(reason)
        width, header_in, header_out = None, None, None
        instructions, holes, line_holes, numbers = [], [], [], []
        lines = text.splitlines()
        for number, raw in enumerate(lines, 1):
            line = _code(raw)
            if not line:
                continue
            header = read_directive(number, line, _REGISTER, SketchError)
            if header is not None:
                kind, value = header
                if kind == "width":
                    width = value
                elif kind == "in":
                    header_in = value
                else:
                    header_out = value
                continue
            if len(instructions) >= limits.max_nodes:
                raise SketchError(f"more than {limits.max_nodes} instructions")
            read = _two_address if syntax == "two-address" else _three_address
            instruction, kinds = read(number, line, len(holes))
            indices = []
            for op, bits in kinds:
                indices.append(len(holes))
                holes.append(Hole(f"h{len(holes) + 1}", number, op, bits))
            if indices:
                line_holes.append((number - 1, tuple(indices)))
            instructions.append(instruction)
            numbers.append(number)
        inputs = tuple(inputs if inputs is not None else header_in or ())
        outputs = tuple(outputs if outputs is not None else header_out or ())
        if not outputs:
            raise SketchError("the sketch names no outputs (give outputs= or an .out line)")
        sketch = cls(tuple(lines), tuple(instructions), tuple(holes), inputs, outputs, syntax,
                     width, tuple(line_holes), tuple(numbers))
        sketch.program([lo for lo, _ in (hole.range(width or 32) for hole in holes)])
        return sketch

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def program(self, values: Sequence[int] | dict[str, int]) -> Program:
        """The program with the holes set to ``values`` (in hole order, or by name), as a
        :class:`Program` over :data:`THREE_ADDRESS`; raises :class:`SketchError` where the
        program is not valid (a register read before it is written)."""
        values = _ordered(self, values)
        instructions = [(dest, op, tuple(values[a.index] << a.shift if isinstance(a, _Slot)
                                         else a for a in args))
                        for dest, op, args in self.instructions]
        try:
            return Program(tuple(instructions), self.inputs, self.outputs, THREE_ADDRESS)
        except ProgramError as error:
            def line(match: re.Match) -> str:
                number = self._numbers[int(match.group(1)) - 1]
                return f"line {number} ({_code(self.lines[number - 1])})"

            message = re.sub(r"\Ainstruction (\d+) \(.*?\)", line, str(error))
            raise SketchError(message) from None

    def filled_text(self, values: Sequence[int] | dict[str, int]) -> str:
        """The sketch's text with each ``?`` replaced by its value (comments kept)."""
        values = _ordered(self, values)
        lines = list(self.lines)
        for index, holes in self._line_holes:
            code, comment = _split_comment(lines[index])
            parts = code.split("?")
            lines[index] = "".join(part + (str(values[i]) if k < len(holes) else "")
                                   for k, (part, i) in enumerate(zip(parts, [*holes, -1])))
            lines[index] += comment
        return "\n".join(lines)


def _ordered(sketch: Sketch, values: Sequence[int] | dict[str, int]) -> list[int]:
    if isinstance(values, dict):
        missing = [hole.name for hole in sketch.holes if hole.name not in values]
        if missing:
            raise ValueError(f"no value for the holes {missing}")
        return [int(values[hole.name]) for hole in sketch.holes]
    if len(values) != len(sketch.holes):
        raise ValueError(f"{len(sketch.holes)} holes, {len(values)} values")
    return [int(value) for value in values]


def _split_comment(raw: str) -> tuple[str, str]:
    match = _COMMENT.search(raw)
    return (raw[:match.start()], raw[match.start():]) if match else (raw, "")


def _code(raw: str) -> str:
    return _split_comment(raw)[0].strip()


def _operands(line: str) -> tuple[str, list[str]]:
    op, _, rest = line.partition(" ")
    return op.lower(), [item.strip() for item in rest.split(",")] if rest.strip() else []


def _register(number: int, op: str, operands: list[str], index: int, hint: str = "") -> str:
    text = operands[index]
    if not _REGISTER.match(text):
        raise SketchError(f"line {number}: {op} expects a register as operand {index + 1}, "
                          f"not {text[:40]!r}{hint if text == '?' else ''}")
    return text


def _fits(value: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= value < (1 << (bits - 1))


def _two_address(number: int, line: str, first: int):
    op, operands = _operands(line)
    binary = {name for name, (arity, _) in THREE_ADDRESS.operations.items() if arity == 2}
    expected = {**dict.fromkeys(_IMMEDIATE_OPS, 2), "mov": 2, "neg": 1, "not": 1,
                "cmovz": 3}.get(op, 2 if op in binary else None)
    if expected is None:
        raise SketchError(f"line {number}: the two-address ISA has no instruction {op[:40]!r}")
    if len(operands) != expected:
        raise SketchError(f"line {number}: {op} takes {expected} operands, not {len(operands)}")
    hint = " (holes stand for immediates: li, lui, addi, shli)"
    register = lambda index: _register(number, op, operands, index, hint)  # noqa: E731
    dest = register(0)
    if op in _IMMEDIATE_OPS:
        bits, text = _IMMEDIATE_OPS[op], operands[1]
        if text == "?":
            value, kinds = _Slot(first, IMMEDIATE_BITS if op == "lui" else 0), [(op, bits)]
        elif _NUMBER.match(text):
            value, kinds = int(text.lstrip("#$"), 0), []
            if not _fits(value, bits):
                raise SketchError(f"line {number}: {op} takes a {bits}-bit signed immediate "
                                  f"({-(1 << (bits - 1))}..{(1 << (bits - 1)) - 1}), not {value}")
            value = value << IMMEDIATE_BITS if op == "lui" else value
        else:
            raise SketchError(f"line {number}: {op} expects an immediate or ? as operand 2, "
                              f"not {text[:40]!r}")
        shape = {"li": ("mov", (value,)), "lui": ("mov", (value,)),
                 "addi": ("add", (dest, value)), "shli": ("shl", (dest, value))}[op]
        return (dest, *shape), kinds
    if op == "mov":
        return (dest, "mov", (register(1),)), []
    if op in ("neg", "not"):
        return (dest, op, (dest,)), []
    if op == "cmovz":
        return (dest, "select", (register(1), dest, register(2))), []
    return (dest, op, (dest, register(1))), []


def _three_address(number: int, line: str, first: int):
    op, operands = _operands(line)
    if op not in THREE_ADDRESS.operations:
        raise SketchError(f"line {number}: the three-address ISA has no operation {op[:40]!r}")
    arity = THREE_ADDRESS.operations[op][0]
    if len(operands) != arity + 1:
        raise SketchError(f"line {number}: {op} takes {arity + 1} operands, not {len(operands)}")
    dest = _register(number, op, operands, 0, " (a destination is never a hole)")
    args, kinds = [], []
    for text in operands[1:]:
        if text == "?":
            args.append(_Slot(first + len(kinds)))
            kinds.append((op, None))
        elif _NUMBER.match(text):
            args.append(int(text.lstrip("#$"), 0))
        elif _REGISTER.match(text):
            args.append(text)
        else:
            raise SketchError(f"line {number}: {text[:40]!r} is neither a register, an "
                              f"immediate nor ?")
    return (dest, op, tuple(args)), kinds


def holes_from_guess(program_text: str, low_confidence_lines: Iterable[int], *,
                     syntax: Syntax = "two-address", inputs: Sequence[str] | None = None,
                     outputs: Sequence[str] | None = None) -> Sketch:
    """The sketch of a guessed program: the immediate operands of ``low_confidence_lines``
    (1-based line numbers of the text) become holes; opcodes, registers (destinations and
    sources) and the other lines stay as guessed. A line without immediates is unchanged.

    >>> guess = "li r1, 7\\nmul r0, r1\\naddi r0, 4096"  # 4096 does not fit: a wrong guess
    >>> sketch = holes_from_guess(guess, [1, 3], inputs=["r0"], outputs=["r0"])
    >>> sketch.text, [hole.op for hole in sketch.holes]
    ('li r1, ?\\nmul r0, r1\\naddi r0, ?', ['li', 'addi'])
    """
    lines = program_text.splitlines()
    for number in sorted(set(low_confidence_lines)):
        if not 1 <= number <= len(lines):
            raise SketchError(f"line {number} is not a line of the guess (1..{len(lines)})")
        code, comment = _split_comment(lines[number - 1])
        stripped = code.strip()
        if not stripped or stripped.startswith("."):
            continue
        op, operands = _operands(stripped)
        if not operands:
            continue
        indent = code[:len(code) - len(code.lstrip())]
        sources = ["?" if _NUMBER.match(item) or (syntax == "two-address" and op in
                                                  _IMMEDIATE_OPS) else item
                   for item in operands[1:]]
        lines[number - 1] = (f"{indent}{stripped.split(None, 1)[0]} "
                             f"{', '.join([operands[0], *sources])}"
                             f"{' ' if comment else ''}{comment}")
    return Sketch.parse("\n".join(lines), inputs, outputs, syntax=syntax)


@dataclass(frozen=True)
class FillResult:
    """What :func:`fill` found: ``status`` (``"filled"``, ``"impossible"`` or
    ``"unknown"``), the hole ``values`` by name (signed), the filled ``text`` and
    ``program`` (when filled), the CEGIS ``iterations``, the ``seconds`` spent, a
    ``reason`` and the ``counterexamples`` (input tuples) gathered."""

    status: Status
    values: dict[str, int]
    text: str | None
    program: Program | None
    iterations: int
    seconds: float
    reason: str
    counterexamples: tuple[tuple[int, ...], ...] = ()


def _word(value: z3.BitVecRef, width: int) -> z3.BitVecRef:
    bits = value.size()
    if bits >= width:
        return z3.Extract(width - 1, 0, value)
    return z3.SignExt(width - bits, value)


def _execute(instructions, operations, names, outputs, values, holes, width, ctx):
    registers = dict(zip(names, values))
    for dest, op, args in instructions:
        operands = []
        for arg in args:
            if isinstance(arg, _Slot):
                word = holes[arg.index]
                operands.append(word << arg.shift if arg.shift else word)
            elif isinstance(arg, int):
                operands.append(z3.BitVecVal(arg % (1 << width), width, ctx))
            else:
                operands.append(registers[arg])
        registers[dest] = operations[op][1](*operands)
    return [registers[name] for name in outputs]


def _reference_outputs(reference, example, width, ctx) -> list[z3.BitVecRef]:
    values = [z3.BitVecVal(v, width, ctx) for v in example]
    if isinstance(reference, Program):
        result = _execute(reference.instructions, reference.isa.operations, reference.inputs,
                          reference.outputs, values, [], width, ctx)
    else:
        result = reference(*values)
        result = list(result) if isinstance(result, list | tuple) else [result]
    return [z3.simplify(term) for term in result]


def _seeds(count: int, width: int, precondition, ctx) -> list[tuple[int, ...]]:
    """A few first inputs (zero, small, random), those that satisfy the precondition."""
    mask, rng = (1 << width) - 1, random.Random(0)
    candidates = [(0,) * count, tuple(range(1, count + 1)), (mask,) * count,
                  tuple(rng.getrandbits(width) for _ in range(count))]
    chosen = []
    for example in candidates:
        example = tuple(v & mask for v in example)
        if example in chosen:
            continue
        if precondition is not None:
            holds = z3.simplify(precondition(*[z3.BitVecVal(v, width, ctx) for v in example]))
            if not z3.is_true(holds):
                continue
        chosen.append(example)
    return chosen


def fill(sketch: Sketch, reference: Program | Function, *, width: int | None = None,
         precondition: Function | None = None, timeout: float = 5.0,
         max_iterations: int = 64) -> FillResult:
    """Hole values that make ``sketch`` equal to ``reference`` (a :class:`Program` of any
    ISA, or a function of z3 bitvectors) on every ``width``-bit input satisfying
    ``precondition`` (inputs and outputs matched by position), by CEGIS within ``timeout``
    seconds and ``max_iterations`` rounds. ``width`` defaults to the sketch's ``.width``,
    else 32.

    >>> sketch = Sketch.parse("li r1, ?\\nmul r0, r1", ["r0"], ["r0"])
    >>> triple = Program.parse("y = add x, x\\ny = add y, x", ["x"], ["y"])
    >>> fill(sketch, triple, width=16).values
    {'h1': 3}
    >>> fill(Sketch.parse("li r1, ?\\nxor r0, r1", ["r0"], ["r0"]), triple, width=16).status
    'impossible'
    """
    start, deadline = time.perf_counter(), Deadline(timeout)
    width = width if width is not None else sketch.width or 32
    examples: list[tuple[int, ...]] = []

    def result(status: Status, reason: str, values=None, iterations=0) -> FillResult:
        named = dict(zip((hole.name for hole in sketch.holes), values or []))
        text = program = None
        if status == "filled":
            text, program = sketch.filled_text(values), sketch.program(values)
        return FillResult(status, named, text, program, iterations,
                          time.perf_counter() - start, reason, tuple(examples))

    if not 1 <= width <= 512:
        return result("unknown", f"a width of {width} bits is outside 1..512")
    count = len(sketch.inputs)
    if isinstance(reference, Program) and len(reference.inputs) != count:
        return result("impossible", f"the sketch takes {count} inputs, the reference "
                      f"{len(reference.inputs)}")
    ctx = z3.Context()
    variables = [z3.BitVec(hole.name, hole.bits or width, ctx) for hole in sketch.holes]
    words = [_word(variable, width) for variable in variables]
    solver = z3.Solver(ctx=ctx)
    for hole, variable in zip(sketch.holes, variables):
        low, high = hole.range(width)
        if hole.bits is not None or hole.op == "shli":
            solver.add(variable >= low, variable <= high)
    try:
        examples.extend(_seeds(count, width, precondition, ctx))
    except (z3.Z3Exception, TypeError, ValueError) as error:
        return result("unknown", f"could not evaluate the precondition: {error}")
    added = 0
    for iteration in range(1, max_iterations + 1):
        try:
            for example in examples[added:]:
                inputs = [z3.BitVecVal(v, width, ctx) for v in example]
                mine = _execute(sketch.instructions, THREE_ADDRESS.operations, sketch.inputs,
                                sketch.outputs, inputs, words, width, ctx)
                theirs = _reference_outputs(reference, example, width, ctx)
                if len(mine) != len(theirs):
                    return result("impossible", f"the sketch has {len(mine)} outputs, the "
                                  f"reference {len(theirs)}", iterations=iteration - 1)
                solver.add(*[a == b for a, b in zip(mine, theirs)])
        except (z3.Z3Exception, KeyError, TypeError, ValueError) as error:
            return result("unknown", f"could not run the programs symbolically: {error}",
                          iterations=iteration - 1)
        added = len(examples)
        if deadline.expired():
            return result("unknown", f"ran past the {timeout:g} s limit",
                          iterations=iteration - 1)
        solver.set("timeout", max(1, int(deadline.remaining() * 1000)))
        with watchdog(deadline.remaining() + 0.05, ctx.interrupt):
            answer = solver.check()
        if answer == z3.unsat:
            return result("impossible", f"no hole values agree with the reference on "
                          f"{len(examples)} inputs", iterations=iteration)
        if answer != z3.sat:
            return result("unknown", f"z3 could not solve the holes: "
                          f"{solver.reason_unknown()}", iterations=iteration)
        model = solver.model()
        values = [model.eval(v, model_completion=True).as_signed_long() for v in variables]
        if deadline.expired():
            return result("unknown", f"ran past the {timeout:g} s limit", values, iteration)
        verdict = bounded_equivalence(sketch.program(values), reference, width=width,
                                      inputs=count, precondition=precondition,
                                      timeout=max(0.001, deadline.remaining()))
        if verdict.status == "pass":
            return result("filled", verdict.reason, values, iteration)
        if verdict.status == "unknown" or "inputs" not in verdict.detail:
            return result("unknown", verdict.reason, values, iteration)
        counterexample = tuple(verdict.detail["inputs"][name] for name in sketch.inputs)
        if counterexample in examples:  # cannot happen with sound semantics; do not loop
            return result("unknown", f"the counterexample {counterexample} repeats", values,
                          iteration)
        examples.append(counterexample)
    return result("unknown", f"no answer within {max_iterations} iterations",
                  iterations=max_iterations)


__all__ = ["FillResult", "Hole", "Sketch", "SketchError", "fill", "holes_from_guess",
           "IMMEDIATE_BITS", "UPPER_BITS"]
