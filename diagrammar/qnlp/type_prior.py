"""Unseen words: every word's parameters are its grammatical type's plus an offset of its own.

>>> from diagrammar.qnlp.tagger import TaggedParser
>>> from diagrammar.functors.tensor_network import TensorFunctor
>>> sentences = ["man cooks meal", "woman debugs program", "chef cooks sauce"]
>>> model = TypePriorTensorModel(sentences, TaggedParser().parse_all(sentences),
...     TensorFunctor({"n": 2, "s": 2}), known_words={"man", "cooks", "meal", "woman",
...     "debugs", "program"})
>>> sorted(k for k in model.params if k.startswith(TYPE_PRIOR))
['*__n', '*__n.r @ s @ n.l']
>>> "chef__n" in model.params  # unseen: the noun type's tensor, no parameters of its own
False
>>> tuple(model.probabilities(["chef cooks sauce"]).shape)
(1, 2)

A word's tensor (or circuit parameters) is ``prior[type] + offset[word]``: the prior is
shared by all words of one pregroup type (all nouns, all transitive verbs, each relative
pronoun type), and only the words of the training sentences (``known_words``) have an
offset.  A word never seen in training therefore gets its type's learned meaning, a
meaningful tensor or circuit rather than its random initialisation, and the pronoun types
(``n.r @ n @ s.l @ n`` for a subject relative clause, ``n.r @ n @ n.l.l @ s.l`` for an
object relative clause) learn what the two structures mean.  Weight decay on the offsets
pulls each word towards its type, which is the prior's role.

Parameter keys: a word's offset keeps the key of
:func:`~diagrammar.functors.tensor_network.box_key` (``meal__n``; its circuit symbols
``meal__n_0``, ...), its type's prior is ``*__n`` (``*__n_0``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from discopy.grammar.pregroup import Diagram

from diagrammar.functors.quantum import QuantumFunctor
from diagrammar.functors.tensor_network import TensorFunctor
from diagrammar.qnlp.arrays import ArrayLibrary
from diagrammar.qnlp.models import QuantumModel, TensorModel
from diagrammar.qnlp.tensor_network import init_params

__all__ = ["TYPE_PRIOR", "TypePriorQuantumModel", "TypePriorTensorModel", "prior_key"]

#: The word name of a type's prior.
TYPE_PRIOR = "*"


def prior_key(key: str) -> str:
    """The key of the type prior of a word's parameter key (or circuit symbol).

    >>> prior_key("meal__n"), prior_key("cooks__n.r @ s @ n.l_2")
    ('*__n', '*__n.r @ s @ n.l_2')

    Raises:
        ValueError: the key has no ``__`` between word and type.
    """
    word, sep, rest = key.partition("__")
    if not sep or not word:
        raise ValueError(f"parameter key {key!r} is not '<word>__<type>'")
    return f"{TYPE_PRIOR}__{rest}"


def _word(key: str) -> str:
    return key.partition("__")[0]


class _Composed(Mapping[str, Any]):
    """Read-only view: ``view[word key] = params[prior] + params.get(word key, 0)``."""

    def __init__(self, params: Mapping[str, Any], keys: Sequence[str]) -> None:
        self.params, self.keys_ = params, keys

    def __getitem__(self, key: str) -> Any:
        prior = self.params[prior_key(key)]
        offset = self.params.get(key)
        return prior if offset is None else prior + offset

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_)

    def __len__(self) -> int:
        return len(self.keys_)


class TypePriorTensorModel(TensorModel):
    """A :class:`~diagrammar.qnlp.models.TensorModel` whose word tensors share a type prior.

    Args:
        sentences: the sentences the model can classify.
        diagrams: their pregroup diagrams.
        functor: the tensor functor.
        known_words: the words that get an offset of their own (those of the training
            sentences); the others use their type's prior alone.
        library: ``"torch"`` or ``"jax"``.
        seed: seed of the initial parameters.
        scale: standard deviation of the initial priors.
        offset_scale: standard deviation of the initial offsets.
        readout: ``"softmax"`` or ``"born"``.

    :attr:`params` holds the priors and the offsets (what an optimiser trains);
    :meth:`word_params` the composed word tensors.
    """

    def __init__(
        self,
        sentences: Sequence[str],
        diagrams: Sequence[Diagram],
        functor: TensorFunctor,
        known_words: Iterable[str],
        library: ArrayLibrary = "torch",
        seed: int = 0,
        scale: float = 0.5,
        offset_scale: float = 0.1,
        readout: str = "softmax",
    ) -> None:
        super().__init__(sentences, diagrams, functor, library, seed, scale, readout)
        known = set(known_words)
        shapes = {key: tuple(value.shape) for key, value in self.params.items()}
        self.word_keys: list[str] = sorted(shapes)
        priors = {prior_key(key): shape for key, shape in shapes.items()}
        offsets = {key: shape for key, shape in shapes.items() if _word(key) in known}
        self.params = {
            **init_params(priors, library=library, seed=seed, scale=scale),
            **init_params(offsets, library=library, seed=seed + 1, scale=offset_scale),
        }

    def word_params(self, params: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """The word tensors ``prior + offset`` by word key (computed when read)."""
        return _Composed(self.params if params is None else params, self.word_keys)

    def param_keys(self, sentences: Sequence[str]) -> set[str]:
        """Priors and offsets that the networks of ``sentences`` use."""
        used = super().param_keys(sentences)
        return {prior_key(k) for k in used} | {k for k in used if k in self.params}

    def outputs(self, sentences: Sequence[str], params: Mapping[str, Any] | None = None):
        """Contracted output vectors with the composed word tensors."""
        return super().outputs(sentences, self.word_params(params))


class TypePriorQuantumModel(QuantumModel):
    """A :class:`~diagrammar.qnlp.models.QuantumModel` whose word circuits share a type prior.

    Every circuit symbol ``word__type_i`` has the value ``prior[type, i] + offset[word,
    type, i]``; :attr:`theta` is the vector of priors followed by the offsets of the known
    words, and :meth:`expand` maps it to the runner's symbols.

    Args:
        sentences: the sentences the model can classify.
        diagrams: their pregroup diagrams.
        functor: the quantum functor.
        known_words: the words that get offsets (those of the training sentences).
        seed: seed of the initial parameters: priors uniform in ``[0, 1)`` turns, offsets
            normal with standard deviation ``offset_scale``.
        library: ``"numpy"`` (SPSA) or ``"jax"`` (exact gradients).
        offset_scale: standard deviation of the initial offsets, in turns.

    >>> from diagrammar.qnlp.tagger import TaggedParser
    >>> from diagrammar.functors.quantum import IQPAnsatz
    >>> s = ["man cooks meal", "chef cooks meal"]
    >>> model = TypePriorQuantumModel(s, TaggedParser().parse_all(s),
    ...     QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz()), known_words={"man", "cooks", "meal"})
    >>> len(model.theta), model.runner.n_params  # 5 priors + 8 offsets; 11 circuit symbols
    (13, 11)
    """

    def __init__(
        self,
        sentences: Sequence[str],
        diagrams: Sequence[Diagram],
        functor: QuantumFunctor,
        known_words: Iterable[str],
        seed: int = 0,
        library: ArrayLibrary = "numpy",
        offset_scale: float = 0.1,
    ) -> None:
        super().__init__(sentences, diagrams, functor, seed, library)
        known = set(known_words)
        names = [str(symbol) for symbol in self.runner.symbols]
        priors = sorted({prior_key(name) for name in names})
        slot = {name: i for i, name in enumerate(priors)}
        offsets = [name for name in names if _word(name) in known]
        slot.update({name: len(priors) + i for i, name in enumerate(offsets)})
        self.parameter_names: list[str] = priors + offsets
        self._prior_index = np.array([slot[prior_key(n)] for n in names], dtype=np.int64)
        # Symbols without an offset read the extra zero appended in expand().
        self._offset_index = np.array([slot.get(n, len(slot)) for n in names], dtype=np.int64)
        rng = np.random.default_rng(seed)
        self.theta = np.concatenate(
            [rng.random(len(priors)), rng.normal(0.0, offset_scale, len(offsets))]
        )

    def expand(self, theta):
        """The runner's parameter vector (one value per circuit symbol) from ``theta``."""
        xp = self.runner._xp
        extended = xp.concatenate([theta, xp.zeros(1, dtype=theta.dtype)])
        return extended[self._prior_index] + extended[self._offset_index]

    def probabilities(self, sentences: Sequence[str], theta: np.ndarray | None = None):
        """Class probabilities with the composed parameters."""
        theta = self.theta if theta is None else theta
        return self.runner(self.expand(theta), subset=self._indices(sentences))
