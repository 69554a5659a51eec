"""``benchmarks/recipe_sweep.py``: the default-model recipe sweep, on a few tiny-model steps."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "recipe_sweep.py"


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("recipe_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variant_recipes_keep_tokens_per_step_and_split_the_steps(sweep):
    recipe = sweep._recipe("small", 500, sweep.VARIANTS["short256"])
    assert (recipe.steps, recipe.short_seq_steps, recipe.short_seq_len) == (500, 400, 256)
    assert recipe.threads == 1 and recipe.warmup_steps == 30
    base = sweep._recipe("small", 500, sweep.VARIANTS["base"])
    assert base.short_seq_steps == 0 and base.lr == 2e-3 and base.n_layer == 6
    assert (base.batch_size, base.seq_len) == (recipe.batch_size, recipe.seq_len)


def test_sweep_end_to_end_writes_json_markdown_and_plot(sweep, tmp_path, capsys):
    status = sweep.main(["--size", "tiny", "--steps", "5", "--variant", "short256",
                         "--jobs", "1", "--out", str(tmp_path)])
    assert status == 0
    report = json.loads((tmp_path / "recipe_sweep.json").read_text())
    (result,) = report["results"]
    assert result["name"] == "short256" and result["recipe"]["short_seq_steps"] == 4
    assert result["train_tokens"] == 5 * 2 * 1024
    # Five steps barely leave the uniform guess (ln 4096 = 8.3 nats), and never beat it by much.
    assert 6.0 < result["heldout_loss"] < 8.6 and 0.0 < result["heldout_accuracy"] < 0.2
    assert "| short256 |" in (tmp_path / "recipe_sweep.md").read_text()
    assert (tmp_path / "recipe_sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "short256" in capsys.readouterr().out


def test_unknown_variant_is_rejected(sweep, capsys):
    with pytest.raises(SystemExit):
        sweep.main(["--variant", "no-such-variant"])
    assert "invalid choice" in capsys.readouterr().err
