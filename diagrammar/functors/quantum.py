"""Pregroup diagrams -> parameterised quantum circuits: the quantum functor and its ansätze.

>>> from diagrammar.diagrams.pregroup import Lexicon, parse
>>> lex = Lexicon.from_categories({"noun": ["man", "meal"], "transitive_verb": ["cooks"]})
>>> functor = QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz(n_layers=1))
>>> circuit = functor(parse("man cooks meal", lex))
>>> len(circuit.dom), len(circuit.cod), len(circuit.free_symbols)
(0, 1, 8)

:class:`QuantumFunctor` sends each basic type to a number of qubits and each word to a
parameterised circuit chosen by an :class:`Ansatz` (IQP, Sim14 or Sim15 style); cups
become Bell effects (CNOT, Hadamard, post-selection), so a sentence becomes a discopy
``Circuit`` whose free sympy symbols are the word parameters.  Running circuits is
implementation code: :func:`~diagrammar.qnlp.circuits.compile_circuit` flattens one into a
gate list and :class:`~diagrammar.qnlp.pennylane_runner.PennyLaneRunner` simulates many of
them exactly with PennyLane.

Angles follow discopy: a gate phase ``p`` is in turns (the rotation angle ``2 * pi * p``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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

__all__ = ["Ansatz", "IQPAnsatz", "QuantumFunctor", "Sim14Ansatz", "Sim15Ansatz"]

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

    A single qubit always gets an Euler rotation ``Rx Rz Rx`` (3 parameters); subclasses
    say what happens on two or more.

    Args:
        n_layers: how many times the layer of the ansatz is repeated.

    Raises:
        ValueError: ``n_layers`` is less than 1.
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
        """The unitary on ``n_qubits`` qubits.

        Args:
            n_qubits: the width.
            params: :meth:`n_params` values, sympy symbols or floats (in turns).

        Returns:
            A discopy circuit from ``n_qubits`` qubits to ``n_qubits`` qubits.

        Raises:
            ValueError: the number of parameters is wrong.
        """
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

    Calling it on a pregroup diagram returns the circuit; a box's parameters are sympy
    symbols named after its :func:`~diagrammar.functors.tensor_network.box_key`, so a word
    has the same parameters wherever it occurs.

    Args:
        qubits: qubits per basic type, e.g. ``{"n": 1, "s": 1}``.
        ansatz: the word circuit family.  A box ``A -> B`` is a unitary on
            ``max(|A|, |B|)`` qubits, with fresh qubits prepared in ``|0>`` and surplus
            ones post-selected on ``<0|``.
        frobenius_words: words given a fixed Frobenius meaning (no parameters): a
            GHZ-like copy spider on their ``frobenius_type`` legs, the uniform (delete)
            state on the others.
        frobenius_type: the basic type the Frobenius words copy.

    Raises:
        ValueError: a qubit count is negative.

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
        """Number of qubits of a pregroup type.

        Raises:
            KeyError: a basic type of ``ty`` has no qubit count.
        """
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
        """The circuit of a pregroup diagram: words by the ansatz, cups as Bell effects."""
        return self._functor(diagram)
