"""The PredictSpeed functor: functor laws (a diagram's cost is the sum of its boxes'), expected
values by hand on made-up curves and profiles, merges, missing profiles, profiles read from
real decodes, and the layering (decoding never imports functors)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagrammar.decoding.cost import CostModel
from diagrammar.decoding.stats import DecodeStats
from diagrammar.diagrams import (
    Commit,
    Context,
    GreedyAccept,
    NoDraft,
    Pipeline,
    PromptLookup,
    TokenRecycling,
    Verify,
    autoregressive,
    speculative,
)
from diagrammar.functors import (
    AcceptanceProfile,
    Execute,
    MissingProfileError,
    PredictSpeed,
    SpeedPrediction,
    StepProfile,
)
from diagrammar.functors.predict import StepCost

CURVE = CostModel([1, 2, 4, 8, 16], [0.010, 0.0105, 0.012, 0.016, 0.030])


def approx_cost(cost: StepCost) -> tuple:
    return (pytest.approx(cost.seconds), pytest.approx(cost.nodes),
            pytest.approx(cost.accepted), cost.passes)


def same(a: StepCost, b: StepCost) -> bool:
    return approx_cost(a) == (b.seconds, b.nodes, b.accepted, b.passes)


profiles = st.builds(
    lambda nodes, share, seconds: AcceptanceProfile(nodes, nodes * share, seconds),
    st.floats(0, 40), st.floats(0, 1), st.floats(0, 0.01))


@given(lookup=profiles, recycling=profiles, accept=st.floats(0, 0.01),
       commit=st.floats(0, 0.01), outside=st.floats(0, 0.01))
def test_functor_laws(lookup, recycling, accept, commit, outside):
    """F(f >> g) = F(f) + F(g), F(f @ g) = F(f) + F(g), F(id) = 0, and a diagram's prediction
    is the readout of its boxes' summed costs."""
    observed = StepProfile({"PromptLookup": lookup, "TokenRecycling(max_nodes=16)": recycling},
                           {"GreedyAccept": accept, "Commit": commit}, outside)
    functor = PredictSpeed(CURVE, observed)
    draft, rest = PromptLookup(), Verify() >> GreedyAccept() >> Commit()
    step = draft >> rest
    assert same(functor.cost_of(step), functor.cost_of(draft) + functor.cost_of(rest))
    boxes = [functor.box(box) for box in step.boxes]
    total = StepCost()
    for cost in boxes:
        total = total + cost
    assert same(functor.cost_of(step), total)
    assert functor(step) == functor.evaluate(functor.cost_of(step))
    side = TokenRecycling(max_nodes=16) @ Commit()
    assert same(functor.cost_of(side),
                functor.cost_of(TokenRecycling(max_nodes=16)) + functor.cost_of(Commit()))
    assert functor.cost_of(Pipeline.id(Context)) == StepCost()
    # Merging: sum of nodes and seconds, the best part's acceptance.
    merged = functor.box(PromptLookup() | TokenRecycling(max_nodes=16))
    assert same(merged, StepCost(lookup.seconds + recycling.seconds,
                                 lookup.nodes + recycling.nodes,
                                 max(lookup.accepted, recycling.accepted)))


def test_autoregressive_without_overhead_runs_at_one_over_t1():
    for curve in (CURVE, CostModel([1], [0.25]), CostModel([1, 3], [2.0, 2.5])):
        predicted = PredictSpeed(curve)(autoregressive())
        assert predicted.tokens_per_second == pytest.approx(1 / curve.time(1))
        assert predicted.tokens_per_step == 1.0 and predicted.nodes_per_step == 0.0
        assert predicted == PredictSpeed(curve).no_draft()
        assert predicted.speedup_over(PredictSpeed(curve).no_draft()) == pytest.approx(1.0)


