"""The verification cost model: interpolation of the measured curve, and the tree size that
maximises predicted tokens per second, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagrammar.decoding.cost import CostModel
from diagrammar.decoding.drafters.token_recycling import TokenRecyclingDrafter
from diagrammar.decoding.state import Acceptance, DecodeState, Verification


@given(steps=st.lists(st.floats(0.01, 3.0), min_size=1, max_size=6), n=st.integers(1, 100))
def test_time_interpolates_the_curve_and_extends_its_last_slope(steps, n):
    sizes = [1] + [2**i for i in range(1, len(steps))]
    seconds = list(np.cumsum(steps))
    cost = CostModel(sizes, seconds)
    for size, t in zip(sizes, seconds, strict=True):
        assert cost.time(size) == pytest.approx(t)
    if len(sizes) > 1:
        # Brute force: piecewise-linear through the points, the last piece extended.
        expected = float(np.interp(n, sizes, seconds))
        if n > sizes[-1]:
            slope = (seconds[-1] - seconds[-2]) / (sizes[-1] - sizes[-2])
            expected = seconds[-1] + slope * (n - sizes[-1])
        assert cost.time(n) == pytest.approx(expected)


@given(gains=st.lists(st.floats(0.0, 1.0), min_size=0, max_size=20),
       ratios=st.lists(st.floats(0.0, 0.5), min_size=3, max_size=3))
def test_best_size_maximises_the_predicted_rate(gains, ratios):
    cumulative = [0.0, *np.cumsum(gains)]
    cost = CostModel([1, 4, 16, 64], list(np.cumsum([1.0, *ratios])))
    best = cost.best_size(cumulative)
    rates = [(1 + g) / cost.time(m + 1) for m, g in enumerate(cumulative)]
    assert rates[best] == pytest.approx(max(rates), rel=1e-8)
    # No smaller size is better by more than the tie tolerance.
    assert all(r <= rates[best] * (1 + 1e-9) for r in rates[:best])


def test_observed_step_times_re_tune_the_overhead():
    cost = CostModel([1, 2, 4], [0.001, 0.0011, 0.0013])
    for _ in range(200):
        cost.observe_step(3, 0.0013 + 0.0005)   # each step spends 0.5 ms outside verify
    assert cost.overhead == pytest.approx(0.0005, rel=1e-3)
    # With that overhead, bigger trees pay: the same gains pick at least as many nodes.
    gains = [0.0, 0.6, 0.9, 1.1]
    assert cost.best_size(gains) >= CostModel([1, 2, 4], [0.001, 0.0011, 0.0013]).best_size(
        gains)
    with pytest.raises(ValueError, match="overhead"):
        CostModel([1], [1.0], overhead=-1.0)


def test_bad_curves_are_clear_errors():
    with pytest.raises(ValueError, match="increase from 1"):
        CostModel([2, 4], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        CostModel([1, 2], [1.0, 0.0])
    with pytest.raises(ValueError, match="one time per size"):
        CostModel([1, 2], [1.0])
    assert CostModel.from_curve({"sizes": [1, 2], "median_seconds": [1.0, 1.5]}).time(2) == 1.5


def _drafter(cost):
    drafter = TokenRecyclingDrafter(k=2, max_nodes=6, dynamic=True, template=[[0]], cost=cost)
    # A chain 1 -> 2 -> 3 -> 4 -> 5 -> 6 -> 7, each candidate with probability 0.9.
    drafter.matrix = np.array([[i + 1, -1] for i in range(8)], dtype=np.int32)
    drafter.probs = np.array([[0.9, 0.0]] * 8, dtype=np.float32)
    return drafter


def _state():
    return DecodeState(None, [0, 1], prompt_length=2, max_new_tokens=32, vocab_size=8)


def test_a_cost_model_cuts_dynamic_trees_to_the_fastest_size():
    free = _drafter(CostModel([1, 64], [1.0, 1.0]))             # verification costs nothing
    assert len(free(_state())) == 6
    steep = _drafter(CostModel([1, 2], [1.0, 2.0]))            # every token costs a step
    assert len(steep(_state())) == 0                            # drafting cannot pay
    middle = _drafter(CostModel([1, 2, 4, 8], [1.0, 1.05, 1.6, 3.0]))
    assert 0 < len(middle(_state())) < 6


def test_calibration_learns_how_often_paths_were_accepted():
    drafter = _drafter(CostModel([1, 64], [1.0, 1.0]))
    state = _state()
    for _ in range(30):
        tree = drafter(state)                   # drafts 2, 3, 4, 5, 6, 7
        # The target accepts the first two drafted tokens, then writes 0.
        drafter.observe(state, Verification(1, tree, np.zeros((len(tree) + 1, 8)),
                                            Acceptance((0, 1), (2, 3, 0))))
        drafter.matrix = np.array([[i + 1, -1] for i in range(8)], dtype=np.int32)
        drafter.probs = np.array([[0.9, 0.0]] * 8, dtype=np.float32)
    calibration = drafter.calibration
    assert sum(calibration.drafted) == 30 * 6 and sum(calibration.accepted) == 30 * 2
    # Path estimates 0.9 and 0.81 were accepted; 0.73 and below never were.
    assert calibration.estimate(0.9) > 0.8 and calibration.estimate(0.5) < 0.2
