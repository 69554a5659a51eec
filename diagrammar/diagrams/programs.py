"""Programs as diagrams: boxes are operations, wires are typed machine words.

A wire carries one value of type :func:`Int` ``(width)`` (an unsigned ``width``-bit word;
signed operations read it in two's complement). Boxes are operations on words of one width:

- :class:`Operation` ``(op, width)``: ``add``, ``sub``, ``mul``, ``and``, ``or``, ``xor``,
  ``shl``, ``lshr``, ``ashr``, comparisons (``eq`` ... ``sle``, giving 0 or 1), ``select``
  (``select c, a, b`` is ``a`` where ``c != 0``), ``neg``, ``not``, ... (:data:`OPERATIONS`);
- :class:`Const` ``(value, width)``: ``Ty() -> Int(width)``;
- :class:`Copy` and :class:`Discard`: a value read twice, or never (the diagrams are
  symmetric monoidal with explicit copy and discard, as in a Markov category);
- swaps of wires (:meth:`ProgramDiagram.swap`).

Straight-line code becomes a diagram with :func:`program` (a tiny Python-like syntax, read
with :mod:`ast`, never executed) or :func:`from_instructions` (``(dest, op, args)`` triples,
as an assembly reader gives them); a bounded loop is its body repeated, :func:`unroll`.

>>> square_plus_one = program("y = x * x + 1", inputs=["x"], outputs=["y"], width=8)
>>> print(square_plus_one.dom, "->", square_plus_one.cod)
i8 -> i8
>>> [box.name for box in square_plus_one.boxes]
['Copy(i8)', 'Swap(i8, i8)', 'mul(i8)', 'Const(1, i8)', 'add(i8)']
>>> print(unroll(square_plus_one, 3).cod)
i8

Composition checks the wires and names both boxes and both types when they do not match:

>>> square_plus_one >> Operation("add", 8)
Traceback (most recent call last):
...
diagrammar.diagrams.errors.WiringError: cannot compose box 'add(i8)' with box 'add(i8)': \
the left side outputs i8 but the right side expects i8 @ i8

This module is syntax (discopy and the standard library). The meanings (Python execution,
z3 terms, two assembly syntaxes, pictures) are the functors of
:mod:`diagrammar.functors.programs`.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

from discopy import symmetric
from discopy.utils import factory

from diagrammar.diagrams.errors import DiagramError, WiringError, check_then, describe
from diagrammar.diagrams.types import Ty

#: Operation name -> arity. The same names and meanings as
#: :data:`diagrammar.symbolic.equivalence.THREE_ADDRESS` (SMT-LIB bitvector semantics).
OPERATIONS: dict[str, int] = {
    "mov": 1, "neg": 1, "not": 1,
    "add": 2, "sub": 2, "mul": 2, "udiv": 2, "urem": 2, "sdiv": 2, "srem": 2,
    "and": 2, "or": 2, "xor": 2, "shl": 2, "lshr": 2, "ashr": 2,
    "eq": 2, "ne": 2, "ult": 2, "ule": 2, "slt": 2, "sle": 2,
    "select": 3,
}

MAX_WIDTH = 512
Instruction = tuple[str, str, tuple[Any, ...]]


class ProgramError(DiagramError):
    """A program that cannot be built: an unknown operation, a wrong arity, a name read
    before it is written, a bad width or constant; the message says where."""


def Int(width: int) -> Ty:  # noqa: N802 (a type constructor, named like one)
    """The type of a ``width``-bit word, ``i{width}``.

    >>> print(Int(8), "|", Int(8) @ Int(16))
    i8 | i8 @ i16
    """
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise ProgramError(f"a word width must be a whole number in 1..{MAX_WIDTH}, "
                           f"not {width!r}")
    return Ty(f"i{width}")


#: A 32-bit word.
Word = Int(32)


def widths(ty: Ty) -> list[int]:
    """The widths of a type's wires: ``widths(Int(8) @ Int(4)) == [8, 4]``."""
    result = []
    for ob in ty.inside:
        name = ob.name
        if not (name.startswith("i") and name[1:].isdigit()):
            raise ProgramError(f"wire type {name!r} is not a word type i<width>")
        result.append(int(name[1:]))
    return result


