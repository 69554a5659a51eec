"""The demo (README's first command) runs end to end on the tiny default model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from diagrammar.bench.prompts import CATEGORIES

DEMO = Path(__file__).parents[1] / "examples" / "demo.py"


def test_demo_runs_on_the_tiny_model(tmp_path, default_tiny_path):
    done = subprocess.run(
        [sys.executable, str(DEMO), "--tiny", "--max-new-tokens", "16", "--repeats", "1",
         "--threads", "1", "--out", str(tmp_path / "fresh" / "out")],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    # One prompt per benchmark category.
    assert done.stdout.count("identical to greedy (ours and Hugging Face): True") == len(
        CATEGORIES)
    assert "all outputs identical to greedy decoding" in done.stdout
    assert "x Hugging Face greedy" in done.stdout
    assert (tmp_path / "fresh" / "out" / "demo_pipeline.png").stat().st_size > 0  # made it


def test_constrained_json_example_runs(default_tiny_path):
    example = Path(__file__).parents[1] / "examples" / "constrained_json.py"
    done = subprocess.run([sys.executable, str(example), "--tiny", "--max-new-tokens", "48"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "identical to constrained greedy without speculation: True" in done.stdout
