from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from diagrammar.cli import main
from diagrammar.diagrams import PromptLookup, save_pipeline, speculative


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)
    return invoke


def test_generate_prints_text_and_stats(run, saved_model_dir):
    result = run("generate", "--model", str(saved_model_dir), "--prompt", "def f(x):",
                 "--max-new-tokens", "8", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "MAT" in result.output and "tokens/s" in result.output
    assert "PromptLookup >> Verify >> GreedyAccept >> Commit" in result.output


def test_generate_json_with_a_pipeline_file(run, saved_model_dir, tmp_path):
    path = save_pipeline(speculative(PromptLookup(num_tokens=3)), tmp_path / "p.json")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("x = 1\nx = 1\nx =")
    result = run("generate", "--model", str(saved_model_dir), "--pipeline", str(path),
                 "--prompt-file", str(prompt), "--max-new-tokens", "6", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["tokens"]) == 6 and data["stats"]["new_tokens"] == 6
    assert data["pipeline"]["layers"][0]["box"]["spec"]["num_tokens"] == 3


def test_generate_binds_a_draft_model_resource(run, saved_model_dir):
    base = ["generate", "--model", str(saved_model_dir), "--prompt", "def f(x):",
            "--max-new-tokens", "8", "--pipeline", "draft-model", "--json"]
    result = run(*base, "--resource", f"draft={saved_model_dir}")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stats"]["new_tokens"] == 8
    missing = run(*base)
    assert missing.exit_code == 1 and "needs the resource 'draft'" in missing.output
    bad = run(*base, "--resource", "draft")
    assert bad.exit_code == 1 and "--resource takes NAME=VALUE" in bad.output


def test_generate_binds_datastore_and_cost_resources_by_kind(run, saved_model_dir, tmp_path):
    corpus = tmp_path / "corpus.py"
    corpus.write_text("def f(x):\n    return x + 1\n" * 4)
    base = ["generate", "--model", str(saved_model_dir), "--prompt", "def f(x):",
            "--max-new-tokens", "8", "--json"]
    rest = run(*base, "--pipeline", "rest", "--resource", f"datastore={corpus}")
    assert rest.exit_code == 0, rest.output
    sized = run(*base, "--pipeline", "composed-sized", "--resource", "cost=measure")
    assert sized.exit_code == 0, sized.output
    curve = tmp_path / "curve.json"
    curve.write_text(json.dumps({"sizes": [1, 4], "median_seconds": [1.0, 1.5]}))
    assert run(*base, "--pipeline", "composed-sized", "--resource",
               f"cost={curve}").exit_code == 0
    bad = run(*base, "--pipeline", "composed-sized", "--resource", "cost=nowhere.json")
    assert bad.exit_code == 1 and "give 'measure' or a JSON file" in bad.output


def test_generate_samples_with_a_sampling_pipeline(run, saved_model_dir):
    base = ["generate", "--model", str(saved_model_dir), "--prompt", "def f(x):",
            "--max-new-tokens", "12", "--json", "--temperature", "0.8", "--top-k", "20",
            "--top-p", "0.9"]
    first = run(*base, "--pipeline", "prompt-lookup-sampling", "--seed", "3")
    again = run(*base, "--pipeline", "prompt-lookup-sampling", "--seed", "3")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["tokens"] == json.loads(again.stdout)["tokens"]          # seeded: reproducible
    assert data["stats"]["config"] == {"temperature": 0.8, "top_k": 20, "top_p": 0.9,
                                       "seed": 3}
    greedy_only = run(*base, "--pipeline", "prompt-lookup")
    assert greedy_only.exit_code == 1 and "GreedyAccept decodes greedily" in greedy_only.output


@pytest.mark.parametrize("args,message", [
    (["--model", "/no/such/dir", "--prompt", "x"], "model path /no/such/dir does not exist"),
    (["--pipeline", "nope", "--prompt", "x"], "unknown pipeline 'nope'"),
    (["--pipeline", "{bad", "--prompt", "x"], "malformed pipeline JSON at line 1, column 2"),
    ([], "give exactly one of --prompt"),
])
def test_generate_errors_are_one_clear_line(run, saved_model_dir, args, message):
    if "--model" not in args:
        args = ["--model", str(saved_model_dir), *args]
    result = run("generate", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_prompt_longer_than_the_context(run, saved_model_dir):
    result = run("generate", "--model", str(saved_model_dir), "--prompt", "word " * 200,
                 "--max-new-tokens", "4")
    assert result.exit_code == 1
    assert "the model's context holds 128" in result.output


def test_draw_pipelines_and_show(run, tmp_path):
    out = tmp_path / "p.png"
    result = run("draw", "--pipeline", "prompt-lookup-tree", "-o", str(out))
    assert result.exit_code == 0 and out.stat().st_size > 0
    listing = run("pipelines").output
    assert "autoregressive" in listing and "prompt-lookup-tree" in listing
    shown = run("show", "prompt-lookup").stdout
    assert json.loads(shown)["format"] == "diagrammar.pipeline"


def test_console_script_is_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = shutil.which("diagrammar") or str(Path(sys.executable).parent / "diagrammar")
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "generate" in out and "draw" in out


def _script():
    import shutil
    import sys
    from pathlib import Path

    return shutil.which("diagrammar") or str(Path(sys.executable).parent / "diagrammar")


def _one_line_failure(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_generate_names_a_model_folder_without_tokenizer(run, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(vocab_size=16, n_positions=16, n_embd=8, n_layer=1,
                               n_head=2)).save_pretrained(tmp_path / "bare")
    result = run("generate", "--model", str(tmp_path / "bare"), "--prompt", "x")
    _one_line_failure(result, "has no tokenizer files (tokenizer.json / vocab.json+merges.txt "
                      "/ tokenizer.model)")


def test_generate_with_an_uncached_hub_id_offline(run, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = run("generate", "--model", "someorg/not-cached", "--prompt", "x")
    _one_line_failure(result, "someorg/not-cached", "local cache", "offline")


def test_prompt_file_in_latin_1(run, saved_model_dir, tmp_path):
    prompt = tmp_path / "latin1.txt"
    prompt.write_bytes("x = 'café'\n".encode("latin-1"))
    result = run("generate", "--model", str(saved_model_dir), "--prompt-file", str(prompt),
                 "--max-new-tokens", "2")
    _one_line_failure(result, f"prompt file {prompt} is not valid utf-8 text",
                      "byte 0xe9 at position 8", "--encoding")
    result = run("generate", "--model", str(saved_model_dir), "--prompt-file", str(prompt),
                 "--encoding", "latin-1", "--max-new-tokens", "2", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["tokens"]) == 2
    result = run("generate", "--prompt-file", str(prompt), "--encoding", "klingon")
    _one_line_failure(result, "unknown --encoding 'klingon'")


def test_pipeline_file_not_utf8(run, saved_model_dir, tmp_path):
    path = tmp_path / "p.json"
    data = b'{"format": "diagrammar.pipeline", "name": "caf\xe9"}'
    path.write_bytes(data)
    result = run("generate", "--model", str(saved_model_dir), "--pipeline", str(path),
                 "--prompt", "x")
    _one_line_failure(result, str(path), "not UTF-8", f"position {data.index(0xe9)}")


def test_prompt_argument_not_utf8(saved_model_dir):
    """Non-UTF-8 bytes on the command line reach click as surrogate escapes."""
    import subprocess

    done = subprocess.run([_script(), "generate", "--model", str(saved_model_dir),
                           "--prompt", b"x = 'caf\xe9'"], capture_output=True, timeout=120)
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "--prompt is not valid UTF-8 text (byte 0xe9 at position 8)" in err


def test_draw_into_a_missing_folder(run, tmp_path):
    out = tmp_path / "no" / "such" / "p.png"
    result = run("draw", "--pipeline", "autoregressive", "-o", str(out))
    _one_line_failure(result, f"cannot write {out}: folder {out.parent} does not exist")
    assert not (tmp_path / "no").exists()
    (tmp_path / "file").write_text("x")
    result = run("draw", "-o", str(tmp_path / "file" / "p.png"))
    _one_line_failure(result, f"{tmp_path / 'file'} is not a folder")


def test_generate_refuses_a_pipeline_that_is_not_a_decoding_step(run, tmp_path):
    from diagrammar.diagrams import to_json

    path = tmp_path / "drafter.json"
    path.write_text(to_json(PromptLookup()))
    result = run("generate", "--model", "/no/model/needed", "--pipeline", str(path),
                 "--prompt", "x")
    _one_line_failure(result, "pipeline goes Context -> Context @ Draft",
                      "needs a decoding step that goes Context -> Context")


def test_generate_refuses_a_step_that_never_commits_in_one_line(run, saved_model_dir):
    identity = ('{"format": "diagrammar.pipeline", "version": 1, "dom": ["Context"], '
                '"cod": ["Context"], "layers": []}')
    result = run("generate", "--model", str(saved_model_dir), "--pipeline", identity,
                 "--prompt", "def f(x):", "--max-new-tokens", "4")
    _one_line_failure(result, "no box that commits")


def test_generate_decodes_inside_a_grammar(run, saved_model_dir, tmp_path):
    import re

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"enum": ["yes", "no"]}))
    for args in (["--json-schema", str(schema)], ["--regex", "[a-c]{2,5}"],
                 ["--grammar", "arithmetic", "--engine", "xgrammar"]):
        result = run("generate", "--model", str(saved_model_dir), "--prompt", "x = ",
                     "--max-new-tokens", "12", "--json", *args)
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert "Constrain" in json.dumps(out["pipeline"])
        text = out["text"].replace("<|endoftext|>", "")
        if args[0] == "--json-schema":
            assert text in ('"yes"', '"no"')
        elif args[0] == "--regex":
            assert re.fullmatch("[a-c]{0,5}", text)


def test_bad_grammar_options_are_one_clear_line(run, saved_model_dir, tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    for args, message in ((["--regex", "[a-", "--grammar", "json"], "at most one"),
                          (["--json-schema", str(tmp_path / "bad.json")], "is not JSON"),
                          (["--grammar", "yaml"], "built-in grammar name"),
                          (["--regex", "[a-"], "regular expression at position 0")):
        result = run("generate", "--model", str(saved_model_dir), "--prompt", "x", *args)
        assert result.exit_code == 1 and message in result.output, result.output


def test_span_prints_the_exact_best_spans_and_the_greedy_one(run, saved_model_dir, tmp_path):
    from diagrammar.decoding.span import best_span
    from diagrammar.models.resolve import resolve_model

    passage = tmp_path / "passage.txt"
    passage.write_text("The old tower stands in Paris, near the river Seine.")
    question = "Q: Where does the tower stand?\nA:"
    result = run("span", "--model", str(saved_model_dir), "--prompt", question,
                 "--passage-file", str(passage), "--top-k", "3", "--max-span-tokens", "6",
                 "--json")
    assert result.exit_code == 0, result.output
    spans = json.loads(result.stdout)
    expected = best_span(resolve_model(str(saved_model_dir)), question, passage.read_text(),
                         top_k=3, max_span_tokens=6)
    assert [s["token_ids"] for s in spans] == [list(s.token_ids) for s in expected]
    text = passage.read_text()
    assert all(text[s["start_char"]:s["end_char"]] == s["text"] for s in spans)
    greedy = run("span", "--model", str(saved_model_dir), "--prompt", question,
                 "--passage-file", str(passage), "--greedy", "--max-span-tokens", "6", "--json")
    (found,) = json.loads(greedy.stdout)
    assert found["log_prob"] <= spans[0]["log_prob"] + 1e-5     # float32: tree vs chain passes
    plain = run("span", "--model", str(saved_model_dir), "--prompt", question,
                "--passage", text, "--top-k", "2")
    assert plain.exit_code == 0 and len(plain.output.strip().splitlines()) == 2


def test_span_refuses_bad_input(run, saved_model_dir):
    both = run("span", "--model", str(saved_model_dir), "--prompt", "Q", "--passage", "a",
               "--passage-file", "x.txt")
    assert both.exit_code != 0 and "exactly one of --passage" in both.output
    empty = run("span", "--model", str(saved_model_dir), "--prompt", "Q", "--passage", "")
    assert empty.exit_code != 0 and "passage is empty" in empty.output
