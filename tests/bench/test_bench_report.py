"""Reports: JSON, Markdown and PNG are written, complete and consistent with the runs."""

from __future__ import annotations

import json

import pytest

from diagrammar.bench.exactness import Divergence
from diagrammar.bench.prompts import CATEGORIES, Prompt
from diagrammar.bench.report import (
    ReportPathError,
    check_out_dir,
    targets,
    to_markdown,
    write_reports,
)
from diagrammar.bench.results import BenchResult, Run, summarize

METHODS = ["hf/greedy", "hf/prompt-lookup", "ours/autoregressive", "ours/prompt-lookup"]


def make_result(divergence: Divergence | None = None, quick: bool = True) -> BenchResult:
    prompts = [Prompt(c, "difflib", f"f{i}", "def f():\n") for c in CATEGORIES for i in range(2)]
    runs = []
    for prompt in prompts:
        for method, seconds, steps in zip(METHODS, (2.0, 1.5, 1.6, 0.8), (64, 20, 64, 16)):
            runs.append(Run(method, prompt.id, prompt.category, 100, 64, seconds, steps,
                            exact=True))
    if divergence is not None:
        runs[-1].exact = False
        runs[-1].divergence = divergence
    curve = {"sizes": [1, 2, 4, 8, 16, 24], "median_seconds": [1, 1, 1.1, 1.2, 1.5, 2.0],
             "ratio": [1.0, 1.0, 1.1, 1.2, 1.5, 2.0], "context_tokens": 199, "repeats": 3}
    meta = {
        "date": "2026-01-01T00:00:00+00:00", "seconds": 12.0,
        "machine": {"platform": "Linux-x", "processor": "x86_64", "cpu_count": 2,
                    "python": "3.11", "torch": "2.13", "transformers": "5.24"},
        "threads": 2, "model": "default:tiny (GPT2LMHeadModel, 1.0 M parameters)",
        "model_spec": "default:tiny", "model_manifest": {"size": "tiny", "parameters": 10**6,
                                                        "heldout_modules": ["difflib"]},
        "assistant": "default:tiny", "assistant_manifest": None,
        "config": {"quick": quick, "per_category": 2, "max_new_tokens": 64},
        "reference": "hf/greedy", "tie_margin": 1e-3, "tokenizer": "X",
    }
    methods = [{"name": m, "family": m.split("/")[0], "lossless": True} for m in METHODS]
    breakdown = {"ours/prompt-lookup": {"prefill": 0.1, "drafter": 0.05, "verify": 0.8,
                                        "ms_per_step": 3.2}}
    return BenchResult(meta, prompts, runs, methods, summarize(runs, METHODS), curve, breakdown)


def test_summary_is_per_category_and_overall():
    result = make_result()
    assert set(result.summary) == {*CATEGORIES, "overall"}
    cell = result.summary["overall"]["ours/prompt-lookup"]
    assert cell["speedup"] == 2.5 and cell["mat"] == 4.0 and cell["exact"] == 1.0
    assert cell["tokens_per_second"] == 80.0 and cell["runs"] == 2 * len(CATEGORIES)


def test_reports_are_written_and_non_empty(tmp_path):
    result = make_result()
    paths = write_reports(result, tmp_path / "out")
    assert {p.name for p in paths.values()} == {
        "spec_bench_quick.json", "spec_bench_quick.md", "spec_bench_quick.png"}
    for path in paths.values():
        assert path.stat().st_size > 0
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["overall"]["ours/prompt-lookup"]["speedup"] == 2.5
    n_prompts = 2 * len(CATEGORIES)
    assert len(data["runs"]) == n_prompts * len(METHODS) and len(data["prompts"]) == n_prompts
    assert data["bugs"] == []
    text = paths["markdown"].read_text()
    for needle in ("| method | tokens/s | speedup | predicted | MAT | looping | exact |",
                   "Linux-x", "2 CPUs",
                   "default:tiny", "torch 2.13", "transformers 5.24", "| ours/prompt-lookup |",
                   "t(n)/t(1)", "2026-01-01", "### retrieval", "| drafter |"):
        assert needle in text, needle
    assert write_reports(make_result(quick=False), tmp_path)["json"].name == "spec_bench.json"


def test_targets():
    met = {t["target"]: t for t in targets(make_result())}
    ar = next(t for name, t in met.items() if name.startswith("ours/autoregressive"))
    assert ar["met"] and abs(ar["value"] - 1.25) < 1e-9
    lookup = next(t for name, t in met.items() if name.startswith("ours/prompt-lookup"))
    assert lookup["met"]
    assert all(t["met"] for t in met.values())


def test_a_clear_divergence_is_a_bug_and_a_near_tie_is_not():
    bug = make_result(Divergence(5, 10, 11, margin=0.7, near_tie=False))
    assert not bug.ok and len(bug.bugs) == 1 and not bug.near_ties
    text = to_markdown(bug)
    assert "MISMATCH" in text and "a bug" in text and "**not met**" in text
    assert bug.summary[CATEGORIES[-1]]["ours/prompt-lookup"]["exact"] == 0.5

    tie = make_result(Divergence(5, 10, 11, margin=2e-5, near_tie=True))
    assert tie.ok and len(tie.near_ties) == 1
    assert "near-tie" in to_markdown(tie)


def test_check_out_dir_names_the_path_in_the_way(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ReportPathError, match=f"{blocker} is not a folder"):
        check_out_dir(blocker / "deeper" / "reports")
    with pytest.raises(ReportPathError, match="is not a folder"):
        check_out_dir(blocker)
    fresh = tmp_path / "new" / "reports"
    assert check_out_dir(fresh) == fresh and not (tmp_path / "new").exists()  # creates nothing
    assert list(tmp_path.iterdir()) == [blocker]  # and leaves no probe file behind


