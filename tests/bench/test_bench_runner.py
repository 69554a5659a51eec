"""Runner pieces: exactness, logit margins, the cost curve, methods and their box metadata."""

from __future__ import annotations

import pytest
import torch

from diagrammar.bench.config import BenchConfig, LoadedModel, default_assistant
from diagrammar.bench.cost_curve import measure_cost_curve
from diagrammar.bench.exactness import Divergence, compare, first_divergence, logit_margin
from diagrammar.bench.methods import build_methods, samples, step_roles
from diagrammar.bench.prompts import CATEGORIES, Prompt
from diagrammar.bench.runner import interleave
from diagrammar.decoding.drafters.retrieval import Datastore
from diagrammar.diagrams import ROLES, PromptLookup, speculative
from diagrammar.models.hf import HFCausalLM


def test_first_divergence():
    assert first_divergence([], []) is None
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [0, 2, 3]) == 0
    assert first_divergence([1, 2, 3], [1, 2]) == 2
    assert first_divergence([1, 2], [1, 2, 3]) == 2


def test_compare_asks_the_margin_after_the_reference_prefix_and_classifies_it():
    asked = []

    def margin_after(prefix):
        asked.append(prefix)
        return 5e-4

    assert compare([1, 2, 3], [1, 2, 3], margin_after) is None
    assert asked == []  # no forward pass when the tokens match
    tie = compare([1, 2, 3], [1, 2, 9], margin_after, tie_margin=1e-3)
    assert asked == [[1, 2]]
    assert tie == Divergence(2, 3, 9, 5e-4, near_tie=True) and tie.kind == "near-tie"
    clear = compare([1, 2, 3], [1, 2, 9], margin_after, tie_margin=1e-4)
    assert not clear.near_tie and clear.kind == "MISMATCH"
    ended = compare([1, 2, 3], [1], margin_after)
    assert (ended.position, ended.expected, ended.got) == (1, 2, None)


def test_logit_margin_is_top1_minus_top2(model_factory):
    lm = HFCausalLM(model_factory("gpt2", seed=1))
    ids = [5, 6, 7, 8]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]
    top = torch.sort(logits, descending=True).values
    assert logit_margin(lm, ids) == pytest.approx(float(top[0] - top[1]))


def test_cost_curve_drops_sizes_past_the_context(model_factory):
    lm = HFCausalLM(model_factory("gpt2", seed=2, positions=256))
    context = list(range(4, 44)) * 5  # 200 tokens
    curve = measure_cost_curve(lm, context, [1, 2, 4, 8, 32, 64, 128], repeats=2)
    # 200 + 64 > 256 positions: the sizes that do not fit are dropped.
    assert curve["sizes"] == [1, 2, 4, 8, 32]
    assert len(curve["ratio"]) == len(curve["median_seconds"]) == 5
    assert curve["context_tokens"] == 199
    with pytest.raises(ValueError, match="size 1"):
        measure_cost_curve(lm, context, [2, 4])


