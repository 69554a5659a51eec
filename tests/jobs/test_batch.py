from __future__ import annotations

import json

import pytest

from diagrammar.jobs import JobError, LineError, LocalRunner, read_results, run_batch


class Recording:
    """A runner that "decodes" a prompt into its length, records the jobs it was given, and
    can be interrupted after a number of results (as a killed job is)."""

    def __init__(self, stop_after=None):
        self.seen, self.stop_after = [], stop_after

    def run(self, jobs):
        for job in jobs:
            if self.stop_after is not None and len(self.seen) == self.stop_after:
                raise KeyboardInterrupt
            self.seen.append(job.id)
            if job.prompt == "refused":
                yield LineError(job.line, "the model refuses this")
            else:
                yield {"id": job.id, "text": None, "tokens": [len(job.prompt)], "stats": {}}


@pytest.fixture
def five(tmp_path, write_jsonl):
    return write_jsonl(tmp_path / "in.jsonl", [{"id": f"j{n}", "prompt": "x" * n}
                                               for n in range(1, 6)])


def test_an_interrupted_job_resumes_where_it_stopped(five, tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_batch(five, out, Recording(stop_after=2), progress=False)
    assert list(read_results(out)) == ["j1", "j2"]            # written as they finished
    rerun = Recording()
    summary = run_batch(five, out, rerun, progress=False)
    assert rerun.seen == ["j3", "j4", "j5"]                    # only the rest runs
    assert (summary.done, summary.already_done, summary.prompts) == (3, 2, 5)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["j1", "j2", "j3", "j4", "j5"]
    assert [line["tokens"] for line in lines] == [[1], [2], [3], [4], [5]]


def test_a_truncated_last_line_is_repaired_and_its_prompt_rerun(five, tmp_path):
    out = tmp_path / "out.jsonl"
    run_batch(five, out, Recording(), progress=False)
    data = out.read_text()
    out.write_text(data[:len(data) - 9])                       # killed while writing j5
    reports = []
    rerun = Recording()
    summary = run_batch(five, out, rerun, progress=False, report=reports.append)
    assert rerun.seen == ["j5"] and summary.done == 1
    assert reports == [f"{out} line 5: an unfinished record was cut off (an interrupted run?)"]
    assert list(read_results(out)) == ["j1", "j2", "j3", "j4", "j5"]
    assert len(out.read_text().splitlines()) == 5


def test_bad_lines_are_reported_and_skipped_never_fatal(tmp_path, write_jsonl):
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"prompt": "a"}, "{oops", {"prompt": "refused"}, {"id": 1, "prompt": "b"},
        {"prompt": "c"}])
    reports = []
    summary = run_batch(source, tmp_path / "out.jsonl", Recording(), progress=False,
                        report=reports.append)
    assert reports == [
        f"{source} line 2: not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2)",
        f"{source} line 4: id 1 was already used on line 1: ids must be unique",
        f"{source} line 3: the model refuses this"]
    assert sorted(read_results(tmp_path / "out.jsonl")) == ["1", "5"]
    assert summary.describe().endswith("3 lines of " + str(source) + " skipped (lines 2, 3, 4)")


def test_files_that_cannot_be_used_fail_in_one_line(five, tmp_path):
    with pytest.raises(JobError, match="no such file"):
        run_batch(tmp_path / "missing.jsonl", tmp_path / "out.jsonl", Recording())
    with pytest.raises(JobError, match="folder .*nowhere does not exist"):
        run_batch(five, tmp_path / "nowhere" / "out.jsonl", Recording())
    with pytest.raises(JobError, match="is the input file"):
        run_batch(five, five, Recording())
    with pytest.raises(JobError, match="it is a folder"):
        run_batch(five, tmp_path, Recording())


def test_a_real_local_run_writes_every_prompt_once(factory, options, prompts_file, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = run_batch(prompts_file, out, LocalRunner(factory, options), progress=False)
    results = read_results(out)
    assert summary.done == 12 and sorted(results) == sorted(f"p{n}" for n in range(12))
    assert len(out.read_text().splitlines()) == 12
    assert len(results["p4"]["tokens"]) <= 5 and results["p4"]["stats"]["new_tokens"] <= 5
    decoder = factory()
    assert results["p0"]["tokens"] == decoder.generate("def add(a, b):", 12).tokens


def test_reports_go_to_stderr(capsys):
    from diagrammar.jobs import stderr_report

    stderr_report("in.jsonl line 3: not valid JSON")
    captured = capsys.readouterr()
    assert captured.err == "in.jsonl line 3: not valid JSON\n" and captured.out == ""
