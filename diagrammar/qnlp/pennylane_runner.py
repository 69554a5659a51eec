"""Compiled circuits simulated exactly with PennyLane's ``default.qubit``.

>>> from discopy.quantum.gates import H, Ket
>>> from diagrammar.qnlp.circuits import compile_circuit
>>> runner = PennyLaneRunner([compile_circuit(Ket(0) >> H)])
>>> runner(runner.random_parameters(seed=0)).round(3).tolist()
[[0.5, 0.5]]

:class:`PennyLaneRunner` evaluates many
:class:`~diagrammar.qnlp.circuits.CompiledCircuit` objects over one parameter vector:
circuits with the same structure share one QNode and run together with parameter
broadcasting.  Post-selection is exact: the probabilities of the post-selected outcomes are
read from the full distribution.  :func:`circuit_probabilities` runs a single circuit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from diagrammar.qnlp.arrays import ArrayLibrary, array_namespace
from diagrammar.qnlp.circuits import CompiledCircuit, GateOp

__all__ = ["PennyLaneRunner", "circuit_probabilities"]

_LIBRARIES = ("numpy", "jax")  # the array libraries the runner computes in


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
    """Exact output probabilities of one compiled circuit, post-selection applied.

    Args:
        compiled: the circuit.
        values: one value (in turns) per symbol, in the order of ``compiled.symbols``.
        normalise: divide by the sum (the probability that post-selection succeeds).

    Returns:
        A NumPy vector of length ``2 ** len(compiled.outputs)``, including the
        ``|scalar|**2`` factor of the circuit.

    >>> from discopy.quantum.gates import H, Ket
    >>> from diagrammar.qnlp.circuits import compile_circuit
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
    circuits' symbols, sorted by name).  Calling the runner returns the output distribution
    of every circuit.

    Args:
        circuits: the compiled circuits, in the order of the rows of the result.
        library: the array library of ``theta`` and of the result.  ``"numpy"`` with no
            differentiation (the default) is the fast path for gradient-free training
            (SPSA); use ``"jax"`` with ``diff_method="parameter-shift"`` or
            ``"backprop"`` for gradients.  It is passed to the QNodes as their
            ``interface``.
        diff_method: PennyLane's differentiation method, or ``None`` for none.

    Raises:
        ValueError: ``library`` is not ``"numpy"`` or ``"jax"``.
    """

    def __init__(
        self,
        circuits: Sequence[CompiledCircuit],
        library: ArrayLibrary = "numpy",
        diff_method: str | None = None,
    ) -> None:
        self._xp = array_namespace(library, _LIBRARIES)
        import pennylane as qml

        self._qml = qml
        self.circuits = list(circuits)
        self.symbols: list[sympy.Symbol] = sorted(
            {s for c in self.circuits for s in c.symbols}, key=str
        )
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.library = library
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

        @qml.qnode(dev, interface=self.library, diff_method=self.diff_method)
        def run(angles):
            _apply_ops(qml, ops, angles)
            return qml.probs(wires=list(range(compiled.n_wires)))

        return compiled, run

    @property
    def n_params(self) -> int:
        """Length of the parameter vector."""
        return len(self.symbols)

    def random_parameters(self, seed: int = 0) -> np.ndarray:
        """Uniform parameters in ``[0, 1)`` (in turns), seeded; a NumPy vector."""
        return np.random.default_rng(seed).random(self.n_params)

    def __call__(self, theta, normalise: bool = True, subset: Sequence[int] | None = None):
        """Output distributions of the circuits.

        Args:
            theta: the parameter vector (length :attr:`n_params`), an array of
                :attr:`library`.
            normalise: divide every row by its sum (condition on post-selection).
            subset: indices of the circuits to run, in the order of the rows; all of them
                when ``None``.

        Returns:
            An array of shape ``(n_circuits, 2 ** n_outputs)``.
        """
        xp = self._xp
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
