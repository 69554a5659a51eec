"""End to end: ``diagrammar bench --quick`` on the tiny default model, the loud failure of a
lossless method that diverges, and the one-line failure of a bad ``--out`` before any run. No
timing is asserted: only that the harness works."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from diagrammar.bench.prompts import CATEGORIES
from diagrammar.diagrams import PIPELINES

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_end_to_end(bench_tiny_lm, tmp_path):
    from diagrammar.cli import main

    result = CliRunner().invoke(
        main, ["bench", "--quick", "--threads", "1", "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "## Overall" in result.output
    data = json.loads((tmp_path / "spec_bench_quick.json").read_text())
    for suffix in ("md", "png"):
        assert (tmp_path / f"spec_bench_quick.{suffix}").stat().st_size > 0
    names = [m["name"] for m in data["methods"]]
    assert names[:3] == ["hf/greedy", "hf/prompt-lookup", "hf/assisted"]
    assert {f"ours/{name}" for name in PIPELINES} <= set(names)
    assert len(data["prompts"]) == 2 * len(CATEGORIES)
    assert len(data["runs"]) == len(data["prompts"]) * len(names)
    overall = data["summary"]["overall"]
    for name in names:
        cell = overall[name]
        assert cell["runs"] == 2 * len(CATEGORIES)
        assert cell["tokens_per_second"] > 0 and cell["speedup"] > 0
        assert cell["mat"] >= 1.0
    assert overall["hf/greedy"]["mat"] == 1.0
    assert overall["ours/autoregressive"]["mat"] == 1.0
    # Lossless everywhere: 100% exact, or a reported near-tie (a float tie, not a bug).
    # Sampling methods run at temperature 0.7 against hf/sample, their tokens not compared.
    sampling = {m["name"] for m in data["methods"] if m["temperature"] > 0}
    assert {"hf/sample", "ours/sample", "ours/specinfer", "ours/spectr"} <= sampling
    assert all(m["reference"] == "hf/sample" for m in data["methods"] if m["name"] in sampling)
    assert data["bugs"] == []
    for run in data["runs"]:
        if run["method"] in sampling:
            assert run["exact"] is None
        else:
            assert run["exact"] or run["divergence"]["near_tie"], run
    assert "## Sampling" in result.output
    assert data["meta"]["threads"] == 1
    assert data["meta"]["model_manifest"]["size"] == "tiny"
    assert data["cost_curve"]["sizes"] == [1, 2, 4, 8, 16, 32, 64, 128]
    # Time is split by the box classes' roles.
    shares = data["timing_breakdown"]["ours/prompt-lookup"]
    assert shares["verify"] > 0 and shares["drafter"] > 0
    assert "| drafter |" in (tmp_path / "spec_bench_quick.md").read_text()
    # The cost model predicts every run of our pipelines from their other prompts.
    prediction = data["prediction"]
    ours = [name for name in names if name.startswith("ours/") and name not in sampling]
    assert prediction["runs"] == len(ours) * len(data["prompts"])
    assert prediction["median_abs_rel_error"] >= 0
    assert all(overall[name]["predicted_speedup"] > 0 for name in ours)
    assert overall["hf/greedy"]["predicted_speedup"] is None
    assert "Cost-model prediction: median absolute relative error" in result.output


def test_a_diverging_lossless_method_fails_the_run(bench_tiny_lm, tmp_path, monkeypatch):
    """A method that claims to be lossless but changes a token makes the run exit non-zero."""
    from diagrammar.bench import command, runner
    from diagrammar.bench.methods import Method

    real = runner.build_methods

    def with_a_broken_method(target, assistant, pipelines=None, resources=None,
                             temperature=0.0):
        methods = real(target, assistant, ["autoregressive"])
        good = methods[-1]

        def broken(ids, max_new_tokens):
            tokens, steps, stats = good.run(ids, max_new_tokens)
            # A confident token the target would not pick: its least likely one.
            lm = target.lm
            with __import__("torch").no_grad():
                logits = lm.model(input_ids=__import__("torch").tensor([ids])).logits[0, -1]
            return [int(logits.argmin())] + tokens[1:], steps, stats

        methods.append(Method("ours/broken", True, broken))
        return methods

    monkeypatch.setattr(runner, "build_methods", with_a_broken_method)
    # With a zero tie threshold every divergence counts as a bug, whatever its margin.
    status = command.main(quick=True, prompts=1, max_new_tokens=8, out=tmp_path,
                          progress=False, tie_margin=0.0)
    assert status == 1
    data = json.loads((tmp_path / "spec_bench_quick.json").read_text())
    assert len(data["bugs"]) == len(CATEGORIES)
    assert all(bug.endswith("ours/broken") for bug in data["bugs"])
    assert data["summary"]["overall"]["ours/broken"]["exact"] == 0.0
    assert data["summary"]["overall"]["ours/autoregressive"]["exact"] == 1.0
    assert "MISMATCH" in (tmp_path / "spec_bench_quick.md").read_text()


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_an_unwritable_out_fails_at_once_in_one_line(tmp_path, monkeypatch, where):
    """Regression: ``--out`` under a file used to fail with a traceback after the whole run."""
    from diagrammar.bench import config, runner
    from diagrammar.bench.command import command

    def never(*args, **kwargs):
        raise AssertionError("the benchmark ran before --out was checked")

    monkeypatch.setattr(runner, "run_benchmark", never)
    monkeypatch.setattr(config, "load_bench_model", never)
    monkeypatch.setattr(runner, "load_bench_model", never)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "reports" if where == "under-a-file" else blocker
    began = time.perf_counter()
    result = CliRunner().invoke(command, ["--quick", "--out", str(out), "--no-progress"])
    assert time.perf_counter() - began < 0.5
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: cannot write reports to {out}: {blocker} is not a folder\n"


def test_script_help():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "spec_bench.py"), "--help"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for option in ("--quick", "--model", "--assistant", "--threads", "--out"):
        assert option in out.stdout


def test_temperature_zero_and_no_datastore_leave_those_methods_out(bench_tiny_lm, tmp_path):
    from diagrammar.cli import main

    result = CliRunner().invoke(
        main, ["bench", "--quick", "--threads", "1", "--out", str(tmp_path), "--no-progress",
               "--prompts", "1", "--max-new-tokens", "8", "--temperature", "0",
               "--datastore", "none"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "spec_bench_quick.json").read_text())
    names = {m["name"] for m in data["methods"]}
    assert "ours/prompt-lookup" in names and "ours/aded" in names
    assert not names & {"hf/sample", "ours/sample", "ours/rest", "ours/rasd", "ours/specinfer"}
    assert "## Sampling" not in result.output