@factory
class ProgramDiagram(symmetric.Diagram):
    """A diagram of program boxes: what ``>>`` and ``@`` build from them.

    >>> f = Operation("add", 8) >> Operation("neg", 8)
    >>> print(f.dom, "->", f.cod)
    i8 @ i8 -> i8
    """

    ty_factory = Ty

    def then(self, *others: symmetric.Diagram) -> ProgramDiagram:
        left = self
        for other in others:
            check_then(left, other, ProgramDiagram,
                       "only program boxes and diagrams compose into a program")
            left = symmetric.Diagram.then(left, other)
        return left

    def tensor(self, other: Any = None, *others: Any) -> ProgramDiagram:
        for item in (other, *others):
            if item is not None and not isinstance(item, (ProgramDiagram, Ty)):
                raise WiringError(f"cannot put {item!r} beside {describe(self, 'last')}: only "
                                  "program boxes and diagrams go side by side in a program")
            if isinstance(item, ProgramDiagram):
                widths(item.dom @ item.cod)  # only word wires
            elif isinstance(item, Ty):
                widths(item)
        return symmetric.Diagram.tensor(self, other, *others)


class Swap(symmetric.Swap, ProgramDiagram):
    """The swap of two wires inside a program."""

    __ambiguous_inheritance__ = (symmetric.Swap,)


ProgramDiagram.braid_factory = Swap


class ProgramBox(symmetric.Box, ProgramDiagram):
    """A box of a program: its ``spec`` (frozen JSON data) says everything about it.

    ``kind`` names the box class (``"operation"``, ``"const"``, ``"copy"``, ``"discard"``);
    :func:`box_from_json` rebuilds a box from ``{"kind": ..., **spec}``.
    """

    __ambiguous_inheritance__ = (symmetric.Box,)
    kind = "box"

    def __init__(self, name: str, dom: Ty, cod: Ty, **spec: Any) -> None:
        self._spec_json = json.dumps(spec, sort_keys=True)
        symmetric.Box.__init__(self, name, dom, cod, data=tuple(sorted(spec.items())))

    @property
    def spec(self) -> dict[str, Any]:
        """A fresh copy of the box's parameters, as JSON data."""
        return json.loads(self._spec_json)

    @property
    def width(self) -> int:
        return self.spec["width"]

    def __repr__(self) -> str:
        return self.name


class Operation(ProgramBox):
    """An operation on ``width``-bit words: ``Int(width) ** arity -> Int(width)``.

    >>> print(Operation("select", 4).dom)
    i4 @ i4 @ i4
    >>> Operation("mod", 4)
    Traceback (most recent call last):
    ...
    diagrammar.diagrams.programs.ProgramError: unknown operation 'mod'; known: add, and, ...
    """

    kind = "operation"

    def __init__(self, op: str, width: int = 32) -> None:
        if op not in OPERATIONS:
            raise ProgramError(f"unknown operation {op!r}; known: "
                               f"{', '.join(sorted(OPERATIONS))}")
        ty = Int(width)
        super().__init__(f"{op}({ty})", ty ** OPERATIONS[op], ty, op=op, width=width)

    @property
    def op(self) -> str:
        return self.spec["op"]


class Const(ProgramBox):
    """A constant word: ``Ty() -> Int(width)``; ``value`` is reduced modulo ``2 ** width``
    (so ``Const(-1, 8)`` is ``Const(255, 8)``).

    >>> Const(-1, 8).value
    255
    """

    kind = "const"

    def __init__(self, value: int, width: int = 32) -> None:
        ty = Int(width)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProgramError(f"a constant must be an integer, not {value!r}")
        value %= 1 << width
        super().__init__(f"Const({value}, {ty})", Ty(), ty, value=value, width=width)

    @property
    def value(self) -> int:
        return self.spec["value"]


