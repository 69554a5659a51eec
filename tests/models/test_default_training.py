"""The default model's training machinery, on 3-step runs in temporary caches: atomic writes,
determinism, clear errors, cache staleness."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from diagrammar.models import default as dm
from diagrammar.models.default import build
from diagrammar.models.default.training import batches


def _leftovers(root):
    return sorted(p.name for p in root.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_short_training_writes_a_complete_folder(default_short_cache, default_short_recipe):
    path = dm.default_path("tiny", default_short_cache)
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "manifest.json", "tokenizer.json"} <= names
    m = dm.manifest("tiny", default_short_cache)
    assert m["recipe"]["steps"] == default_short_recipe.steps
    assert m["recipe_hash"] != dm.recipe_hash("tiny")  # a test recipe is not the real one
    assert _leftovers(dm.cache_root(default_short_cache)) == []


def test_a_recipe_with_packages_trains_on_them_and_records_them(tmp_path,
                                                               default_short_recipe):
    recipe = dataclasses.replace(default_short_recipe, packages=("tqdm",), stdlib_repeats=2)
    assert recipe.hash("fp32") != default_short_recipe.hash("fp32")
    dm.train_default("tiny", cache_dir=tmp_path, recipe=recipe, progress=False)
    m = dm.manifest("tiny", tmp_path)
    stdlib = dm.training_documents()
    tqdm_files = len(dm.package_documents("tqdm"))
    assert m["train_files"] == 2 * len(stdlib) + tqdm_files
    assert m["corpus_packages"]["tqdm"]
    assert m["corpus_digest"] == dm.corpus_digest(dm.stream_documents(("tqdm",), 2))
    # The shared tokenizer is still the standard library's: every size can draft for another.
    tok = json.loads((dm.cache_root(tmp_path) / "tokenizer" / "tokenizer_manifest.json")
                     .read_text())
    assert tok["corpus_digest"] == dm.corpus_digest(stdlib)


def test_short_training_is_deterministic(tmp_path, default_short_cache, default_short_recipe):
    first = dm.default_path("tiny", default_short_cache)
    again = dm.train_default(
        "tiny", cache_dir=tmp_path / "again", recipe=default_short_recipe, progress=False
    )
    a, b = load_file(first / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (first, again))
    assert ma["heldout_loss"] == mb["heldout_loss"]
    # A different seed gives different weights (so the comparison above can fail).
    other = dm.train_default(
        "tiny",
        cache_dir=tmp_path / "again",
        recipe=dataclasses.replace(default_short_recipe, seed=99),
        force=True,
        progress=False,
    )
    c = load_file(other / "model.safetensors")
    assert not torch.equal(a["transformer.wte.weight"], c["transformer.wte.weight"])


@pytest.fixture
def nothing_shipped(monkeypatch):
    """As in a checkout without shipped weights."""
    monkeypatch.setattr(build, "is_shipped", lambda size, root=None: False)


def test_short_model_is_stale_for_default(default_short_cache, nothing_shipped):
    with pytest.raises(FileNotFoundError, match="train-default"):
        dm.default("tiny", cache_dir=default_short_cache, train_if_missing=False)


def test_failed_training_leaves_the_old_folder_untouched(
    tmp_path, default_short_cache, default_short_recipe, monkeypatch
):
    shutil.copytree(default_short_cache, tmp_path, dirs_exist_ok=True)
    root = dm.cache_root(tmp_path)
    good = dm.default_path("tiny", tmp_path)
    before = {p.name: p.read_bytes() for p in good.iterdir()}
    write_json = build.write_json

    def fail(path, data):  # the model's manifest is written last, after the weights
        if path.name != "manifest.json":
            return write_json(path, data)
        assert (path.parent / "model.safetensors").exists()
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "write_json", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        dm.train_default(
            "tiny", cache_dir=tmp_path, recipe=default_short_recipe, force=True, progress=False
        )
    assert _leftovers(root) == []
    assert {p.name: p.read_bytes() for p in good.iterdir()} == before


def test_interrupted_training_leaves_no_partial_folder(tmp_path, default_short_recipe, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "train_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dm.train_default("tiny", cache_dir=tmp_path, recipe=default_short_recipe, progress=False)
    assert not dm.default_path("tiny", tmp_path).exists()
    root = dm.cache_root(tmp_path)
    assert _leftovers(root) == []
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["tokenizer"]


def test_unwritable_cache_dir_is_one_clear_error(tmp_path, nothing_shipped):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(
        dm.CacheDirError, match=r"cannot write the diagrammar model cache.*DIAGRAMMAR_CACHE"
    ):
        dm.default("tiny", cache_dir=blocker / "cache", progress=False)


def test_missing_model_without_training_is_a_clear_error(tmp_path, nothing_shipped):
    with pytest.raises(FileNotFoundError,
                       match=r"not trained.*none is shipped.*train-default --size tiny"):
        dm.default("tiny", cache_dir=tmp_path, train_if_missing=False)
    with pytest.raises(FileNotFoundError, match="train-default"):
        dm.manifest("small", cache_dir=tmp_path)


def test_cache_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DIAGRAMMAR_CACHE", str(tmp_path))
    assert dm.default_path("small") == tmp_path / "default-model" / "small"
    assert dm.tokenizer_path() == tmp_path / "default-model" / "tokenizer"
    monkeypatch.delenv("DIAGRAMMAR_CACHE")
    assert dm.default_path("small") != tmp_path / "default-model" / "small"


def _current_cache(tmp_path, default_tiny_path):
    """A cache holding the tiny model under today's recipe hash (a copy; nothing trains)."""
    folder = dm.default_path("tiny", tmp_path)
    shutil.copytree(default_tiny_path, folder)
    meta = json.loads((folder / "manifest.json").read_text())
    meta["recipe_hash"] = dm.recipe_hash("tiny")
    (folder / "manifest.json").write_text(json.dumps(meta))
    return folder


