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


def test_checked_math_example_runs(default_tiny_path):
    example = Path(__file__).parents[1] / "examples" / "checked_math.py"
    done = subprocess.run([sys.executable, str(example), "--model", "default:tiny",
                           "--prompts", "2", "--max-new-tokens", "16"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "outputs the check changed:" in done.stdout
    assert "tokens/s (median over prompts" in done.stdout


def test_checked_math_line_adapter():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "checked_math", Path(__file__).parents[1] / "examples" / "checked_math.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["checked_math"] = module          # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["checked_math"]
    check = module.LineEquations()
    assert check.check("    assert 7 * 8 == 56").status == "pass"
    assert check.check("# 7 * 8 = 54").status == "fail"
    assert check.check("# (x + 1)**2 = x**2 + 2*x + 1").status == "pass"
    for line in ("def test():", "x = 7 * 8", "# the sum = total", "assert a == b", ""):
        assert check.check(line).status == "pass", line
    assert len(module.build_prompts(5)) == 5
