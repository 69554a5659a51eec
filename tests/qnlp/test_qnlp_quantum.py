"""Tests of the quantum functor, the PennyLane compiler/runner and gradients."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import sympy
from discopy.grammar.pregroup import Box, Id, Word
from discopy.quantum import Ket
from discopy.quantum.gates import CX, H, Rx, Ry

from diagrammar.diagrams.pregroup import Lexicon, N, S, parse
from diagrammar.functors.quantum import IQPAnsatz, QuantumFunctor, Sim14Ansatz, Sim15Ansatz
from diagrammar.qnlp.circuits import compile_circuit
from diagrammar.qnlp.pennylane_runner import PennyLaneRunner, circuit_probabilities

LEX = Lexicon.from_categories({
    "noun": ["man", "woman", "meal"], "adjective": ["tasty"], "transitive_verb": ["cooks"],
    "subject_relative_pronoun": ["that"], "object_relative_pronoun": ["that"],
})
ANSATZE = [IQPAnsatz(1), IQPAnsatz(2), Sim14Ansatz(1), Sim15Ansatz(1)]


def _values(circuit, seed=0):
    syms = sorted(circuit.free_symbols, key=str)
    rng = np.random.default_rng(seed)
    return syms, {s: rng.random() for s in syms}


def _amplitudes(circuit, values: dict) -> np.ndarray:
    """discopy's exact evaluation, as a (2**dom, 2**cod) matrix."""
    syms = sorted(circuit.free_symbols, key=str)
    concrete = circuit.lambdify(*syms)(*[values[s] for s in syms]) if syms else circuit
    array = np.asarray(concrete.eval().array, dtype=complex)
    return array.reshape(2 ** len(circuit.dom), 2 ** len(circuit.cod))


def test_ansatz_parameter_counts_and_unitarity():
    assert IQPAnsatz(2).n_params(1) == 3 and IQPAnsatz(2).n_params(3) == 4
    assert Sim14Ansatz(1).n_params(3) == 12 and Sim15Ansatz(2).n_params(3) == 12
    assert IQPAnsatz().n_params(0) == 0
    rng = np.random.default_rng(0)
    for ansatz in ANSATZE:
        for k in (1, 2, 3):
            u = ansatz.unitary(k, list(rng.random(ansatz.n_params(k)))).eval().array
            u = np.asarray(u).reshape(2 ** k, 2 ** k)
            assert np.allclose(u.conj().T @ u, np.eye(2 ** k))
    with pytest.raises(ValueError, match="parameters"):
        IQPAnsatz().unitary(2, [0.1, 0.2])
    with pytest.raises(ValueError):
        IQPAnsatz(0)
    assert repr(Sim15Ansatz(3)) == "Sim15Ansatz(n_layers=3)"


@pytest.mark.parametrize("ansatz", ANSATZE, ids=repr)
@pytest.mark.parametrize("sentence, target", [("tasty man cooks meal", S),
                                              ("man that woman cooks", N),
                                              ("man that cooks meal", N)])
def test_pennylane_matches_discopy_exact_evaluation(ansatz, sentence, target):
    for frobenius in ((), ("that",)):
        functor = QuantumFunctor({"n": 1, "s": 1}, ansatz, frobenius_words=frobenius)
        circuit = functor(parse(sentence, LEX, target))
        syms, values = _values(circuit)
        compiled = compile_circuit(circuit)
        assert set(compiled.symbols) == set(syms)
        reference = np.abs(_amplitudes(circuit, values).reshape(-1)) ** 2
        ours = circuit_probabilities(compiled, [values[s] for s in compiled.symbols])
        assert np.allclose(ours, reference, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_functor_laws_on_random_diagrams(seed, diagrams):
    rng = np.random.default_rng(seed)
    functor = QuantumFunctor({"n": 1, "s": 1}, Sim14Ansatz(1))
    kinds = ("box", "cup", "cap", "swap")
    f = diagrams.random_diagram(rng, diagrams.random_type(rng, 1), 3, kinds, prefix="f")
    g = diagrams.random_diagram(rng, f.cod, 3, kinds, prefix="g")
    h = diagrams.random_diagram(rng, diagrams.random_type(rng, 1), 2, kinds, prefix="h")
    circuits = {name: functor(d) for name, d in
                {"f": f, "g": g, "h": h, "fg": f >> g, "fh": f @ h}.items()}
    values = {}
    for c in circuits.values():
        values.update(_values(c, seed)[1])
    amp = {name: _amplitudes(c, values) for name, c in circuits.items()}
    assert np.allclose(amp["fg"], amp["f"] @ amp["g"], atol=1e-9)
    assert np.allclose(amp["fh"], np.kron(amp["f"], amp["h"]), atol=1e-9)


def test_frobenius_word_is_a_parameter_free_spider():
    functor = QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz(), frobenius_words=["that"])
    word = Word("that", N.r @ N @ S.l @ N)
    circuit = functor(word)
    assert not circuit.free_symbols
    amplitudes = _amplitudes(circuit, {}).reshape(2, 2, 2, 2)
    expected = np.zeros((2, 2, 2, 2))
    for i in (0, 1):
        expected[i, i, :, i] = 1.0  # copy on the n legs, delete (|0>+|1>) on s.l
    assert np.allclose(amplitudes, expected)


