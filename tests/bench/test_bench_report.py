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
    for needle in ("| method | tokens/s | speedup | MAT | looping | exact |", "Linux-x", "2 CPUs",
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
