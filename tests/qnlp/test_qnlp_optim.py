"""Tests of SPSA and Adam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diagrammar.qnlp.optim import SPSA, Adam


def test_spsa_minimises_a_quadratic_with_two_evaluations_per_step():
    calls = []

    def loss(t):
        calls.append(1)
        return float(np.sum((t - 0.3) ** 2))

    spsa = SPSA(a=0.2, c=0.1, A=5, seed=1)
    theta = np.zeros(6)
    start = loss(theta)
    calls.clear()
    for _ in range(300):
        theta = spsa.step(loss, theta)
    assert len(calls) == 600
    assert loss(theta) < 0.01 * start
    assert spsa.k == 300
    assert spsa.last_loss < 0.1 * start  # mean of the last two (perturbed) evaluations


def test_spsa_is_seeded_and_validates():
    a = SPSA(seed=4).step(lambda t: float(t.sum() ** 2), np.ones(3))
    b = SPSA(seed=4).step(lambda t: float(t.sum() ** 2), np.ones(3))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        SPSA(a=0)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_matches_torch_adam(weight_decay):
    rng = np.random.default_rng(0)
    target = rng.standard_normal(4)
    ours = {"w": np.zeros(4)}
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt_t = torch.optim.Adam([w], lr=0.05, weight_decay=weight_decay)
    opt = Adam(lr=0.05, weight_decay=weight_decay)
    for _ in range(50):
        ours = opt.step(ours, {"w": 2 * (ours["w"] - target)})
        opt_t.zero_grad()
        ((w - torch.tensor(target)) ** 2).sum().backward()
        opt_t.step()
    assert np.allclose(ours["w"], w.detach().numpy(), atol=1e-10)


def test_adam_skips_parameters_without_gradient_like_torch():
    # "b" has a gradient only in every third step, "c" never: torch leaves a parameter whose
    # grad is None untouched (no weight decay, no moment update, its step count stays).
    rng = np.random.default_rng(1)
    init = {k: rng.standard_normal(3) for k in "abc"}
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    opt_t = torch.optim.Adam(list(tensors.values()), lr=0.05, weight_decay=0.1)
    opt = Adam(lr=0.05, weight_decay=0.1)
    ours = dict(init)
    for step in range(30):
        keys = ["a", "b"] if step % 3 == 0 else ["a"]
        opt_t.zero_grad()
        sum((tensors[k] ** 2).sum() for k in keys).backward()
        opt_t.step()
        grads = {k: 2 * ours[k] for k in keys}
        if step % 2:
            grads["c"] = None  # None and a missing key both mean "no gradient"
        ours = opt.step(ours, grads)
    for k in "abc":
        assert np.allclose(ours[k], tensors[k].detach().numpy(), atol=1e-10), k
    assert ours["c"] is init["c"] and "c" not in opt.m and "c" not in opt.steps
    assert opt.steps == {"a": 30, "b": 10} and opt.t == 30
    assert opt_t.state[tensors["b"]]["step"] == 10


def test_adam_updates_a_parameter_whose_gradient_is_zero():
    opt = Adam(lr=0.1, weight_decay=0.5)
    out = opt.step({"w": np.array([1.0])}, {"w": np.array([0.0])})
    assert out["w"][0] < 1.0  # a zero gradient is a gradient: the decay applies