def test_boxes_with_domain_and_symbols():
    functor = QuantumFunctor({"n": 1, "s": 2}, IQPAnsatz())
    box = Box("f", N @ N, S @ N)
    circuit = functor(box)
    assert len(circuit.dom) == 2 and len(circuit.cod) == 3
    assert {str(s) for s in circuit.free_symbols} == {f"f__n @ n->s @ n_{i}" for i in range(2)}
    assert functor.width(S @ N) == 3
    with pytest.raises(KeyError):
        functor.width(Word("x", N @ S.l @ S).cod @ Box("y", N, N).dom @ Word("z", N).cod
                      @ Word("q", type(N)("p")).cod)
    with pytest.raises(ValueError):
        QuantumFunctor({"n": -1}, IQPAnsatz())
    shrink = QuantumFunctor({"n": 1}, IQPAnsatz())(Box("g", N @ N, N))
    assert len(shrink.dom) == 2 and len(shrink.cod) == 1


def test_compile_circuit_gates_and_errors():
    compiled = compile_circuit(Ket(0, 1) >> H @ Rx(0.25) >> CX)
    names = [op.name for op in compiled.ops]
    assert names == ["PauliX", "Hadamard", "RX", "CNOT"]
    assert compiled.ops[2].param == pytest.approx(np.pi / 2)
    assert compiled.outputs == (0, 1) and compiled.postselect == ()
    probs = circuit_probabilities(compiled, [])
    assert np.isclose(probs.sum(), 1.0)
    t = sympy.Symbol("t")
    sym = compile_circuit(Ket(0) >> Rx(-2 * t))
    assert sym.ops[0].param == (pytest.approx(-4 * np.pi), 0) and sym.symbols == (t,)
    with pytest.raises(ValueError, match="state"):
        compile_circuit(Rx(0.1))
    u, v = sympy.Symbol("u"), sympy.Symbol("v")
    same_shape = compile_circuit(Ket(0) >> Rx(u)), compile_circuit(Ket(0) >> Rx(v))
    assert same_shape[0].structure() == same_shape[1].structure()  # one QNode for both
    assert compile_circuit(Ket(0) >> Ry(u)).structure() != same_shape[0].structure()


def _runner_circuits():
    functor = QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz())
    sentences = ["man cooks meal", "tasty man cooks meal", "woman cooks meal",
                 "man cooks tasty meal"]
    return [compile_circuit(functor(parse(s, LEX))) for s in sentences]


def test_runner_batches_by_structure_and_keeps_order():
    compiled = _runner_circuits()
    runner = PennyLaneRunner(compiled)
    assert len(runner.groups) == 3  # two sentences share a shape
    theta = runner.random_parameters(seed=1)
    probs = runner(theta)
    for i, c in enumerate(compiled):
        single = circuit_probabilities(c, [theta[runner.index[s]] for s in c.symbols], True)
        assert np.allclose(probs[i], single)
    subset = runner(theta, subset=[3, 0])
    assert np.allclose(subset, probs[[3, 0]])
    raw = runner(theta, normalise=False)
    assert np.allclose(raw / raw.sum(axis=1, keepdims=True), probs)
    assert np.all(raw.sum(axis=1) < 1.0)  # post-selection keeps only part of the mass
    with pytest.raises(ValueError, match="array library 'torch'"):
        PennyLaneRunner(compiled, library="torch")


def test_parameter_shift_equals_backprop_and_finite_differences():
    compiled = _runner_circuits()[:1]
    theta = PennyLaneRunner(compiled).random_parameters(seed=2)
    import jax

    grads = {}
    for method in ("parameter-shift", "backprop"):
        runner = PennyLaneRunner(compiled, library="jax", diff_method=method)
        grads[method] = np.asarray(jax.grad(lambda t, r=runner: r(t)[0, 0])(jnp.asarray(theta)))
    numeric = PennyLaneRunner(compiled)
    eps = 1e-5
    fd = np.array([(numeric(theta + eps * e)[0, 0] - numeric(theta - eps * e)[0, 0]) / (2 * eps)
                   for e in np.eye(len(theta))])
    assert np.abs(fd).max() > 1e-3  # the gradient is not trivially zero
    assert np.allclose(grads["parameter-shift"], grads["backprop"], atol=1e-4)
    assert np.allclose(grads["parameter-shift"], fd, atol=1e-4)


def test_identity_functor_law():
    functor = QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz())
    circuit = functor(Id(N @ S))
    assert np.allclose(_amplitudes(circuit, {}), np.eye(4))
