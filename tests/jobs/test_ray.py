"""The Ray runner on a local Ray instance of 2 CPUs started here: sharded runs give the
in-process results, a killed worker's prompts are re-run, and failures stop in one line."""

from __future__ import annotations

import os
import signal
import sys

import pytest
import ray
from click.testing import CliRunner

from diagrammar.cli import main
from diagrammar.decoding.config import GenerationConfig
from diagrammar.jobs import (
    DecodeOptions,
    DecoderFactory,
    Job,
    JobError,
    LocalRunner,
    RayRunner,
    read_results,
    run_batch,
)

WORDS = ["def", "import", "class", "return", "for", "while", "with", "try", "print", "self"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """A local Ray instance with 2 CPUs for this module (RayRunner joins it, and leaves it
    running)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    lines = [{"id": f"j{n}", "prompt": f"{WORDS[n % 10]} {WORDS[n // 10 % 10]} x{n}(",
              **({"max_new_tokens": 4} if n % 7 == 3 else {})} for n in range(24)]
    return [Job(line["id"], n + 1, line["prompt"], line.get("max_new_tokens"))
            for n, line in enumerate(lines)]


@pytest.fixture(scope="module")
def local_results(factory, options, jobs):
    return {record["id"]: record for record in LocalRunner(factory, options).run(jobs)}


class KillOne:
    """Runs a RayRunner, and SIGKILLs one worker process that holds unfinished chunks as soon
    as the first results are back (as an OOM killer or a lost node would)."""

    def __init__(self, runner):
        self.runner, self.killed = runner, None

    def run(self, jobs):
        for outcome in self.runner.run(jobs):
            yield outcome
            if self.killed is None:
                victim = next(actor for actor in self.runner.actors if actor.chunks)
                self.killed = (victim.pid, len(victim.chunks))
                os.kill(victim.pid, signal.SIGKILL)


def test_two_workers_give_the_local_results_even_when_one_is_killed(
        factory, options, jobs, local_results, tmp_path, write_jsonl):
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": job.id, "prompt": job.prompt,
         **({"max_new_tokens": job.max_new_tokens} if job.max_new_tokens else {})}
        for job in jobs])
    out = tmp_path / "out.jsonl"
    reports = []
    runner = RayRunner(factory, options, workers=2, chunk_size=2, report=reports.append)
    killing = KillOne(runner)
    summary = run_batch(source, out, killing, progress=False, report=reports.append)
    assert killing.killed is not None and killing.killed[1] >= 1
    assert runner.restarts == 1 and runner.requeued >= killing.killed[1]
    assert any(f"(pid {killing.killed[0]} on " in line and "died" in line for line in reports)
    ids = [line.split('"id": "')[1].split('"')[0] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(job.id for job in jobs)       # every prompt, none twice
    results = read_results(out)
    assert {key: record["tokens"] for key, record in results.items()} == \
        {key: record["tokens"] for key, record in local_results.items()}
    assert all(results[key]["text"] == local_results[key]["text"] for key in results)
    assert summary.done == len(jobs) and not summary.skipped
    assert runner.actors == []                                 # all stopped at the end


def test_the_cli_shards_over_ray_and_reports_bad_lines(
        saved_model_dir, jobs, local_results, tmp_path, write_jsonl):
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": job.id, "prompt": job.prompt,
         **({"max_new_tokens": job.max_new_tokens} if job.max_new_tokens else {})}
        for job in jobs[:10]] + ["{bad", {"prompt": "word " * 200}])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, [
        "batch", "--model", str(saved_model_dir), "--input", str(source), "--output", str(out),
        "--max-new-tokens", "12", "--max-batch", "3", "--ray", "auto", "--workers", "2"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{source} line 11: not valid JSON" in result.stderr
    assert f"{source} line 12: the prompt has" in result.stderr
    assert f"{out}: 10 results written, 0 already there; 2 lines" in result.stderr
    results = read_results(out)
    assert {key: record["tokens"] for key, record in results.items()} == \
        {job.id: local_results[job.id]["tokens"] for job in jobs[:10]}
    assert ray.is_initialized()                                # joined, not shut down


def test_a_decoder_that_cannot_be_built_stops_the_run(tmp_path, jobs):
    runner = RayRunner(DecoderFactory(str(tmp_path / "no-model")), workers=1)
    with pytest.raises(JobError, match="a Ray worker could not build its decoder: .*no-model"):
        list(runner.run(jobs[:2]))


def test_a_chunk_that_fails_stops_the_run_with_its_error(factory, jobs):
    sampling = DecodeOptions(max_new_tokens=4, config=GenerationConfig(temperature=0.5))
    runner = RayRunner(factory, sampling, workers=1)
    with pytest.raises(JobError, match="a Ray worker failed: GreedyAccept decodes greedily"):
        list(runner.run(jobs[:2]))


def test_no_restart_left_stops_the_run_and_a_rerun_finishes(
        factory, options, jobs, local_results, tmp_path, write_jsonl):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": job.id, "prompt": job.prompt}
                                                 for job in jobs[:8]])
    out = tmp_path / "out.jsonl"
    runner = RayRunner(factory, options, workers=2, chunk_size=1, max_restarts=0,
                       report=lambda line: None)
    with pytest.raises(JobError, match=r"died with no restart left \(0 of max_restarts=0"):
        run_batch(source, out, KillOne(runner), progress=False)
    done = read_results(out)
    assert 1 <= len(done) < 8
    summary = run_batch(source, out, LocalRunner(factory, options), progress=False)
    assert summary.already_done == len(done) and summary.done == 8 - len(done)
    assert sorted(read_results(out)) == sorted(job.id for job in jobs[:8])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        RayRunner(lambda: None, chunk_size=0)
    with pytest.raises(ValueError, match="max_restarts must be at least 0"):
        RayRunner(lambda: None, max_restarts=-1)


def test_import_ray_gives_the_module_or_says_how_to_install_it(monkeypatch):
    from diagrammar.jobs.ray_runner import import_ray

    assert import_ray() is ray
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(JobError, match=r"pip install 'diagrammar\[ray\]'"):
        import_ray()