class Copy(ProgramBox):
    """A value read twice: ``Int(width) -> Int(width) @ Int(width)``."""

    kind = "copy"

    def __init__(self, width: int = 32) -> None:
        ty = Int(width)
        super().__init__(f"Copy({ty})", ty, ty @ ty, width=width)


class Discard(ProgramBox):
    """A value never read: ``Int(width) -> Ty()``."""

    kind = "discard"

    def __init__(self, width: int = 32) -> None:
        ty = Int(width)
        super().__init__(f"Discard({ty})", ty, Ty(), width=width)


BOX_KINDS: dict[str, type[ProgramBox]] = {
    cls.kind: cls for cls in (Operation, Const, Copy, Discard)}


def box_from_json(data: Any) -> ProgramBox:
    """Rebuilds a box from ``{"kind": ..., **spec}`` (:func:`box_to_json`)."""
    if not isinstance(data, Mapping) or data.get("kind") not in BOX_KINDS:
        raise ProgramError(f"a program box is an object with a kind among "
                           f"{', '.join(BOX_KINDS)}, not {data!r}")
    spec = {key: value for key, value in data.items() if key != "kind"}
    try:
        return BOX_KINDS[data["kind"]](**spec)
    except TypeError as error:
        raise ProgramError(f"bad spec for a {data['kind']} box: {error}") from None


def box_to_json(box: ProgramBox) -> dict[str, Any]:
    return {"kind": box.kind, **box.spec}


def to_json(diagram: ProgramDiagram) -> dict[str, Any]:
    """A program as JSON data: its input widths and its layers ``[offset, box]`` (a swap is
    ``{"kind": "swap"}`` of two single wires).

    >>> f = program("y = x + 1", ["x"], ["y"], width=4)
    >>> from_json(json.loads(json.dumps(to_json(f)))) == f
    True
    """
    layers = []
    for left, box, _ in diagram.inside:
        if isinstance(box, ProgramBox):
            layers.append([len(left), box_to_json(box)])
        elif isinstance(box, symmetric.Swap) and len(box.dom) == 2:
            layers.append([len(left), {"kind": "swap"}])
        else:
            raise ProgramError(f"cannot write {box!r} as JSON: not a program box")
    return {"dom": widths(diagram.dom), "layers": layers}


def from_json(data: Any) -> ProgramDiagram:
    """The inverse of :func:`to_json`, with an error that says which layer is at fault."""
    if not isinstance(data, Mapping) or not isinstance(data.get("dom"), list) \
            or not isinstance(data.get("layers"), list):
        raise ProgramError("a program is an object with lists 'dom' and 'layers'")
    current = Ty().tensor(*(Int(width) for width in data["dom"]))
    result = ProgramDiagram.id(current)
    for index, layer in enumerate(data["layers"]):
        try:
            offset, item = layer
            if item.get("kind") == "swap":
                box = ProgramDiagram.swap(current[offset:offset + 1],
                                          current[offset + 1:offset + 2])
            else:
                box = box_from_json(item)
            if not 0 <= offset <= len(current) - len(box.dom) \
                    or current[offset:offset + len(box.dom)] != box.dom:
                raise ProgramError(f"box {box!r} does not fit the wires at offset {offset}")
            step = (ProgramDiagram.id(current[:offset]) @ box
                    @ ProgramDiagram.id(current[offset + len(box.dom):]))
        except (ProgramError, TypeError, ValueError, AttributeError) as error:
            raise ProgramError(f"layer {index}: {error}") from None
        result, current = result >> step, step.cod
    return result