def test_command_line_reports_the_cached_model(tmp_path, default_tiny_path):
    from click.testing import CliRunner

    from diagrammar.cli import main

    folder = _current_cache(tmp_path, default_tiny_path)
    result = CliRunner().invoke(main, ["train-default", "--size", "tiny", "--quiet",
                                       "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "tiny:" in result.output and "heldout" in result.output
    assert str(folder) in result.output


def test_a_current_cached_model_comes_before_the_shipped_one(tmp_path, default_tiny_path):
    from diagrammar.models.default.shipped import is_shipped, shipped_path

    assert dm.model_folder("tiny", tmp_path) == (shipped_path("tiny") if is_shipped("tiny")
                                                 else None)
    folder = _current_cache(tmp_path, default_tiny_path)
    assert dm.model_folder("tiny", tmp_path) == folder
    assert dm.loaded_manifest("tiny", tmp_path)["recipe_hash"] == dm.recipe_hash("tiny")


def test_command_line_rejects_an_unwritable_cache(tmp_path):
    from click.testing import CliRunner

    from diagrammar.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = CliRunner().invoke(
        main, ["train-default", "--size", "tiny", "--quiet", "--cache-dir", str(blocker / "c")]
    )
    assert result.exit_code == 1
    assert "cannot write the diagrammar model cache" in result.output


def test_batches_use_short_windows_first_with_the_same_tokens_per_step():
    recipe = dm.Recipe("x", 1, 8, 1, seq_len=16, batch_size=3, steps=7,
                    short_seq_len=4, short_seq_steps=5)
    stream = torch.arange(1000)
    shapes = [tuple(b.shape) for b in batches(stream, recipe, torch.Generator().manual_seed(0))]
    assert shapes == [(12, 5)] * 5 + [(3, 17)] * 2
    for batch in batches(stream, recipe, torch.Generator().manual_seed(0)):
        # Windows are contiguous slices of the stream (inputs and shifted targets line up).
        assert bool((batch[:, 1:] - batch[:, :-1] == 1).all())


def test_batches_without_a_short_phase_are_unchanged_by_the_schedule_fields():
    plain = dm.Recipe("x", 1, 8, 1, seq_len=16, batch_size=2, steps=4)
    zero = dataclasses.replace(plain, short_seq_len=4, short_seq_steps=0)
    stream = torch.arange(500)
    a = list(batches(stream, plain, torch.Generator().manual_seed(3)))
    b = list(batches(stream, zero, torch.Generator().manual_seed(3)))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_short_windows_must_divide_the_full_window():
    bad = dm.Recipe("x", 1, 8, 1, seq_len=16, batch_size=2, steps=4,
                 short_seq_len=5, short_seq_steps=2)
    with pytest.raises(ValueError, match="must divide"):
        next(batches(torch.arange(500), bad, torch.Generator()))


def test_default_tokenizer_is_the_one_every_size_ships(default_tiny_path):
    tok = dm.default_tokenizer(progress=False)
    shipped = json.loads((default_tiny_path / "tokenizer.json").read_text())
    assert tok.get_vocab() == shipped["model"]["vocab"]
    assert tok.eos_token == "<|endoftext|>"


def test_default_tokenizer_in_an_unwritable_cache_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(dm.CacheDirError, match="cannot write"):
        dm.default_tokenizer(cache_dir=blocker / "cache", progress=False)
