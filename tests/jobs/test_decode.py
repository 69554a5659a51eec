from __future__ import annotations

import pytest

from diagrammar.jobs import DecodeOptions, Job, LineError, LocalRunner, decode_jobs
from diagrammar.jobs.decode import prompt_ids, result_record


@pytest.fixture(scope="module")
def decoder(factory):
    return factory()


def test_results_match_single_decodes_with_per_line_budgets(decoder, options):
    jobs = [Job(f"p{n}", n + 1, text, 4 if n % 3 == 0 else None)
            for n, text in enumerate(["def add(a, b):", "import os", "class A:", "x = 1",
                                      "for i in range(3):", "return x", "# note"])]
    outcomes = list(decode_jobs(decoder, jobs, options))
    assert sorted(record["id"] for record in outcomes) == sorted(job.id for job in jobs)
    for record in outcomes:
        job = next(job for job in jobs if job.id == record["id"])
        alone = decoder.generate(job.prompt, job.max_new_tokens or options.max_new_tokens)
        assert record["tokens"] == alone.tokens and record["text"] == alone.text
        assert record["stats"]["new_tokens"] == len(alone.tokens)
        assert set(record) == {"id", "text", "tokens", "stats"}


def test_prompts_the_model_refuses_become_line_errors_first(decoder, options):
    jobs = [Job("ok", 1, "def f():"), Job("long", 2, "word " * 200),
            Job("vocab", 3, (1, 10 ** 6)), Job("empty", 4, ()), Job("zero", 5, "x", 0)]
    outcomes = list(decode_jobs(decoder, jobs, options))
    errors = [outcome for outcome in outcomes if isinstance(outcome, LineError)]
    assert outcomes[:3] == errors                            # reported before decoding
    assert [error.line for error in errors] == [2, 3, 4]
    assert "the model's context holds 128" in errors[0].message
    assert "outside the model's vocabulary" in errors[1].message
    assert errors[2].message == "the prompt is empty: give at least one token"
    records = {outcome["id"]: outcome for outcome in outcomes[3:]}
    assert set(records) == {"ok", "zero"} and records["zero"]["tokens"] == []


def test_prompt_ids_of_text_and_of_ids(decoder):
    assert prompt_ids(decoder.model, Job(1, 1, "def"), 4) == decoder.model.encode("def")
    assert prompt_ids(decoder.model, Job(1, 1, (4, 5)), 4) == [4, 5]


def test_result_record_is_json_data(decoder):
    import json

    generation = decoder.generate("x", 3)
    record = json.loads(json.dumps(result_record(Job("a", 1, "x"), generation)))
    assert (record["id"], record["tokens"], record["text"]) == ("a", generation.tokens,
                                                                generation.text)
    assert record["stats"]["steps"] == generation.stats.steps


def test_the_local_runner_builds_its_decoder_once(factory):
    built = []

    def make():
        built.append(1)
        return factory()

    runner = LocalRunner(make, DecodeOptions(max_new_tokens=3))
    assert list(runner.run([])) == [] and not built
    assert [r["id"] for r in runner.run([Job(1, 1, "a")])] == [1]
    assert [r["id"] for r in runner.run([Job(2, 2, "b")])] == [2]
    assert len(built) == 1
