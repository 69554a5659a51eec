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
