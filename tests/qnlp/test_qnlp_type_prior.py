"""Tests of the type-prior models: words unseen in training get their type's parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diagrammar.diagrams.pregroup import N, tokenize
from diagrammar.functors.quantum import QuantumFunctor, Sim14Ansatz
from diagrammar.functors.tensor_network import TensorFunctor
from diagrammar.qnlp.data import RP_LABELS, Dataset, Example
from diagrammar.qnlp.models import QuantumModel, TensorModel
from diagrammar.qnlp.tagger import TaggedParser
from diagrammar.qnlp.train import train_quantum_adam, train_tensor
from diagrammar.qnlp.type_prior import (
    TYPE_PRIOR,
    TypePriorQuantumModel,
    TypePriorTensorModel,
    prior_key,
)

# A relative-clause data set whose dev and test nouns and verbs never occur in train: only
# the structure (subject or object relative pronoun) can decide the label.
TRAIN = [
    ("man that helps woman", 0),
    ("woman that man helps", 1),
    ("student that hires chef", 0),
    ("chef that student hires", 1),
    ("teacher that trusts doctor", 0),
    ("doctor that teacher trusts", 1),
    ("king that visits queen", 0),
    ("queen that king visits", 1),
]
DEV = [("farmer that sells horse", 0), ("horse that farmer sells", 1)]
TEST = [
    ("artist that paints monk", 0),
    ("monk that artist paints", 1),
    ("sailor that protects island", 0),
    ("island that sailor protects", 1),
]


def _data() -> Dataset:
    def examples(rows):
        return tuple(Example(s, label) for s, label in rows)

    return Dataset("RP", examples(TRAIN), examples(DEV), examples(TEST), RP_LABELS, "n")


def _setup():
    data = _data()
    sentences = [e.sentence for e in data.all_examples()]
    known = {w for e in data.train for w in tokenize(e.sentence)}
    return data, sentences, TaggedParser().parse_all(sentences, N), known


def test_prior_key():
    assert prior_key("meal__n") == f"{TYPE_PRIOR}__n"
    assert prior_key("that__n.r @ n @ s.l @ n_3") == "*__n.r @ n @ s.l @ n_3"
    with pytest.raises(ValueError, match="word"):
        prior_key("meal")
    with pytest.raises(ValueError, match="word"):
        prior_key("__n")


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_unseen_words_use_their_type_prior_and_known_words_add_an_offset(library):
    data, sentences, diagrams, known = _setup()
    model = TypePriorTensorModel(
        sentences, diagrams, TensorFunctor({"n": 2, "s": 2}), known, library=library, seed=3
    )
    words = model.word_params()
    assert "artist__n" not in model.params and "man__n" in model.params
    assert np.allclose(np.asarray(_np(words["artist__n"])), _np(model.params["*__n"]))
    assert np.allclose(
        _np(words["man__n"]), _np(model.params["*__n"]) + _np(model.params["man__n"])
    )
    # The outputs are those of a plain tensor model given the composed word tensors.
    plain = TensorModel(sentences, diagrams, TensorFunctor({"n": 2, "s": 2}), library=library)
    ours = model.outputs(sentences)
    reference = plain.outputs(sentences, {k: words[k] for k in words})
    assert np.allclose(_np(ours), _np(reference), atol=1e-6)
    used = model.param_keys(["artist that paints monk"])
    assert used == {"*__n", "*__n.r @ s @ n.l", "that__n.r @ n @ s.l @ n", "*__n.r @ n @ s.l @ n"}


def _np(value) -> np.ndarray:
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_tensor_model_classifies_phrases_made_of_unseen_words(library):
    data, sentences, diagrams, known = _setup()
    torch.manual_seed(0)
    model = TypePriorTensorModel(
        sentences, diagrams, TensorFunctor({"n": 2, "s": 2}), known, library=library, seed=0
    )
    result = train_tensor(model, data, epochs=60, lr=0.1, progress=False)
    assert result.train_accuracy == 1.0 and result.test_accuracy == 1.0


def test_torch_and_jax_type_prior_models_agree():
    data, sentences, diagrams, known = _setup()
    out = {}
    for library in ("torch", "jax"):
        model = TypePriorTensorModel(
            sentences, diagrams, TensorFunctor({"n": 2, "s": 2}), known, library=library, seed=1
        )
        train_tensor(model, data, epochs=15, lr=0.05, progress=False)
        out[library] = _np(model.probabilities(sentences))
    assert np.allclose(out["torch"], out["jax"], atol=1e-3)


def test_quantum_expand_and_probabilities():
    data, sentences, diagrams, known = _setup()
    functor = QuantumFunctor({"n": 1, "s": 1}, Sim14Ansatz())
    model = TypePriorQuantumModel(sentences, diagrams, functor, known, seed=2)
    names = [str(s) for s in model.runner.symbols]
    theta = np.arange(len(model.theta), dtype=float)
    full = model.expand(theta)
    slot = {name: i for i, name in enumerate(model.parameter_names)}
    for name, value in zip(names, full, strict=True):
        offset = theta[slot[name]] if name in slot else 0.0
        assert value == theta[slot[prior_key(name)]] + offset
    assert not any(n.startswith("artist__") for n in model.parameter_names)
    plain = QuantumModel(sentences, diagrams, functor)
    assert np.allclose(model.probabilities(sentences, theta), plain.probabilities(sentences, full))


def test_quantum_adam_classifies_phrases_made_of_unseen_words():
    data, sentences, diagrams, known = _setup()
    functor = QuantumFunctor({"n": 1, "s": 1}, Sim14Ansatz())
    model = TypePriorQuantumModel(sentences, diagrams, functor, known, seed=0, library="jax")
    result = train_quantum_adam(model, data, epochs=40, lr=0.1, progress=False)
    assert result.losses[-1] < result.losses[0]
    assert result.train_accuracy == 1.0 and result.test_accuracy == 1.0
    assert result.dev_accuracy == 1.0 and 1 <= result.best_epoch <= 40


def test_quantum_adam_needs_a_jax_model():
    data, sentences, diagrams, known = _setup()
    model = TypePriorQuantumModel(
        sentences, diagrams, QuantumFunctor({"n": 1, "s": 1}, Sim14Ansatz()), known
    )
    with pytest.raises(ValueError, match="jax"):
        train_quantum_adam(model, data, epochs=1, progress=False)
    with pytest.raises(ValueError, match="library"):
        QuantumModel(sentences, diagrams, model.functor, library="torch")