def unroll(body: ProgramDiagram, times: int) -> ProgramDiagram:
    """A bounded loop: ``body`` (a diagram ``T -> T``) repeated ``times`` times.

    >>> print(unroll(Operation("neg", 8), 0))
    Id(i8)
    """
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        raise ProgramError(f"a loop runs a whole number >= 0 of times, not {times!r}")
    if body.dom != body.cod:
        raise WiringError(f"cannot unroll {describe(body, 'first')}: a loop body must output "
                          f"what it reads, but it reads {body.dom} and outputs {body.cod}")
    result = ProgramDiagram.id(body.dom)
    for _ in range(times):
        result = result >> body
    return result


def _move_to_end(types: list[Ty], index: int) -> ProgramDiagram:
    """The permutation moving wire ``index`` of ``types`` to the right end."""
    left = Ty().tensor(*types[:index])
    right = Ty().tensor(*types[index + 1:])
    return (ProgramDiagram.id(left)
            @ ProgramDiagram.swap(types[index], right))


def from_instructions(instructions: Sequence[Instruction], inputs: Sequence[str],
                      outputs: Sequence[str], width: int = 32) -> ProgramDiagram:
    """The diagram of straight-line code: ``instructions`` are ``(dest, op, args)`` with
    ``op`` in :data:`OPERATIONS` (``mov`` of a constant is a :class:`Const`) and arguments
    register names or integer constants; ``inputs`` name the input wires in order,
    ``outputs`` the output wires (a name may appear twice: its value is copied).

    A value is copied only where it is read again later and discarded where it is never
    read again, so the diagram has no dead wires.

    >>> f = from_instructions([("t", "add", ("x", 1)), ("y", "mul", ("t", "x"))],
    ...                       ["x"], ["y"], width=8)
    >>> [box.name for box in f.boxes]
    ['Copy(i8)', 'Const(1, i8)', 'add(i8)', 'Swap(i8, i8)', 'mul(i8)']
    """
    ty = Int(width)
    inputs, outputs = list(inputs), list(outputs)
    if len(set(inputs)) != len(inputs):
        raise ProgramError(f"the inputs {inputs} name a register twice")
    # reads[i] = the names instruction i reads; later reads decide copy versus move.
    reads = [[arg for arg in args if isinstance(arg, str)] for _, _, args in instructions]
    wires: list[str] = list(inputs)
    diagram = ProgramDiagram.id(ty ** len(wires))

    def needed(name: str, after: int) -> int:
        """How many times ``name``'s current value is read from instruction ``after`` on."""
        count = 0
        for index in range(after, len(instructions)):
            count += reads[index].count(name)
            if instructions[index][0] == name:
                return count
        return count + outputs.count(name)

    def fetch(name: str, keep: bool, arguments: int) -> None:
        """Moves (or copies, when ``keep``) ``name``'s wire to the right end, past the
        ``arguments`` wires already fetched."""
        nonlocal diagram
        index = wires[:len(wires) - arguments].index(name)
        if keep:
            diagram = diagram >> (ProgramDiagram.id(ty ** index) @ Copy(width)
                                  @ ProgramDiagram.id(ty ** (len(wires) - index - 1)))
            wires.insert(index, name)
            index += 1
        diagram = diagram >> _move_to_end([ty] * len(wires), index)
        wires.append(wires.pop(index))

    for name in inputs:
        if needed(name, 0) == 0:
            index = wires.index(name)
            diagram = diagram >> (ProgramDiagram.id(ty ** index) @ Discard(width)
                                  @ ProgramDiagram.id(ty ** (len(wires) - index - 1)))
            wires.pop(index)
    for line, (dest, op, args) in enumerate(instructions):
        where = f"instruction {line + 1} ({dest} = {op} {', '.join(map(str, args))})"
        if op not in OPERATIONS:
            raise ProgramError(f"{where}: unknown operation {op!r}")
        if len(args) != OPERATIONS[op]:
            raise ProgramError(f"{where}: {op} takes {OPERATIONS[op]} operand"
                               f"{'s' * (OPERATIONS[op] != 1)}, not {len(args)}")
        arguments = 0
        for position, arg in enumerate(args):
            if isinstance(arg, bool) or not isinstance(arg, (int, str)):
                raise ProgramError(f"{where}: {arg!r} is neither a register nor a constant")
            if isinstance(arg, int):
                diagram = diagram >> (ProgramDiagram.id(ty ** len(wires)) @ Const(arg, width))
                wires.append(f"#{line}.{position}")
            elif arg not in wires[:len(wires) - arguments]:
                raise ProgramError(f"{where}: {arg} is read before it is written")
            else:
                later = args[position + 1:].count(arg) + (
                    needed(arg, line + 1) if dest != arg else 0)
                fetch(arg, later > 0, arguments)
            arguments += 1
        if op != "mov":
            diagram = diagram >> (ProgramDiagram.id(ty ** (len(wires) - arguments))
                                  @ Operation(op, width))
        wires[len(wires) - arguments:] = [dest]
        if dest in wires[:-1]:
            index = wires.index(dest)
            diagram = diagram >> (ProgramDiagram.id(ty ** index) @ Discard(width)
                                  @ ProgramDiagram.id(ty ** (len(wires) - index - 1)))
            wires.pop(index)
        if needed(dest, line + 1) == 0:
            diagram = diagram >> (ProgramDiagram.id(ty ** (len(wires) - 1)) @ Discard(width))
            wires.pop()
    for name in outputs:
        if name not in wires:
            raise ProgramError(f"the output {name} is never written")
    # Bring the outputs, in order, to the right of the wires; then no wire is left over.
    for position, name in enumerate(outputs):
        fetch(name, name in outputs[position + 1:], position)
    assert len(wires) == len(outputs), (wires, outputs)
    return diagram


