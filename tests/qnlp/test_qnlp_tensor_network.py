"""Tests of the tensor functor and contraction: reference, functor laws, libraries, grads."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from discopy.grammar.pregroup import Box, Cap, Cup, Id, Spider, Word

from diagrammar.diagrams.pregroup import Lexicon, N, S, parse
from diagrammar.functors.tensor_network import TensorFunctor, box_key, discopy_eval
from diagrammar.qnlp.tensor_network import Operand, TensorNetwork, init_params

DIMS = {"n": 2, "s": 3}
F = TensorFunctor(DIMS)
LEX = Lexicon.from_categories({
    "noun": ["man", "woman", "meal"], "adjective": ["tasty"], "transitive_verb": ["cooks"],
    "subject_relative_pronoun": ["that"], "object_relative_pronoun": ["that"],
})


def _params(rng, *diagrams):
    shapes = {}
    for d in diagrams:
        shapes.update(F(d).shapes())
    return {k: rng.standard_normal(v) for k, v in shapes.items()}


def _matrix(diagram, params):
    net = F(diagram)
    value = np.asarray(net.contract(params, library="numpy"))
    return value.reshape(int(np.prod(net.dom_dims)), int(np.prod(net.cod_dims)))


@pytest.mark.parametrize("seed", range(12))
def test_contraction_matches_discopy_reference(seed, diagrams):
    rng = np.random.default_rng(seed)
    diagram = diagrams.random_diagram(rng, diagrams.random_type(rng), n_layers=5,
                             kinds=("box", "cup", "cap", "swap"))
    params = _params(rng, diagram)
    ours = F(diagram).contract(params, library="numpy")
    assert np.allclose(ours, discopy_eval(diagram, DIMS, params))


@pytest.mark.parametrize("seed", range(12))
def test_functor_laws_composition_and_tensor(seed, diagrams):
    rng = np.random.default_rng(100 + seed)
    f = diagrams.random_diagram(rng, diagrams.random_type(rng), n_layers=3, prefix="f")
    g = diagrams.random_diagram(rng, f.cod, n_layers=3, prefix="g")
    h = diagrams.random_diagram(rng, diagrams.random_type(rng), n_layers=3, prefix="h")
    params = _params(rng, f, g, h)
    assert np.allclose(_matrix(f >> g, params), _matrix(f, params) @ _matrix(g, params))
    assert np.allclose(_matrix(f @ h, params), np.kron(_matrix(f, params), _matrix(h, params)))
    assert np.allclose(_matrix(Id(f.dom) >> f, params), _matrix(f, params))


def test_transposes_and_daggers_of_boxes():
    rng = np.random.default_rng(0)
    f = Box("f", N @ S, S @ N.l)
    params = _params(rng, f)
    for d in (f.r, f.l, f.r.r, f.dagger(), f >> f.dagger()):
        assert np.allclose(F(d).contract(params, "numpy"), discopy_eval(d, DIMS, params))
    w = Word("w", N)
    p = {"w__n": np.array([1.0, 2.0])}
    assert np.allclose(F(w @ Id(N.r) >> Cup(N, N.r)).contract(p, "numpy"), [1.0, 2.0])
    assert box_key(w.r) == box_key(w) == "w__n" and box_key(f.dagger()) == box_key(f)


def test_spiders_caps_and_loops():
    ones = TensorFunctor({"n": 3})
    assert np.allclose(ones(Spider(0, 1, N)).contract({}, "numpy"), np.ones(3))
    copy = ones(Spider(1, 2, N)).contract({}, "numpy")
    assert copy.shape == (3, 3, 3) and copy.sum() == 3 and copy[1, 1, 1] == 1
    assert float(ones(Cap(N, N.l) >> Cup(N, N.l)).contract({}, "numpy")) == 3.0
    assert np.allclose(ones(Id(N)).contract({}, "numpy"), np.eye(3))


def test_frobenius_relative_pronoun_is_a_copy_spider():
    functor = TensorFunctor(DIMS, frobenius_words=["that"])
    rng = np.random.default_rng(1)
    subj = parse("man that cooks meal", LEX, N)
    obj = parse("man that woman cooks", LEX, N)
    params = {k: rng.standard_normal(v) for d in (subj, obj)
              for k, v in functor(d).shapes().items()}
    assert not any(k.startswith("that") for k in params)
    man, meal, woman = params["man__n"], params["meal__n"], params["woman__n"]
    verb = params["cooks__n.r @ s @ n.l"].sum(axis=1)  # the s leg is deleted
    assert np.allclose(functor(subj).contract(params, "numpy"), man * (verb @ meal))
    assert np.allclose(functor(obj).contract(params, "numpy"), man * (woman @ verb))


def test_torch_jax_numpy_agree_and_gradients_match():
    diagram = parse("tasty man cooks meal", LEX)
    net = F(diagram)
    np_params = init_params(net.shapes(), library="numpy", seed=3)
    torch_params = {k: torch.tensor(v, requires_grad=True) for k, v in np_params.items()}
    jax_params = {k: jnp.asarray(v) for k, v in np_params.items()}
    ref = net.contract(np_params, "numpy")
    t_val = net.contract(torch_params, "torch")
    j_val = net.contract(jax_params, "jax")
    assert t_val.dtype == torch.float64  # constants follow the parameters' dtype
    assert np.allclose(t_val.detach().numpy(), ref) and np.allclose(np.asarray(j_val), ref,
                                                                    atol=1e-5)
    (t_val ** 2).sum().backward()
    grads = jax.grad(lambda p: (net.contract(p, "jax") ** 2).sum())(jax_params)
    for key in np_params:
        assert np.allclose(torch_params[key].grad.numpy(), np.asarray(grads[key]), atol=1e-4)
    eps, key = 1e-6, "man__n"
    bumped = dict(np_params)
    bumped[key] = np_params[key] + eps * np.eye(2)[0]
    fd = ((net.contract(bumped, "numpy") ** 2).sum() - (ref ** 2).sum()) / eps
    assert np.isclose(fd, torch_params[key].grad.numpy()[0], rtol=1e-3, atol=1e-4)


def test_float32_torch_works_where_discopy_torch_backend_fails():
    diagram = parse("man cooks meal", LEX)
    params = init_params(F(diagram).shapes(), library="torch", seed=0)
    value = F(diagram).contract(params, "torch")
    assert value.dtype == torch.float32 and value.requires_grad
    value.sum().backward()
    assert all(p.grad is not None for p in params.values())


def test_errors_and_helpers():
    with pytest.raises(ValueError, match="positive"):
        TensorFunctor({"n": 0})
    with pytest.raises(KeyError, match="'s'"):
        TensorFunctor({"n": 2})(parse("man cooks meal", LEX))
    net = F(parse("man cooks meal", LEX))
    with pytest.raises(ValueError, match="shape"):
        net.contract({k: np.ones(1) for k in net.shapes()}, "numpy")
    with pytest.raises(ValueError, match="array library"):
        net.contract({}, "tensorflow")
    with pytest.raises(KeyError, match="missing parameters"):
        net.contract({}, "numpy")
    one = TensorNetwork((Operand("param", "v", (2,), (0,)),), (0,), {0: 2}, 1.0, (), (2,))
    assert one.equation() == "a->a"
    assert F.shapes([parse("man cooks meal", LEX)])["man__n"] == (2,)
    union = F.shapes([Box("x", N, N), Box("x", N, N) @ Id(N), Word("man", N @ S)])
    assert union == {"x__n->n": (2, 2), "man__n @ s": (2, 3)}
    p = init_params({"a": (2, 3)}, library="jax", seed=0)
    assert p["a"].shape == (2, 3)
    assert init_params({"a": (2,)}, "numpy", seed=5)["a"].tolist() == \
        init_params({"a": (2,)}, "numpy", seed=5)["a"].tolist()
    with pytest.raises(ValueError):
        init_params({"a": (2,)}, library="mx")
