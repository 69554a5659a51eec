"""Interoperation with lambeq: diagrams both ways, circuits, readers and the baseline."""

from __future__ import annotations

import lambeq
import numpy as np
import pytest

from diagrammar.diagrams.pregroup import parse
from diagrammar.functors.tensor_network import TensorFunctor, discopy_eval
from diagrammar.qnlp.baseline import (
    LambeqCircuitModel,
    lambeq_reader_diagrams,
    train_lambeq_baseline,
)
from diagrammar.qnlp.circuits import compile_circuit
from diagrammar.qnlp.data import Dataset, generate_mc, mc_lexicon
from diagrammar.qnlp.lambeq_interop import from_lambeq, lambeq_to_discopy, to_lambeq
from diagrammar.qnlp.pennylane_runner import circuit_probabilities

ANSATZ = lambeq.IQPAnsatz({lambeq.AtomicType.NOUN: 1, lambeq.AtomicType.SENTENCE: 1},
                          n_layers=1, n_single_qubit_params=3)


def test_our_diagrams_round_trip_through_lambeq():
    for sentence in ("skillful man prepares tasty meal", "woman runs program"):
        ours = parse(sentence, mc_lexicon())
        theirs = to_lambeq(ours)
        assert isinstance(theirs, lambeq.backend.grammar.Diagram)
        assert [b.name for b in theirs.boxes][:2] == [b.name for b in ours.boxes][:2]
        assert from_lambeq(theirs) == ours
    with pytest.raises(TypeError):
        from_lambeq(ANSATZ(lambeq.cups_reader.sentence2diagram("man runs")))


@pytest.mark.parametrize("reader", ["cups", "spiders", "stairs"])
def test_lambeq_reader_diagrams_evaluate_with_our_tensor_functor(reader):
    diagram = from_lambeq(lambeq_reader_diagrams(["man cooks tasty meal"], reader)[0])
    functor = TensorFunctor({"s": 2, "n": 2})
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v) for k, v in functor(diagram).shapes().items()}
    value = functor(diagram).contract(params, library="numpy")
    assert value.shape == (2,)
    if reader != "spiders":  # discopy's reference functor has no spiders of several legs
        assert np.allclose(value, discopy_eval(diagram, {"s": 2, "n": 2}, params))
    with pytest.raises(ValueError):
        lambeq_reader_diagrams(["x"], "bobcat")


def test_lambeq_circuits_match_lambeq_numpy_model():
    circuit = ANSATZ(lambeq.cups_reader.sentence2diagram("skillful man cooks tasty meal"))
    compiled = compile_circuit(lambeq_to_discopy(circuit))
    values = np.random.default_rng(0).random(len(compiled.symbols))
    ours = circuit_probabilities(compiled, values, normalise=True)
    model = lambeq.NumpyModel.from_diagrams([circuit])
    names = [str(s) for s in compiled.symbols]
    model.weights = np.array([values[names.index(str(s))] for s in model.symbols])
    assert np.allclose(ours, np.asarray(model([circuit]))[0])
    with pytest.raises(TypeError):
        lambeq_to_discopy(lambeq.cups_reader.sentence2diagram("man runs"))


def test_lambeq_circuit_model_and_baseline_engines(tmp_path):
    mc = generate_mc()
    tiny = Dataset("MC", mc.train[:6], mc.dev[:2], mc.test[:2], mc.labels, mc.target)
    sentences = [e.sentence for e in tiny.train]
    circuits = [ANSATZ(d) for d in lambeq_reader_diagrams(sentences)]
    model = LambeqCircuitModel(sentences, circuits)
    assert model.probabilities(sentences).shape == (6, 2)
    with pytest.raises(ValueError):
        LambeqCircuitModel(sentences, circuits[:1])
    fast = train_lambeq_baseline(tiny, epochs=3, engine="pennylane", progress=False)
    slow = train_lambeq_baseline(tiny, epochs=1, engine="lambeq", progress=False,
                                 log_dir=str(tmp_path), batch_size=6)
    assert len(fast.losses) == 3 and len(slow.losses) == 1
    for result in (fast, slow):
        assert result.name == "MC-lambeq-cups-IQP"
        assert all(np.isfinite(result.losses)) and min(result.losses) > 0
        assert result.test_accuracy in (0.0, 0.5, 1.0)  # measured on the 2 test sentences
    with pytest.raises(ValueError, match="engine"):
        train_lambeq_baseline(tiny, epochs=1, engine="qiskit", progress=False)
