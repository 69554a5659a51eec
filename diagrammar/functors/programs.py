"""Functors from program diagrams (:mod:`diagrammar.diagrams.programs`) to their meanings.

- :class:`Run`: a Python callable over ints with fixed-width wraparound (execution);
- :class:`ToZ3`: a function of z3 bitvectors giving z3 terms (symbolic semantics, the
  :data:`~diagrammar.symbolic.equivalence.THREE_ADDRESS` table); :func:`equivalence`
  proves two programs equal on every input with :func:`~diagrammar.symbolic.equivalence.
  bounded_equivalence`;
- :class:`ToThreeAddress` and :class:`ToTwoAddress`: source text of two small assembly
  languages, with :func:`parse_three_address` and :func:`parse_two_address` back to diagrams;
- :class:`DrawProgram`: a picture (PNG).

>>> from diagrammar.diagrams.programs import program
>>> f = program("y = x * x + 100000", inputs=["x"], outputs=["y"], width=32)
>>> Run()(f)(3)
(100009,)
>>> print(ToThreeAddress()(f))
.width 32
.in r0
mul r0, r0, r0
add r0, r0, 100000
.out r0
>>> print(ToTwoAddress()(f))
.width 32
.in r0
mul r0, r0
lui r1, 24
addi r1, 1696
add r0, r1
.out r0
>>> equivalence(f, parse_two_address(ToTwoAddress()(f))).status
'pass'

Why hand-written walkers rather than ``discopy.symmetric.Functor`` into ``discopy.python``:
a wire's width is part of its type and every meaning here threads a list of values (ints,
z3 terms, registers) through the layers of ``diagram.inside``; one walker,
:class:`ProgramFunctor`, does that for all of them, boxes map one by one, and the functor
laws (``F(f >> g) = F(g) . F(f)``, ``F(f @ g) = F(f) x F(g)``) are tested in
``tests/functors/test_programs.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import z3
from discopy import symmetric

from diagrammar.diagrams.programs import (
    OPERATIONS,
    Const,
    Copy,
    Discard,
    Operation,
    ProgramBox,
    ProgramDiagram,
    ProgramError,
    from_instructions,
    widths,
)
from diagrammar.symbolic.directives import read_directive
from diagrammar.symbolic.equivalence import THREE_ADDRESS, Program, bounded_equivalence
from diagrammar.symbolic.equivalence import ProgramError as SymbolicProgramError
from diagrammar.symbolic.verdict import Verdict
from diagrammar.symbolic.words import PYTHON_OPERATIONS
from diagrammar.symbolic.words import signed as _signed


class ProgramFunctor:
    """Maps a program diagram to a function on lists of values: subclasses give
    :meth:`box` (a box's meaning on its input values); swaps permute values."""

    def box(self, box: ProgramBox, args: list[Any]) -> list[Any]:
        raise NotImplementedError

    def run(self, diagram: ProgramDiagram, values: Sequence[Any]) -> list[Any]:
        values = list(values)
        if len(values) != len(diagram.dom):
            raise ProgramError(f"the program takes {len(diagram.dom)} input"
                               f"{'s' * (len(diagram.dom) != 1)}, not {len(values)}")
        for left, box, _ in diagram.inside:
            start, end = len(left), len(left) + len(box.dom)
            args = values[start:end]
            if isinstance(box, ProgramBox):
                result = self.box(box, args)
            elif isinstance(box, symmetric.Swap):
                result = args[len(box.left):] + args[:len(box.left)]
            else:
                raise ProgramError(f"{type(self).__name__} has no meaning for box {box!r}")
            values[start:end] = result
        return values


# --- execution --------------------------------------------------------------------------



class Run(ProgramFunctor):
    """Execution: ``Run()(diagram)`` is a Python function of one int per input wire that
    returns a tuple of ints, one per output wire. Inputs are reduced modulo ``2 ** width``;
    arithmetic wraps around.

    >>> from diagrammar.diagrams.programs import Operation, Const
    >>> Run()(Const(5, 8) @ Const(-1, 8) >> Operation("add", 8))()
    (4,)
    """

    def box(self, box: ProgramBox, args: list[int]) -> list[int]:
        width = box.width
        mask = (1 << width) - 1
        if isinstance(box, Operation):
            return [PYTHON_OPERATIONS[box.op](width, mask, *args)]
        if isinstance(box, Const):
            return [box.value]
        if isinstance(box, Copy):
            return args * 2
        if isinstance(box, Discard):
            return []
        raise ProgramError(f"Run has no meaning for box {box!r}")

    def __call__(self, diagram: ProgramDiagram) -> Callable[..., tuple[int, ...]]:
        masks = [(1 << width) - 1 for width in widths(diagram.dom)]

        def function(*inputs: int) -> tuple[int, ...]:
            if len(inputs) != len(masks):
                raise ProgramError(f"the program takes {len(masks)} input"
                                   f"{'s' * (len(masks) != 1)}, not {len(inputs)}")
            return tuple(self.run(diagram, [x & m for x, m in zip(inputs, masks)]))

        return function


# --- symbolic semantics ------------------------------------------------------------------

class ToZ3(ProgramFunctor):
    """Symbolic semantics: ``ToZ3()(diagram)`` is a function of one z3 bitvector per input
    wire (of that wire's width) returning the list of output terms; operations mean what
    :data:`~diagrammar.symbolic.equivalence.THREE_ADDRESS` says. A program without inputs
    takes ``ctx=`` (default: z3's main context).

    >>> from diagrammar.diagrams.programs import program
    >>> x = z3.BitVec("x", 8)
    >>> [z3.simplify(t) for t in ToZ3()(program("y = x + x", ["x"], ["y"], 8))(x)]
    [2*x]
    """

    def __init__(self, isa=THREE_ADDRESS) -> None:
        self.isa = isa

    def box(self, box: ProgramBox, args: list[Any]) -> list[Any]:
        if isinstance(box, Operation):
            return [self.isa.operations[box.op][1](*args)]
        if isinstance(box, Const):
            return [z3.BitVecVal(box.value, box.width, self._ctx)]
        if isinstance(box, Copy):
            return args * 2
        if isinstance(box, Discard):
            return []
        raise ProgramError(f"ToZ3 has no meaning for box {box!r}")

    def __call__(self, diagram: ProgramDiagram) -> Callable[..., list[z3.BitVecRef]]:
        expected = widths(diagram.dom)

        def function(*inputs: z3.BitVecRef, ctx: z3.Context | None = None) -> list:
            for index, (term, width) in enumerate(zip(inputs, expected)):
                if not z3.is_bv(term) or term.size() != width:
                    raise ProgramError(f"input {index} must be a {width}-bit z3 bitvector, "
                                       f"not {term!r}")
            self._ctx = inputs[0].ctx if inputs else ctx
            return self.run(diagram, inputs)

        return function


def equivalence(a: ProgramDiagram, b: ProgramDiagram, timeout: float = 2.0) -> Verdict:
    """Whether two programs with the same input and output types agree on every input,
    decided by z3 (:func:`~diagrammar.symbolic.equivalence.bounded_equivalence`): ``pass``,
    ``fail`` with a counterexample, or ``unknown`` past ``timeout`` seconds."""
    for side in ("dom", "cod"):
        if getattr(a, side) != getattr(b, side):
            return Verdict("fail", f"the programs' {'inputs' if side == 'dom' else 'outputs'} "
                           f"differ: {getattr(a, side)} and {getattr(b, side)}")
    kinds = set(widths(a.dom) + widths(a.cod))
    if len(kinds) > 1:
        raise ProgramError(f"equivalence takes programs over one word width, not {kinds}")
    width = kinds.pop() if kinds else 1
    count = len(a.dom)
    # bounded_equivalence wants at least one input; a constant program ignores a dummy one.
    fa, fb = ToZ3()(a), ToZ3()(b)
    return bounded_equivalence(lambda *xs: fa(*xs[:count], ctx=xs[0].ctx),
                               lambda *xs: fb(*xs[:count], ctx=xs[0].ctx),
                               width=width, inputs=max(count, 1), timeout=timeout)


# --- source text -------------------------------------------------------------------------

class _Registers:
    """Wires hold registers (or, before they are needed in one, immediates); a register is
    free again once no wire holds it. Allocation takes the lowest free register."""

    def __init__(self, count: int) -> None:
        self.holders: dict[int, int] = {r: 1 for r in range(count)}
        self.used = count

    def take(self) -> int:
        free = [r for r in range(self.used) if not self.holders.get(r)]
        register = free[0] if free else self.used
        self.used = max(self.used, register + 1)
        self.holders[register] = 1
        return register

    def hold(self, register: int) -> None:
        self.holders[register] += 1

    def release(self, value: Any) -> None:
        if type(value) is int:  # not an _Immediate
            self.holders[value] -= 1


class _Immediate(int):
    """A constant not yet loaded into a register."""


def _header(diagram: ProgramDiagram) -> tuple[int, list[int]]:
    kinds = set(widths(diagram.dom) + widths(diagram.cod)
                + [box.width for box in diagram.boxes if isinstance(box, ProgramBox)])
    if len(kinds) > 1:
        raise ProgramError(f"an assembly program has one word width, not {sorted(kinds)}")
    return (kinds.pop() if kinds else 32), list(range(len(diagram.dom)))


class _Assembler(ProgramFunctor):
    """Shared by the two syntaxes: walks the diagram with registers on the wires."""

    def __call__(self, diagram: ProgramDiagram) -> str:
        self.width, inputs = _header(diagram)
        self.registers = _Registers(len(inputs))
        self.lines: list[str] = []
        outputs = self.run(diagram, inputs)
        shown = []
        for value in outputs:
            if isinstance(value, _Immediate):
                value = self.load(value)
            shown.append(f"r{value}")
        head = [f".width {self.width}", ".in " + ", ".join(f"r{r}" for r in inputs)]
        return "\n".join([*(line.rstrip() for line in head), *self.lines,
                          (".out " + ", ".join(shown)).rstrip()])

    def box(self, box: ProgramBox, args: list[Any]) -> list[Any]:
        if isinstance(box, Const):
            return [_Immediate(box.value)]
        if isinstance(box, Copy):
            if not isinstance(args[0], _Immediate):
                self.registers.hold(args[0])
            return args * 2
        if isinstance(box, Discard):
            if not isinstance(args[0], _Immediate):
                self.registers.release(args[0])
            return []
        if isinstance(box, Operation):
            return [self.operation(box.op, args)]
        raise ProgramError(f"{type(self).__name__} has no meaning for box {box!r}")

    def free(self, args: list[Any]) -> None:
        for arg in args:
            if not isinstance(arg, _Immediate):
                self.registers.release(arg)

    def load(self, value: int) -> int:
        raise NotImplementedError

    def operation(self, op: str, args: list[Any]) -> int:
        raise NotImplementedError


class ToThreeAddress(_Assembler):
    """Source text in the three-address ISA: ``op rd, a, b`` where an operand is a register
    ``rN`` or an immediate of any size; ``mov rd, k`` loads a constant. A header gives the
    word width and the input registers, a footer the output registers. The text reads back
    with :func:`parse_three_address`, and as a
    :class:`~diagrammar.symbolic.equivalence.Program` with :func:`three_address_program`.
    """

    def load(self, value: int) -> int:
        register = self.registers.take()
        self.lines.append(f"mov r{register}, {int(value)}")
        return register

    def operation(self, op: str, args: list[Any]) -> Any:
        if op == "mov":
            return args[0]
        self.free(args)
        register = self.registers.take()
        shown = ", ".join(str(int(a)) if isinstance(a, _Immediate) else f"r{a}" for a in args)
        self.lines.append(f"{op} r{register}, {shown}")
        return register


IMMEDIATE_BITS = 12
UPPER_BITS = 20


def _fits(value: int, bits: int) -> bool:
    return -(1 << (bits - 1)) <= value < (1 << (bits - 1))


def load_immediate(register: str, value: int, width: int) -> list[str]:
    """The two-address instructions that load ``value`` (modulo ``2 ** width``) into
    ``register``: ``li`` for a 12-bit signed immediate, else ``lui`` (20 bits, shifted left
    by 12) and ``addi`` (the signed low 12 bits); past 32 bits, the high part is loaded the
    same way and shifted (``shli``).

    >>> load_immediate("r1", 2047, 32), load_immediate("r1", 2048, 32)
    (['li r1, 2047'], ['lui r1, 1', 'addi r1, -2048'])
    >>> load_immediate("r1", 0xFFFFFFFF, 32)
    ['li r1, -1']
    """
    value = _signed(value % (1 << width), width) if width > 0 else value
    return _load(register, value, width)


def _load(register: str, value: int, width: int) -> list[str]:
    if _fits(value, IMMEDIATE_BITS):
        return [f"li {register}, {value}"]
    low = ((value & 0xFFF) ^ 0x800) - 0x800
    high = (value - low) >> IMMEDIATE_BITS
    if width <= IMMEDIATE_BITS + UPPER_BITS:  # lui wraps around in a word this narrow
        high = ((high + (1 << (UPPER_BITS - 1))) % (1 << UPPER_BITS)) - (1 << (UPPER_BITS - 1))
    if _fits(high, UPPER_BITS):
        lines = [f"lui {register}, {high}"]
    else:
        lines = [*_load(register, high, width), f"shli {register}, {IMMEDIATE_BITS}"]
    return lines + ([f"addi {register}, {low}"] if low else [])


class ToTwoAddress(_Assembler):
    """Source text in the two-address ISA: ``op rd, rs`` means ``rd = rd op rs``
    (destructive), ``neg rd`` / ``not rd`` likewise, ``cmovz rd, rc, rs`` sets ``rd = rs``
    where ``rc == 0`` (``select``), ``mov rd, rs`` copies. Immediates are 12-bit signed:
    ``li rd, k``, ``addi rd, k``, ``shli rd, k``; ``lui rd, k`` loads ``k << 12`` (``k``
    20-bit signed). A larger constant is split (:func:`load_immediate`). Where a value an
    operation overwrites is still read later, it is first copied with ``mov``.
    """

    def load(self, value: int) -> int:
        register = self.registers.take()
        self.lines.extend(load_immediate(f"r{register}", int(value), self.width))
        return register

    def operand(self, value: Any) -> int:
        """A register holding ``value``, loading an immediate into a fresh one."""
        return self.load(value) if isinstance(value, _Immediate) else value

    def operation(self, op: str, args: list[Any]) -> Any:
        if op == "mov":
            return args[0]
        first, rest = args[0], args[1:]
        if op in ("add", "sub", "shl") and isinstance(rest[0], _Immediate):
            k = _signed(int(rest[0]), self.width) if op != "shl" else int(rest[0])
            k = -k if op == "sub" else k
            if _fits(k, IMMEDIATE_BITS) and (op != "shl" or k >= 0):
                destination = self.destination(first, [])
                self.lines.append(f"{'shli' if op == 'shl' else 'addi'} r{destination}, {k}")
                return destination
        if op == "select":  # select c, a, b: a where c != 0; cmovz rd, rc, rs: rs where rc == 0
            first, rest = args[1], [args[0], args[2]]
        registers = [self.operand(value) for value in rest]
        destination = self.destination(first, registers)
        shown = "".join(f", r{r}" for r in registers)
        self.lines.append(f"{'cmovz' if op == 'select' else op} r{destination}{shown}")
        for register in registers:  # an operand's wire ends here (or its loaded immediate)
            self.registers.release(register)
        return destination

    def destination(self, first: Any, others: list[int]) -> int:
        """The register the operation overwrites: ``first``'s own where no other wire holds
        it (or only this instruction's other operands, read before the write), else a fresh copy.
        ``others`` stay held until the instruction is written."""
        if isinstance(first, _Immediate):
            return self.load(first)
        self.registers.release(first)
        # operands of this very instruction are read before it writes: they do not count
        if self.registers.holders[first] == others.count(first):
            self.registers.hold(first)
            return first
        register = self.registers.take()
        self.lines.append(f"mov r{register}, r{first}")
        return register


# --- reading the text back ---------------------------------------------------------------

_REGISTER = re.compile(r"r\d{1,4}\Z")
_NUMBER = re.compile(r"[-+]?(0[xX][0-9a-fA-F]{1,128}|\d{1,155})\Z")


def _split(text: str) -> tuple[int, list[str], list[str], list[tuple[int, str]]]:
    """The header (width, inputs, outputs) and the numbered instruction lines of a text."""
    width, inputs, outputs, body = None, None, None, []
    if len(text) > 200_000:
        raise ProgramError("the program text is longer than 200000 characters")
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.split(r";|//|#", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        header = read_directive(number, line, _REGISTER, ProgramError)
        if header is None:
            body.append((number, line))
        elif header[0] == "width":
            width = header[1]
        elif header[0] == "in":
            inputs = header[1]
        else:
            outputs = header[1]
    for name, value in (("width", width), ("in", inputs), ("out", outputs)):
        if value is None:
            raise ProgramError(f"the program has no .{name} line")
    return width, inputs, outputs, body


def parse_three_address(text: str) -> ProgramDiagram:
    """Reads :class:`ToThreeAddress`'s syntax back into a diagram.

    >>> f = parse_three_address(".width 8\\n.in r0, r1\\nsub r2, r1, 300\\n.out r2, r0")
    >>> Run()(f)(7, 5)
    (217, 7)
    """
    program = three_address_program(text)
    width = _split(text)[0]
    return from_instructions(program.instructions, program.inputs, program.outputs, width)


def three_address_program(text: str) -> Program:
    """Three-address text (:class:`ToThreeAddress`) as a symbolic
    :class:`~diagrammar.symbolic.equivalence.Program` (for
    :func:`~diagrammar.symbolic.equivalence.bounded_equivalence` against any other ISA)."""
    width, inputs, outputs, body = _split(text)
    lines = [""] * (body[-1][0] if body else 0)
    for number, line in body:
        lines[number - 1] = line
    try:
        return Program.parse("\n".join(lines), inputs, outputs, THREE_ADDRESS)
    except SymbolicProgramError as error:
        raise ProgramError(str(error)) from None


def _register(number: int, op: str, operands: list[str], index: int) -> str:
    if index >= len(operands) or not _REGISTER.match(operands[index]):
        shown = operands[index][:40] if index < len(operands) else "nothing"
        raise ProgramError(f"line {number}: {op} expects a register as operand {index + 1}, "
                           f"not {shown!r}")
    return operands[index]


def _immediate(number: int, op: str, operands: list[str], index: int, bits: int) -> int:
    if index >= len(operands) or not _NUMBER.match(operands[index]):
        shown = operands[index][:40] if index < len(operands) else "nothing"
        raise ProgramError(f"line {number}: {op} expects an immediate as operand "
                           f"{index + 1}, not {shown!r}")
    value = int(operands[index], 0)
    if not _fits(value, bits):
        raise ProgramError(f"line {number}: {op} takes a {bits}-bit signed immediate "
                           f"({-(1 << (bits - 1))}..{(1 << (bits - 1)) - 1}), not {value}")
    return value


def parse_two_address(text: str) -> ProgramDiagram:
    """Reads :class:`ToTwoAddress`'s syntax back into a diagram, checking that immediates
    fit their fields.

    >>> text = ".width 32\\n.in r0\\nlui r1, 1\\naddi r1, -2048\\nadd r0, r1\\n.out r0"
    >>> f = parse_two_address(text)
    >>> Run()(f)(1)
    (2049,)
    >>> parse_two_address(".width 32\\n.in r0\\naddi r0, 4096\\n.out r0")
    Traceback (most recent call last):
    ...
    diagrammar.diagrams.programs.ProgramError: line 3: addi takes a 12-bit signed immediate \
(-2048..2047), not 4096
    """
    width, inputs, outputs, body = _split(text)
    instructions = []
    for number, line in body:
        op, _, rest = line.partition(" ")
        op = op.lower()
        operands = [item.strip() for item in rest.split(",")] if rest.strip() else []

        def register(index: int, number=number, op=op, operands=operands) -> str:
            return _register(number, op, operands, index)

        def immediate(index: int, bits: int, number=number, op=op, operands=operands) -> int:
            return _immediate(number, op, operands, index, bits)

        expected = {"li": 2, "lui": 2, "addi": 2, "shli": 2, "mov": 2, "neg": 1, "not": 1,
                    "cmovz": 3}.get(op, 2 if OPERATIONS.get(op) == 2 else None)
        if expected is None:
            raise ProgramError(f"line {number}: the two-address ISA has no instruction "
                               f"{op[:40]!r}")
        if len(operands) != expected:
            raise ProgramError(f"line {number}: {op} takes {expected} operands, not "
                               f"{len(operands)}")
        dest = register(0)
        if op == "li":
            instructions.append((dest, "mov", (immediate(1, IMMEDIATE_BITS),)))
        elif op == "lui":
            instructions.append((dest, "mov", (immediate(1, UPPER_BITS) << IMMEDIATE_BITS,)))
        elif op in ("addi", "shli"):
            instructions.append((dest, op[:-1] if op == "addi" else "shl",
                                 (dest, immediate(1, IMMEDIATE_BITS))))
        elif op == "mov":
            instructions.append((dest, "mov", (register(1),)))
        elif op in ("neg", "not"):
            instructions.append((dest, op, (dest,)))
        elif op == "cmovz":
            instructions.append((dest, "select", (register(1), dest, register(2))))
        else:
            instructions.append((dest, op, (dest, register(1))))
    return from_instructions(instructions, inputs, outputs, width)


# --- pictures ----------------------------------------------------------------------------

#: Colour of each box kind in a drawing.
KIND_COLOURS = {"operation": "#9ecae1", "const": "#fdae6b", "copy": "#dadaeb",
                "discard": "#dadaeb"}


class DrawProgram:
    """Draws a program diagram to a PNG: operations labelled by name, constants by value,
    each kind in its colour (:data:`KIND_COLOURS`); no global state is changed."""

    def picture(self, diagram: ProgramDiagram) -> symmetric.Diagram:
        result = symmetric.Id(diagram.dom)
        for left, box, right in diagram.inside:
            if isinstance(box, ProgramBox):
                label = {"operation": box.spec.get("op"), "const": str(box.spec.get("value")),
                         "copy": "copy", "discard": "discard"}[box.kind]
                shown = symmetric.Box(label, box.dom, box.cod,
                                      color="diagrammar" + KIND_COLOURS[box.kind])
            else:
                shown = symmetric.Diagram.swap(box.dom[:1], box.dom[1:])
            result = result >> symmetric.Id(left) @ shown @ symmetric.Id(right)
        return result

    def __call__(self, diagram: ProgramDiagram, path: str | os.PathLike) -> Path:
        from diagrammar.functors.draw import _lent_colours

        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
        height = max(3.0, 0.8 * (len(diagram.inside) + 1))
        width = max(4.0, 1.2 * max([len(diagram.dom), len(diagram.cod)]
                                   + [len(layer[0]) + len(layer[2]) + 2
                                      for layer in diagram.inside]))
        with _lent_colours({"diagrammar" + c: c for c in KIND_COLOURS.values()}):
            self.picture(diagram).draw(path=str(path), figsize=(width, height), fontsize=10,
                                       fontsize_types=8, margins=(0.1, 0.05), show=False)
        return path


__all__ = ["ProgramFunctor", "Run", "ToZ3", "equivalence", "PYTHON_OPERATIONS",
           "ToThreeAddress", "ToTwoAddress", "load_immediate", "parse_three_address",
           "parse_two_address", "three_address_program", "DrawProgram", "KIND_COLOURS",
           "IMMEDIATE_BITS", "UPPER_BITS"]