def test_expected_values_by_hand():
    observed = StepProfile({"PromptLookup": AcceptanceProfile(nodes=6.0, accepted=2.5,
                                                              seconds=0.001)},
                           {"GreedyAccept": 0.0005, "Commit": 0.0002, "Verify": 99.0},
                           outside_seconds=0.0003)
    predicted = PredictSpeed(CURVE, observed)(speculative(PromptLookup()))
    # t(7) on the segment from (4, 0.012) to (8, 0.016): 0.015; the verify entry is ignored.
    seconds = 0.015 + 0.001 + 0.0005 + 0.0002 + 0.0003
    assert predicted.seconds_per_step == pytest.approx(seconds)
    assert predicted.tokens_per_step == 3.5 and predicted.nodes_per_step == 6.0
    assert predicted.tokens_per_second == pytest.approx(3.5 / seconds)
    baseline = PredictSpeed(CURVE, observed).no_draft()   # t(1) + the outside time
    assert baseline.seconds_per_step == pytest.approx(0.0103)
    assert predicted.speedup_over(baseline) == pytest.approx((3.5 / seconds) * 0.0103)
    # No-draft with an explicit overhead, e.g. a reference implementation's.
    assert PredictSpeed(CURVE).no_draft(0.002).tokens_per_second == pytest.approx(1 / 0.012)


def test_beyond_the_curve_extends_its_last_slope():
    observed = StepProfile({"TokenRecycling(max_nodes=48)": AcceptanceProfile(31.0, 3.0)})
    predicted = PredictSpeed(CURVE, observed)(speculative(TokenRecycling(max_nodes=48)))
    assert predicted.seconds_per_step == pytest.approx(0.030 + 0.014 / 8 * 16)   # t(32)


def test_a_merge_uses_its_own_profile_when_observed():
    merge = PromptLookup() | NoDraft()
    own = AcceptanceProfile(5.0, 2.0, 0.003)
    functor = PredictSpeed(CURVE, StepProfile({merge.name: own,
                                               "PromptLookup": AcceptanceProfile(9.0, 1.0)}))
    assert functor.drafter(merge) == own
    combined = PredictSpeed(CURVE, StepProfile({"PromptLookup": AcceptanceProfile(9.0, 1.0)},
                                               {"NoDraft": 0.001}))
    assert combined.drafter(merge) == AcceptanceProfile(9.0, 1.0, 0.001)


def test_a_drafter_without_observations_raises_or_uses_the_default():
    step = speculative(PromptLookup() | TokenRecycling())
    observed = StepProfile({"PromptLookup": AcceptanceProfile(4.0, 2.0)})
    with pytest.raises(MissingProfileError, match=r"drafter box 'TokenRecycling' .*profiled: "
                                                  r"'PromptLookup'.*default="):
        PredictSpeed(CURVE, observed)(step)
    default = AcceptanceProfile(8.0, 1.0, 0.002)
    predicted = PredictSpeed(CURVE, observed, default=default)(step)
    assert predicted.nodes_per_step == 12.0 and predicted.tokens_per_step == 3.0
    # No-draft needs no observation; unobserved non-drafter boxes cost nothing.
    assert PredictSpeed(CURVE)(autoregressive()).seconds_per_step == pytest.approx(0.010)


def test_a_step_without_time_is_an_error():
    with pytest.raises(ValueError, match="no time"):
        PredictSpeed(CURVE).evaluate(StepCost())
    assert PredictSpeed(CURVE, StepProfile(outside_seconds=0.5)).evaluate(
        StepCost()).seconds_per_step == 0.5


def test_profiles_validate():
    with pytest.raises(ValueError, match="non-negative"):
        AcceptanceProfile(-1.0, 0.0)
    with pytest.raises(ValueError, match="gains"):
        AcceptanceProfile(2.0, 1.0, gains=(0.5, 1.0))


