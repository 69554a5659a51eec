"""Runner pieces: divergence finding, logit margins, the cost curve, method building."""

from __future__ import annotations

import pytest
import torch

from diagrammar.bench.runner import (
    BenchConfig,
    build_methods,
    cost_curve,
    first_divergence,
    logit_margin,
)
from diagrammar.models.hf import HFCausalLM


def test_first_divergence():
    assert first_divergence([], []) is None
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [0, 2, 3]) == 0
    assert first_divergence([1, 2, 3], [1, 2]) == 2
    assert first_divergence([1, 2], [1, 2, 3]) == 2


def test_logit_margin_is_top1_minus_top2(model_factory):
    lm = HFCausalLM(model_factory("gpt2", seed=1))
    ids = [5, 6, 7, 8]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]
    top = torch.sort(logits, descending=True).values
    assert logit_margin(lm, ids) == pytest.approx(float(top[0] - top[1]))
    assert logit_margin(lm, ids) >= 0


def test_cost_curve_shape_and_cache_fit(model_factory):
    lm = HFCausalLM(model_factory("gpt2", seed=2, positions=256))
    context = list(range(4, 44)) * 5  # 200 tokens
    curve = cost_curve(lm, context, [1, 2, 4, 8, 32, 64, 128], repeats=2)
    # 200 + 64 > 256 positions: the sizes that do not fit are dropped.
    assert curve["sizes"] == [1, 2, 4, 8, 32]
    assert curve["ratio"][0] == 1.0 and len(curve["ratio"]) == 5
    assert all(s > 0 for s in curve["median_seconds"])
    assert curve["context_tokens"] == 199
    with pytest.raises(ValueError, match="size 1"):
        cost_curve(lm, context, [2, 4])


def test_methods_cover_hf_baselines_and_every_pipeline(model_factory):
    from diagrammar.bench.runner import LoadedModel
    from diagrammar.diagrams import PIPELINES

    target = LoadedModel("x", HFCausalLM(model_factory("gpt2", seed=3)), None)
    helper = LoadedModel("y", HFCausalLM(model_factory("gpt2", seed=4)), None)
    methods = build_methods(target, helper)
    names = [m.name for m in methods]
    assert names[:3] == ["hf/greedy", "hf/prompt-lookup", "hf/assisted"]
    assert names[3] == "ours/autoregressive"
    assert {f"ours/{n}" for n in PIPELINES} <= set(names)
    assert all(m.lossless for m in methods)
    assert [m.name for m in build_methods(target, None, ["prompt-lookup"])] == [
        "hf/greedy", "hf/prompt-lookup", "ours/prompt-lookup"]
    with pytest.raises(ValueError, match="unknown pipeline"):
        build_methods(target, None, ["nope"])
    # Every method generates the same tokens as the reference on a sharp random model.
    prompt = [5, 6, 7, 8, 5, 6, 7, 8, 9, 5, 6]
    reference = methods[0].run(prompt, 12)[0]
    for method in methods:
        tokens, steps, _stats = method.run(prompt, 12)
        assert tokens == reference, method.name
        assert 1 <= steps <= len(tokens)


def test_quick_config():
    config = BenchConfig.for_quick(threads=1, model=None)
    assert config.quick and config.model == "default:tiny" and config.threads == 1
    assert 1 in config.cost_sizes and max(config.cost_sizes) == 128
    assert BenchConfig().per_category == 20 and BenchConfig().max_new_tokens == 128
