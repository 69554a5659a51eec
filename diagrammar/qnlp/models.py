"""Sentence classifiers: pregroup diagrams through a functor to class probabilities.

>>> from diagrammar.qnlp.data import generate_mc, mc_lexicon
>>> from diagrammar.functors.tensor_network import TensorFunctor
>>> mc = generate_mc()
>>> sentences = [ex.sentence for ex in mc.all_examples()]
>>> model = TensorModel.from_sentences(sentences, mc_lexicon(), TensorFunctor({"n": 2, "s": 2}))
>>> tuple(model.probabilities(sentences[:3]).shape)
(3, 2)

- :class:`QuantumModel`: :class:`~diagrammar.functors.quantum.QuantumFunctor` circuits run
  exactly with :class:`~diagrammar.qnlp.pennylane_runner.PennyLaneRunner`; parameters are
  one vector ``theta`` (in turns), trained by SPSA.
- :class:`TensorModel`: :class:`~diagrammar.functors.tensor_network.TensorFunctor` networks
  contracted in Torch or JAX (``library=``); parameters are one array per word, trained by
  Adam.

The quantum model reads the output wire of a sentence (type ``s`` or ``n``) as a
distribution over classes by the Born rule, ``p_i = |x_i|^2 / sum_j |x_j|^2``; the tensor
model uses either the Born rule or (default) a softmax of the contracted vector.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from discopy.grammar.pregroup import Diagram, Ty

from diagrammar.diagrams.pregroup import Lexicon, S, parse
from diagrammar.functors.quantum import QuantumFunctor
from diagrammar.functors.tensor_network import TensorFunctor
from diagrammar.qnlp.arrays import ArrayLibrary, array_namespace
from diagrammar.qnlp.circuits import compile_circuit
from diagrammar.qnlp.pennylane_runner import PennyLaneRunner
from diagrammar.qnlp.tensor_network import TensorNetwork, init_params

__all__ = ["QuantumModel", "TensorModel", "cross_entropy", "parse_sentences"]

_EPS = 1e-9
_LIBRARIES = ("torch", "jax")  # the array libraries TensorModel trains in


def parse_sentences(sentences: Sequence[str], lexicon: Lexicon, target: Ty = S) -> list[Diagram]:
    """Parse every sentence with :func:`~diagrammar.diagrams.pregroup.parse`.

    Args:
        sentences: the sentences.
        lexicon: the pregroup types of their words.
        target: the type every sentence must reduce to.

    Returns:
        One diagram per sentence.

    Raises:
        ~diagrammar.diagrams.pregroup.ParseError: a word is unknown or a sentence does
            not reduce to ``target``.

    >>> from diagrammar.qnlp.data import mc_lexicon
    >>> len(parse_sentences(["man cooks meal", "woman runs program"], mc_lexicon()))
    2
    """
    return [parse(sentence, lexicon, target) for sentence in sentences]


def cross_entropy(probs, labels) -> Any:
    """Mean negative log-likelihood of integer ``labels`` under rows of ``probs``.

    Args:
        probs: class probabilities, shape ``(n, n_classes)``; a NumPy, Torch or JAX array.
        labels: ``n`` integer labels.

    Returns:
        A float for NumPy input, a differentiable scalar of the same library otherwise.
        Probabilities are clamped at ``1e-9`` before the logarithm.

    >>> float(round(cross_entropy(np.array([[0.5, 0.5]]), np.array([1])), 4))
    0.6931
    """
    rows = probs[np.arange(len(labels)), labels]
    if hasattr(rows, "clamp"):  # torch
        return -(rows.clamp_min(_EPS)).log().mean()
    module = type(rows).__module__
    if module.startswith("jax"):
        import jax.numpy as jnp

        return -jnp.mean(jnp.log(jnp.maximum(rows, _EPS)))
    return float(-np.mean(np.log(np.maximum(rows, _EPS))))


class QuantumModel:
    """Circuits for a fixed list of sentences, evaluated exactly with PennyLane.

    Args:
        sentences: the sentences the model can classify.
        diagrams: their pregroup diagrams, one per sentence.
        functor: the quantum functor that turns them into circuits.
        seed: seed of the initial parameters (uniform in ``[0, 1)`` turns).
        library: ``"numpy"`` (no gradients: SPSA) or ``"jax"``: the circuits are then
            simulated differentiably (PennyLane's ``diff_method``, ``"backprop"`` by
            default), so exact gradients train them
            (:func:`~diagrammar.qnlp.train.train_quantum_adam`).
        diff_method: PennyLane's differentiation method for ``library="jax"``:
            ``"backprop"`` or ``"parameter-shift"`` (the same gradient, as hardware would
            estimate it, much slower to simulate).

    Raises:
        ValueError: not one diagram per sentence, or an unknown library.

    >>> from diagrammar.qnlp.data import mc_lexicon
    >>> from diagrammar.functors.quantum import IQPAnsatz
    >>> model = QuantumModel.from_sentences(["man cooks meal", "woman runs program"],
    ...     mc_lexicon(), QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz()))
    >>> model.probabilities(["man cooks meal"]).shape
    (1, 2)
    """

    def __init__(self, sentences: Sequence[str], diagrams: Sequence[Diagram],
                 functor: QuantumFunctor, seed: int = 0, library: ArrayLibrary = "numpy",
                 diff_method: str = "backprop") -> None:
        if len(sentences) != len(diagrams):
            raise ValueError("need one diagram per sentence")
        if library not in ("numpy", "jax"):
            raise ValueError(f"library must be 'numpy' or 'jax', got {library!r}")
        self.sentences = list(sentences)
        self.index = {s: i for i, s in enumerate(self.sentences)}
        self.functor = functor
        self.circuits = [functor(d) for d in diagrams]
        self.runner = PennyLaneRunner([compile_circuit(c) for c in self.circuits],
                                      library=library,
                                      diff_method=diff_method if library == "jax" else None)
        self.theta = self.runner.random_parameters(seed)

    @classmethod
    def from_sentences(cls, sentences: Sequence[str], lexicon: Lexicon, functor: QuantumFunctor,
                       target: Ty = S, seed: int = 0,
                       library: ArrayLibrary = "numpy") -> QuantumModel:
        """Parse, then build the model."""
        return cls(sentences, parse_sentences(sentences, lexicon, target), functor, seed,
                   library)

    def _indices(self, sentences: Sequence[str]) -> list[int]:
        try:
            return [self.index[s] for s in sentences]
        except KeyError as err:
            raise KeyError(f"sentence {err.args[0]!r} was not given to the model") from None

    def probabilities(self, sentences: Sequence[str], theta: np.ndarray | None = None):
        """Class probabilities, shape ``(len(sentences), n_classes)``.

        Args:
            sentences: sentences given to the model, in any order.
            theta: parameters to use instead of :attr:`theta`.

        Raises:
            KeyError: a sentence was not given to the model.
        """
        theta = self.theta if theta is None else theta
        return self.runner(theta, subset=self._indices(sentences))

    def loss(self, sentences: Sequence[str], labels: Sequence[int],
             theta: np.ndarray | None = None) -> float:
        """Cross-entropy of the labels."""
        return float(cross_entropy(self.probabilities(sentences, theta), np.asarray(labels)))

    def accuracy(self, sentences: Sequence[str], labels: Sequence[int],
                 theta: np.ndarray | None = None) -> float:
        """Fraction of sentences whose most probable class is the label."""
        pred = np.argmax(self.probabilities(sentences, theta), axis=1)
        return float(np.mean(pred == np.asarray(labels)))


class TensorModel:
    """Tensor networks for a fixed list of sentences, contracted in Torch or JAX.

    Networks of the same shape are contracted together: their word tensors are stacked
    and one batched ``einsum`` evaluates the group.

    Args:
        sentences: the sentences the model can classify.
        diagrams: their pregroup diagrams, one per sentence.
        functor: the tensor functor that turns them into networks.
        library: the array library of the parameters, ``"torch"`` or ``"jax"``.
        seed: seed of the initial parameters (see
            :func:`~diagrammar.qnlp.tensor_network.init_params`).
        scale: standard deviation of the initial parameters.
        readout: ``"softmax"`` of the output vector, or ``"born"`` (squares, normalised).

    Raises:
        ValueError: not one diagram per sentence, another library, another readout.
    """

    def __init__(self, sentences: Sequence[str], diagrams: Sequence[Diagram],
                 functor: TensorFunctor, library: ArrayLibrary = "torch", seed: int = 0,
                 scale: float = 0.5, readout: str = "softmax") -> None:
        if readout not in ("softmax", "born"):
            raise ValueError(f"readout must be 'softmax' or 'born', got {readout!r}")
        self.readout = readout
        if len(sentences) != len(diagrams):
            raise ValueError("need one diagram per sentence")
        self._xp = array_namespace(library, _LIBRARIES)
        self.sentences = list(sentences)
        self.index = {s: i for i, s in enumerate(self.sentences)}
        self.functor = functor
        self.library = library
        self.networks: list[TensorNetwork] = [functor(d) for d in diagrams]
        shapes: dict[str, tuple[int, ...]] = {}
        for net in self.networks:
            shapes.update(net.shapes())
        self.params: dict[str, Any] = init_params(shapes, library=library, seed=seed,
                                                  scale=scale)

    @classmethod
    def from_sentences(cls, sentences: Sequence[str], lexicon: Lexicon, functor: TensorFunctor,
                       target: Ty = S, library: ArrayLibrary = "torch", seed: int = 0,
                       scale: float = 0.5, readout: str = "softmax") -> TensorModel:
        """Parse (see :func:`parse_sentences`), then build the model."""
        diagrams = parse_sentences(sentences, lexicon, target)
        return cls(sentences, diagrams, functor, library, seed, scale, readout)

    def _indices(self, sentences: Sequence[str]) -> list[int]:
        try:
            return [self.index[s] for s in sentences]
        except KeyError as err:
            raise KeyError(f"sentence {err.args[0]!r} was not given to the model") from None

    def param_keys(self, sentences: Sequence[str]) -> set[str]:
        """The keys of the parameters that the networks of ``sentences`` use.

        The others get no gradient from a loss on these sentences (Torch leaves their
        ``grad`` at ``None``; JAX returns zeros, which :class:`~diagrammar.qnlp.optim.Adam`
        must not be given as gradients).

        Raises:
            KeyError: a sentence was not given to the model.
        """
        return {op.key for i in self._indices(sentences) for op in self.networks[i].operands
                if op.kind == "param"}

    def outputs(self, sentences: Sequence[str], params: Mapping[str, Any] | None = None):
        """Raw contracted output vectors, shape ``(len(sentences), dim)``.

        Args:
            sentences: sentences given to the model, in any order.
            params: parameters to use instead of :attr:`params`.

        Raises:
            KeyError: a sentence was not given to the model.
        """
        params = self.params if params is None else params
        indices = self._indices(sentences)
        xp = self._xp
        groups: dict[tuple, list[int]] = {}
        for pos, i in enumerate(indices):
            net = self.networks[i]
            key = (net.equation(), tuple((op.kind, op.shape) for op in net.operands), net.factor)
            groups.setdefault(key, []).append(pos)
        rows: list[Any] = [None] * len(indices)
        for (equation, _kinds, factor), members in groups.items():
            first = self.networks[indices[members[0]]]
            used = set(equation.replace(",", "").replace("->", ""))
            batch = next(ch for ch in reversed(string.ascii_letters) if ch not in used)
            inputs, output = equation.split("->")
            terms = inputs.split(",") if inputs else []
            operands, new_terms = [], []
            for j, (op, term) in enumerate(zip(first.operands, terms, strict=True)):
                if op.kind == "param":
                    stacked = xp.stack([params[self.networks[indices[m]].operands[j].key]
                                        for m in members])
                    operands.append(stacked)
                    new_terms.append(batch + term)
                else:
                    like = next(iter(params.values()))
                    const = (xp.ones(op.shape, dtype=like.dtype) if op.kind == "ones"
                             else xp.eye(op.shape[0], dtype=like.dtype))
                    operands.append(const)
                    new_terms.append(term)
            value = xp.einsum(f"{','.join(new_terms)}->{batch}{output}", *operands)
            if factor != 1.0:
                value = value * factor
            value = value.reshape(len(members), -1)
            for k, m in enumerate(members):
                rows[m] = value[k]
        return xp.stack(rows)

    def probabilities(self, sentences: Sequence[str], params: Mapping[str, Any] | None = None):
        """Class probabilities (softmax or Born rule), shape ``(len(sentences), dim)``."""
        out = self.outputs(sentences, params)
        if self.readout == "softmax":
            if self.library == "torch":
                return out.softmax(dim=1)
            import jax

            return jax.nn.softmax(out, axis=1)
        squared = out * out + _EPS
        if self.library == "torch":
            return squared / squared.sum(dim=1, keepdim=True)
        return squared / squared.sum(axis=1, keepdims=True)

    def loss(self, sentences: Sequence[str], labels: Sequence[int],
             params: Mapping[str, Any] | None = None):
        """Cross-entropy of the labels (a differentiable scalar of :attr:`library`)."""
        return cross_entropy(self.probabilities(sentences, params), np.asarray(labels))

    def accuracy(self, sentences: Sequence[str], labels: Sequence[int],
                 params: Mapping[str, Any] | None = None) -> float:
        """Fraction of sentences whose most probable class is the label."""
        probs = self.probabilities(sentences, params)
        if self.library == "torch":
            probs = probs.detach()
        pred = np.argmax(np.asarray(probs), axis=1)
        return float(np.mean(pred == np.asarray(labels)))
