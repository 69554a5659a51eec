from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from diagrammar.cli import main
from diagrammar.diagrams import PromptLookup, to_json
from diagrammar.jobs import read_results


@pytest.fixture
def batch(saved_model_dir):
    def invoke(*args):
        return CliRunner().invoke(main, ["batch", "--model", str(saved_model_dir),
                                         "--threads", "1", "--max-new-tokens", "10", *args],
                                  catch_exceptions=False)
    return invoke


def test_batch_writes_one_line_per_prompt_with_stats(batch, prompts_file, tmp_path):
    out = tmp_path / "out.jsonl"
    result = batch("--input", str(prompts_file), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "batch: 100%" in result.stderr and "12/12" in result.stderr       # the progress bar
    assert f"{out}: 12 results written, 0 already there" in result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(f"p{n}" for n in range(12))
    for line in lines:
        assert set(line) == {"id", "text", "tokens", "stats"}
        assert line["stats"]["new_tokens"] == len(line["tokens"]) <= 10
        assert isinstance(line["text"], str)


def test_bad_lines_are_reported_with_their_numbers(batch, tmp_path, write_jsonl):
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"prompt": "def f(x):"}, "not json", {"ids": [1, 2, 3], "max_new_tokens": 3},
        {"prompt": "word " * 200}, {"id": 1, "prompt": "again"}, {"prompt": 5}])
    out = tmp_path / "out.jsonl"
    result = batch("--input", str(source), "--output", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    for message in (f"{source} line 2: not valid JSON",
                    f"{source} line 4: the prompt has",
                    f"{source} line 5: id 1 was already used on line 1",
                    f'{source} line 6: "prompt" must be a string, got 5',
                    f"4 lines of {source} skipped (lines 2, 4, 5, 6)"):
        assert message in result.stderr
    assert "Traceback" not in result.output and "batch:" not in result.stderr
    assert sorted(read_results(out)) == ["1", "3"]
    assert len(read_results(out)["3"]["tokens"]) <= 3


def test_a_rerun_resumes_a_cut_output(batch, prompts_file, tmp_path):
    out = tmp_path / "out.jsonl"
    assert batch("--input", str(prompts_file), "--output", str(out)).exit_code == 0
    full = read_results(out)
    lines = out.read_text().splitlines(keepends=True)
    kept = "".join(lines[:5])
    out.write_text(kept + lines[5][:30])                      # a job killed mid-line
    result = batch("--input", str(prompts_file), "--output", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert f"{out} line 6: an unfinished record was cut off" in result.stderr
    assert f"{out}: 7 results written, 5 already there" in result.stderr
    assert out.read_text().startswith(kept)                   # what was done is untouched
    again = read_results(out)
    assert len(out.read_text().splitlines()) == 12 and sorted(again) == sorted(full)
    assert all(again[key]["tokens"] == full[key]["tokens"] for key in full)
    result = batch("--input", str(prompts_file), "--output", str(out), "--quiet")
    assert f"{out}: 0 results written, 12 already there" in result.stderr


def test_a_file_of_only_bad_lines_fails(batch, tmp_path, write_jsonl):
    source = write_jsonl(tmp_path / "in.jsonl", ["{", {"ids": "x"}])
    result = batch("--input", str(source), "--output", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 1
    assert f"Error: no prompt of {source} could run: every line was skipped" in result.output


@pytest.mark.parametrize("args, message", [
    (["--workers", "2"], "--workers only apply with --ray"),
    (["--pipeline", "nope"], "pipeline:"),
    (["--pipeline", to_json(PromptLookup())], "batch needs a decoding step"),
    (["--resource", "draft"], "--resource takes NAME=VALUE"),
    (["--temperature", "0.5"], "GreedyAccept"),
])
def test_usage_errors_are_one_line(batch, prompts_file, tmp_path, args, message):
    result = batch("--input", str(prompts_file), "--output", str(tmp_path / "o.jsonl"), *args)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line and "batch:" not in line]
    assert len(lines) == 1 and lines[0].startswith("Error: ")


def test_missing_files_and_models_fail_in_one_line(batch, prompts_file, tmp_path):
    result = batch("--input", str(tmp_path / "none.jsonl"), "--output", str(tmp_path / "o"))
    assert result.exit_code == 1 and "none.jsonl: no such file" in result.output
    result = CliRunner().invoke(main, ["batch", "--model", str(tmp_path / "no-model"),
                                       "--input", str(prompts_file),
                                       "--output", str(tmp_path / "o.jsonl"), "--quiet"])
    assert result.exit_code == 1 and "no-model" in result.output
    assert "Traceback" not in result.output


def test_ray_missing_says_how_to_install_it(batch, prompts_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)             # import ray -> ImportError
    result = batch("--input", str(prompts_file), "--output", str(tmp_path / "o.jsonl"),
                   "--ray", "auto")
    assert result.exit_code == 1
    assert result.output.strip() == \
        "Error: running on Ray needs the ray package: pip install 'diagrammar[ray]'"
