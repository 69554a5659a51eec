"""discopy circuits compiled to flat gate lists that a simulator can run.

>>> from discopy.quantum.gates import CX, H, Ket, Rx
>>> compiled = compile_circuit(Ket(0, 0) >> H @ Rx(0.25) >> CX)
>>> [op.name for op in compiled.ops]
['Hadamard', 'RX', 'CNOT']
>>> compiled.n_wires, compiled.outputs, compiled.postselect
(2, (0, 1), ())

:func:`compile_circuit` walks a pure discopy ``Circuit`` (kets, gates, bras, scalars, the
output of :class:`~diagrammar.functors.quantum.QuantumFunctor` or of a converted lambeq
circuit) and returns a :class:`CompiledCircuit`: PennyLane gate names on integer wires,
the post-selections, the open wires and a scalar.  Symbolic phases become slots of one
parameter vector, so circuits that differ only in their symbols share a
:meth:`~CompiledCircuit.structure` and can be simulated together
(:class:`~diagrammar.qnlp.pennylane_runner.PennyLaneRunner`).

Angles follow discopy: a gate phase ``p`` (in turns) is the PennyLane angle ``2 * pi * p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from discopy.quantum import circuit as qc
from discopy.quantum.gates import Bra, Controlled, Ket, Rx, Ry, Rz, Scalar

__all__ = ["CompiledCircuit", "GateOp", "compile_circuit"]


@dataclass(frozen=True)
class GateOp:
    """One PennyLane gate.

    Attributes:
        name: the PennyLane operation, e.g. ``"Hadamard"``, ``"CRZ"``.
        wires: the wires it acts on (control first for controlled gates).
        param: ``None`` (no parameter), a constant angle in radians, or
            ``(coefficient, slot)`` meaning the angle ``coefficient * theta[slot]``.
    """

    name: str
    wires: tuple[int, ...]
    param: None | float | tuple[float, int]


@dataclass(frozen=True)
class CompiledCircuit:
    """A pure circuit as a flat gate list with post-selections.

    Attributes:
        n_wires: the number of qubits, all prepared in ``|0>``.
        ops: the gates, in order.
        postselect: ``(wire, bit)`` pairs: the outcomes the circuit is conditioned on.
        outputs: the wires left open, in the circuit's codomain order.
        scalar: multiplies the amplitude.
        symbols: ``symbols[slot]`` is the sympy symbol of parameter ``slot``.
    """

    n_wires: int
    ops: tuple[GateOp, ...]
    postselect: tuple[tuple[int, int], ...]
    outputs: tuple[int, ...]
    scalar: complex
    symbols: tuple[sympy.Symbol, ...]

    def structure(self) -> tuple:
        """Hashable shape: circuits with equal structure differ only in their symbols.

        Returns:
            ``(n_wires, ops, postselect, outputs)``; the scalar and symbols are left out.
        """
        return (self.n_wires, self.ops, self.postselect, self.outputs)


_SINGLE = {"H": "Hadamard", "X": "PauliX", "Y": "PauliY", "Z": "PauliZ", "S": "S", "T": "T"}
_ROTATIONS = {"Rx": "RX", "Ry": "RY", "Rz": "RZ"}
_CONTROLLED = {"X": "CNOT", "Z": "CZ", "Rx": "CRX", "Ry": "CRY", "Rz": "CRZ"}


def _rotation_name(gate) -> str | None:
    for cls, name in ((Rx, "Rx"), (Ry, "Ry"), (Rz, "Rz")):
        if isinstance(gate, cls):
            return name
    return None


def _param(phase: Any, slots: dict[sympy.Symbol, int]) -> float | tuple[float, int]:
    """Turn a discopy phase (turns) into a constant angle or (coefficient, slot).

    lambeq symbols (converted circuits) are turned into sympy symbols of the same name.

    Raises:
        NotImplementedError: the phase is not a constant multiple of one symbol.
    """
    if hasattr(phase, "to_sympy"):
        phase = phase.to_sympy()
    if isinstance(phase, sympy.Expr) and phase.free_symbols:
        coeff, rest = phase.as_coeff_Mul()
        if not isinstance(rest, sympy.Symbol):
            raise NotImplementedError(f"gate phase {phase} is not a multiple of one symbol")
        slot = slots.setdefault(rest, len(slots))
        return (2 * math.pi * float(coeff), slot)
    return 2 * math.pi * float(phase)


def compile_circuit(circuit: qc.Circuit) -> CompiledCircuit:
    """Flatten a pure discopy circuit of kets, gates, bras and scalars into a gate list.

    Supports ``Ket``, ``Bra``, ``Scalar``/``Sqrt``, ``H X Y Z S T``, ``Rx Ry Rz`` and their
    controlled versions at any distance, and swaps (which only relabel wires).

    Args:
        circuit: a discopy circuit with an empty domain (a state, possibly with bras).

    Returns:
        The :class:`CompiledCircuit`; its symbols are numbered in order of first use.

    Raises:
        ValueError: the circuit has a non-empty domain.
        NotImplementedError: a box has no PennyLane translation (a multiply-controlled
            gate, a symbolic scalar, a phase that is not a multiple of one symbol, ...).

    >>> from discopy.quantum.gates import H
    >>> compile_circuit(Ket(0) >> H).ops
    (GateOp(name='Hadamard', wires=(0,), param=None),)
    """
    if circuit.dom:
        raise ValueError(f"circuit must be a state (empty domain), got domain {circuit.dom}")
    wires: list[int] = []
    n_wires = 0
    ops: list[GateOp] = []
    post: list[tuple[int, int]] = []
    scalar: complex = 1.0
    slots: dict[sympy.Symbol, int] = {}
    for box, offset in zip(circuit.boxes, circuit.offsets, strict=True):
        if isinstance(box, Ket):
            new = list(range(n_wires, n_wires + len(box.bitstring)))
            n_wires += len(new)
            for wire, bit in zip(new, box.bitstring, strict=True):
                if bit:
                    ops.append(GateOp("PauliX", (wire,), None))
            wires[offset:offset] = new
        elif isinstance(box, Bra):
            for wire, bit in zip(wires[offset : offset + len(box.bitstring)], box.bitstring,
                                 strict=True):
                post.append((wire, int(bit)))
            del wires[offset : offset + len(box.bitstring)]
        elif isinstance(box, Scalar):
            value = box.data
            if isinstance(value, sympy.Expr) and value.free_symbols:
                raise NotImplementedError(f"symbolic scalar {value}")
            scalar *= complex(np.asarray(box.array).reshape(-1)[0])
        elif isinstance(box, Controlled):
            if isinstance(box.controlled, Controlled):
                raise NotImplementedError("multiply-controlled gates are not supported")
            width = abs(box.distance) + 1
            local = wires[offset : offset + width]
            control, target = (local[0], local[-1]) if box.distance > 0 else (local[-1], local[0])
            gate = box.controlled
            rot = _rotation_name(gate)
            key = rot or gate.name
            if key not in _CONTROLLED:
                raise NotImplementedError(f"controlled gate {gate} is not supported")
            param = _param(gate.phase, slots) if rot else None
            ops.append(GateOp(_CONTROLLED[key], (control, target), param))
        elif _rotation_name(box) is not None:
            ops.append(GateOp(_ROTATIONS[_rotation_name(box)], (wires[offset],),
                              _param(box.phase, slots)))
        elif getattr(box, "name", None) in _SINGLE and len(box.dom) == 1:
            ops.append(GateOp(_SINGLE[box.name], (wires[offset],), None))
        elif box.name in ("SWAP",) or type(box).__name__ == "Swap":
            wires[offset], wires[offset + 1] = wires[offset + 1], wires[offset]
        else:
            raise NotImplementedError(f"box {box!r} has no PennyLane translation")
    symbols = tuple(sorted(slots, key=slots.__getitem__))
    return CompiledCircuit(n_wires, tuple(ops), tuple(post), tuple(wires), scalar, symbols)


