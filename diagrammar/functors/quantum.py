"""Pregroup diagrams -> parameterised quantum circuits, evaluated exactly with PennyLane.

:class:`QuantumFunctor` sends each basic type to a number of qubits and each word to a
parameterised circuit chosen by an :class:`Ansatz` (IQP, Sim14 or Sim15 style); cups
become Bell effects (CNOT, Hadamard, post-selection), so a sentence becomes a discopy
``Circuit`` whose free sympy symbols are the word parameters.  :func:`compile_circuit`
turns such a circuit into a flat gate list, and :class:`PennyLaneRunner` runs many of them
exactly on PennyLane's ``default.qubit`` simulator: circuits with the same shape share one
QNode and are evaluated together with parameter broadcasting.  Post-selection is exact: the
probabilities of the post-selected outcomes are read from the full distribution.

Angles follow discopy: a gate phase ``p`` is the PennyLane angle ``2 * pi * p``.

Example
-------
>>> import numpy as np
>>> from diagrammar.diagrams.pregroup import Lexicon, parse
>>> lex = Lexicon.from_categories({"noun": ["man", "meal"], "transitive_verb": ["cooks"]})
>>> functor = QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz(n_layers=1))
>>> circuit = functor(parse("man cooks meal", lex))
>>> compiled = compile_circuit(circuit)
>>> compiled.n_wires, len(compiled.outputs), len(compiled.symbols)
(5, 1, 8)
>>> runner = PennyLaneRunner([compiled])
>>> probs = runner(runner.random_parameters(seed=0))
>>> probs.shape, bool(np.isclose(probs.sum(), 1.0))
((1, 2), True)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from discopy.grammar import pregroup
from discopy.grammar.pregroup import Box, Ty
from discopy.quantum import circuit as qc
from discopy.quantum.gates import (
    Bra,
    Controlled,
    H,
    Ket,
    Rx,
    Ry,
    Rz,
    Scalar,
    X,
)

from diagrammar.functors.tensor_network import box_key

__all__ = [
    "Ansatz",
    "CompiledCircuit",
    "GateOp",
    "IQPAnsatz",
    "PennyLaneRunner",
    "QuantumFunctor",
    "Sim14Ansatz",
    "Sim15Ansatz",
    "circuit_probabilities",
    "compile_circuit",
]

qubit = qc.qubit


def _on(n_wires: int, gate: qc.Circuit, position: int) -> qc.Circuit:
    """``gate`` placed at ``position`` among ``n_wires`` qubits."""
    width = len(gate.dom)
    return qc.Id(qubit ** position) @ gate @ qc.Id(qubit ** (n_wires - position - width))


def _controlled(n_wires: int, gate: qc.Circuit, control: int, target: int) -> qc.Circuit:
    distance = target - control
    box = Controlled(gate, distance=distance)
    return _on(n_wires, box, min(control, target))


def _euler(params: Sequence[Any]) -> qc.Circuit:
    return Rx(params[0]) >> Rz(params[1]) >> Rx(params[2])


class Ansatz(ABC):
    """How a word on ``k`` qubits becomes a parameterised unitary circuit.

    A single qubit always gets an Euler rotation ``Rx Rz Rx`` (3 parameters).
    """

    def __init__(self, n_layers: int = 1) -> None:
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        self.n_layers = n_layers

    def n_params(self, n_qubits: int) -> int:
        """Number of parameters of the unitary on ``n_qubits`` qubits."""
        if n_qubits == 0:
            return 0
        if n_qubits == 1:
            return 3
        return self.n_layers * self._per_layer(n_qubits)

    def unitary(self, n_qubits: int, params: Sequence[Any]) -> qc.Circuit:
        """The unitary on ``n_qubits`` qubits with the given parameters (symbols or floats)."""
        if len(params) != self.n_params(n_qubits):
            raise ValueError(
                f"{type(self).__name__} on {n_qubits} qubits needs "
                f"{self.n_params(n_qubits)} parameters, got {len(params)}"
            )
        if n_qubits == 0:
            return qc.Id(qubit ** 0)
        if n_qubits == 1:
            return _euler(params)
        return self._layers(n_qubits, list(params))

    @abstractmethod
    def _per_layer(self, n_qubits: int) -> int: ...

    @abstractmethod
    def _layers(self, n_qubits: int, params: list[Any]) -> qc.Circuit: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_layers={self.n_layers})"


class IQPAnsatz(Ansatz):
    """Instantaneous-quantum-polynomial style: Hadamards, a ladder of CRz, final Hadamards.

    >>> IQPAnsatz(n_layers=2).n_params(3)
    4
    """

    def _per_layer(self, n_qubits: int) -> int:
        return n_qubits - 1

    def _layers(self, n_qubits: int, params: list[Any]) -> qc.Circuit:
        circuit = qc.Id(qubit ** n_qubits)
        hadamards = qc.Id(qubit ** 0)
        for _ in range(n_qubits):
            hadamards = hadamards @ H
        it = iter(params)
        for _ in range(self.n_layers):
            circuit = circuit >> hadamards
            for i in range(n_qubits - 1):
                circuit = circuit >> _controlled(n_qubits, Rz(next(it)), i, i + 1)
        return circuit >> hadamards


class Sim14Ansatz(Ansatz):
    """Circuit 14 of Sim et al. (2019): Ry layer, CRx ring, Ry layer, reversed CRx ring.

    >>> Sim14Ansatz().n_params(2)
    8
    """

    def _per_layer(self, n_qubits: int) -> int:
        return 4 * n_qubits

    def _ring(self, n_qubits: int, it, gate, step: int) -> qc.Circuit:
        circuit = qc.Id(qubit ** n_qubits)
        order = range(n_qubits - 1, -1, -1) if step > 0 else range(n_qubits)
        for control in order:
            target = (control + step) % n_qubits
            circuit = circuit >> _controlled(n_qubits, gate(it), control, target)
        return circuit

    def _rotations(self, n_qubits: int, it) -> qc.Circuit:
        layer = qc.Id(qubit ** 0)
        for _ in range(n_qubits):
            layer = layer @ Ry(next(it))
        return layer

    def _entangler(self, it):
        return Rx(next(it))

    def _layers(self, n_qubits: int, params: list[Any]) -> qc.Circuit:
        it = iter(params)
        circuit = qc.Id(qubit ** n_qubits)
        for _ in range(self.n_layers):
            circuit = circuit >> self._rotations(n_qubits, it)
            circuit = circuit >> self._ring(n_qubits, it, self._entangler, +1)
            circuit = circuit >> self._rotations(n_qubits, it)
            circuit = circuit >> self._ring(n_qubits, it, self._entangler, -1)
        return circuit


class Sim15Ansatz(Sim14Ansatz):
    """Circuit 15 of Sim et al. (2019): like Sim14 with fixed CNOT rings instead of CRx.

    >>> Sim15Ansatz().n_params(3)
    6
    """

    def _per_layer(self, n_qubits: int) -> int:
        return 2 * n_qubits

    def _entangler(self, it):
        return X


class QuantumFunctor:
    """Functor from pregroup diagrams to discopy circuits with sympy parameters.

    Parameters
    ----------
    qubits:
        Qubits per basic type, e.g. ``{"n": 1, "s": 1}``.
    ansatz:
        The word circuit family.  A box ``A -> B`` is a unitary on ``max(|A|, |B|)``
        qubits, with fresh qubits prepared in ``|0>`` and surplus ones post-selected on
        ``<0|``.
    frobenius_words:
        Words given a fixed Frobenius meaning (no parameters): a GHZ-like copy spider on
        their ``frobenius_type`` legs, the uniform (delete) state on the others.

    >>> from diagrammar.diagrams.pregroup import N
    >>> from discopy.grammar.pregroup import Word
    >>> f = QuantumFunctor({"n": 1}, Sim15Ansatz())
    >>> sorted(map(str, f(Word("man", N)).free_symbols))
    ['man__n_0', 'man__n_1', 'man__n_2']
    """

    def __init__(
        self,
        qubits: Mapping[Ty | str, int],
        ansatz: Ansatz,
        frobenius_words: Iterable[str] = (),
        frobenius_type: str = "n",
    ) -> None:
        self.qubits: dict[str, int] = {}
        for ty, count in qubits.items():
            name = ty if isinstance(ty, str) else ty.inside[0].name
            if int(count) < 0:
                raise ValueError(f"qubit count of {name!r} must be >= 0, got {count}")
            self.qubits[name] = int(count)
        self.ansatz = ansatz
        self.frobenius_words = frozenset(frobenius_words)
        self.frobenius_type = frobenius_type
        self._functor = qc.Functor(
            ob={Ty(name): qubit ** count for name, count in self.qubits.items()},
            ar=self.box_circuit,
            dom=pregroup.Category(),
        )

    def width(self, ty: Ty) -> int:
        """Number of qubits of a pregroup type."""
        total = 0
        for ob in ty.inside:
            if ob.name not in self.qubits:
                raise KeyError(f"no qubit count for basic type {ob.name!r}")
            total += self.qubits[ob.name]
        return total

    def symbols(self, box: Box) -> list[sympy.Symbol]:
        """The parameters of a box, named ``<box key>_<i>``."""
        n = self.ansatz.n_params(max(self.width(box.dom), self.width(box.cod)))
        key = box_key(box)
        return [sympy.Symbol(f"{key}_{i}") for i in range(n)]

    def box_circuit(self, box: Box) -> qc.Circuit:
        """The circuit of one box (the functor on arrows)."""
        if box.name in self.frobenius_words and len(box.dom) == 0:
            return self._frobenius(box)
        n_in, n_out = self.width(box.dom), self.width(box.cod)
        width = max(n_in, n_out)
        circuit = qc.Id(qubit ** n_in)
        if width > n_in:
            circuit = circuit @ Ket(*([0] * (width - n_in)))
        circuit = circuit >> self.ansatz.unitary(width, self.symbols(box))
        if width > n_out:
            circuit = circuit >> qc.Id(qubit ** n_out) @ Bra(*([0] * (width - n_out)))
        return circuit

    def _frobenius(self, box: Box) -> qc.Circuit:
        layout: list[tuple[str, int]] = []  # (basic type, qubit index within it) per qubit
        for ob in box.cod.inside:
            layout += [(ob.name, i) for i in range(self.qubits[ob.name])]
        n = len(layout)
        circuit = Ket(*([0] * n)) if n else qc.Id(qubit ** 0)
        factor = 1.0
        groups: dict[int, list[int]] = {}
        for pos, (name, index) in enumerate(layout):
            if name == self.frobenius_type:
                groups.setdefault(index, []).append(pos)
            else:
                circuit = circuit >> _on(n, H, pos)
                factor *= math.sqrt(2)
        for positions in groups.values():
            first = positions[0]
            circuit = circuit >> _on(n, H, first)
            factor *= math.sqrt(2)
            for other in positions[1:]:
                circuit = circuit >> _controlled(n, X, first, other)
        return circuit @ Scalar(factor) if factor != 1.0 else circuit

    def __call__(self, diagram: pregroup.Diagram) -> qc.Circuit:
        return self._functor(diagram)


@dataclass(frozen=True)
class GateOp:
    """One PennyLane gate: ``name`` on ``wires``; ``param`` is ``None``, a constant angle
    (float, radians) or ``(coefficient, slot)`` meaning ``coefficient * theta[slot]``."""

    name: str
    wires: tuple[int, ...]
    param: None | float | tuple[float, int]


@dataclass(frozen=True)
class CompiledCircuit:
    """A pure circuit as a flat gate list with post-selections.

    ``symbols[slot]`` is the sympy symbol of parameter ``slot``; ``outputs`` are the wires
    left open, in the circuit's codomain order; ``scalar`` multiplies the amplitude.
    """

    n_wires: int
    ops: tuple[GateOp, ...]
    postselect: tuple[tuple[int, int], ...]
    outputs: tuple[int, ...]
    scalar: complex
    symbols: tuple[sympy.Symbol, ...]

    def structure(self) -> tuple:
        """Hashable shape: circuits with equal structure differ only in their symbols."""
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


def _apply_ops(qml, ops: Sequence[GateOp], angles) -> None:
    for op in ops:
        gate = getattr(qml, op.name)
        if op.param is None:
            gate(wires=list(op.wires))
        elif isinstance(op.param, tuple):
            coeff, slot = op.param
            gate(angles[slot] * coeff, wires=list(op.wires))
        else:
            gate(op.param, wires=list(op.wires))


def _postselect(probs, structure_post, outputs, n_wires: int, batch: bool):
    """Slice the post-selected outcomes and order the output wires."""
    shape = ((probs.shape[0],) if batch else ()) + (2,) * n_wires
    probs = probs.reshape(shape)
    lead = 1 if batch else 0
    index: list[Any] = [slice(None)] * len(shape)
    for wire, bit in structure_post:
        index[lead + wire] = bit
    probs = probs[tuple(index)]
    kept = [w for w in range(n_wires) if w not in dict(structure_post)]
    order = [kept.index(w) for w in outputs]
    perm = list(range(lead)) + [lead + i for i in order]
    probs = probs.transpose(perm)
    return probs.reshape(((probs.shape[0],) if batch else ()) + (2 ** len(outputs),))


def circuit_probabilities(compiled: CompiledCircuit, values: Sequence[float],
                          normalise: bool = False) -> np.ndarray:
    """Exact output probabilities of one compiled circuit (post-selection applied),
    including the ``|scalar|**2`` factor; ``normalise`` divides by their sum.

    >>> c = compile_circuit(Ket(0) >> H)
    >>> circuit_probabilities(c, []).round(3).tolist()
    [0.5, 0.5]
    """
    import pennylane as qml

    dev = qml.device("default.qubit", wires=max(compiled.n_wires, 1))

    @qml.qnode(dev)
    def run(angles):
        _apply_ops(qml, compiled.ops, angles)
        return qml.probs(wires=list(range(compiled.n_wires)))

    probs = np.asarray(run(np.asarray(values, dtype=float)))
    probs = _postselect(probs, compiled.postselect, compiled.outputs, compiled.n_wires, False)
    probs = probs * abs(compiled.scalar) ** 2
    return probs / probs.sum() if normalise else probs


class PennyLaneRunner:
    """Evaluate many compiled circuits exactly with PennyLane, sharing QNodes by structure.

    Parameters are one flat vector ``theta`` over :attr:`symbols` (the union of all
    circuits' symbols, sorted by name).  :meth:`__call__` returns the normalised output
    distribution of every circuit, shape ``(n_circuits, 2 ** n_outputs)``.

    ``interface``/``diff_method`` are passed to the QNodes: the default ``"numpy"`` with
    no differentiation is the fast path for gradient-free training (SPSA); use
    ``interface="jax"`` with ``diff_method="parameter-shift"`` or ``"backprop"`` for
    gradients.
    """

    def __init__(
        self,
        circuits: Sequence[CompiledCircuit],
        interface: str = "numpy",
        diff_method: str | None = None,
    ) -> None:
        import pennylane as qml

        self._qml = qml
        self.circuits = list(circuits)
        self.symbols: list[sympy.Symbol] = sorted(
            {s for c in self.circuits for s in c.symbols}, key=str
        )
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.interface = interface
        self.diff_method = diff_method
        groups: dict[tuple, list[int]] = {}
        for i, c in enumerate(self.circuits):
            groups.setdefault(c.structure(), []).append(i)
        self.groups = []
        for members in groups.values():
            first = self.circuits[members[0]]
            gather = np.array(
                [[self.index[s] for s in self.circuits[i].symbols] for i in members],
                dtype=np.int64,
            ).reshape(len(members), len(first.symbols))
            scalars = np.array([abs(self.circuits[i].scalar) ** 2 for i in members])
            self.groups.append((np.array(members), gather, scalars, self._qnode(first)))

    def _qnode(self, compiled: CompiledCircuit):
        qml = self._qml
        dev = qml.device("default.qubit", wires=max(compiled.n_wires, 1))
        ops = compiled.ops

        @qml.qnode(dev, interface=self.interface, diff_method=self.diff_method)
        def run(angles):
            _apply_ops(qml, ops, angles)
            return qml.probs(wires=list(range(compiled.n_wires)))

        return compiled, run

    @property
    def n_params(self) -> int:
        """Length of the parameter vector."""
        return len(self.symbols)

    def random_parameters(self, seed: int = 0) -> np.ndarray:
        """Uniform parameters in ``[0, 1)`` (in turns), seeded."""
        return np.random.default_rng(seed).random(self.n_params)

    def __call__(self, theta, normalise: bool = True, subset: Sequence[int] | None = None):
        """Output distributions of the circuits (all, or the indices in ``subset``)."""
        xp = np
        if self.interface == "jax":
            import jax.numpy as jnp

            xp = jnp
        wanted = None if subset is None else {int(i): k for k, i in enumerate(subset)}
        rows, positions = [], []
        for members, gather, scalars, (compiled, run) in self.groups:
            keep = (np.arange(len(members)) if wanted is None
                    else np.array([k for k, m in enumerate(members) if int(m) in wanted]))
            if len(keep) == 0:
                continue
            batch = gather[keep]
            angles = theta[batch.T] if batch.shape[1] else xp.zeros((0, len(keep)))
            if self.diff_method == "parameter-shift" and compiled.symbols:
                # PennyLane cannot shift broadcast parameters: one execution per circuit.
                probs = xp.stack([run(angles[:, k]) for k in range(len(keep))])
            else:
                probs = run(angles)
            if not compiled.symbols:
                probs = xp.broadcast_to(probs, (len(keep), probs.shape[-1]))
            probs = _postselect(probs, compiled.postselect, compiled.outputs,
                                compiled.n_wires, True)
            probs = probs * xp.asarray(scalars[keep])[:, None]
            rows.append(probs)
            order = members[keep]
            positions.extend(int(m) if wanted is None else wanted[int(m)] for m in order)
        out = xp.concatenate(rows, axis=0)
        inverse = np.argsort(np.array(positions))
        out = out[inverse]
        if normalise:
            out = out / out.sum(axis=1, keepdims=True)
        return out
