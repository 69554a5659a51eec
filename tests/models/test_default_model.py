"""The embedded default model (tiny size): cache layout, manifest, quality, generation, loading
as a plain Hugging Face folder, shared tokenizer, errors."""

from __future__ import annotations

import collections
import dataclasses
import json
import math

import pytest
import torch

from diagrammar.models import default as dm
from diagrammar.models.default import HELDOUT_MODULES, RECIPES, build

MANIFEST_KEYS = {
    "size",
    "recipe_hash",
    "recipe",
    "config",
    "parameters",
    "train_seconds",
    "heldout_loss",
    "heldout_accuracy",
    "heldout_tokens",
    "heldout_modules",
    "python_version",
    "torch_version",
    "date",
    "corpus_digest",
    "tokenizer_hash",
}


def test_manifest_fields_are_present_and_sane(default_tiny_path, default_tiny):
    model, tokenizer = default_tiny
    m = dm.loaded_manifest("tiny")
    assert MANIFEST_KEYS <= set(m)
    assert m["size"] == "tiny"
    assert m["recipe_hash"] == RECIPES["tiny"].hash(m["precision"])  # today's recipe
    assert m["parameters"] == sum(p.numel() for p in model.parameters())
    assert m["config"]["n_layer"] == RECIPES["tiny"].n_layer
    assert m["train_seconds"] <= m["total_seconds"]
    assert m["heldout_modules"] == list(HELDOUT_MODULES)
    assert m["heldout_tokens"] > 50_000
    assert m["heldout_loss"] < math.log(len(tokenizer))  # better than a uniform guess
    assert m["vocab_size"] == len(tokenizer)
    # The overall scores are the token-weighted means of the per-module ones.
    per = m["heldout_per_module"]
    assert list(per) == list(HELDOUT_MODULES)
    assert sum(p["tokens"] for p in per.values()) == m["heldout_tokens"]
    for key in ("loss", "accuracy"):
        mean = sum(p[key] * p["tokens"] for p in per.values()) / m["heldout_tokens"]
        assert mean == pytest.approx(m[f"heldout_{key}"], abs=1e-4)
    assert json.loads((default_tiny_path / "manifest.json").read_text()) == m


def test_heldout_accuracy_is_well_above_chance(default_tiny):
    """Better than always predicting the most frequent held-out token (a strong 'chance')."""
    _, tokenizer = default_tiny
    ids = dm.encode_documents(tokenizer, list(dm.heldout_sources().values()))
    most_common = collections.Counter(ids.tolist()).most_common(1)[0][1] / len(ids)
    acc = dm.loaded_manifest("tiny")["heldout_accuracy"]
    assert acc > 1.5 * most_common, (acc, most_common)


def test_model_is_in_eval_mode_and_generates(default_tiny):
    model, tokenizer = default_tiny
    assert not model.training
    prompt = "def __init__(self, name):\n        self."
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        out1 = model.generate(ids, max_new_tokens=16, do_sample=False)
        out2 = model.generate(ids, max_new_tokens=16, do_sample=False)
    assert out1.shape == (1, ids.shape[1] + 16) or out1[0, -1] == tokenizer.eos_token_id
    assert torch.equal(out1, out2)
    text = tokenizer.decode(out1[0, ids.shape[1] :])
    assert text.strip()


def test_context_length_fits_long_prompts(default_tiny):
    model, _ = default_tiny
    ids = torch.randint(0, model.config.vocab_size, (1, 1024))
    with torch.inference_mode():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, 1024, model.config.vocab_size)
    assert torch.isfinite(logits).all()


def test_default_path_is_a_plain_hugging_face_folder(default_tiny_path, default_tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert dm.model_folder("tiny") == default_tiny_path
    model = AutoModelForCausalLM.from_pretrained(default_tiny_path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(default_tiny_path)
    ref_model, ref_tok = default_tiny
    text = "import os\nprint(os.getcwd())\n"
    assert tokenizer(text).input_ids == ref_tok(text).input_ids
    ids = torch.tensor([ref_tok(text).input_ids])
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).logits, ref_model(input_ids=ids).logits)
    assert tokenizer.eos_token == "<|endoftext|>"


def test_tokenizer_round_trips_python_source_exactly(default_tiny):
    _, tokenizer = default_tiny
    samples = list(dm.heldout_sources().values()) + [
        "\tif x:\r\n\t\treturn 'é ß 日本 🐍'\n\n\n   trailing   \n",
        "",
        " leading space",
        "<|endoftext|> is a literal here",
    ]
    for text in samples:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert tokenizer.decode(ids) == text


def test_model_folder_has_the_shared_tokenizer(default_tiny_path):
    shared = dm.tokenizer_path()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (default_tiny_path / name).read_bytes() == (shared / name).read_bytes()
    small = dm.default_path("small")
    if (small / "tokenizer.json").exists():  # both sizes share one tokenizer
        assert (small / "tokenizer.json").read_bytes() == (shared / "tokenizer.json").read_bytes()


def test_default_loads_from_cache_without_training(default_tiny_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("default() retrained a cached model")

    monkeypatch.setattr(build, "train_default", boom)
    model, tokenizer = dm.default("tiny", train_if_missing=False)
    assert model.config.n_layer == RECIPES["tiny"].n_layer
    assert tokenizer.eos_token_id == model.config.eos_token_id


@pytest.mark.parametrize("call", ["default", "default_path", "train_default", "manifest"])
def test_unknown_size_is_a_clear_error(call, tmp_path):
    with pytest.raises(ValueError, match=r"unknown default model size 'huge'.*tiny.*small"):
        getattr(dm, call)("huge", cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_recipe_hashes_are_pinned():
    """Cached models are found by recipe hash: a change retrains them all (small: about an hour), so
    it must be deliberate, and show up here."""
    assert dm.TOKENIZER_RECIPE.hash() == "433ff14686c04c8b"
    assert {s: RECIPES[s].hash("fp32") for s in dm.SIZES} == {
        "tiny": "50708ebecbc7d6f9",
        "small": "e819e4a59eedd8c8",
    }
    assert RECIPES["small"].hash("bf16-autocast") == "e0f8abd859499f91"
    assert dm.recipe_hash("tiny") == RECIPES["tiny"].hash(
        "bf16-autocast" if dm.bf16_supported() else "fp32"
    )


def test_recipe_hash_follows_the_weights_not_the_time_budget():
    tiny = RECIPES["tiny"]
    assert dataclasses.replace(tiny, time_budget_s=1.0).hash("fp32") == tiny.hash("fp32")
    assert dataclasses.replace(tiny, seed=tiny.seed + 1).hash("fp32") != tiny.hash("fp32")
    assert tiny.hash("fp32") != tiny.hash("bf16-autocast")
    other_tokenizer = dataclasses.replace(dm.TOKENIZER_RECIPE, vocab_size=8192)
    assert tiny.hash("fp32", other_tokenizer) != tiny.hash("fp32")
