"""The default models shipped inside the package: loaded without training, checked, exported."""

from __future__ import annotations

import json
import shutil

import pytest

from diagrammar.models import default as dm
from diagrammar.models.default.shipped import (
    export_shipped,
    is_shipped,
    shipped_manifest,
    shipped_path,
)


def test_the_tiny_model_is_shipped_and_loads_without_training(tmp_path):
    assert is_shipped("tiny")
    meta = shipped_manifest("tiny")
    assert meta["shipped"]["dtype"] == "float16"
    assert meta["recipe_hash"] == dm.RECIPES["tiny"].hash(meta["precision"])
    weights = shipped_path("tiny") / "model.safetensors"
    assert weights.stat().st_size == meta["shipped"]["bytes"] < 3_000_000
    model, tokenizer = dm.default("tiny", cache_dir=tmp_path, train_if_missing=False)
    assert next(model.parameters()).dtype.is_floating_point
    assert str(next(model.parameters()).dtype) == "torch.float32"
    assert tokenizer.eos_token == "<|endoftext|>"
    assert not any(tmp_path.iterdir())                 # nothing was trained or written


def test_the_small_model_is_shipped_with_its_scores_and_within_the_size_budget(tmp_path):
    assert is_shipped("small")
    meta = shipped_manifest("small")
    assert meta["recipe_hash"] == dm.RECIPES["small"].hash(meta["precision"])
    for key in ("corpus_digest", "corpus_packages", "train_seconds", "date", "heldout_loss"):
        assert meta[key], key
    assert meta["heldout_accuracy"] > 0.3             # the stronger recipe's model
    assert meta["train_tokens_seen"] == dm.RECIPES["small"].steps * 2048
    total = sum(p.stat().st_size for size in ("tiny", "small")
                for p in shipped_path(size).iterdir())
    assert total <= 25_000_000                          # the package-data budget
    model, tokenizer = dm.default("small", cache_dir=tmp_path, train_if_missing=False)
    assert sum(p.numel() for p in model.parameters()) == meta["parameters"]
    assert not any(tmp_path.iterdir())
    # One tokenizer for both sizes, so either drafts for the other.
    tiny = (shipped_path("tiny") / "tokenizer.json").read_bytes()
    assert (shipped_path("small") / "tokenizer.json").read_bytes() == tiny


def _copy_shipped(tmp_path):
    root = tmp_path / "shipped"
    shutil.copytree(shipped_path("tiny"), root / "tiny")
    return root


def test_tampered_weights_or_another_recipe_are_not_used(tmp_path):
    root = _copy_shipped(tmp_path)
    assert is_shipped("tiny", root)
    weights = root / "tiny" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert not is_shipped("tiny", root)                # the digest no longer matches
    root = _copy_shipped(tmp_path / "again")
    meta = json.loads((root / "tiny" / "manifest.json").read_text())
    meta["recipe"]["steps"] += 1
    meta["recipe_hash"] = "0" * 16
    (root / "tiny" / "manifest.json").write_text(json.dumps(meta))
    assert not is_shipped("tiny", root)                # not today's recipe
    assert not is_shipped("small", root)               # nothing shipped for that size


def test_export_writes_float16_weights_the_tokenizer_and_float16_scores(
        tmp_path, default_short_cache):
    source = dm.default_path("tiny", default_short_cache)
    folder = export_shipped("tiny", source, tmp_path)
    meta = json.loads((folder / "manifest.json").read_text())
    trained = json.loads((source / "manifest.json").read_text())
    assert meta["trained"]["heldout_loss"] == trained["heldout_loss"]
    assert meta["heldout_loss"] == pytest.approx(trained["heldout_loss"], abs=0.05)
    assert meta["corpus_digest"] == trained["corpus_digest"]
    assert (folder / "tokenizer.json").read_bytes() == (source / "tokenizer.json").read_bytes()
    assert (folder / "model.safetensors").stat().st_size < (
        source / "model.safetensors").stat().st_size * 0.6
    assert not is_shipped("tiny", tmp_path)            # a 3-step test recipe is not today's
    with pytest.raises(ValueError, match="holds the 'tiny' model, not 'small'"):
        export_shipped("small", source, tmp_path)