_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.BitAnd: "and",
           ast.BitOr: "or", ast.BitXor: "xor", ast.LShift: "shl", ast.RShift: "lshr",
           ast.FloorDiv: "udiv", ast.Mod: "urem"}
_UNARY = {ast.USub: "neg", ast.Invert: "not"}
_COMPARE = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "ult", ast.LtE: "ule"}
_SWAPPED = {ast.Gt: "ult", ast.GtE: "ule"}


def program(source: str, inputs: Sequence[str], outputs: Sequence[str] | None = None,
            width: int = 32) -> ProgramDiagram:
    """The diagram of a tiny Python-like program over unsigned ``width``-bit words.

    Statements: ``name = expression``, ``name op= expression``, ``for _ in range(N):``
    (unrolled; ``N`` a literal, the loop variable a constant in each copy) and a final
    ``return a, b``; expressions: names, integer literals, ``+ - * & | ^ << >> // %``
    (``>>`` logical, ``//`` and ``%`` unsigned), unary ``- ~``, one comparison (``== != < <=
    > >=``, unsigned, giving 0 or 1), ``a if c else b`` and calls of operations by name
    (``ashr(x, 1)``, ``slt(a, b)``, ``select(c, a, b)``). The text is parsed, never run.

    >>> f = program('''
    ... for i in range(2):
    ...     x = x * 3 + i
    ... return x, ashr(x, 1)
    ... ''', inputs=["x"], width=8)
    >>> print(f.dom, "->", f.cod)
    i8 -> i8 @ i8
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ProgramError(f"line {error.lineno}: {error.msg}") from None
    instructions: list[Instruction] = []
    counter = [0]

    def where(node: ast.AST) -> str:
        return f"line {getattr(node, 'lineno', '?')}"

    def expression(node: ast.expr, constants: Mapping[str, int]) -> str | int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id, node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return emit(_BINARY[type(node.op)], [node.left, node.right], constants)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            if isinstance(node.operand, ast.Constant) and isinstance(node.op, ast.USub):
                return -expression(node.operand, constants)  # type: ignore[operator]
            return emit(_UNARY[type(node.op)], [node.operand], constants)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            kind = type(node.ops[0])
            if kind in _COMPARE:
                return emit(_COMPARE[kind], [node.left, node.comparators[0]], constants)
            if kind in _SWAPPED:
                return emit(_SWAPPED[kind], [node.comparators[0], node.left], constants)
        if isinstance(node, ast.IfExp):
            return emit("select", [node.test, node.body, node.orelse], constants)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in OPERATIONS and not node.keywords:
            return emit(node.func.id, list(node.args), constants)
        raise ProgramError(f"{where(node)}: cannot read {ast.unparse(node)[:40]!r} "
                           "(see program()'s docstring for the syntax)")

    def emit(op: str, nodes: list[ast.expr], constants: Mapping[str, int],
             dest: str | None = None) -> str:
        args = tuple(expression(node, constants) for node in nodes)
        if len(args) != OPERATIONS[op]:
            raise ProgramError(f"{where(nodes[0] if nodes else None)}: {op} takes "
                               f"{OPERATIONS[op]} operands, not {len(args)}")
        if dest is None:
            counter[0] += 1
            dest = f"%{counter[0]}"
        instructions.append((dest, op, args))
        return dest

    def assign(dest: str, value: ast.expr, constants: Mapping[str, int]) -> None:
        result = expression(value, constants)
        if isinstance(result, int) or not result.startswith("%"):
            instructions.append((dest, "mov", (result,)))
        else:  # rename the temporary that holds the value
            last_dest, op, args = instructions[-1]
            assert last_dest == result
            instructions[-1] = (dest, op, args)

    returned: list[str] | None = None

    def statements(body: list[ast.stmt], constants: Mapping[str, int]) -> None:
        nonlocal returned
        for node in body:
            if returned is not None:
                raise ProgramError(f"{where(node)}: nothing may follow the return")
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                assign(node.targets[0].id, node.value, constants)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) \
                    and type(node.op) in _BINARY:
                assign(node.target.id, ast.BinOp(ast.Name(node.target.id), node.op,
                                                 node.value, lineno=node.lineno), constants)
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name) \
                    and isinstance(node.iter, ast.Call) and not node.orelse \
                    and isinstance(node.iter.func, ast.Name) and node.iter.func.id == "range" \
                    and len(node.iter.args) == 1 and isinstance(node.iter.args[0], ast.Constant) \
                    and isinstance(node.iter.args[0].value, int) \
                    and 0 <= node.iter.args[0].value <= 10_000:
                for index in range(node.iter.args[0].value):
                    statements(node.body, {**constants, node.target.id: index})
            elif isinstance(node, ast.Return) and node.value is not None and not constants:
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                returned = []
                for value in values:
                    result = expression(value, constants)
                    if isinstance(result, int):
                        counter[0] += 1
                        instructions.append((f"%{counter[0]}", "mov", (result,)))
                        result = f"%{counter[0]}"
                    returned.append(result)
            else:
                raise ProgramError(f"{where(node)}: cannot read {ast.unparse(node)[:40]!r}: a "
                                   "program has assignments, for-range loops and one return")

    statements(tree.body, {})
    if returned is None and outputs is None:
        raise ProgramError("say what the program outputs: a return statement or outputs=[...]")
    if returned is not None and outputs is not None:
        raise ProgramError("give the outputs either by a return statement or by outputs=[...]")
    return from_instructions(instructions, inputs, returned if returned is not None
                             else list(outputs or ()), width)


__all__ = ["OPERATIONS", "ProgramError", "Int", "Word", "widths", "ProgramDiagram", "Swap",
           "ProgramBox", "Operation", "Const", "Copy", "Discard", "BOX_KINDS", "box_from_json",
           "box_to_json", "to_json", "from_json", "unroll", "from_instructions", "program"]
