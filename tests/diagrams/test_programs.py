"""Program diagrams: wire types, boxes, builders, JSON and the errors on bad input."""

from __future__ import annotations

import json

import pytest

from diagrammar.diagrams.errors import WiringError
from diagrammar.diagrams.programs import (
    OPERATIONS,
    Const,
    Copy,
    Discard,
    Int,
    Operation,
    ProgramDiagram,
    ProgramError,
    Word,
    from_instructions,
    from_json,
    program,
    to_json,
    unroll,
    widths,
)


def test_types_and_boxes():
    assert str(Word) == "i32" and widths(Int(8) @ Int(3)) == [8, 3]
    add = Operation("add", 8)
    assert (str(add.dom), str(add.cod), add.spec) == ("i8 @ i8", "i8", {"op": "add", "width": 8})
    assert str(Operation("select", 4).dom) == "i4 @ i4 @ i4"
    assert Const(300, 8).value == 44 and Const(-2, 4).value == 14
    assert str(Copy(8).cod) == "i8 @ i8" and Discard(8).cod == Int(8) ** 0
    assert Operation("add", 8) == Operation("add", 8) != Operation("add", 16)


@pytest.mark.parametrize("build, message", [
    (lambda: Operation("mod", 8), "unknown operation 'mod'"),
    (lambda: Operation("add", 0), "width must be a whole number in 1..512"),
    (lambda: Int(True), "width must be"),
    (lambda: Const(1.5, 8), "a constant must be an integer"),
    (lambda: unroll(Operation("add", 8), 2), "a loop body must output what it reads"),
    (lambda: unroll(Operation("neg", 8), -1), "whole number >= 0"),
])
def test_bad_boxes(build, message):
    with pytest.raises((ProgramError, WiringError), match=message):
        build()


def test_composition_errors_name_both_boxes_and_both_types():
    with pytest.raises(WiringError, match=r"cannot compose box 'Const\(1, i8\)' with box "
                                          r"'neg\(i16\)': the left side outputs i8 but the "
                                          r"right side expects i16"):
        Const(1, 8) >> Operation("neg", 16)
    with pytest.raises(WiringError, match="only program boxes"):
        Operation("neg", 8) >> 3
    with pytest.raises((WiringError, ProgramError), match="side by side|not a word type"):
        Operation("neg", 8) @ "x"


def test_from_instructions_copies_and_discards_only_where_needed():
    f = from_instructions([("t", "add", ("x", "y")), ("u", "mul", ("t", 3))],
                          ["x", "y", "z"], ["u", "x", "u"], width=8)
    kinds = [type(box).__name__ for box in f.boxes if not box.name.startswith("Swap")]
    # x is read twice (add, output): one copy; z never: one discard; u output twice: a copy.
    assert kinds.count("Copy") == 2 and kinds.count("Discard") == 1
    assert str(f.dom) == "i8 @ i8 @ i8" and str(f.cod) == "i8 @ i8 @ i8"


@pytest.mark.parametrize("instructions, inputs, outputs, message", [
    ([("y", "add", ("x", "z"))], ["x"], ["y"], r"instruction 1 \(y = add x, z\): z is read "
                                               "before it is written"),
    ([("y", "add", ("x",))], ["x"], ["y"], "add takes 2 operands, not 1"),
    ([("y", "pow", ("x", 2))], ["x"], ["y"], "unknown operation 'pow'"),
    ([("y", "add", ("x", 1.5))], ["x"], ["y"], "neither a register nor a constant"),
    ([], ["x"], ["y"], "the output y is never written"),
    ([], ["x", "x"], ["x"], "name a register twice"),
])
def test_from_instructions_errors(instructions, inputs, outputs, message):
    with pytest.raises(ProgramError, match=message):
        from_instructions(instructions, inputs, outputs, 8)


def test_program_syntax():
    f = program("""
t = x + y
t *= 3
c = t < y
for i in range(3):
    t = t ^ i
return select(c, t, ~x), -t, 7, t >> 1 if c else t // 2
""", inputs=["x", "y"], width=8)
    assert str(f.dom) == "i8 @ i8" and str(f.cod) == "i8 @ i8 @ i8 @ i8"
    ops = {box.spec.get("op") for box in f.boxes if hasattr(box, "spec")}
    assert ops >= {"add", "mul", "ult", "xor", "select", "not", "neg", "lshr", "udiv"}


@pytest.mark.parametrize("source, message", [
    ("y = x +", "line 1: invalid syntax"),
    ("while x:\n    x = x - 1\ny = x", "line 1: cannot read 'while x"),
    ("y = x ** 2", r"line 1: cannot read 'x \*\* 2'"),
    ("y = pow(x, 2)", "cannot read 'pow"),
    ("y = select(x, x)", "select takes 3 operands, not 2"),
    ("return x\ny = x", "line 2: nothing may follow the return"),
    ("y = x", "say what the program outputs"),
    ("for i in range(n):\n    x = x + 1\nreturn x", "cannot read 'for i in range"),
])
def test_program_syntax_errors(source, message):
    with pytest.raises(ProgramError, match=message):
        program(source, inputs=["x"])


def test_unroll_is_repeated_composition():
    body = program("x = x * 3 + 1", ["x"], ["x"], width=8)
    assert unroll(body, 3) == body >> body >> body
    assert unroll(body, 0) == ProgramDiagram.id(Int(8))
    assert program("for _ in range(3):\n    x = x * 3 + 1\nreturn x", ["x"], width=8) == \
        unroll(body, 3)


def test_json_round_trip():
    f = program("y = select(x < 3, x * x, 200)\nreturn y, x", ["x"], width=8)
    data = json.loads(json.dumps(to_json(f)))
    assert from_json(data) == f
    assert all(op in OPERATIONS for op in (box.spec.get("op", "add") for box in f.boxes
                                           if hasattr(box, "spec")))


@pytest.mark.parametrize("data, message", [
    ({"dom": [8]}, "lists 'dom' and 'layers'"),
    ({"dom": [8], "layers": [[0, {"kind": "add"}]]}, "layer 0: a program box is an object"),
    ({"dom": [8], "layers": [[0, {"kind": "operation", "op": "add", "width": 8}]]},
     "layer 0: box add\\(i8\\) does not fit the wires at offset 0"),
    ({"dom": [8], "layers": [[0, {"kind": "const", "width": 8}]]}, "layer 0: bad spec"),
])
def test_json_errors(data, message):
    with pytest.raises(ProgramError, match=message):
        from_json(data)


def test_the_syntax_layer_imports_no_solver():
    import subprocess
    import sys

    code = ("import sys, diagrammar.diagrams.programs\n"
            "print(sorted(m for m in ('z3', 'sympy', 'torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
