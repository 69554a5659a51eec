"""Tiny models trained in the test beat chance; model helpers behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diagrammar.diagrams.pregroup import N
from diagrammar.functors.quantum import IQPAnsatz, QuantumFunctor, Sim14Ansatz
from diagrammar.functors.tensor_network import TensorFunctor
from diagrammar.qnlp.data import Dataset, generate_mc, generate_rp, mc_lexicon, rp_lexicon
from diagrammar.qnlp.models import QuantumModel, TensorModel, cross_entropy, parse_sentences
from diagrammar.qnlp.optim import SPSA
from diagrammar.qnlp.train import train_quantum, train_tensor


def _small(data: Dataset, n_train: int, n_test: int) -> Dataset:
    return Dataset(data.name, data.train[:n_train], data.dev[:10], data.test[:n_test],
                   data.labels, data.target)


def test_cross_entropy_in_every_array_library():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    labels = np.array([0, 1])
    expected = -np.mean(np.log([0.9, 0.8]))
    assert np.isclose(cross_entropy(probs, labels), expected)
    assert np.isclose(float(cross_entropy(torch.tensor(probs), labels)), expected)
    import jax.numpy as jnp

    assert np.isclose(float(cross_entropy(jnp.asarray(probs), labels)), expected, atol=1e-6)


def test_tiny_tensor_models_beat_chance_torch_and_jax_agree():
    torch.manual_seed(0)
    mc = _small(generate_mc(), 40, 30)
    sentences = [e.sentence for e in mc.all_examples()]
    results = {}
    for library in ("torch", "jax"):
        model = TensorModel.from_sentences(sentences, mc_lexicon(), TensorFunctor({"n": 2, "s": 2}),
                                           library=library, seed=0)
        results[library] = train_tensor(model, mc, epochs=40, lr=0.05, progress=False)
    assert results["torch"].test_accuracy >= 0.8
    assert results["torch"].losses[-1] < results["torch"].losses[0]
    assert np.allclose(results["torch"].losses, results["jax"].losses, atol=1e-3)
    assert f"test {results['torch'].test_accuracy:.1%}" in results["torch"].summary()


def test_tiny_quantum_model_beats_chance():
    mc = _small(generate_mc(), 30, 30)
    sentences = [e.sentence for e in mc.all_examples()]
    model = QuantumModel.from_sentences(sentences, mc_lexicon(),
                                        QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz()), seed=0)
    before = model.accuracy([e.sentence for e in mc.test], [e.label for e in mc.test])
    result = train_quantum(model, mc, epochs=60, spsa=SPSA(a=0.1, c=0.06, A=6, seed=0),
                           progress=False)
    assert result.test_accuracy >= 0.75
    assert result.test_accuracy > before or before >= 0.75
    assert np.mean(result.losses[-10:]) < np.mean(result.losses[:10])


def test_rp_frobenius_tensor_model_learns_word_order():
    rp = generate_rp()
    sentences = [e.sentence for e in rp.all_examples()]
    model = TensorModel.from_sentences(sentences, rp_lexicon(),
                                       TensorFunctor({"n": 2, "s": 2}, frobenius_words=["that"]),
                                       target=N, seed=0)
    assert not any(k.startswith("that") for k in model.params)  # no pronoun parameters
    result = train_tensor(model, rp, epochs=60, lr=0.05, progress=False)
    assert result.test_accuracy >= 0.9


def test_model_inputs_are_checked():
    mc = generate_mc()
    sentences = [e.sentence for e in mc.train[:4]]
    diagrams = parse_sentences(sentences, mc_lexicon())
    with pytest.raises(ValueError):
        TensorModel(sentences, diagrams[:2], TensorFunctor({"n": 2, "s": 2}))
    with pytest.raises(ValueError, match="array library 'numpy'"):
        TensorModel(sentences, diagrams, TensorFunctor({"n": 2, "s": 2}), library="numpy")
    with pytest.raises(ValueError):
        TensorModel(sentences, diagrams, TensorFunctor({"n": 2, "s": 2}), readout="max")
    with pytest.raises(ValueError):
        QuantumModel(sentences, diagrams[:1], QuantumFunctor({"n": 1, "s": 1}, Sim14Ansatz()))
    model = TensorModel(sentences, diagrams, TensorFunctor({"n": 2, "s": 2}), readout="born")
    probs = model.probabilities(sentences)
    assert torch.allclose(probs.sum(dim=1), torch.ones(4, dtype=probs.dtype))
    out = model.outputs(sentences).detach()
    assert torch.allclose(probs.detach(), out ** 2 / (out ** 2).sum(1, keepdim=True), atol=1e-4)
    with pytest.raises(KeyError, match="not given"):
        model.probabilities(["woman debugs program twice"])
    qmodel = QuantumModel(sentences, diagrams, QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz()))
    with pytest.raises(KeyError, match="not given"):
        qmodel.probabilities(["nobody"])
    labels = np.array([e.label for e in mc.train[:4]])
    probs = qmodel.probabilities(sentences)
    assert np.allclose(qmodel.probabilities(sentences[::-1]), probs[::-1])  # rows follow input
    assert np.isclose(qmodel.accuracy(sentences, labels) + qmodel.accuracy(sentences, 1 - labels),
                      1.0)  # two classes: every sentence is right for exactly one labelling
    assert np.isclose(qmodel.loss(sentences, labels), -np.mean(np.log(probs[range(4), labels])))