def test_profile_from_stats_weighs_steps_and_splits_the_time():
    step = speculative(PromptLookup())
    runs = [DecodeStats(4, 10, 0.1, 0.5, {"PromptLookup": 0.04, "Verify": 0.3,
                                          "GreedyAccept": 0.02, "Commit": 0.04},
                        draft_nodes_per_step=[5, 5, 3, 3]),
            DecodeStats(1, 1, 0.05, 0.05, {"PromptLookup": 0.01, "Verify": 0.03},
                        draft_nodes_per_step=[0])]
    profile = StepProfile.from_stats(step, runs)
    lookup = profile.drafters["PromptLookup"]
    assert lookup == AcceptanceProfile(nodes=16 / 5, accepted=6 / 5, seconds=0.05 / 5)
    assert profile.box_seconds == pytest.approx({"GreedyAccept": 0.004, "Commit": 0.008})
    in_boxes = 0.04 + 0.3 + 0.02 + 0.04 + 0.01 + 0.03
    assert profile.outside_seconds == pytest.approx((0.6 + 0.1 - in_boxes) / 5)
    walls = StepProfile.from_stats(step, [r.as_dict() for r in runs], wall_seconds=[1.0, 0.2])
    assert walls.outside_seconds == pytest.approx((1.2 - in_boxes) / 5)
    assert walls.drafters == profile.drafters
    with pytest.raises(ValueError, match="2 runs"):
        StepProfile.from_stats(step, runs, wall_seconds=[1.0])
    with pytest.raises(ValueError, match="do not record draft nodes"):
        StepProfile.from_stats(step, [DecodeStats(2, 3, 0.1, 0.1)])
    with pytest.raises(ValueError, match="no decoding steps"):
        StepProfile.from_stats(step, [])
    with pytest.raises(ValueError, match="merge them"):
        StepProfile.from_stats(PromptLookup() @ NoDraft(), runs)


def test_profiles_of_a_real_decode_predict_its_own_tokens_per_step(model_factory):
    """From a real decode's statistics the prediction has its MAT and its mean nodes; with the
    measured step times as the curve's only point it predicts about the measured rate."""
    model = model_factory("gpt2", 3)
    step = speculative(PromptLookup(num_tokens=4))
    prompt = [5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6]
    stats = Execute(model)(step).generate(prompt, max_new_tokens=24).stats
    assert len(stats.draft_nodes_per_step) == stats.steps
    assert all(0 <= n <= 4 for n in stats.draft_nodes_per_step)
    profile = StepProfile.from_stats(step, [stats])
    verify = stats.box_seconds["Verify"] / stats.steps
    predicted = PredictSpeed(CostModel([1], [verify]), profile)(step)
    assert predicted.tokens_per_step == pytest.approx(stats.mean_accepted)
    assert predicted.nodes_per_step == pytest.approx(stats.mean_draft_nodes)
    plain = Execute(model)(autoregressive()).generate(prompt, max_new_tokens=8).stats
    assert plain.draft_nodes_per_step == [0] * plain.steps


@given(gains=st.lists(st.floats(0.0, 1.0), min_size=0, max_size=12),
       overhead=st.floats(0.0, 0.02))
def test_best_nodes_maximises_the_predicted_rate(gains, overhead):
    cumulative = [0.0]
    for gain in gains:
        cumulative.append(cumulative[-1] + gain)
    profile = AcceptanceProfile(len(gains), cumulative[-1], 0.001, gains=tuple(cumulative))
    best = PredictSpeed(CURVE).best_nodes(profile, overhead)
    rates = [(1 + g) / (CURVE.time(m + 1) + overhead + 0.001) for m, g in enumerate(cumulative)]
    assert rates[best] == pytest.approx(max(rates), rel=1e-8)
    with pytest.raises(ValueError, match="gains"):
        PredictSpeed(CURVE).best_nodes(AcceptanceProfile(1.0, 0.5))


def test_speed_prediction_as_dict():
    assert SpeedPrediction(2.0, 0.5, 1.0, 0.0).as_dict()["seconds_per_step"] == 0.5


def test_decoding_does_not_import_functors():
    code = ("import sys, diagrammar.decoding, diagrammar.decoding.stats, "
            "diagrammar.decoding.cost; "
            "print(any(m.startswith('diagrammar.functors') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
