"""The draft-model drafter: its chain is the draft model's own greedy continuation of the
committed context however the context moved (accepted, rolled back), its adaptive length
follows its calibration, and bad pairings are clear errors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.drafters.draft_model import AcceptanceCalibration, DraftModelDrafter
from diagrammar.decoding.state import Acceptance, DecodeState, Verification
from diagrammar.diagrams import DraftModel, autoregressive, required_resources, speculative
from diagrammar.functors import Execute
from diagrammar.functors.execute import ExecuteError
from diagrammar.models import HFCausalLM

VOCAB = 48


def _state(tokens, max_new_tokens=64):
    return DecodeState(None, list(tokens), prompt_length=len(tokens),
                       max_new_tokens=max_new_tokens, vocab_size=VOCAB)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 3), prompt=st.lists(st.integers(4, VOCAB - 1), min_size=1,
                                               max_size=12),
       moves=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=6),
       num_tokens=st.integers(1, 5))
def test_the_chain_is_the_draft_models_greedy_continuation(model_factory, seed, prompt, moves,
                                                           num_tokens):
    lm = HFCausalLM(model_factory("gpt2", seed, vocab=VOCAB))
    greedy = Execute(lm)(autoregressive())
    drafter = DraftModelDrafter(lm, num_tokens=num_tokens)
    state = _state(prompt)
    drafter.start(state)
    rng = random.Random(seed)
    for keep, extra in moves:
        chain = drafter(state).tokens
        wanted = min(num_tokens, state.draft_budget)
        assert chain == greedy.generate(state.tokens, wanted).tokens
        # The target accepts a prefix of the chain plus other tokens (a bonus, or a rollback
        # to a shorter context the drafter has to recompute from).
        tokens = state.tokens + chain[:keep] + [rng.randrange(4, VOCAB) for _ in range(extra)]
        state = _state(tokens[: max(1, len(tokens) - (extra == 3) * 2)])
    assert drafter.forward_passes > 0


def test_adaptive_length_stops_where_the_calibrated_risk_passes_the_threshold(model_factory):
    lm = HFCausalLM(model_factory("gpt2", 1, vocab=VOCAB))
    drafter = DraftModelDrafter(lm, num_tokens=8, stop_threshold=0.5)
    state = _state([5, 6, 7, 8])
    drafter.start(state)
    for _ in range(50):  # the target never agrees: every bin learns "rejected"
        for probability in (i / 10 + 0.05 for i in range(10)):
            drafter.calibration.record(probability, accepted=False)
    assert len(drafter(state)) == 1       # one token, then the risk is already above 0.5
    patient = DraftModelDrafter(lm, num_tokens=8, stop_threshold=0.999)
    patient.start(state)
    for _ in range(50):
        for probability in (i / 10 + 0.05 for i in range(10)):
            patient.calibration.record(probability, accepted=True)
    assert len(patient(state)) == 8
    assert patient.learns() and not DraftModelDrafter(lm).learns()


def test_observe_counts_the_chain_up_to_the_first_rejection(model_factory):
    lm = HFCausalLM(model_factory("gpt2", 2, vocab=VOCAB))
    drafter = DraftModelDrafter(lm, num_tokens=3, stop_threshold=0.9)
    state = _state([5, 6, 7])
    drafter.start(state)
    tree = drafter(state)
    chain = tree.tokens
    other = (chain[1] + 1 - 4) % (VOCAB - 4) + 4
    drafter.observe(state, Verification(7, tree, None,
                                        Acceptance((0,), (chain[0], other))))
    assert sum(drafter.calibration.drafted) == 2 and sum(drafter.calibration.accepted) == 1


def test_calibration_moves_from_the_prior_to_the_evidence():
    calibration = AcceptanceCalibration(bins=10, prior_weight=4.0)
    assert calibration.estimate(0.33) == pytest.approx(0.35)
    for _ in range(96):
        calibration.record(0.33, accepted=True)
    assert calibration.estimate(0.33) == pytest.approx((96 + 4 * 0.35) / 100)
    assert calibration.estimate(1.0) == pytest.approx(0.95)   # the top bin holds p = 1
    with pytest.raises(ValueError):
        AcceptanceCalibration(bins=0)


def test_bad_pairings_and_missing_resources_are_clear_errors(model_factory):
    target = model_factory("gpt2", 0, vocab=VOCAB)
    small_vocab = HFCausalLM(model_factory("gpt2", 0, vocab=16))
    step = speculative(DraftModel())
    assert required_resources(step) == {"draft"}
    with pytest.raises(ExecuteError, match="needs the resource 'draft'"):
        Execute(target)(step)
    decoder = Execute(target, resources={"draft": small_vocab})(step)
    with pytest.raises(ValueError, match="share the target's tokenizer"):
        decoder.generate([5, 30, 7], 4)
    with pytest.raises(ValueError, match="num_tokens"):
        DraftModel(num_tokens=0)
    with pytest.raises(ValueError, match="stop_threshold"):
        DraftModelDrafter(small_vocab, stop_threshold=1.0)


def test_cost_aware_drafting_skips_steps_that_do_not_pay(model_factory):
    """With a draft model that is never right and a curve where a longer pass costs much, the
    drafter stops drafting (exploring every EXPLORE_EVERY-th step); with the target itself as
    the draft model every draft is accepted and it keeps drafting."""
    from diagrammar.decoding.drafters.draft_model import EXPLORE_EVERY
    from diagrammar.diagrams import autoregressive

    target = HFCausalLM(model_factory("gpt2", 1, vocab=VOCAB))
    other = HFCausalLM(model_factory("gpt2", 2, vocab=VOCAB))
    curve = {"sizes": [1, 2, 8], "median_seconds": [1e-3, 3e-3, 6e-3]}
    prompt = [5, 6, 7, 8, 9]
    greedy = Execute(target)(autoregressive()).generate(prompt, 60).tokens
    step = speculative(DraftModel(num_tokens=4, cost="cost"))
    weak = Execute(target, resources={"draft": other, "cost": curve})(step)
    assert weak.generate(prompt, 60).tokens == greedy
    (_, drafter), = weak.learned_state()
    assert drafter.skipped_steps > drafter.drafted_steps
    assert drafter.drafted_steps >= drafter.skipped_steps // EXPLORE_EVERY
    cheap = {"sizes": [1, 8], "median_seconds": [1.0, 1.01]}
    strong = Execute(target, resources={"draft": target, "cost": cheap})(step)
    result = strong.generate(prompt, 60)
    assert result.tokens == greedy
    (_, drafter), = strong.learned_state()
    assert drafter.skipped_steps == 0 and result.stats.mean_accepted > 3


def test_running_mean_forgets_and_worth_drafting_compares_rates():
    from diagrammar.decoding.cost import CostModel
    from diagrammar.decoding.drafters.draft_model import EXPLORE_EVERY, RunningMean

    mean = RunningMean(prior=0.0, weight=1.0, decay=0.5)
    for _ in range(20):
        mean.add(3.0)
    assert abs(mean.value - 3.0) < 1e-3
    drafter = DraftModelDrafter(None, num_tokens=4, cost=CostModel([1, 5], [1.0, 1.4]))
    # Brute force: (1 + gain) / (t(nodes + 1) + seconds) against 1 / t(1).
    for gain, seconds in [(0.1, 0.5), (2.0, 0.2), (0.5, 0.0), (3.0, 2.0)]:
        drafter.gain, drafter.seconds = RunningMean(gain), RunningMean(seconds)
        expected = (1 + gain) / (1.4 + seconds) > 1.0
        assert drafter.worth_drafting() == expected
    drafter.gain, drafter.seconds = RunningMean(0.0), RunningMean(5.0)
    drafter._skipped_in_row = EXPLORE_EVERY
    assert drafter.worth_drafting()            # explores after a run of skipped steps
    with pytest.raises(TypeError, match="cost must be a CostModel"):
        DraftModelDrafter(None, cost={"sizes": [1]})