def test_methods_cover_hf_baselines_and_every_pipeline(model_factory):
    from diagrammar.diagrams import PIPELINES

    target = LoadedModel("x", HFCausalLM(model_factory("gpt2", seed=3)), None)
    helper = LoadedModel("y", HFCausalLM(model_factory("gpt2", seed=4)), None)
    curve = {"sizes": [1, 8, 64], "median_seconds": [1.0, 1.3, 3.0]}
    store = Datastore.from_token_lists([[5, 6, 7, 8, 9, 10] * 3])
    methods = build_methods(target, helper, resources={"cost": curve, "datastore": store})
    names = [m.name for m in methods]
    assert names[:3] == ["hf/greedy", "hf/prompt-lookup", "hf/assisted"]
    assert names[3] == "ours/autoregressive"
    # Without a temperature, pipelines whose acceptance samples are left out; with one they
    # run last, against hf/sample.
    greedy = {n for n in PIPELINES if not samples(PIPELINES[n]())}
    assert {f"ours/{n}" for n in greedy} == {n for n in names if n.startswith("ours/")}
    sampled = build_methods(target, helper, resources={"cost": curve, "datastore": store},
                            temperature=0.7)
    extra = [m for m in sampled if m.name not in names]
    assert [m.name for m in extra[:2]] == ["hf/sample", "ours/sample"]
    assert {m.name for m in extra[2:]} == {f"ours/{n}" for n in set(PIPELINES) - greedy}
    assert all(m.sampling and m.reference == "hf/sample" for m in extra)
    first, _, _ = extra[1].run([5, 6, 7], 8)
    again, _, _ = extra[1].run([5, 6, 7], 8)
    assert len(first) == len(again) == 8      # a fresh seed per generation
    # Without the resources they need, pipelines are left out of an all-pipelines run.
    unbound = {m.name for m in build_methods(target, None)}
    assert "ours/draft-model" not in unbound and "ours/token-recycling-sized" not in unbound
    assert "ours/prompt-lookup" in unbound
    assert all(m.lossless for m in methods)
    assert [m.name for m in build_methods(target, None, ["prompt-lookup"])] == [
        "hf/greedy", "hf/prompt-lookup", "ours/prompt-lookup"]
    with pytest.raises(ValueError, match="unknown pipeline"):
        build_methods(target, None, ["nope"])
    # Every method generates the same tokens as the reference on a sharp random model, and
    # our pipelines' time is split by the box classes' roles.
    prompt = [5, 6, 7, 8, 5, 6, 7, 8, 9, 5, 6]
    reference = methods[0].run(prompt, 12)[0]
    for method in methods:
        tokens, steps, stats = method.run(prompt, 12)
        assert tokens == reference, method.name
        assert 1 <= steps <= len(tokens)
        if method.family == "ours":
            assert {"drafter", "verify", "accept", "commit"} <= set(stats["role_seconds"])
            assert set(stats["role_seconds"]) <= set(ROLES)


def test_losslessness_and_roles_come_from_the_box_classes(model_factory, monkeypatch):
    """A pipeline with a lossy box is a lossy method; a custom box's role is its class's."""
    from diagrammar.diagrams import PIPELINES, Verify, box_registry
    from diagrammar.diagrams.boxes import GreedyAccept

    target = LoadedModel("x", HFCausalLM(model_factory("gpt2", seed=5)), None)
    with box_registry():

        class SloppyAccept(GreedyAccept):
            lossless = False

        lossy = speculative(PromptLookup(), SloppyAccept())
        assert step_roles(lossy) == {"PromptLookup": "drafter", "Verify": "verify",
                                     "SloppyAccept": "accept", "Commit": "commit"}
        monkeypatch.setitem(PIPELINES, "sloppy", lambda: lossy)
        monkeypatch.setitem(PIPELINES, "exact", lambda: speculative(PromptLookup()))
        by_name = {m.name: m.lossless for m in build_methods(target, None, ["sloppy", "exact"])}
    assert by_name == {"hf/greedy": True, "hf/prompt-lookup": True, "ours/sloppy": False,
                       "ours/exact": True}
    assert step_roles(Verify()) == {"Verify": "verify"}


def test_for_quick_ignores_unset_overrides_and_keeps_set_ones():
    config = BenchConfig.for_quick(model=None, threads=3, max_new_tokens=8)
    assert (config.model, config.threads, config.max_new_tokens) == ("default:tiny", 3, 8)


def test_default_assistant_only_for_default_models():
    assert default_assistant("default:small", None) == "default:tiny"
    assert default_assistant("/models/gpt2", None) is None
    assert default_assistant("/models/gpt2", "/models/tiny") == "/models/tiny"


def test_interleave_alternates_categories_in_report_order():
    prompts = [Prompt(c, "m", f"f{i}", "") for c in reversed(CATEGORIES) for i in range(2)]
    prompts.append(Prompt(CATEGORIES[1], "m", "f2", ""))
    order = [(p.category, p.name) for p in interleave(prompts)]
    assert order == [(c, "f0") for c in CATEGORIES] + [(c, "f1") for c in CATEGORIES] + [
        (CATEGORIES[1], "f2")]