def test_check_out_dir_refuses_a_folder_it_cannot_write(tmp_path, monkeypatch):
    """A read-only folder (simulated: root, as in CI, may write anywhere) fails in one line."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(ReportPathError, match=f"{locked} is not writable .Permission denied"):
        check_out_dir(locked / "reports")


def stats_of(seconds: float, nodes: float, new_tokens: int = 64, steps: int = 16) -> dict:
    """Decode statistics as ``DecodeStats.as_dict()`` gives them (the fields the model reads)."""
    return {"steps": steps, "new_tokens": new_tokens, "prefill_seconds": 0.0,
            "decode_seconds": seconds, "mean_draft_nodes": nodes,
            "box_seconds": {"PromptLookup": 0.1 * seconds, "Verify": 0.8 * seconds}}


def predicted_result() -> BenchResult:
    """make_result's runs with decode statistics for ours/prompt-lookup, predicted."""
    from diagrammar.bench.prediction import predict_runs
    from diagrammar.decoding.cost import CostModel
    from diagrammar.diagrams import PIPELINES

    result = make_result()
    for run in result.runs:
        if run.method == "ours/prompt-lookup":
            run.stats = stats_of(run.seconds, 6.0)
    cost = CostModel.from_curve(result.cost_curve)
    result.prediction = predict_runs(result.runs, {"ours/prompt-lookup":
                                                   PIPELINES["prompt-lookup"]()}, cost)
    result.summary = summarize(result.runs, METHODS)
    return result


def test_predicted_speedup_is_a_column_next_to_the_measured_one(tmp_path):
    result = predicted_result()
    predicted = [r.predicted for r in result.runs if r.predicted]
    assert len(predicted) == 2 * len(CATEGORIES) == result.prediction["runs"]
    assert all(r.predicted is None for r in result.runs if r.method != "ours/prompt-lookup")
    # By hand: 16 steps of 0.05 s, 80% in Verify and 10% in the drafter: the drafter's 0.005 s
    # plus 0.005 s outside the boxes, t(7) = 1.175 s from the curve; 4 tokens per step.
    # The reference: 2 s for 64 tokens, 1/32 s per token, is under t(1) = 1 s: no overhead.
    cell = predicted[0]
    assert cell["seconds_per_step"] == pytest.approx(1.175 + 0.01)
    assert cell["tokens_per_step"] == 4.0 and cell["nodes_per_step"] == 6.0
    expected = (4 / 1.185) / (1 / 1.0)
    assert cell["speedup"] == pytest.approx(expected) and cell["measured_speedup"] == 2.5
    assert result.prediction["median_abs_rel_error"] == pytest.approx(abs(expected - 2.5) / 2.5)
    assert result.summary["code"]["ours/prompt-lookup"]["predicted_speedup"] == pytest.approx(
        expected)
    assert result.summary["overall"]["hf/greedy"]["predicted_speedup"] is None
    text = to_markdown(result)
    assert f"| ours/prompt-lookup | 80.0 | 2.50x | {expected:.2f}x | 4.00 |" in text
    assert "| hf/greedy | 32.0 | 1.00x | – | 1.00 |" in text
    assert "Cost-model prediction: median absolute relative error" in text
    assert "over 10 runs" in text
    data = json.loads(write_reports(result, tmp_path)["json"].read_text())
    assert data["prediction"]["runs"] == 10
    assert data["summary"]["overall"]["ours/prompt-lookup"]["predicted_speedup"] == \
        pytest.approx(expected)
    assert data["runs"][3]["predicted"]["speedup"] == pytest.approx(expected)
    # Without predictions there is no error line, and the column shows dashes.
    assert "Cost-model prediction" not in to_markdown(make_result())


def test_a_run_is_predicted_without_its_own_observations():
    """Leave-one-out: changing a run's statistics leaves its own prediction unchanged and
    changes its category neighbour's."""
    from diagrammar.bench.prediction import predict_runs
    from diagrammar.decoding.cost import CostModel
    from diagrammar.diagrams import PIPELINES

    result = predicted_result()
    mine = [r for r in result.runs if r.method == "ours/prompt-lookup"]
    first, neighbour = mine[0], next(r for r in mine[1:] if r.category == mine[0].category)
    before = dict(first.predicted), dict(neighbour.predicted)
    first.stats = stats_of(first.seconds, 12.0, steps=8)
    predict_runs(result.runs, {"ours/prompt-lookup": PIPELINES["prompt-lookup"]()},
                 CostModel.from_curve(result.cost_curve))
    assert first.predicted == before[0]
    assert neighbour.predicted != before[1]
    assert neighbour.predicted["nodes_per_step"] == 12.0


def test_the_reference_is_the_no_draft_pipeline_with_its_observed_overhead():
    """With t(1) = 10 ms, hf/greedy's 1/32 s per token leaves 21.25 ms of overhead per token:
    the baseline runs at 32 tokens/s, and our step (t(7) = 11.75 ms + 10 ms) at 4 tokens."""
    from diagrammar.bench.prediction import predict_runs
    from diagrammar.decoding.cost import CostModel
    from diagrammar.diagrams import PIPELINES

    result = make_result()
    for run in result.runs:
        if run.method == "ours/prompt-lookup":
            run.stats = stats_of(run.seconds, 6.0)
    curve = result.cost_curve
    cost = CostModel(curve["sizes"], [s / 100 for s in curve["median_seconds"]])
    predict_runs(result.runs, {"ours/prompt-lookup": PIPELINES["prompt-lookup"]()}, cost)
    cell = next(r.predicted for r in result.runs if r.predicted)
    assert cell["tokens_per_second"] == pytest.approx(4 / 0.02175)
    assert cell["speedup"] == pytest.approx(4 / 0.02175 / 32)
